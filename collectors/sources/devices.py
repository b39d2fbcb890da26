"""Device inventories as endpoint-management systems export them: Microsoft Intune (CSV with a
byte-order mark, or Graph JSON) and Jamf Pro (CSV), with comma or semicolon separators.

Each active device is one ``daily_distinct`` observation per run: a device whose last check-in is
older than ``active_days`` before the observation time is not active and is skipped (counted).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

# Per flavour: the columns of device id (serial), name, check-in and the mapping identifier.
FLAVOURS = {
    "intune": ("Serial number", "Device name", "Last check-in", "Device category"),
    "jamf": ("Serial Number", "Computer Name", "Last Check-in", "Department"),
    "graph": ("serialNumber", "deviceName", "lastSyncDateTime", "deviceCategoryDisplayName"),
}


@dataclass(frozen=True)
class Device:
    """One device row of an inventory."""

    serial: str
    name: str
    identifier: str
    last_check_in: datetime


@dataclass
class DeviceReport:
    """What reading an inventory found."""

    read: int = 0
    stale: int = 0
    rejected: list[str] = field(default_factory=list)

    def reject(self, where: str, reason: str) -> None:
        self.rejected.append(f"{where}: {reason}")


def _parse_time(text: str, tz: ZoneInfo) -> datetime:
    text = text.strip()
    if not text:
        raise ValueError("no check-in time")
    text = text.replace("Z", "+00:00")
    if "." in text:  # Intune writes seven decimals of a second
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        rest = tail[len(digits) :]
        text = f"{head}.{digits[:6]}{rest}"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def read_inventory(path: Path, tz: ZoneInfo, report: DeviceReport) -> Iterator[Device]:
    """Devices of an Intune, Jamf or Graph export; the flavour is told by its columns."""
    raw = path.read_bytes().decode("utf-8-sig")
    if raw.lstrip().startswith(("[", "{")):
        doc = json.loads(raw)
        rows = doc.get("value", []) if isinstance(doc, dict) else doc
        yield from _devices(path, ((i + 1, r) for i, r in enumerate(rows)), tz, report)
        return
    sample = raw.splitlines()[0] if raw else ""
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(raw), delimiter=delimiter)
    yield from _devices(path, ((reader.line_num, r) for r in reader), tz, report)


def _devices(
    path: Path, rows: Iterator[tuple[int, dict[str, str]]], tz: ZoneInfo, report: DeviceReport
) -> Iterator[Device]:
    flavour = None
    for line, row in rows:
        report.read += 1
        if flavour is None:
            flavour = next((f for f, cols in FLAVOURS.items() if cols[0] in row and cols[2] in row), None)
            if flavour is None:
                raise ValueError(
                    f"{path}: not an Intune, Jamf or Graph device export (columns: {', '.join(row)})"
                )
        serial_col, name_col, time_col, id_col = FLAVOURS[flavour]
        serial = str(row.get(serial_col) or "").strip()
        if not serial:
            report.reject(f"{path}:{line}", f"no {serial_col}")
            continue
        try:
            seen = _parse_time(str(row.get(time_col) or ""), tz)
        except ValueError as exc:
            report.reject(f"{path}:{line}", f"{time_col}: {exc}")
            continue
        yield Device(serial, str(row.get(name_col) or ""), str(row.get(id_col) or ""), seen)


def active(
    devices: Iterator[Device], at: datetime, active_days: int, report: DeviceReport
) -> Iterator[Device]:
    """Devices that checked in within ``active_days`` before ``at``."""
    cutoff = at - timedelta(days=active_days)
    for device in devices:
        if device.last_check_in < cutoff:
            report.stale += 1
            continue
        yield device


def observed_at(now: datetime | None = None) -> datetime:
    """The run's observation time (aware, UTC, whole seconds)."""
    return (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
