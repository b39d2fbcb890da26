"""The billing model: usage in, lines out, runs that hold them, and the one order of lines.

Plain frozen dataclasses, no database and no formatting: the store reads and writes them, the
service makes them, the formats render them in the order they come (``sort_lines``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from chargeback.money import quantity

DRAFT, FINAL, VOID = "draft", "final", "void"
# The reasons of a correction line: usage stored after its month was finalised, and a finalised
# month priced again with the current catalogue because finance asked (``--reprice-invoiced``).
LATE_USAGE, REPRICED = "late usage", "repriced"

# What final runs billed for a month: (municipality, cost centre, service) -> quantity, amount, VAT.
Billed = dict[tuple[str, str, str], tuple[Decimal, Decimal, Decimal]]


@dataclass(frozen=True)
class PeriodTotals:
    """One municipality × cost centre × service's sums over a period."""

    municipality: str
    cost_centre: str
    service: str
    event_sum: Decimal
    subject_days: int
    daily_max_sum: Decimal


@dataclass(frozen=True)
class Usage:
    """A period's billable quantity of one service for one cost centre of a municipality."""

    municipality: str
    cost_centre: str
    service: str
    quantity: Decimal


@dataclass(frozen=True)
class SubjectUsage:
    """One subject's (device, user, ticket, share) usage of a service in a period, under one
    municipality and cost centre: what a line's quantity is made of.

    ``days`` is the number of days it was seen (its subject-days), ``quantity_sum`` the sum of its
    events' quantities (the ``count`` meter), ``max_sum`` the sum over days of its largest quantity
    that day (GiB-days for ``daily_max``). ``details`` are what the collector kept about it: the
    name and user (``subject_name``, ``subject_user``), a ticket's channel and closing time.
    """

    municipality: str
    cost_centre: str
    service: str
    subject: str
    days: int
    quantity_sum: Decimal
    max_sum: Decimal
    details: tuple[tuple[str, str], ...] = ()

    def detail(self, name: str) -> str:
        """A detail by name, or ""."""
        return dict(self.details).get(name, "")


@dataclass(frozen=True)
class Line:
    """One priced line: municipality × cost centre × service."""

    municipality: str
    cost_centre: str
    service: str
    quantity: Decimal
    unit: str
    unit_price: Decimal | None
    amount: Decimal
    vat_rate: Decimal
    vat_amount: Decimal
    currency: str
    price_list: str
    # The month this line bills when it is not the run's own: a correction of a finalised month.
    corrects_period: str | None = None
    # Why a correction line exists: LATE_USAGE, REPRICED or both (``"late usage, repriced"``).
    reason: str = ""


@dataclass(frozen=True)
class Run:
    """A billing run's header and current state (``DRAFT``, ``FINAL`` or ``VOID``)."""

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


def sort_lines(lines: Sequence[Line]) -> list[Line]:
    """The one order of a run's lines: by municipality, cost centre and service; a correction after
    the month's own line, older corrected months first."""
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


@dataclass(frozen=True)
class LateUsage:
    """Usage of a finalised month stored after it was finalised, per line of that month: what a
    correction bills (``v_late_usage``)."""

    municipality: str
    cost_centre: str
    service: str
    period: str
    first_day: date
    last_day: date
    events: int


@dataclass(frozen=True)
class SourceDays:
    """The days of a period on which a municipality's source sent events, and its subjects billed to
    the default cost centre (UNALLOCATED: the source had no cost-centre identifier)."""

    municipality: str
    source: str
    days: tuple[date, ...]
    unallocated_subjects: int


@dataclass(frozen=True)
class DeadLetters:
    """Messages the stream worker refused in a period, per message key (the municipality) and reason."""

    key: str
    reason: str
    count: int


CHANGE, SILENT = "change", "silent"


@dataclass(frozen=True)
class Alert:
    """A usage alert of a month (``billing_jobs.reports.alerts``). ``change``: a member's service
    (quantities before and now, change in percent, None for new usage); ``silent``: a source, its
    last day with events, working days since. Reports say it in their language from these figures;
    ``message`` is the command line's sentence."""

    kind: str
    municipality: str
    service: str = ""
    before: Decimal | None = None
    now: Decimal | None = None
    change_pct: Decimal | None = None
    threshold_pct: Decimal | None = None
    source: str = ""
    last_day: date | None = None
    silent_working_days: int | None = None
    allowed_working_days: int | None = None

    @property
    def message(self) -> str:
        """The alert in one sentence."""
        if self.kind == SILENT:
            return (
                f"{self.source} ({self.municipality}) has sent no events for {self.silent_working_days} "
                f"working days since {self.last_day} (more than {self.allowed_working_days})"
            )
        assert self.before is not None and self.now is not None
        change = "new usage" if self.change_pct is None else f"{self.change_pct:+} %"
        return (
            f"{self.municipality} {self.service}: {quantity(self.before)} → {quantity(self.now)} "
            f"({change}, beyond ±{self.threshold_pct} %)"
        )


@dataclass(frozen=True)
class DataQuality:
    """What a run's figures may be missing, as far as the warehouse knows it, and the month's usage
    alerts."""

    sources: tuple[SourceDays, ...] = ()
    dead_letters: tuple[DeadLetters, ...] = ()
    late_usage: tuple[LateUsage, ...] = ()
    alerts: tuple[Alert, ...] = ()
