"""What of a collector run goes to the default cost centre (UNALLOCATED), and the warnings finance
must see about it: an export without its cost-centre column (every observation of it is billed
to UNALLOCATED), and a run that sends more than a set share there
(``CHARGEBACK_UNALLOCATED_WARNING_SHARE``, default 10 %).

Such a run still delivers its events (they are billed, to UNALLOCATED), but prints each warning
and exits with ``EXIT_WARNING`` when nothing worse happened, so a scheduler shows it. The billing
report's data-quality box counts the same subjects per source from the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

EXIT_WARNING = 3


@dataclass
class Allocation:
    """Counts of one run's events by where their cost centre came from."""

    default_cost_centre: str
    events: int = 0
    unallocated: int = 0  # events billed to the default cost centre
    without_identifier: int = 0  # observations whose source has no cost-centre field at all

    def count(self, identifier: str | None, cost_centre: str) -> None:
        """One event: the identifier its source gave (None: no such field) and its cost centre."""
        self.events += 1
        if cost_centre == self.default_cost_centre:
            self.unallocated += 1
        if identifier is None:
            self.without_identifier += 1

    @property
    def share(self) -> Decimal:
        """The share of the run's events billed to the default cost centre (0 without events)."""
        return Decimal(self.unallocated) / Decimal(self.events) if self.events else Decimal(0)

    def warnings(self, limit: Decimal, what: str) -> list[str]:
        """One sentence per warning, naming what, how many, and what to do."""
        found = []
        if self.without_identifier:
            hint = " (or name it with --identifier-column)" if what == "devices" else ""
            found.append(
                f"the export has no cost-centre column: {self.without_identifier} of {self.events} {what} "
                f"are billed to {self.default_cost_centre}; export the column{hint}"
            )
        if self.share > limit:
            found.append(
                f"{self.unallocated} of {self.events} {what} ({_percent(self.share)}) go to "
                f"{self.default_cost_centre}, more than the {_percent(limit)} allowed "
                "(CHARGEBACK_UNALLOCATED_WARNING_SHARE)"
            )
        return found


def _percent(share: Decimal) -> str:
    return f"{(share * 100).quantize(Decimal('0.1'))} %"


__all__ = ["EXIT_WARNING", "Allocation"]
