"""Billing runs: price a period's usage, store the run and its lines, move it through its states.

A run's id is derived from everything that decides its content (period, municipalities, the
catalogue's bytes and the period's usage), so pricing the same period again with unchanged usage
and catalogue finds the same run and gives byte-identical exports. A run is ``draft`` until it is
``final``; a final run never changes. States are rows with increasing revision (ReplacingMergeTree):
the newest revision of a run is its state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from billing_jobs.corrections import correction_lines
from billing_jobs.metering import PeriodTotals, period_usage, read_period_totals
from billing_jobs.pricing import Line, price_period, unbilled_usage
from chargeback.catalogue import Catalogue
from chargeback.clickhouse import ClickHouse
from chargeback.errors import UserError
from chargeback.period import Period

DRAFT, FINAL, VOID = "draft", "final", "void"

RUN_COLUMNS = (
    "run_id",
    "period",
    "municipalities",
    "status",
    "price_list",
    "currency",
    "catalogue_sha256",
    "usage_sha256",
    "created_at",
    "changed_at",
    "revision",
)
LINE_COLUMNS = (
    "run_id",
    "period",
    "municipality",
    "cost_centre",
    "service",
    "quantity",
    "unit",
    "unit_price",
    "amount",
    "vat_rate",
    "vat_amount",
    "currency",
    "price_list",
)


class RunError(UserError):
    """A run cannot be found or cannot change as asked."""

    code = "run.invalid"


@dataclass(frozen=True)
class Run:
    """A billing run's header and current state."""

    run_id: str
    period: str
    municipalities: tuple[str, ...]
    status: str
    price_list: str
    currency: str
    catalogue_sha256: str
    usage_sha256: str
    created_at: datetime
    changed_at: datetime
    revision: int


@dataclass(frozen=True)
class PricedRun:
    """A run with its lines; ``created`` is False when an identical run already existed."""

    run: Run
    lines: list[Line]
    created: bool
    # Usage of the month that no line bills (a removed or non-member municipality, a retired service).
    unbilled: tuple[str, ...] = ()


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


def sort_lines(lines: Sequence[Line]) -> list[Line]:
    """Lines by municipality, cost centre and service; a correction after the month's own line,
    older corrected months first."""
    return sorted(
        lines,
        key=lambda x: (
            x.municipality,
            x.cost_centre,
            x.service,
            x.corrects_period is not None,
            x.corrects_period,
        ),
    )


def run_id_for(
    period: Period, municipalities: Sequence[str], catalogue_sha256: str, usage_sha256: str
) -> str:
    """The run id: the period and a digest of everything the run's content depends on."""
    scope = ",".join(municipalities) or "*"
    digest = hashlib.sha256(f"{period}|{scope}|{catalogue_sha256}|{usage_sha256}".encode()).hexdigest()
    return f"{period}-{digest[:12]}"


def create_run(
    ch: ClickHouse,
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
        raise RunError(f"municipality {unknown[0]} is not in the catalogue")
    final = [r for r in list_runs(ch, period) if r.status == FINAL]
    for done in final:
        overlap = set(scope or catalogue.municipality_codes) & set(
            done.municipalities or catalogue.municipality_codes
        )
        if overlap:
            raise RunError(
                f"{period} is finalised for {min(overlap)} (run {done.run_id}); usage that arrives later is "
                "billed as corrections in the next month's run"
            )
    totals = read_period_totals(ch, period)
    progress(f"read {len(totals)} usage totals of {period}")
    usage = period_usage(catalogue, totals, period)
    unbilled = tuple(unbilled_usage(catalogue, period, usage))
    corrections = correction_lines(ch, catalogue, period, scope)
    progress(f"found {len(corrections)} correction lines of finalised months")
    usage_sha256 = usage_digest(totals, corrections)
    run_id = run_id_for(period, scope, catalogue_sha256, usage_sha256)
    existing = find_run(ch, run_id)
    if existing is not None and existing.status != VOID:
        progress(f"same usage and catalogue as run {run_id}: nothing to price")
        return PricedRun(existing, load_lines(ch, run_id), created=False, unbilled=unbilled)

    lines = price_period(catalogue, period, usage, scope or None)
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
        revision=(existing.revision + 1) if existing else 1,
    )
    if existing is None:
        # Lines first, header last: a run without a header is invisible, never half-visible.
        _write_lines(ch, run, lines)
    _write_header(ch, run)
    progress(f"stored run {run_id}")
    return PricedRun(run, lines, created=True, unbilled=unbilled)


def find_run(ch: ClickHouse, run_id: str) -> Run | None:
    """The run's newest revision, or None."""
    rows = ch.execute(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM billing_runs WHERE run_id = %(id)s "
        "ORDER BY revision DESC LIMIT 1",
        {"id": run_id},
    )
    return _run(rows[0]) if rows else None


def get_run(ch: ClickHouse, run_id: str) -> Run:
    """The run, or a RunError naming it."""
    run = find_run(ch, run_id)
    if run is None:
        raise RunError(f"no billing run {run_id}")
    return run


def list_runs(ch: ClickHouse, period: Period | None = None) -> list[Run]:
    """Every run's newest revision, newest first."""
    where = "WHERE period = %(period)s" if period else ""
    rows = ch.execute(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM billing_runs {where} "
        "ORDER BY run_id, revision DESC LIMIT 1 BY run_id",
        {"period": str(period)} if period else None,
    )
    return sorted((_run(r) for r in rows), key=lambda r: (r.created_at, r.run_id), reverse=True)


def load_lines(ch: ClickHouse, run_id: str) -> list[Line]:
    """The run's lines, sorted by municipality, cost centre and service."""
    rows = ch.execute(
        "SELECT municipality, cost_centre, service, quantity, unit, unit_price, amount, vat_rate, "
        "vat_amount, currency, price_list, period, run_id FROM billing_lines WHERE run_id = %(id)s",
        {"id": run_id},
    )
    return sort_lines(
        [
            Line(
                municipality=m,
                cost_centre=cc,
                service=s,
                quantity=_dec(q),
                unit=unit,
                unit_price=_dec(up) if up is not None else None,
                amount=_dec(a),
                vat_rate=_dec(vr),
                vat_amount=_dec(va),
                currency=cur,
                price_list=pl,
                corrects_period=line_period if line_period != rid[:7] else None,
            )
            for m, cc, s, q, unit, up, a, vr, va, cur, pl, line_period, rid in rows
        ]
    )


def finalize_run(
    ch: ClickHouse,
    run_id: str,
    catalogue: Catalogue,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Run:
    """Make a draft run final (immutable); finalising a final run again changes nothing.

    Refused when the run's corrections are out of date (another run corrected the same month
    since), so that no correction is ever billed twice.
    """
    run = get_run(ch, run_id)
    if run.status == FINAL:
        return run
    if run.status == VOID:
        raise RunError(f"run {run_id} is void and cannot be finalised")
    priced = [x for x in load_lines(ch, run_id) if x.corrects_period]
    current = correction_lines(ch, catalogue, Period.parse(run.period), run.municipalities)
    if _correction_keys(priced) != _correction_keys(current):
        raise RunError(
            f"run {run_id} is out of date (its corrections changed since it was priced): price it again"
        )
    final = replace(run, status=FINAL, changed_at=clock().replace(microsecond=0), revision=run.revision + 1)
    _write_header(ch, final)
    return final


def void_run(
    ch: ClickHouse, run_id: str, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Run:
    """Mark a draft run void; a final run cannot be voided."""
    run = get_run(ch, run_id)
    if run.status == FINAL:
        raise RunError(f"run {run_id} is final and cannot be voided")
    if run.status == VOID:
        return run
    void = replace(run, status=VOID, changed_at=clock().replace(microsecond=0), revision=run.revision + 1)
    _write_header(ch, void)
    return void


def _correction_keys(lines: Sequence[Line]) -> list[tuple[object, ...]]:
    return sorted(
        (x.corrects_period, x.municipality, x.cost_centre, x.service, x.quantity, x.amount) for x in lines
    )


def _write_lines(ch: ClickHouse, run: Run, lines: Sequence[Line]) -> None:
    # An earlier attempt at this run may have stored some or all of its lines and failed before
    # its header. The run id names the same period, scope, catalogue and usage, so those lines are
    # these lines: only the ones not stored yet are written, and a retry never doubles a line.
    stored = {
        tuple(row)
        for row in ch.execute(
            "SELECT period, municipality, cost_centre, service FROM billing_lines WHERE run_id = %(id)s",
            {"id": run.run_id},
        )
    }
    rows = [_line_row(run, line) for line in lines]
    ch.insert("billing_lines", LINE_COLUMNS, [r for r in rows if r[1:5] not in stored])


def _write_header(ch: ClickHouse, run: Run) -> None:
    ch.insert(
        "billing_runs",
        RUN_COLUMNS,
        [
            (
                run.run_id,
                run.period,
                list(run.municipalities),
                run.status,
                run.price_list,
                run.currency,
                run.catalogue_sha256,
                run.usage_sha256,
                run.created_at,
                run.changed_at,
                run.revision,
            )
        ],
    )


def _line_row(run: Run, line: Line) -> tuple[object, ...]:
    return (
        run.run_id,
        line.corrects_period or run.period,
        line.municipality,
        line.cost_centre,
        line.service,
        line.quantity,
        line.unit,
        line.unit_price,
        line.amount,
        line.vat_rate,
        line.vat_amount,
        line.currency,
        line.price_list,
    )


def _run(row: tuple[object, ...]) -> Run:
    values = dict(zip(RUN_COLUMNS, row, strict=True))
    return Run(
        run_id=str(values["run_id"]),
        period=str(values["period"]),
        municipalities=tuple(str(m) for m in values["municipalities"]),  # type: ignore[attr-defined]
        status=str(values["status"]),
        price_list=str(values["price_list"]),
        currency=str(values["currency"]),
        catalogue_sha256=str(values["catalogue_sha256"]),
        usage_sha256=str(values["usage_sha256"]),
        created_at=values["created_at"],  # type: ignore[arg-type]
        changed_at=values["changed_at"],  # type: ignore[arg-type]
        revision=int(values["revision"]),  # type: ignore[call-overload]
    )


def _dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))
