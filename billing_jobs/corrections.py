"""Corrections: usage that arrived after a month's run was finalised is billed in a later run.

A finalised run never changes. When a later run is priced, every earlier month that has a
final run is priced again from today's usage; the difference to what final runs already billed
for that month (the original lines plus earlier corrections) becomes correction lines of the new
run, each naming the month it corrects. Nothing changed: no lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from billing_jobs.metering import period_usage, read_period_totals
from billing_jobs.pricing import Line, price_period, round_money
from chargeback.catalogue import Catalogue
from chargeback.clickhouse import ClickHouse
from chargeback.period import Period

LOOKBACK_MONTHS = 24
Key = tuple[str, str, str]


def finalised_periods(ch: ClickHouse, before: Period) -> dict[str, set[str] | None]:
    """Earlier months with a final run, and the municipalities those runs covered (None: all)."""
    rows = ch.execute(
        "SELECT period, municipalities FROM billing_runs "
        "WHERE period < %(before)s AND period >= %(since)s "
        "GROUP BY run_id, period, municipalities HAVING argMax(status, revision) = 'final'",
        {"before": str(before), "since": str(_months_back(before, LOOKBACK_MONTHS))},
    )
    covered: dict[str, set[str] | None] = {}
    for period, scope in rows:
        if not scope or covered.get(period, set()) is None:
            covered[period] = None
        else:
            covered[period] = (covered.get(period) or set()) | set(scope)
    return covered


def billed(ch: ClickHouse, period: Period) -> dict[Key, tuple[Decimal, Decimal, Decimal]]:
    """What final runs billed for a month so far: quantity, amount, VAT per line key."""
    rows = ch.execute(
        "SELECT l.municipality, l.cost_centre, l.service, sum(l.quantity), sum(l.amount), sum(l.vat_amount) "
        "FROM billing_lines AS l "
        "INNER JOIN "
        "(SELECT run_id, argMax(status, revision) AS status FROM billing_runs GROUP BY run_id) AS r "
        "ON l.run_id = r.run_id "
        "WHERE r.status = 'final' AND l.period = %(period)s "
        "GROUP BY l.municipality, l.cost_centre, l.service",
        {"period": str(period)},
    )
    return {(m, cc, s): (Decimal(q), Decimal(a), Decimal(v)) for m, cc, s, q, a, v in rows}


def correction_lines(
    ch: ClickHouse, catalogue: Catalogue, period: Period, scope: Sequence[str]
) -> list[Line]:
    """Correction lines for every finalised month before ``period`` whose usage changed since."""
    lines: list[Line] = []
    for month, covered in sorted(finalised_periods(ch, period).items()):
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
        now = price_period(
            catalogue, q, period_usage(catalogue, read_period_totals(ch, q), q), sorted(members)
        )
        lines.extend(_differences(now, billed(ch, q), month, members))
    return lines


def _differences(
    now: Iterable[Line], before: dict[Key, tuple[Decimal, Decimal, Decimal]], month: str, members: set[str]
) -> list[Line]:
    current: dict[Key, Line] = {(x.municipality, x.cost_centre, x.service): x for x in now}
    template: dict[str, Line] = {x.service: x for x in current.values()}
    out = []
    for key in sorted(set(current) | {k for k in before if k[0] in members}):
        line = current.get(key)
        q0, a0, v0 = before.get(key, (Decimal(0), Decimal(0), Decimal(0)))
        q1, a1, v1 = (
            (line.quantity, line.amount, line.vat_amount) if line else (Decimal(0), Decimal(0), Decimal(0))
        )
        dq, da, dv = q1 - q0, a1 - a0, v1 - v0
        if dq == 0 and da == 0:
            continue
        base = line or template.get(key[2])
        if base is None:
            continue  # a service no longer priced at all: nothing to base a line on
        out.append(
            Line(
                municipality=key[0],
                cost_centre=key[1],
                service=key[2],
                quantity=dq,
                unit=base.unit,
                unit_price=round_money(da / dq) if dq != 0 else None,
                amount=da,
                vat_rate=base.vat_rate,
                vat_amount=dv,
                currency=base.currency,
                price_list=base.price_list,
                corrects_period=month,
            )
        )
    return out


def _months_back(period: Period, months: int) -> Period:
    for _ in range(months):
        period = period.previous()
    return period
