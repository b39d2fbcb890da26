"""Differences between two runs' lines: what changed, line by line, and in total."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing_jobs.model import Line

Key = tuple[str, str, str, str]


@dataclass(frozen=True)
class LineChange:
    """One line's quantity and amount in run A and run B (zero where a run has no such line)."""

    period: str
    municipality: str
    cost_centre: str
    service: str
    quantity_a: Decimal
    quantity_b: Decimal
    amount_a: Decimal
    amount_b: Decimal

    @property
    def amount_change(self) -> Decimal:
        return self.amount_b - self.amount_a


def diff_lines(a: Sequence[Line], b: Sequence[Line], period_a: str, period_b: str) -> list[LineChange]:
    """Lines that differ between A and B, by (period, municipality, cost centre, service)."""

    def index(lines: Sequence[Line], period: str) -> dict[Key, Line]:
        return {(x.corrects_period or period, x.municipality, x.cost_centre, x.service): x for x in lines}

    left, right = index(a, period_a), index(b, period_b)
    zero = Decimal(0)
    changes = []
    for key in sorted(set(left) | set(right)):
        la, lb = left.get(key), right.get(key)
        qa, aa = (la.quantity, la.amount) if la else (zero, zero)
        qb, ab = (lb.quantity, lb.amount) if lb else (zero, zero)
        if qa != qb or aa != ab:
            changes.append(LineChange(*key, qa, qb, aa, ab))
    return changes
