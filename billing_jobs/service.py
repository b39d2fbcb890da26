"""Billing runs: price a month's usage, store the run and its lines, move it through its states.

``price_month`` is the one pipeline from a month's usage totals to priced lines (totals → usage →
price); a new run, the corrections of finalised months and the check at finalisation all use it.

A run's id is derived from everything that decides its content (period, municipalities, the
catalogue's bytes and the period's usage), so pricing the same period again with unchanged usage
and catalogue finds the same run and gives byte-identical exports. A run is ``draft`` until it is
``final``; a final run never changes, and at most one final run covers a municipality × month. A
void is for good: the id then takes a generation (``run_id_for``), so the same inputs make a new run.
The commands that call ``create_run``, ``finalize_run`` and ``void_run`` hold the billing lock
(``billing_jobs.lock``), so these checks and the writes after them never race.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from billing_jobs.corrections import differences
from billing_jobs.metering import period_usage
from billing_jobs.model import DRAFT, FINAL, VOID, Line, PeriodTotals, Run, Usage, sort_lines
from billing_jobs.pricing import price_period, unbilled_usage
from billing_jobs.store import BillingStore, RunError
from chargeback.catalogue import Catalogue
from chargeback.period import Period


@dataclass(frozen=True)
class PricedRun:
    """A run with its lines; ``created`` is False when an identical run already existed."""

    run: Run
    lines: list[Line]
    created: bool
    # Usage of the month that no line bills (a removed or non-member municipality, a retired service).
    unbilled: tuple[str, ...] = ()


def price_month(
    store: BillingStore,
    catalogue: Catalogue,
    period: Period,
    municipalities: Collection[str] | None = None,
    *,
    usage: Sequence[Usage] | None = None,
) -> list[Line]:
    """A month's lines priced from its usage in ClickHouse: the period's totals, their billable
    quantities by meter (``usage``, when the caller has metered them already), priced by the
    catalogue; ``municipalities`` None means every member of the month."""
    if usage is None:
        usage = period_usage(catalogue, store.period_totals(period), period)
    return price_period(catalogue, period, usage, municipalities)


def correction_lines(
    store: BillingStore, catalogue: Catalogue, period: Period, scope: Sequence[str]
) -> list[Line]:
    """Correction lines for every finalised month before ``period`` whose usage changed since."""
    lines: list[Line] = []
    for month, covered in sorted(store.finalised_periods(period).items()):
        q = Period.parse(month)
        # Only municipalities still in the catalogue: one removed from it is not credited its month.
        members = (
            set(catalogue.municipality_codes)
            if covered is None
            else covered & set(catalogue.municipality_codes)
        )
        if scope:
            members &= set(scope)
        if not members:
            continue
        now = price_month(store, catalogue, q, sorted(members))
        lines.extend(differences(now, store.billed(q), month, members))
    return lines


def usage_digest(totals: Sequence[PeriodTotals], corrections: Sequence[Line] = ()) -> str:
    """A fingerprint of a period's usage sums and its corrections, independent of row order."""
    text = "\n".join(
        f"{t.municipality}|{t.cost_centre}|{t.service}|{t.event_sum.normalize()}|{t.subject_days}|"
        f"{t.daily_max_sum.normalize()}"
        for t in sorted(totals, key=lambda t: (t.municipality, t.cost_centre, t.service))
    )
    text += "".join(
        f"\n{x.corrects_period}|{x.municipality}|{x.cost_centre}|{x.service}|{x.quantity}|{x.amount}"
        for x in sort_lines(corrections)
    )
    return hashlib.sha256(text.encode()).hexdigest()


def run_id_for(
    period: Period,
    municipalities: Sequence[str],
    catalogue_sha256: str,
    usage_sha256: str,
    generation: int = 0,
) -> str:
    """The run id: the period and a digest of everything the run's content depends on.

    ``generation`` counts the voided runs with the same inputs: a voided id is never used again, so
    pricing the same inputs after a void makes a new run. Generation 0 (nothing voided) leaves the
    digest as it always was, so re-runs stay byte-identical while nothing was voided.
    """
    scope = ",".join(municipalities) or "*"
    text = f"{period}|{scope}|{catalogue_sha256}|{usage_sha256}"
    if generation:
        text += f"|generation {generation}"
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{period}-{digest[:12]}"


def current_run_id(
    store: BillingStore,
    period: Period,
    municipalities: Sequence[str],
    catalogue_sha256: str,
    usage_sha256: str,
) -> tuple[str, Run | None]:
    """The id these inputs price to, past every voided run with the same inputs, and the run that
    already has it (None: not priced yet)."""
    generation = 0
    while True:
        run_id = run_id_for(period, municipalities, catalogue_sha256, usage_sha256, generation)
        found = store.find_run(run_id)
        if found is None or found.status != VOID:
            return run_id, found
        generation += 1


def create_run(
    store: BillingStore,
    catalogue: Catalogue,
    catalogue_sha256: str,
    period: Period,
    municipalities: Collection[str] = (),
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    progress: Callable[[str], None] = lambda step: None,
) -> PricedRun:
    """Price ``period`` from the usage in ClickHouse and store it as a draft run (or find it);
    ``progress`` hears of each step as it is done."""
    scope = tuple(sorted(set(municipalities)))
    unknown = [m for m in scope if m not in catalogue.municipality_codes]
    if unknown:
        raise RunError(
            f"billing run of {period} refused: municipality {unknown[0]} is not in the catalogue; add it to "
            f"the catalogue's municipalities, or leave out --municipality {unknown[0]}"
        )
    final = [r for r in store.list_runs(period) if r.status == FINAL]
    for done in final:
        overlap = set(scope or catalogue.municipality_codes) & set(
            done.municipalities or catalogue.municipality_codes
        )
        if overlap:
            raise RunError(
                f"billing run of {period} refused: {period} is finalised for {min(overlap)} (run "
                f"{done.run_id}); usage that arrives later is billed as corrections in the next month's run"
            )
    totals = store.period_totals(period)
    progress(f"read {len(totals)} usage totals of {period}")
    usage = period_usage(catalogue, totals, period)
    unbilled = tuple(unbilled_usage(catalogue, period, usage))
    corrections = correction_lines(store, catalogue, period, scope)
    progress(f"found {len(corrections)} correction lines of finalised months")
    usage_sha256 = usage_digest(totals, corrections)
    run_id, existing = current_run_id(store, period, scope, catalogue_sha256, usage_sha256)
    if existing is not None:
        progress(f"same usage and catalogue as run {run_id}: nothing to price")
        return PricedRun(existing, store.load_lines(run_id), created=False, unbilled=unbilled)

    lines = price_month(store, catalogue, period, scope or None, usage=usage)
    lines = sort_lines([*lines, *corrections])
    progress(f"priced {len(lines)} lines")
    price_list = catalogue.price_list_for(period.first_day).version
    now = clock().replace(microsecond=0)
    run = Run(
        run_id=run_id,
        period=str(period),
        municipalities=scope,
        status=DRAFT,
        price_list=price_list,
        currency=catalogue.currency,
        catalogue_sha256=catalogue_sha256,
        usage_sha256=usage_sha256,
        created_at=now,
        changed_at=now,
        revision=1,
    )
    # Lines first, header last: a run without a header is invisible, never half-visible.
    store.write_lines(run, lines)
    store.write_header(run)
    progress(f"stored run {run_id}")
    return PricedRun(run, lines, created=True, unbilled=unbilled)


def finalize_run(
    store: BillingStore,
    run_id: str,
    catalogue: Catalogue,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Run:
    """Make a draft run final (immutable); finalising a final run again changes nothing.

    Refused when the run's corrections are out of date (another run corrected the same month
    since), so that no correction is ever billed twice.
    """
    run = store.get_run(run_id)
    if run.status == FINAL:
        return run
    if run.status == VOID:
        raise RunError(
            f"{run_label(run)} is void and cannot be finalised; price the month again with "
            f"`{run_command(run)}` and finalise the new run"
        )
    for other in store.list_runs(Period.parse(run.period)):
        covered = covered_by_both(run, other)
        if other.status == FINAL and other.run_id != run.run_id and covered:
            raise RunError(
                f"{run_label(run)} cannot be finalised: {run.period} is already final for {covered} in "
                f"run {other.run_id}; void this draft with `chargeback billing void {run_id}`, what changed "
                f"since reaches {run.period} as corrections in a later month's run"
            )
    priced = [x for x in store.load_lines(run_id) if x.corrects_period]
    current = correction_lines(store, catalogue, Period.parse(run.period), run.municipalities)
    if _correction_keys(priced) != _correction_keys(current):
        raise RunError(
            f"{run_label(run)} is out of date (its corrections changed since it was priced): price the month "
            f"again with `{run_command(run)}` and finalise the new run"
        )
    final = replace(run, status=FINAL, changed_at=clock().replace(microsecond=0), revision=run.revision + 1)
    store.write_header(final)
    return final


def void_run(
    store: BillingStore, run_id: str, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Run:
    """Mark a draft run void; a final run cannot be voided."""
    run = store.get_run(run_id)
    if run.status == FINAL:
        raise RunError(
            f"{run_label(run)} is final and cannot be voided; what changed since reaches {run.period} "
            "as corrections in a later month's run"
        )
    if run.status == VOID:
        return run
    void = replace(run, status=VOID, changed_at=clock().replace(microsecond=0), revision=run.revision + 1)
    store.write_header(void)
    return void


def previous_run(store: BillingStore, run: Run) -> tuple[Run, list[Line]] | None:
    """The previous month's latest final run, else its latest draft, with its lines; None when it
    has neither (the run report's month-over-month change)."""
    candidates = [r for r in store.list_runs(Period.parse(run.period).previous()) if r.status != VOID]
    chosen = next((r for r in candidates if r.status == FINAL), candidates[0] if candidates else None)
    return (chosen, store.load_lines(chosen.run_id)) if chosen else None


def _correction_keys(lines: Sequence[Line]) -> list[tuple[object, ...]]:
    return sorted(
        (x.corrects_period, x.municipality, x.cost_centre, x.service, x.quantity, x.amount) for x in lines
    )


def scope_words(municipalities: Sequence[str]) -> str:
    """``all municipalities`` (none given), ``municipality 2183`` or ``municipalities 2183, 2184``."""
    if not municipalities:
        return "all municipalities"
    noun = "municipality" if len(municipalities) == 1 else "municipalities"
    return f"{noun} {', '.join(municipalities)}"


def run_label(run: Run) -> str:
    """``run 2026-10-0123456789ab (2026-10, municipality 2183)``: how messages name a run."""
    return f"run {run.run_id} ({run.period}, {scope_words(run.municipalities)})"


def run_command(run: Run) -> str:
    """The command that prices a run's month and scope again."""
    only = "".join(f" --municipality {m}" for m in run.municipalities)
    return f"chargeback billing run --period {run.period}{only}"


def covered_by_both(a: Run, b: Run) -> str:
    """The municipalities two runs of one month both cover, as words (empty: none).

    A run without municipalities covers every municipality, whoever is a member that month.
    """
    if a.period != b.period:
        return ""
    if not a.municipalities and not b.municipalities:
        return scope_words(())
    if not a.municipalities or not b.municipalities:
        return scope_words(sorted(set(a.municipalities or b.municipalities)))
    both = sorted(set(a.municipalities) & set(b.municipalities))
    return scope_words(both) if both else ""
