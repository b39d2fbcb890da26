"""Microsoft 365 licence assignments as the admin centre exports them ("Licensed users" CSV:
``Display name, User principal name, Department, Licenses`` with SKUs joined by ``+``), or as
Graph JSON (``userPrincipalName``, ``department``, ``assignedLicenses[].skuPartNumber``).

One ``daily_distinct`` observation per user and mapped SKU per run; SKUs without a mapping are
counted, never guessed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Assignment:
    """One licence of one user."""

    user: str
    department: str
    sku: str


@dataclass
class LicenceReport:
    """What reading an export found."""

    read: int = 0
    rejected: list[str] = field(default_factory=list)


def read_assignments(path: Path, report: LicenceReport) -> Iterator[Assignment]:
    """Every (user, SKU) of the export."""
    raw = path.read_bytes().decode("utf-8-sig")
    if raw.lstrip().startswith(("[", "{")):
        doc = json.loads(raw)
        for number, row in enumerate(doc.get("value", []) if isinstance(doc, dict) else doc, start=1):
            report.read += 1
            user = str(row.get("userPrincipalName") or "").strip()
            if not user:
                report.rejected.append(f"{path}: item {number}: no userPrincipalName")
                continue
            for licence in row.get("assignedLicenses") or []:
                sku = str(licence.get("skuPartNumber") or "").strip()
                if sku:
                    yield Assignment(user.lower(), str(row.get("department") or ""), sku)
        return
    first = raw.splitlines()[0] if raw else ""
    reader = csv.DictReader(io.StringIO(raw), delimiter=";" if first.count(";") > first.count(",") else ",")
    if not {"User principal name", "Licenses"} <= set(reader.fieldnames or ()):
        columns = ", ".join(reader.fieldnames or ())
        raise ValueError(f"{path}: not a Microsoft 365 licensed-users export (columns: {columns})")
    for row in reader:
        report.read += 1
        user = (row.get("User principal name") or "").strip()
        if not user:
            report.rejected.append(f"{path}:{reader.line_num}: no User principal name")
            continue
        for sku in (row.get("Licenses") or "").split("+"):
            if sku.strip():
                yield Assignment(user.lower(), (row.get("Department") or "").strip(), sku.strip())
