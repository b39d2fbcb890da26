"""Closed service-desk tickets as TOPdesk, ServiceNow and Jira Service Management export them.

One ``count`` event per closed (or resolved) ticket; category, priority, channel and the opened,
first response and closed times travel as attributes for service-level reports. Times without a
zone are in the desk's time zone (default Europe/Stockholm); events carry them as aware UTC.
TOPdesk comes with Swedish, Norwegian (bokmål) or Dutch headers, semicolons and decimal commas.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from chargeback.events import format_quantity
from collectors.events import Observation
from collectors.exports import Table, iso_utc, parse_time, read_table, text_of
from collectors.mapping import Mapper
from collectors.source import Input, Observations, SourceError, fetched, readings

STOCKHOLM = ZoneInfo("Europe/Stockholm")


@dataclass(frozen=True)
class Layout:
    """Where one desk's export keeps each field (candidate columns, any case, first found wins)."""

    name: str
    number: tuple[str, ...]
    category: tuple[str, ...]
    priority: tuple[str, ...]
    channel: tuple[str, ...]
    department: tuple[str, ...]
    opened: tuple[str, ...]
    first_response: tuple[str, ...]
    closed: tuple[str, ...]  # resolved before closed: the earlier, stable end of the ticket
    time_spent: tuple[str, ...] = ()


LAYOUTS = (
    Layout(
        "topdesk",
        number=("Nummer", "Anmälningsnummer", "Meldingsnummer", "Anmeldingsnummer", "Aanmeldingsnummer"),
        category=("Kategori", "Categorie"),
        priority=("Prioritet", "Prioriteit"),
        channel=("Anmälningssätt", "Meldingsmåte", "Innmeldingsmåte", "Soort melding"),
        department=("Avdelning", "Avdeling", "Afdeling"),
        opened=("Anmälningsdatum", "Meldingsdato", "Dato meldt", "Datum aanmelding"),
        first_response=("Första svar", "Første svar"),
        closed=(
            "Avslutad datum",
            "Avslutsdatum",
            "Avsluttet dato",
            "Dato avsluttet",
            "Datum afgemeld",
            "Afmelddatum",
            "Avslutad",
            "Avsluttet",
            "Afgemeld",
        ),
        time_spent=("Tidsåtgång", "Tidsbruk", "Bestede tijd"),
    ),
    Layout(
        "servicenow",
        number=("number",),
        category=("category",),
        priority=("priority",),
        channel=("contact_type",),
        department=("u_department", "caller_id.department", "department", "assignment_group"),
        opened=("opened_at",),
        first_response=("u_first_response", "first_response"),
        closed=("resolved_at", "closed_at"),
    ),
    Layout(
        "jira",
        number=("Issue key",),
        category=("Custom field (Category)", "Custom field (Request Type)", "Request Type", "Issue Type"),
        priority=("Priority",),
        channel=("Custom field (Channel)", "Custom field (Source)"),
        department=("Custom field (Department)", "Custom field (Organizations)", "Organizations"),
        opened=("Created",),
        first_response=("Custom field (First response)",),
        closed=("Resolved",),
    ),
)
CHANNELS = {
    "phone": "phone",
    "telefon": "phone",
    "telefoon": "phone",
    "e-mail": "e-mail",
    "email": "e-mail",
    "e-post": "e-mail",
    "mail": "e-mail",
    "self-service": "portal",
    "portal": "portal",
    "självservice": "portal",
    "selvbetjening": "portal",
    "selfservice": "portal",
    "web": "portal",
    "webb": "portal",
}
# Closed-flag columns (TOPdesk "Afgemeld"/"Avslutad") hold yes or no rather than a time.
YES, NO = (
    frozenset({"ja", "yes", "true", "1", "j"}),
    frozenset({"nej", "nei", "nee", "no", "false", "0", "n"}),
)


@dataclass
class TicketReport:
    """What reading an export found."""

    read: int = 0
    open: int = 0
    rejected: list[str] = field(default_factory=list)


def observe_tickets(
    path: Path | Table, report: TicketReport, *, tz: tzinfo = STOCKHOLM, layout: Layout | None = None
) -> list[Observation]:
    """One observation per closed ticket of a TOPdesk, ServiceNow or Jira CSV export, at its
    closing time; open tickets are counted, unreadable rows rejected with file, line and column.

    An API adapter passes the table it fetched and the ``layout`` of its fields instead of a file.
    """
    return [
        Observation(number, department, closed, attributes=attributes)
        for number, department, closed, attributes in _closed_tickets(path, tz, report, layout)
    ]


def _closed_tickets(
    path: Path | Table, tz: tzinfo, report: TicketReport, layout: Layout | None
) -> Iterator[tuple[str, str | None, datetime, dict[str, str]]]:
    table = path if isinstance(path, Table) else read_table(path)
    layout = layout or next(
        (x for x in LAYOUTS if _has(table.columns, x.number) and _has(table.columns, x.closed)), None
    )
    if layout is None:
        source, found = path if isinstance(path, Path) else "the source", ", ".join(table.columns)
        raise ValueError(f"{source}: not a TOPdesk, ServiceNow or Jira ticket export (columns: {found})")
    has_department = _has(table.columns, layout.department)
    for entry in table.rows:
        report.read += 1
        where, row = entry.where, entry.values
        if entry.problem:
            report.rejected.append(f"{where}: {entry.problem}")
            continue
        number = text_of(row, *layout.number)
        if not number:
            report.rejected.append(f"{where}: no {_present(table.columns, layout.number)}")
            continue
        try:
            closed = _closing_time(row, layout, tz)
            if closed is None:
                report.open += 1
                continue
            times = {"closed": closed}
            for name, columns in (("opened", layout.opened), ("first_response", layout.first_response)):
                column, text = _field(row, columns)
                if text:
                    times[name] = _at(text, tz, column)
            spent = _decimal(*_field(row, layout.time_spent))
        except _BadField as exc:
            reason = f"{exc.column}: {exc.reason}"
            report.rejected.append(f"{where}: {reason}")
            continue
        channel = text_of(row, *layout.channel).casefold()
        attributes = {
            "category": text_of(row, *layout.category),
            "priority": text_of(row, *layout.priority),
            "channel": CHANNELS.get(channel, channel or "unknown"),
            **{name: iso_utc(moment) for name, moment in times.items()},
            **({"time_spent": spent} if spent else {}),
        }
        department = text_of(row, *layout.department) if has_department else None
        yield number, department, closed, attributes


class _BadField(ValueError):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column, self.reason = column, reason


def _closing_time(row: dict[str, Any], layout: Layout, tz: tzinfo) -> datetime | None:
    flagged = False
    for column in layout.closed:
        text = text_of(row, column)
        if not text or text.casefold() in NO:
            continue
        if text.casefold() in YES:
            flagged = True
            continue
        return _at(text, tz, column)
    if flagged:
        column = next(c for c in layout.closed if c.casefold() in row)
        raise _BadField(column, "closed, but no closing time")
    return None


def _at(text: str, tz: tzinfo, column: str) -> datetime:
    try:
        return parse_time(text, tz)
    except ValueError as exc:
        raise _BadField(column, str(exc)) from exc


def _decimal(column: str, text: str) -> str:
    # Swedish "1,5" and "1 234,5", Dutch "1.234,5", or "1.5": as plain "1.5".
    if not text:
        return ""
    plain = "".join(text.split()).replace("\u00a0", "")
    if "," in plain:
        plain = plain.replace(".", "").replace(",", ".")
    try:
        value = Decimal(plain)
    except InvalidOperation as exc:
        raise _BadField(column, f"not a number: {text!r}") from exc
    if not value.is_finite():
        raise _BadField(column, f"not a number: {text!r}")
    return format_quantity(value)


def _field(row: dict[str, Any], candidates: tuple[str, ...]) -> tuple[str, str]:
    # The first candidate column with a value, and the value.
    return next(((c, t) for c in candidates if (t := text_of(row, c))), ("", ""))


def _has(columns: tuple[str, ...], candidates: tuple[str, ...]) -> bool:
    return any(c.casefold() in columns for c in candidates)


def _present(columns: tuple[str, ...], candidates: tuple[str, ...]) -> str:
    return next((c for c in candidates if c.casefold() in columns), candidates[0] if candidates else "")


@dataclass(frozen=True)
class TicketSource:
    """Closed tickets (an export, or TOPdesk's incidents API with its ``layout``): one reading
    per closed ticket at its closing time, billed as the mapping's ``ticket`` service (else
    ``ticket-incident``)."""

    reads: Input
    tz: tzinfo = STOCKHOLM
    layout: Layout | None = None
    kind: str = "tickets"
    unit: str = "tickets"

    def default_service(self, mapper: Mapper) -> str:
        return mapper.mapping.services.get("ticket", "ticket-incident")

    def observe(self, mapper: Mapper) -> Observations:
        report = TicketReport()
        try:
            found = observe_tickets(fetched(self.reads), report, tz=self.tz, layout=self.layout)
        except ValueError as exc:
            raise SourceError(str(exc)) from exc
        return Observations(
            readings(found, self.default_service(mapper)),
            read=report.read,
            day=None,
            rejected=report.rejected,
        )
