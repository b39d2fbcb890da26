"""What every source reader shares: decoding an export (BOM, UTF-16, Windows-1252; ``,``,
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
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any


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
_DAY_FIRST = re.compile(r"^(\d{1,2})([-.])(\d{1,2})\2(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$")
_DOTTED_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T]\d{1,2})\.(\d{2})(?:\.(\d{2}))?$")


def parse_time(text: str, tz: tzinfo) -> datetime:
    """An export's time as aware UTC; a time without a zone is in ``tz``.

    Read: ISO 8601 (any number of decimals, ``Z``), Swedish ``2026-10-05 06.12``, Dutch
    ``05-10-2026 06:12`` and Norwegian ``05.10.2026 06:12`` (day first), and Jira
    ``05/Oct/26 8:12 AM`` (English, Swedish or Dutch month). Slash dates with a numeric month
    are refused: day and month cannot be told apart.
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
        day, _separator, month_text, year, hour, minute, second = match.groups()
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
