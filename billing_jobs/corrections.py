"""Corrections: usage that arrived after a month's run was finalised is billed in a later run.

A finalised run never changes. When a later run is priced, every earlier month that has a
final run is priced again from today's usage with the catalogue it was billed with, or with the
current one when finance asks (``service.correction_lines``); the difference to what final runs
already billed for that month (the original lines plus earlier corrections) becomes correction
lines of the new run, each naming the month it corrects (and, set by the service, why). Nothing
changed: no lines. This module is the pure part: the differences.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from billing_jobs.model import Billed, Line
from chargeback.money import round_money, round_quantity

Key = tuple[str, str, str]


def differences(now: Iterable[Line], before: Billed, month: str, members: set[str]) -> list[Line]:
    """Correction lines of ``month``: its lines priced today less what final runs billed for it."""
    current: dict[Key, Line] = {(x.municipality, x.cost_centre, x.service): x for x in now}
    template: dict[str, Line] = {x.service: x for x in current.values()}
    out = []
    for key in sorted(set(current) | {k for k in before if k[0] in members}):
        line = current.get(key)
        q0, a0, v0 = before.get(key, (Decimal(0), Decimal(0), Decimal(0)))
        q1, a1, v1 = (
            (line.quantity, line.amount, line.vat_amount) if line else (Decimal(0), Decimal(0), Decimal(0))
        )
        dq, da, dv = round_quantity(q1 - q0), a1 - a0, v1 - v0
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
