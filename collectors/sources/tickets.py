"""Closed service-desk tickets as TOPdesk, ServiceNow and Jira Service Management export them.

One ``count`` event per closed ticket; category, priority, channel and the opened, first
response and closed times travel as attributes for service-level reports. Times without a zone
are in the given time zone (the desk's); events carry them as aware UTC.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

# flavour -> column of: number, category, priority, channel, department, opened, first response, closed
COLUMNS = {
    "topdesk": (
        "Nummer",
        "Kategori",
        "Prioritet",
        "Anmälningssätt",
        "Avdelning",
        "Anmälningsdatum",
        "Första svar",
        "Avslutad datum",
    ),
    "servicenow": (
        "number",
        "category",
        "priority",
        "contact_type",
        "u_department",
        "opened_at",
        "u_first_response",
        "closed_at",
    ),
    "jira": (
        "Issue key",
        "Custom field (Category)",
        "Priority",
        "Custom field (Channel)",
        "Custom field (Department)",
        "Created",
        "Custom field (First response)",
        "Resolved",
    ),
}
CHANNELS = {
    "phone": "phone",
    "telefon": "phone",
    "e-mail": "e-mail",
    "email": "e-mail",
    "e-post": "e-mail",
    "self-service": "portal",
    "portal": "portal",
    "självservice": "portal",
    "web": "portal",
    "webb": "portal",
}
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%d/%b/%y %I:%M %p")


@dataclass(frozen=True)
class Ticket:
    """A closed ticket."""

    number: str
    department: str
    closed: datetime
    attributes: dict[str, str]


@dataclass
class TicketReport:
    """What reading an export found."""

    read: int = 0
    open: int = 0
    rejected: list[str] = field(default_factory=list)


def parse_time(text: str, tz: ZoneInfo) -> datetime:
    """A desk's time as aware UTC; naive times are in the desk's zone."""
    text = text.strip()
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=tz).astimezone(UTC)
        except ValueError:
            continue
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(UTC)


def read_tickets(path: Path, tz: ZoneInfo, report: TicketReport) -> Iterator[Ticket]:
    """The closed tickets of a TOPdesk, ServiceNow or Jira CSV export."""
    raw = path.read_bytes().decode("utf-8-sig")
    first = raw.splitlines()[0] if raw else ""
    reader = csv.DictReader(io.StringIO(raw), delimiter=";" if first.count(";") > first.count(",") else ",")
    names = set(reader.fieldnames or ())
    flavour = next((f for f, cols in COLUMNS.items() if cols[0] in names and cols[7] in names), None)
    if flavour is None:
        raise ValueError(
            f"{path}: not a TOPdesk, ServiceNow or Jira ticket export (columns: {', '.join(names)})"
        )
    number_c, category_c, priority_c, channel_c, dept_c, opened_c, response_c, closed_c = COLUMNS[flavour]
    for row in reader:
        report.read += 1
        where = f"{path}:{reader.line_num}"
        number = (row.get(number_c) or "").strip()
        closed_text = (row.get(closed_c) or "").strip()
        if not number:
            report.rejected.append(f"{where}: no {number_c}")
            continue
        if not closed_text:
            report.open += 1
            continue
        try:
            times = {"closed": parse_time(closed_text, tz)}
            for name, column in (("opened", opened_c), ("first_response", response_c)):
                if (row.get(column) or "").strip():
                    times[name] = parse_time(row[column], tz)
        except ValueError as exc:
            report.rejected.append(f"{where}: {exc}")
            continue
        channel_text = (row.get(channel_c) or "").strip()
        attributes = {
            "category": (row.get(category_c) or "").strip(),
            "priority": (row.get(priority_c) or "").strip(),
            "channel": CHANNELS.get(channel_text.casefold(), channel_text.casefold() or "unknown"),
            **{k: v.isoformat().replace("+00:00", "Z") for k, v in times.items()},
        }
        yield Ticket(number, (row.get(dept_c) or "").strip(), times["closed"], attributes)
