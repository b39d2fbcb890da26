"""Billing runs: price a month's usage, store the run and its lines, move it through its states.

``price_month`` is the one pipeline from a month's usage totals to priced lines (totals → usage →
price); a new run, the corrections of finalised months and the check at finalisation all use it.

Every run keeps the catalogue it was priced with; a finalised month is corrected with that
catalogue (late usage), and with the current one only when finance asks (``reprice_invoiced``).
Whatever depends on the time takes ``now``: a month is run once it has begun and finalised once it
has ended, both in the catalogue's time zone; before finalising, ``readiness`` gives the run's
totals per member and what may be missing (``find_gaps``).

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
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from billing_jobs.corrections import differences
from billing_jobs.metering import period_usage
from billing_jobs.model import (
    DRAFT,
    FINAL,
    LATE_USAGE,
    REPRICED,
    VOID,
    Line,
    PeriodTotals,
    Run,
    Usage,
    sort_lines,
)
from billing_jobs.pricing import price_period, unbilled_usage
from billing_jobs.store import LOOKBACK_MONTHS, BillingStore, RunError
from chargeback.catalogue import Catalogue, parse_catalogue
from chargeback.money import round_quantity, signed_money
from chargeback.period import Period


@dataclass(frozen=True)
class PricedRun:
    """A run with its lines; ``created`` is False when an identical run already existed."""

    run: Run
    lines: list[Line]
    created: bool
    # Usage of the month that no line bills (a removed or non-member municipality, a retired service).
    unbilled: tuple[str, ...] = ()
    # The month has not ended: the sentence saying this draft is a preview.
    preview: str | None = None
    # The current catalogue would bill finalised months differently, not repriced (one sentence).
    repricing: str | None = None
    # Late usage of months older than the correction window, listed and not billed.
    beyond_window: tuple[LateBeyondWindow, ...] = ()


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


@dataclass(frozen=True)
class Corrections:
    """The correction lines of finalised months, and what was not repriced.

    ``repricing``: one sentence when the current catalogue would bill finalised months differently
    from the catalogues they were billed with and finance did not ask to reprice them, else None.
    """

    lines: list[Line]
    repricing: str | None = None


def billed_catalogue(store: BillingStore, run: Run, current: Catalogue) -> Catalogue:
    """The catalogue ``run`` was priced with (stored by its SHA-256 when the run was created); the
    current one for a run that stored none."""
    text = store.catalogue_text(run.catalogue_sha256)
    return current if text is None else parse_catalogue(text, f"catalogue {run.catalogue_sha256[:12]}")


def correction_lines(
    store: BillingStore,
    catalogue: Catalogue,
    period: Period,
    scope: Sequence[str],
    *,
    reprice: bool = False,
    catalogue_sha256: str | None = None,
) -> Corrections:
    """Correction lines for every finalised month in the window before ``period``.

    A finalised month is priced again from its usage today with the catalogue its final run was
    priced with; the difference to what final runs billed is late usage (reason ``late usage``). The
    current catalogue reaches a finalised month only with ``reprice`` (finance's
    ``--reprice-invoiced``): its lines are then today's usage priced with the current catalogue less
    what was billed, each line saying whether it is late usage, repriced, or both. Without
    ``reprice`` a difference between the two catalogues is stated (``Corrections.repricing``) and
    not billed. ``catalogue_sha256`` (of ``catalogue``) spares reading and pricing it again where a
    month was billed with the same catalogue.
    """
    lines: list[Line] = []
    pending: list[str] = []
    catalogues: dict[str, Catalogue] = {catalogue_sha256: catalogue} if catalogue_sha256 else {}
    months: dict[str, list[Run]] = {}
    for run in store.final_runs(period):
        months.setdefault(run.period, []).append(run)
    # A member's month repriced by a final run is billed with that run's catalogue since.
    repriced = store.repriced(period) if months else {}
    for sha in sorted(set(repriced.values()) - set(catalogues)):
        text = store.catalogue_text(sha)
        catalogues[sha] = catalogue if text is None else parse_catalogue(text, f"catalogue {sha[:12]}")
    for month, finals in sorted(months.items()):
        q = Period.parse(month)
        groups: dict[str, set[str]] = {}
        for run in finals:
            if run.catalogue_sha256 not in catalogues:
                catalogues[run.catalogue_sha256] = billed_catalogue(store, run, catalogue)
            run_catalogue = catalogues[run.catalogue_sha256]
            members = set(run.municipalities) if run.municipalities else set(run_catalogue.members(q))
            # Only municipalities still in the catalogue: one removed from it is not credited its month.
            members &= set(catalogue.municipality_codes) & set(run_catalogue.municipality_codes)
            if scope:
                members &= set(scope)
            for member in members:
                sha = repriced.get((month, member), run.catalogue_sha256)
                if member in catalogues[sha].municipality_codes:
                    groups.setdefault(sha, set()).add(member)
        if not any(groups.values()):
            continue
        totals = store.period_totals(q)
        billed = store.billed(q)
        changed, change = 0, Decimal(0)
        for sha, members in sorted(groups.items()):
            if not members:
                continue
            billed_with = catalogues[sha]
            as_billed = price_period(billed_with, q, period_usage(billed_with, totals, q), sorted(members))
            late = [replace(x, reason=LATE_USAGE) for x in differences(as_billed, billed, month, members)]
            if billed_with is catalogue:
                lines.extend(late)
                continue
            now = price_period(catalogue, q, period_usage(catalogue, totals, q), sorted(members))
            differ = _line_values(now) != _line_values(as_billed)
            if differ and reprice:
                lines.extend(_with_reasons(differences(now, billed, month, members), late))
                continue
            lines.extend(late)
            if differ:
                before, after = _line_values(as_billed), _line_values(now)
                changed += sum(1 for k in set(before) | set(after) if before.get(k) != after.get(k))
                change += sum((x.amount for x in now), Decimal(0)) - sum(
                    (x.amount for x in as_billed), Decimal(0)
                )
        if changed:
            pending.append(f"{month} {changed} line{'s' if changed != 1 else ''} {signed_money(change)}")
    repricing = None
    if pending:
        repricing = (
            "the current catalogue would bill finalised months differently from the catalogue they were "
            f"billed with ({'; '.join(pending)} {catalogue.currency} excl. VAT): they are not repriced; "
            "run with --reprice-invoiced to bill the differences as corrections"
        )
    return Corrections(lines, repricing)


def _line_values(lines: Sequence[Line]) -> dict[tuple[str, str, str], tuple[Decimal, Decimal, Decimal]]:
    return {(x.municipality, x.cost_centre, x.service): (x.quantity, x.amount, x.vat_amount) for x in lines}


def _with_reasons(full: Sequence[Line], late: Sequence[Line]) -> list[Line]:
    """Repriced correction lines, each saying why: late usage alone (the same line as without
    repricing), repriced alone, or both."""
    late_values = {
        (x.municipality, x.cost_centre, x.service): (x.quantity, x.amount, x.vat_amount) for x in late
    }
    out = []
    for x in full:
        key = (x.municipality, x.cost_centre, x.service)
        if late_values.get(key) == (x.quantity, x.amount, x.vat_amount):
            reason = LATE_USAGE
        elif key in late_values:
            reason = f"{LATE_USAGE}, {REPRICED}"
        else:
            reason = REPRICED
        out.append(replace(x, reason=reason))
    return out


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


def month_bounds(catalogue: Catalogue, period: Period) -> tuple[datetime, datetime]:
    """When ``period`` begins and ends: midnight of its first day and of the next month's first day
    in the catalogue's time zone."""
    tz = catalogue.tz
    return (
        datetime.combine(period.first_day, time(0), tzinfo=tz),
        datetime.combine(period.next().first_day, time(0), tzinfo=tz),
    )


def _when(moment: datetime, catalogue: Catalogue) -> str:
    return f"{moment:%Y-%m-%d %H:%M} {moment.tzname()}"


def check_begun(catalogue: Catalogue, period: Period, now: datetime) -> str | None:
    """Refuse a month that has not begun at ``now``; for a month that has not ended, the sentence
    saying the run is a preview (None once it has ended)."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    begins, ends = month_bounds(catalogue, period)
    if now < begins:
        raise RunError(
            f"billing run of {period} refused: {period} has not begun in {catalogue.timezone} (it begins "
            f"{_when(begins, catalogue)}); a month can be run once it has begun"
        )
    if now < ends:
        return (
            f"{period} has not ended in {catalogue.timezone} (it ends {_when(ends, catalogue)}): this draft "
            "is a preview and cannot be finalised before then"
        )
    return None


@dataclass(frozen=True)
class LateBeyondWindow:
    """Late usage of a month older than the correction window: listed, never billed."""

    municipality: str
    period: str
    service: str
    quantity: Decimal
    events: int

    def __str__(self) -> str:
        return (
            f"late usage older than the {LOOKBACK_MONTHS}-month correction window is not billed: "
            f"{self.municipality} {self.period} {self.service} quantity {round_quantity(self.quantity)} "
            f"({self.events} event{'s' if self.events != 1 else ''})"
        )


def create_run(
    store: BillingStore,
    catalogue: Catalogue,
    catalogue_sha256: str,
    period: Period,
    municipalities: Collection[str] = (),
    *,
    now: datetime,
    catalogue_bytes: bytes | None = None,
    reprice_invoiced: bool = False,
    progress: Callable[[str], None] = lambda step: None,
) -> PricedRun:
    """Price ``period`` from the usage in ClickHouse and store it as a draft run (or find it);
    ``progress`` hears of each step as it is done.

    ``now`` decides whether the month has begun (else refused) and ended (else the draft is a
    preview). ``catalogue_bytes`` (the file whose SHA-256 is ``catalogue_sha256``) is stored with
    the run so that later corrections of this month price it with this catalogue.
    ``reprice_invoiced`` lets the current catalogue reach finalised months (finance asks for it).
    """
    if catalogue_bytes is not None and hashlib.sha256(catalogue_bytes).hexdigest() != catalogue_sha256:
        raise ValueError("catalogue_sha256 is not the SHA-256 of catalogue_bytes")
    preview = check_begun(catalogue, period, now)
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
    found = correction_lines(
        store, catalogue, period, scope, reprice=reprice_invoiced, catalogue_sha256=catalogue_sha256
    )
    corrections = found.lines
    progress(f"found {len(corrections)} correction lines of finalised months")
    beyond = tuple(
        LateBeyondWindow(m, p, s, q, n)
        for m, p, s, q, n in store.late_beyond_window(period)
        if not scope or m in scope
    )
    usage_sha256 = usage_digest(totals, corrections)
    run_id, existing = current_run_id(store, period, scope, catalogue_sha256, usage_sha256)
    if existing is not None:
        progress(f"same usage and catalogue as run {run_id}: nothing to price")
        return PricedRun(
            existing,
            store.load_lines(run_id),
            created=False,
            unbilled=unbilled,
            preview=preview,
            repricing=found.repricing,
            beyond_window=beyond,
        )

    lines = price_month(store, catalogue, period, scope or None, usage=usage)
    lines = sort_lines([*lines, *corrections])
    progress(f"priced {len(lines)} lines")
    price_list = catalogue.price_list_for(period.first_day).version
    at = now.astimezone(UTC).replace(microsecond=0)
    run = Run(
        run_id=run_id,
        period=str(period),
        municipalities=scope,
        status=DRAFT,
        price_list=price_list,
        currency=catalogue.currency,
        catalogue_sha256=catalogue_sha256,
        usage_sha256=usage_sha256,
        created_at=at,
        changed_at=at,
        revision=1,
    )
    if catalogue_bytes is not None:
        store.save_catalogue(catalogue_sha256, catalogue_bytes.decode("utf-8"), at)
    # Lines first, header last: a run without a header is invisible, never half-visible.
    store.write_lines(run, lines)
    store.write_header(run)
    progress(f"stored run {run_id}")
    return PricedRun(
        run,
        lines,
        created=True,
        unbilled=unbilled,
        preview=preview,
        repricing=found.repricing,
        beyond_window=beyond,
    )


@dataclass(frozen=True)
class MemberTotal:
    """A member's total of a run: excluding VAT, VAT, and both."""

    municipality: str
    amount: Decimal
    vat: Decimal

    @property
    def total(self) -> Decimal:
        return self.amount + self.vat


@dataclass(frozen=True)
class Gap:
    """Something that may be missing from a run, of a member (``municipality``) or of none ("")."""

    municipality: str
    text: str


@dataclass(frozen=True)
class Readiness:
    """What finance sees before finalising: the run, its totals per member, and its gaps."""

    run: Run
    totals: list[MemberTotal]
    gaps: list[Gap]


def _days(days: Sequence[date]) -> str:
    """Days as ranges: ``2026-10-04 to 2026-10-05, 2026-10-11``."""
    parts: list[str] = []
    start = prev = days[0]
    for day in [*days[1:], None]:
        if day is not None and (day - prev).days == 1:
            prev = day
            continue
        parts.append(str(start) if start == prev else f"{start} to {prev}")
        if day is not None:
            start = prev = day
    return ", ".join(parts)


def _run_catalogue(store: BillingStore, run: Run, catalogue: Catalogue) -> Catalogue:
    return billed_catalogue(store, run, catalogue)


def readiness(store: BillingStore, run_id: str, catalogue: Catalogue, *, now: datetime) -> Readiness:
    """Check that a draft may be finalised at ``now`` and say what may be missing from it.

    Refused: a void run, a month that has not ended in the catalogue's time zone, a month without
    any usage (of the run's municipalities). The run's totals per member, and its gaps
    (``find_gaps``).
    """
    run = store.get_run(run_id)
    if run.status == VOID:
        raise RunError(
            f"{run_label(run)} is void and cannot be finalised; price the month again with "
            f"`{run_command(run)}` and finalise the new run"
        )
    cat = _run_catalogue(store, run, catalogue)
    period = Period.parse(run.period)
    _, ends = month_bounds(cat, period)
    if run.status != FINAL and now < ends:
        raise RunError(
            f"{run_label(run)} cannot be finalised before {period} has ended in {cat.timezone} "
            f"({_when(ends, cat)}); it stays a draft (a preview) until then"
        )
    members = sorted(run.municipalities or cat.members(period))
    if run.status != FINAL and not any(t.municipality in members for t in store.period_totals(period)):
        raise RunError(
            f"{run_label(run)} cannot be finalised: {period} has no usage at all; check that the "
            f"collectors delivered it, then price the month again with `{run_command(run)}`"
        )
    amounts: dict[str, list[Decimal]] = {}
    for line in store.load_lines(run_id):
        pair = amounts.setdefault(line.municipality, [Decimal(0), Decimal(0)])
        pair[0] += line.amount
        pair[1] += line.vat_amount
    totals = [MemberTotal(m, a, v) for m, (a, v) in sorted(amounts.items())]

    return Readiness(run, totals, find_gaps(store, run, cat, now=now))


def find_gaps(store: BillingStore, run: Run, catalogue: Catalogue, *, now: datetime) -> list[Gap]:
    """What may be missing from ``run`` (its catalogue is ``catalogue``), per member of the run, the
    gaps of no member last; only the days of the month that have ended at ``now`` count:

    - each source that delivered events for the member in the month or the month before, with the
      days it delivered none; a member no source delivered anything for: all the days;
    - dead letters of the month whose identifier the catalogue does not know (unknown municipality
      or service: the stream worker refuses what collectors could not map), and other dead letters;
      a letter belongs to the month of its event's time, and to a member by its message key (an
      unknown municipality is a gap of no member);
    - late usage: events of the month stored after the run was priced (a new run would bill them).
    """
    period = Period.parse(run.period)
    members = set(run.municipalities or catalogue.members(period))
    gaps: list[Gap] = []
    tz = catalogue.tz
    month_days = [
        day
        for day in (period.first_day + timedelta(days=i) for i in range(period.days))
        if datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz) <= now
    ]
    seen: dict[tuple[str, str], set[date]] = {}
    for m, source, day in store.source_days(period):
        if m in members:
            seen.setdefault((m, source), set()).add(day)
    silent = sorted(members - {m for m, _ in seen})
    if month_days:
        for m in silent:
            gaps.append(
                Gap(
                    m,
                    f"no events from any source on {len(month_days)} of {len(month_days)} days: "
                    f"{_days(month_days)}",
                )
            )
    for (m, source), days in sorted(seen.items()):
        missing = [d for d in month_days if d not in days]
        if missing:
            gaps.append(
                Gap(
                    m,
                    f"source {source} has no events on {len(missing)} of {len(month_days)} days: "
                    f"{_days(missing)}",
                )
            )
    for key, unmapped, letters in store.month_dead_letters(period):
        plural = "s" if letters != 1 else ""
        if unmapped:
            text = f"{letters} dead letter{plural} with an identifier the catalogue does not know"
        else:
            text = f"{letters} other dead letter{plural}"
        if key in members:
            gaps.append(Gap(key, text))
        elif key not in catalogue.municipality_codes:
            gaps.append(Gap("", f"{text} (message key {key!r}, no member)"))
    created = run.created_at if run.created_at.tzinfo else run.created_at.replace(tzinfo=UTC)
    for m, (events, quantity) in sorted(store.late_of_month(period, created).items()):
        if m in members:
            gaps.append(
                Gap(
                    m,
                    f"{events} event{'s' if events != 1 else ''} of {period} stored after the run was priced "
                    f"(quantity {round_quantity(quantity)}): price the month again to bill them",
                )
            )
    gaps.sort(key=lambda g: (g.municipality == "", g.municipality))
    return gaps


def finalize_run(
    store: BillingStore,
    run_id: str,
    catalogue: Catalogue,
    *,
    now: datetime,
    accept_gaps: bool = False,
) -> Run:
    """Make a draft run final (immutable); finalising a final run again changes nothing.

    Refused (``readiness``) for a void run, a month that has not ended at ``now`` in the
    catalogue's time zone or has no usage; when the run has gaps unless ``accept_gaps``; and when
    the run's corrections are out of date (another run corrected the same month since), so that
    no correction is ever billed twice.
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
    ready = readiness(store, run_id, catalogue, now=now)
    if ready.gaps and not accept_gaps:
        raise RunError(
            f"{run_label(run)} has {len(ready.gaps)} gap{'s' if len(ready.gaps) != 1 else ''} (what may "
            "be missing, listed by billing finalize): finalise with --accept-gaps to accept them"
        )
    priced = [x for x in store.load_lines(run_id) if x.corrects_period]
    reprice = any(REPRICED in x.reason for x in priced)
    cat = _run_catalogue(store, run, catalogue)
    current = correction_lines(
        store,
        cat,
        Period.parse(run.period),
        run.municipalities,
        reprice=reprice,
        catalogue_sha256=run.catalogue_sha256,
    ).lines
    if _correction_keys(priced) != _correction_keys(current):
        raise RunError(
            f"{run_label(run)} is out of date (its corrections changed since it was priced): price the month "
            f"again with `{run_command(run)}` and finalise the new run"
        )
    final = replace(
        run, status=FINAL, changed_at=now.astimezone(UTC).replace(microsecond=0), revision=run.revision + 1
    )
    store.write_header(final)
    return final


def void_run(store: BillingStore, run_id: str, *, now: datetime) -> Run:
    """Mark a draft run void; a final run cannot be voided."""
    run = store.get_run(run_id)
    if run.status == FINAL:
        raise RunError(
            f"{run_label(run)} is final and cannot be voided; what changed since reaches {run.period} "
            "as corrections in a later month's run"
        )
    if run.status == VOID:
        return run
    void = replace(
        run, status=VOID, changed_at=now.astimezone(UTC).replace(microsecond=0), revision=run.revision + 1
    )
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
