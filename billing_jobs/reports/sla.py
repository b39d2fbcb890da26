"""Service level per municipality and month, from the attributes the tickets collector keeps
(channel, priority, opened, first_response, closed), against the catalogue's targets.

Definitions (docs/analysts.md, "Service level"):

- a ticket belongs to the month it was closed in (its usage day);
- durations count only time within opening hours (``opens``-``closes`` on ``weekdays``, in the
  catalogue's time zone); public holidays are not known to the catalogue and count as weekdays;
- answer time = first response - opened; resolution time = closed - opened;
- resolved at first contact: the export's ``first_contact`` flag where it has one, else closed
  within ``first_contact_minutes`` (wall-clock) of the first response (of opening, without one).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from billing_jobs.store import BillingStore
from chargeback.catalogue import ServiceLevels
from chargeback.errors import ChargebackError
from chargeback.period import Period

TENTH = Decimal("0.1")
_TRUE = frozenset({"true", "1", "yes", "ja", "y", "j"})
_FALSE = frozenset({"false", "0", "no", "nej", "n"})


@dataclass(frozen=True)
class Ticket:
    """A closed ticket as the report needs it (times aware)."""

    municipality: str
    number: str
    channel: str
    priority: str
    opened: datetime
    first_response: datetime | None
    closed: datetime
    first_contact: bool | None = None  # the export's own flag, where it has one


class TicketDataError(ChargebackError, ValueError):
    """A ticket event whose attributes the report cannot use."""

    code = "sla.ticket_invalid"


_LEVEL = re.compile(r"^\s*(?:p|prio(?:ritet|rity)?\s*)?(\d)(?:\s*-.*)?\s*$", re.IGNORECASE)


def priority_level(text: str) -> str:
    """A desk's priority as the catalogue's targets name it: ``P2`` for ``P2``, ``2``, ``Prio 2`` or
    ServiceNow's ``2 - High``; any other name (Jira's ``High``) is kept as it is."""
    match = _LEVEL.match(text)
    return f"P{match.group(1)}" if match else text


def ticket_from(municipality: str, subject: str, attributes: dict[str, Any]) -> Ticket:
    """A ticket from a usage event's subject and attributes; what is missing or wrong is named."""

    def moment(name: str) -> datetime | None:
        text = attributes.get(name)
        if text in (None, ""):
            return None
        try:
            value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            raise TicketDataError(f"ticket {subject}: {name} {text!r} is not an ISO 8601 time") from None
        if value.utcoffset() is None:
            raise TicketDataError(f"ticket {subject}: {name} {text!r} has no time zone")
        return value

    opened, closed = moment("opened"), moment("closed")
    if opened is None or closed is None:
        raise TicketDataError(f"ticket {subject}: needs opened and closed times")
    flag = str(attributes.get("first_contact", "")).strip().casefold()
    return Ticket(
        municipality,
        subject,
        str(attributes.get("channel") or "unknown"),
        priority_level(str(attributes.get("priority") or "none")),
        opened,
        moment("first_response"),
        closed,
        True if flag in _TRUE else False if flag in _FALSE else None,
    )


class OpeningHours:
    """Counts the seconds of an interval that fall within opening hours."""

    def __init__(self, levels: ServiceLevels, tz: ZoneInfo) -> None:
        self.tz = tz
        self.opens = time.fromisoformat(levels.opens)
        self.closes = time.fromisoformat(levels.closes)
        self.weekdays = frozenset(levels.weekdays)

    def is_open(self, moment: datetime) -> bool:
        """Whether the desk is open at that moment."""
        local = moment.astimezone(self.tz)
        return local.isoweekday() in self.weekdays and self.opens <= local.time() < self.closes

    def seconds(self, start: datetime, end: datetime) -> int:
        """Whole seconds of ``[start, end)`` within opening hours (0 when end is not after start).

        Each day's window is placed in local time, so a day that changes to or from summer time
        keeps its 08:00-16:30.
        """
        if end <= start:
            return 0
        total = timedelta(0)
        day: date = start.astimezone(self.tz).date()
        last: date = end.astimezone(self.tz).date()
        while day <= last:
            if day.isoweekday() in self.weekdays:
                window_start = datetime.combine(day, self.opens, self.tz)
                window_end = datetime.combine(day, self.closes, self.tz)
                overlap = min(end, window_end) - max(start, window_start)
                if overlap > timedelta(0):
                    total += overlap
            day += timedelta(days=1)
        return int(total.total_seconds())


@dataclass
class SlaRow:
    """One municipality's service level in a month."""

    municipality: str
    tickets: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)
    by_priority: Counter[str] = field(default_factory=Counter)
    opened_outside_hours: int = 0
    phone_answered: int = 0
    phone_answer_avg_s: Decimal | None = None  # opening-hours seconds, 0.1 half-up
    phone_answer_target_s: int = 0
    first_response_avg_min: Decimal | None = None  # all channels, opening-hours minutes
    resolution_avg_h: Decimal | None = None  # opening-hours hours
    resolved_first_contact: int = 0
    first_contact_rate: Decimal | None = None  # percent, 0.1 half-up
    first_contact_target: Decimal = Decimal(0)  # percent
    resolution_within_target: dict[str, tuple[int, int]] = field(default_factory=dict)  # prio -> (in, of)

    @property
    def phone_answer_met(self) -> bool | None:
        """Whether the average phone answer time is within the target (None: no phone tickets)."""
        if self.phone_answer_avg_s is None:
            return None
        return self.phone_answer_avg_s <= self.phone_answer_target_s

    @property
    def first_contact_met(self) -> bool | None:
        """Whether the first-contact resolution rate reaches the target (None: no tickets)."""
        if self.first_contact_rate is None:
            return None
        return self.first_contact_rate >= self.first_contact_target


def _mean(values: Sequence[int], divisor: int) -> Decimal | None:
    if not values:
        return None
    return (Decimal(sum(values)) / len(values) / divisor).quantize(TENTH, ROUND_HALF_UP)


def _percent(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(100) * part / whole).quantize(TENTH, ROUND_HALF_UP)


def resolved_at_first_contact(ticket: Ticket, levels: ServiceLevels) -> bool:
    """The export's flag where it has one, else closed within the window of the first response."""
    if ticket.first_contact is not None:
        return ticket.first_contact
    start = ticket.first_response or ticket.opened
    return ticket.closed - start <= timedelta(minutes=levels.first_contact_minutes)


def sla_rows(tickets: Iterable[Ticket], levels: ServiceLevels, tz: ZoneInfo) -> list[SlaRow]:
    """One row per municipality with tickets, sorted by municipality code."""
    hours = OpeningHours(levels, tz)
    grouped: dict[str, list[Ticket]] = {}
    for ticket in tickets:
        grouped.setdefault(ticket.municipality, []).append(ticket)
    rows = []
    for municipality, own in sorted(grouped.items()):
        row = SlaRow(
            municipality,
            tickets=len(own),
            phone_answer_target_s=levels.phone_answer_seconds,
            first_contact_target=(levels.first_contact_resolution * 100).quantize(TENTH, ROUND_HALF_UP),
        )
        row.by_channel = Counter(t.channel for t in own)
        row.by_priority = Counter(t.priority for t in own)
        row.opened_outside_hours = sum(not hours.is_open(t.opened) for t in own)
        phone = [
            hours.seconds(t.opened, t.first_response)
            for t in own
            if t.channel == "phone" and t.first_response
        ]
        row.phone_answered = len(phone)
        row.phone_answer_avg_s = _mean(phone, 1)
        responses = [hours.seconds(t.opened, t.first_response) for t in own if t.first_response]
        row.first_response_avg_min = _mean(responses, 60)
        resolutions = {t.number: hours.seconds(t.opened, t.closed) for t in own}
        row.resolution_avg_h = _mean(list(resolutions.values()), 3600)
        row.resolved_first_contact = sum(resolved_at_first_contact(t, levels) for t in own)
        row.first_contact_rate = _percent(row.resolved_first_contact, len(own))
        for priority, target in sorted(levels.resolution_hours.items()):
            of = [t for t in own if t.priority == priority]
            within = sum(resolutions[t.number] <= target * 3600 for t in of)
            row.resolution_within_target[priority] = (within, len(of))
        rows.append(row)
    return rows


def tickets_in(store: BillingStore, period: Period, municipalities: Sequence[str] = ()) -> list[Ticket]:
    """The closed tickets of a month (by usage day) from the raw events' attributes."""
    return [
        ticket_from(m, subject, attributes)
        for m, subject, attributes in store.ticket_attributes(period, municipalities)
    ]
