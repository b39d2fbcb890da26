"""Observations → usage events, with deterministic ids: the same observation, the same id.

Also what every source reader shares: decoding an export (BOM, UTF-16, Windows-1252; ``,``,
``;`` or tab; JSON lists) into rows keyed by case-folded column names, and reading the times
the exports write (ISO, Swedish ``06.12``, Dutch ``05-10-2026``, Jira ``05/Oct/26 8:12 AM``).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from chargeback.events import EVENT_TYPE, SPECVERSION, UsageEvent
from chargeback.kafka import Message
from collectors.ids import event_id as observation_id
from collectors.mapping import Mapper

_CONTRACT = frozenset({"municipality", "cost_centre", "service", "subject", "quantity"})


@dataclass(frozen=True)
class Observation:
    """One thing a source saw: an entity, the identifier its cost centre comes from, and when."""

    entity: str  # serial, user, ticket number, folder: the event's subject
    identifier: str | None  # department, OU, folder; None: the source has no such field
    seen_at: datetime  # aware: the run's observation time, or the ticket's closing time
    key: tuple[str, ...] = ()  # further id parts when an entity is seen more than once (a SKU)
    attributes: Mapping[str, str | int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.seen_at.utcoffset() is None:
            raise ValueError(f"observation of {self.entity!r}: seen_at needs a time zone")
        if not self.entity.strip():
            raise ValueError("an observation needs an entity")


def build_event(
    kind: str,
    mapping: Mapper,
    observation: Observation,
    service: str,
    quantity: Decimal | int,
    day: date | None = None,
    attributes: Mapping[str, str | int] | None = None,
) -> UsageEvent | None:
    """The usage event of an observation, or None when its identifier is not mapped (the mapper
    counts it). ``day`` is the run's observation day for per-day readings; it is part of the id.

    A per-day reading's id also names its cost centre: a device seen under two cost centres on
    one day (moved between two runs) is two observations and counts in both (docs/contract.md,
    "From events to billable quantities"), while a re-run that sees it where it was sends the
    same id. One-off observations (a closed ticket) keep one id whatever their cost centre, so
    they are never counted twice.
    """
    cost_centre = mapping.cost_centre(observation.identifier)
    if cost_centre is None:
        return None
    extra = {**observation.attributes, **(attributes or {})}
    if clash := sorted(_CONTRACT & extra.keys()):
        raise ValueError(f"attributes may not replace the event's own fields: {', '.join(clash)}")
    municipality = mapping.municipality
    keys: tuple[str | date, ...] = (
        (*observation.key, cost_centre, day) if day is not None else observation.key
    )
    return UsageEvent.model_validate(
        {
            "specversion": SPECVERSION,
            "id": observation_id(kind, municipality, observation.entity, *keys),
            "source": f"urn:chargeback:collector:{municipality}:{kind}",
            "type": EVENT_TYPE,
            "time": observation.seen_at.astimezone(UTC),
            "data": {
                "municipality": municipality,
                "cost_centre": cost_centre,
                "service": service,
                "subject": observation.entity,
                "quantity": Decimal(quantity),
                **extra,
            },
        }
    )


def to_message(event: UsageEvent) -> Message:
    """The event as a message for the usage topic, keyed by its municipality."""
    return Message(event.data.municipality.encode(), event.to_json())


# --- reading exports ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One row of an export, its column names case-folded; ``where`` is ``file:line`` (or
    ``file: item N`` in JSON). A row with a ``problem`` could not be read as a row at all."""

    where: str
    values: dict[str, Any]
    problem: str = ""


@dataclass(frozen=True)
class Table:
    """An export's column names (case-folded) and rows, in file order."""

    columns: tuple[str, ...]
    rows: list[Row]
    is_json: bool = False


def decode(data: bytes) -> str:
    """Text of an export: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # Excel's "CSV (semikolonavgränsad)" on Swedish Windows
        return data.decode("cp1252", errors="replace")


def read_table(path: Path) -> Table:
    """A CSV (``,``, ``;`` or tab, Excel's ``sep=`` line honoured) or JSON (a list of objects, or
    Graph's ``{"value": [...]}``) export; a ragged CSV row is a row with a problem, not guessed."""
    text = decode(path.read_bytes())
    if text.lstrip().startswith(("[", "{")):
        return _json_table(path, text)
    lines = text.splitlines(keepends=True)
    skipped = 0
    first = lines[0] if lines else ""
    if first.strip().casefold().startswith("sep=") and len(first.strip()) == 5:
        delimiter, skipped = first.strip()[4], 1
    else:  # the header tells: Swedish-locale exports use ';' because ',' is the decimal sign
        delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO("".join(lines[skipped:]), newline=""), delimiter=delimiter)
    header = [h.strip().casefold() for h in next(reader, [])]
    rows = []
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field beyond the csv module's size limit
            rows.append(Row(f"{path}:{reader.line_num + skipped}", {}, f"not a CSV row: {exc}"))
            continue
        where = f"{path}:{reader.line_num + skipped}"
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            rows.append(Row(where, {}, f"{len(values)} fields where the header has {len(header)}"))
            continue
        rows.append(Row(where, {h: v.strip() for h, v in zip(header, values, strict=True)}))
    return Table(tuple(header), rows)


def _json_table(path: Path, text: str) -> Table:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    items = doc.get("value", []) if isinstance(doc, dict) else doc
    rows = [
        Row(f"{path}: item {n}", {str(k).casefold(): v for k, v in item.items()})
        if isinstance(item, dict)
        else Row(f"{path}: item {n}", {}, "not a JSON object")
        for n, item in enumerate(items if isinstance(items, list) else [], start=1)
    ]
    columns = next((tuple(r.values) for r in rows if not r.problem), ())
    return Table(columns, rows, is_json=True)


def text_of(row: Mapping[str, Any], *columns: str) -> str:
    """The first non-empty value among the columns (names case-insensitive), as stripped text."""
    for column in columns:
        value = row.get(column.casefold())
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""


# English, Swedish and Dutch month names as Jira writes them in its users' languages.
_MONTH_NAMES = "jan|feb|mar mars maart mrt|apr|may maj mei|jun juni|jul juli|aug|sep sept|oct okt|nov|dec"
_MONTHS = {name: n for n, names in enumerate(_MONTH_NAMES.split("|"), start=1) for name in names.split()}
_JIRA = re.compile(
    r"^(\d{1,2})/([^\W\d_]{3,9})\.?/(\d{2}|\d{4}) (\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?$"
)
_DAY_FIRST = re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$")
_DOTTED_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T]\d{1,2})\.(\d{2})(?:\.(\d{2}))?$")


def parse_time(text: str, tz: tzinfo) -> datetime:
    """An export's time as aware UTC; a time without a zone is in ``tz``.

    Read: ISO 8601 (any number of decimals, ``Z``), Swedish ``2026-10-05 06.12``, Dutch
    ``05-10-2026 06:12`` (day first) and Jira ``05/Oct/26 8:12 AM`` (English, Swedish or Dutch
    month). Slash dates with a numeric month are refused: day and month cannot be told apart.
    """
    text = text.strip()
    moment: datetime | None = None
    if match := _JIRA.match(text):
        day, month_name, year, hour, minute, second, half = match.groups()
        month = _MONTHS.get(month_name.casefold())
        if month is None:
            raise ValueError(f"unknown month {month_name!r} in {text!r}")
        hour_24 = int(hour)
        if half:  # 12 AM is midnight, 12 PM noon
            hour_24 = hour_24 % 12 + (12 if half.casefold() == "pm" else 0)
        full_year = int(year) + 2000 if len(year) == 2 else int(year)
        moment = datetime(full_year, month, int(day), hour_24, int(minute), int(second or 0))  # noqa: DTZ001
    elif match := _DAY_FIRST.match(text):
        day, month_text, year, hour, minute, second = match.groups()
        moment = datetime(  # noqa: DTZ001 (the zone is added below)
            int(year), int(month_text), int(day), int(hour), int(minute), int(second or 0)
        )
    else:
        if match := _DOTTED_TIME.match(text):
            text = f"{match[1]}:{match[2]}" + (f":{match[3]}" if match[3] else "")
        moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    """An aware time as RFC 3339 UTC text with ``Z``, as events carry times in attributes."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
