"""Device inventories as endpoint-management systems export them: Microsoft Intune (CSV with a
byte-order mark, check-ins in UTC with seven decimals), Configuration Manager (often Swedish
locale: semicolons, ``2026-10-05 06:12`` local time, an ``OU`` column), Jamf Pro (CSV, local
time) and Graph ``managedDevices`` JSON (``...Z``). The flavour is told by the columns.

Each active device is one ``daily_distinct`` observation per run, at the run's time: a device is
active when its last check-in is no older than ``active_days`` before the run's day. A row that
cannot be read is rejected with its file and line; it never stops the run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from collectors.events import Observation
from collectors.exports import Table, iso_utc, parse_time, read_table, text_of
from collectors.mapping import Mapper
from collectors.source import Input, Observations, Skipped, SourceError, fetched, readings

STOCKHOLM = ZoneInfo("Europe/Stockholm")


@dataclass(frozen=True)
class Flavour:
    """Where one export layout keeps what a device observation needs (column names, any case)."""

    name: str
    tells: str  # the column that tells this layout apart
    serial: tuple[str, ...]
    device_name: tuple[str, ...]
    check_in: tuple[str, ...]
    identifier: tuple[str, ...]
    utc: bool  # check-in times without a zone are UTC (else the inventory's local time)
    user: tuple[str, ...] = ()  # the device's primary user, where the export has one


FLAVOURS = (
    Flavour(
        "intune",
        "Device name",
        ("Serial number",),
        ("Device name",),
        ("Last check-in",),
        ("Device category", "Category", "Department"),
        utc=True,
        user=("Primary user UPN", "Primary user email address"),
    ),
    Flavour(
        "jamf",
        "Computer Name",
        ("Serial Number",),
        ("Computer Name",),
        ("Last Check-in", "Last Inventory Update"),
        ("Department", "Building"),
        utc=False,
        user=("Email Address", "Username"),
    ),
    Flavour(
        "graph",
        "deviceName",
        ("serialNumber",),
        ("deviceName",),
        ("lastSyncDateTime",),
        ("deviceCategoryDisplayName", "department"),
        utc=True,
        user=("userPrincipalName", "emailAddress"),
    ),
    Flavour(
        "configmgr",
        "Name",
        ("Serial Number", "SerialNumber"),
        ("Name",),
        ("Last Activity", "Last Activity Time", "LastActiveTime"),
        ("OU", "Organizational Unit", "Department"),
        utc=False,
        user=("Primary User", "Primary User(s)", "PrimaryUser"),
    ),
)
# Serial numbers firmware writes when it has none: two devices would look like one.
PLACEHOLDER_SERIALS = frozenset(
    {
        "",
        "0",
        "none",
        "n/a",
        "na",
        "unknown",
        "default string",
        "to be filled by o.e.m.",
        "system serial number",
    }
)
_JAMF_AT = re.compile(r"^(\d{4}-\d{2}-\d{2}) at (\d{1,2}):(\d{2})\s*([AaPp][Mm])$")


@dataclass(frozen=True)
class DeviceRecord:
    """One readable row: the device, where its cost centre comes from, and its last check-in."""

    serial: str  # as exported, possibly empty or a placeholder
    name: str
    identifier: str | None  # None: the export has no identifier column
    last_check_in: datetime  # aware, UTC
    where: str = field(default="", compare=False)  # file:line
    user: str = field(default="", compare=False)  # primary user, "" when the export has none

    @property
    def entity(self) -> str:
        """The serial number, or the device name when the serial is missing or a placeholder."""
        return self.serial if self.serial.casefold() not in PLACEHOLDER_SERIALS else self.name


@dataclass
class DeviceReport:
    """What reading an inventory found."""

    read: int = 0
    stale: int = 0
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)

    def reject(self, where: str, reason: str) -> None:
        self.rejected.append(f"{where}: {reason}")


def read_devices(
    path: Path | Table,
    report: DeviceReport,
    *,
    tz: tzinfo = STOCKHOLM,
    identifier_column: str | None = None,
    zone_of_utc_exports: tzinfo = UTC,
) -> Iterator[DeviceRecord]:
    """Every readable device row of an Intune, Configuration Manager, Jamf or Graph export (a
    file, or a table an API adapter fetched in the same layout).

    ``tz`` is the zone of local-time exports (Configuration Manager, Jamf); ``identifier_column``
    overrides the column the cost centre comes from.
    """
    table = path if isinstance(path, Table) else read_table(path)
    name = path if isinstance(path, Path) else "the inventory"
    flavour = next((f for f in FLAVOURS if _fits(f, table.columns)), None)
    if flavour is None:
        raise ValueError(
            f"{name}: not an Intune, Jamf or Graph device export (columns: {', '.join(table.columns)}); "
            "Configuration Manager exports need Name and Last Activity"
        )
    identifiers = (identifier_column,) if identifier_column else flavour.identifier
    present = [c for c in identifiers if c.casefold() in table.columns]
    if identifier_column and not present:
        raise ValueError(f"{name}: no column {identifier_column!r} (columns: {', '.join(table.columns)})")
    for entry in table.rows:
        report.read += 1
        where, row = entry.where, entry.values
        if entry.problem:
            report.reject(where, entry.problem)
            continue
        serial, name = text_of(row, *flavour.serial), text_of(row, *flavour.device_name)
        if not name and serial.casefold() in PLACEHOLDER_SERIALS:
            report.reject(where, f"no {flavour.serial[0]} and no {flavour.device_name[0]}")
            continue
        check_in = text_of(row, *flavour.check_in)
        try:
            if not check_in:
                raise ValueError("no check-in time")
            seen = parse_time(_jamf_time(check_in), zone_of_utc_exports if flavour.utc else tz)
        except ValueError as exc:
            report.reject(where, f"{flavour.check_in[0]}: {exc}")
            continue
        identifier = text_of(row, *present) if present else None
        yield DeviceRecord(serial, name, identifier, seen, where, text_of(row, *flavour.user))


def observe_devices(
    path: Path | Table,
    at: datetime,
    report: DeviceReport,
    *,
    active_days: int = 30,
    tz: ZoneInfo = STOCKHOLM,
    identifier_column: str | None = None,
) -> list[Observation]:
    """One observation at ``at`` per active device, by entity; a device listed twice counts once
    (the row with the latest check-in), and inactive devices are counted as stale."""
    if at.utcoffset() is None:
        raise ValueError("the observation time needs a time zone")
    oldest_day = at.astimezone(tz).date() - timedelta(days=active_days)
    latest: dict[str, DeviceRecord] = {}
    for record in read_devices(path, report, tz=tz, identifier_column=identifier_column):
        if record.last_check_in.astimezone(tz).date() < oldest_day:
            report.stale += 1
            continue
        kept = latest.setdefault(record.entity, record)
        if kept is not record:
            report.duplicates += 1
            if record.last_check_in > kept.last_check_in:
                latest[record.entity] = record
    return [
        Observation(
            entity,
            record.identifier,
            at,
            # Who uses it (subject_user, docs/contract.md): the specification names the device's user.
            attributes={
                "device_name": record.name,
                "last_check_in": iso_utc(record.last_check_in),
                **({"subject_user": record.user} if record.user else {}),
            },
        )
        for entity, record in sorted(latest.items())
    ]


def _fits(flavour: Flavour, columns: tuple[str, ...]) -> bool:
    return flavour.tells.casefold() in columns and any(c.casefold() in columns for c in flavour.check_in)


def _jamf_time(text: str) -> str:
    # Jamf Pro writes "2026-10-05 at 7:30 AM".
    match = _JAMF_AT.match(text)
    if match is None:
        return text
    hour = int(match[2]) % 12 + (12 if match[4].casefold() == "pm" else 0)
    return f"{match[1]} {hour:02d}:{match[3]}"


def observed_at(now: datetime | None = None) -> datetime:
    """The run's observation time (aware, UTC, whole seconds)."""
    return (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class DeviceSource:
    """A device inventory (an export, or Intune through Microsoft Graph): one reading per active
    device at the run's time ``at``, billed as the mapping's ``device`` service (else
    ``pc-standard``)."""

    reads: Input
    at: datetime
    active_days: int = 30
    tz: ZoneInfo = STOCKHOLM
    identifier_column: str | None = None
    kind: str = "devices"
    unit: str = "devices"

    def default_service(self, mapper: Mapper) -> str:
        return mapper.mapping.services.get("device", "pc-standard")

    def observe(self, mapper: Mapper) -> Observations:
        report = DeviceReport()
        try:
            found = observe_devices(
                fetched(self.reads),
                self.at,
                report,
                active_days=self.active_days,
                tz=self.tz,
                identifier_column=self.identifier_column,
            )
        except ValueError as exc:
            raise SourceError(str(exc)) from exc
        return Observations(
            readings(found, self.default_service(mapper)),
            read=report.read,
            day=self.at.astimezone(self.tz).date(),
            rejected=report.rejected,
            skipped=[
                Skipped("inactive", report.stale, f"inactive (no check-in for {self.active_days} days)"),
                Skipped("listed_twice", report.duplicates, "listed more than once (counted once)"),
            ],
        )
