"""Microsoft 365 licence assignments as the admin centre exports them ("Licensed users" CSV:
``Display name, User principal name, Department, Licenses`` with SKU part numbers or product
names joined by ``+``), or as Graph JSON (``userPrincipalName``, ``department``,
``assignedLicenses[].skuPartNumber``).

One ``daily_distinct`` observation per user and mapped SKU per run; a SKU without a mapping is
counted (``SKU <name>``), never guessed. The mapping may name SKUs by part number or product name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from collectors.events import Observation
from collectors.exports import Table, read_table, text_of
from collectors.mapping import Mapper
from collectors.source import Input, Observations, Reading, SourceError, fetched

# What the admin centre writes for a user without any licence (English, Swedish).
STOCKHOLM = ZoneInfo("Europe/Stockholm")
UNLICENSED = frozenset({"unlicensed", "olicensierad"})


@dataclass(frozen=True)
class Assignment:
    """One licence of one user."""

    user: str  # the user principal name, lower case
    department: str
    sku: str
    where: str = field(default="", compare=False)
    has_department: bool = field(default=True, compare=False)  # False: the export has no such field
    name: str = field(default="", compare=False)  # the user's display name, where the export has it


@dataclass
class LicenceReport:
    """What reading an export found."""

    read: int = 0
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)


class Seat(NamedTuple):
    """An observation of a user holding a licence, and the service the licence is billed as."""

    observation: Observation
    service: str


def read_assignments(path: Path | Table, report: LicenceReport) -> Iterator[Assignment]:
    """Every (user, SKU) of a licensed-users CSV or Graph JSON export (a file, or the table the
    Graph adapter fetched)."""
    table = path if isinstance(path, Table) else read_table(path)
    is_json = table.is_json
    if not is_json and not {"user principal name", "licenses"} <= set(table.columns):
        columns = ", ".join(table.columns)
        raise ValueError(f"{path}: not a Microsoft 365 licensed-users export (columns: {columns})")
    for entry in table.rows:
        report.read += 1
        where, row = entry.where, entry.values
        if entry.problem:
            report.rejected.append(f"{where}: {entry.problem}")
            continue
        user = text_of(row, "User principal name", "userPrincipalName")
        if not user:
            name = "userPrincipalName" if is_json else "User principal name"
            report.rejected.append(f"{where}: no {name}")
            continue
        has_department = "department" in row
        department = text_of(row, "Department")
        skus = _json_skus(row.get("assignedlicenses")) if is_json else _csv_skus(text_of(row, "Licenses"))
        for sku in skus:
            name = text_of(row, "Display name", "displayName")
            yield Assignment(user.lower(), department, sku, where, has_department, name)


def observe_licences(path: Path | Table, mapper: Mapper, at: datetime, report: LicenceReport) -> list[Seat]:
    """One observation at ``at`` per user and mapped SKU (each pair once, the SKU as the mapping
    spells it); SKUs the mapping does not know are counted by ``mapper`` and left out."""
    seats: dict[tuple[str, str], Seat] = {}
    for assignment in read_assignments(path, report):
        found = mapper.sku(assignment.sku)
        if found is None:
            continue
        sku, service = found
        if (assignment.user, sku) in seats:
            report.duplicates += 1
            continue
        identifier = assignment.department if assignment.has_department else None
        # The subject is the user's UPN; its display name travels as subject_name (docs/contract.md).
        named = {"subject_name": assignment.name} if assignment.name else {}
        observation = Observation(
            assignment.user, identifier, at, key=(sku,), attributes={"sku": sku, **named}
        )
        seats[assignment.user, sku] = Seat(observation, service)
    return list(seats.values())


def _csv_skus(text: str) -> list[str]:
    return [s.strip() for s in text.split("+") if s.strip() and s.strip().casefold() not in UNLICENSED]


def _json_skus(licences: Any) -> list[str]:
    # Graph's user resource carries only skuId; exports joined with subscribedSkus add skuPartNumber.
    skus = []
    for licence in licences if isinstance(licences, list) else []:
        if isinstance(licence, dict):
            sku = str(licence.get("skuPartNumber") or licence.get("skuId") or "").strip()
            if sku:
                skus.append(sku)
    return skus


@dataclass(frozen=True)
class LicenceSource:
    """Microsoft 365 licence assignments (an export, or users and subscriptions from Microsoft
    Graph): one reading per user and mapped SKU at the run's time ``at``, billed as the service
    the mapping gives the SKU."""

    reads: Input
    at: datetime
    tz: ZoneInfo = STOCKHOLM
    kind: str = "m365"
    unit: str = "assignments"

    def default_service(self, mapper: Mapper) -> None:
        return None  # each SKU names its own service

    def observe(self, mapper: Mapper) -> Observations:
        report = LicenceReport()
        try:
            seats = observe_licences(fetched(self.reads), mapper, self.at, report)
        except ValueError as exc:
            raise SourceError(str(exc)) from exc
        return Observations(
            [Reading(s.observation, s.service) for s in seats],
            read=report.read,
            day=self.at.astimezone(self.tz).date(),
            rejected=report.rejected,
        )
