"""Exports of a billing run, and where they are written (a local folder or S3)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from billing_jobs.pricing import Line
from billing_jobs.runs import Run
from chargeback import s3

CSV_COLUMNS = (
    "run_id",
    "period",
    "municipality",
    "cost_centre",
    "service",
    "quantity",
    "unit",
    "unit_price",
    "amount",
    "vat_rate",
    "vat_amount",
    "currency",
    "price_list",
)
CENTS = Decimal("0.01")


def plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: ``0.5``, ``10``, ``12.333333``."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def money(value: Decimal) -> str:
    """An amount with exactly two decimals."""
    return format(value.quantize(CENTS), "f")


def render_csv(run: Run, lines: Sequence[Line]) -> bytes:
    """The spec's CSV: one row per municipality × cost centre × service, in that order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in sorted(lines, key=lambda x: (x.municipality, x.cost_centre, x.service)):
        writer.writerow(
            (
                run.run_id,
                run.period,
                line.municipality,
                line.cost_centre,
                line.service,
                plain(line.quantity),
                line.unit,
                money(line.unit_price) if line.unit_price is not None else "",
                money(line.amount),
                plain(line.vat_rate),
                money(line.vat_amount),
                line.currency,
                line.price_list,
            )
        )
    return out.getvalue().encode("utf-8")


@dataclass(frozen=True)
class ExportFile:
    """One file of an export."""

    name: str
    body: bytes
    content_type: str


FORMATS: dict[str, Callable[[Run, Sequence[Line]], list[ExportFile]]] = {
    "csv": lambda run, lines: [
        ExportFile(f"{run.run_id}.csv", render_csv(run, lines), "text/csv; charset=utf-8")
    ],
}


def write_files(files: Sequence[ExportFile], destination: str, *, s3_client: Callable[[], Any]) -> list[str]:
    """Write the files to a local folder or ``s3://bucket/prefix``; return where each went."""
    if destination.startswith("s3://"):
        location = s3.parse_s3_url(destination)
        client = s3_client()
        return [s3.put_bytes(client, location, f.name, f.body, content_type=f.content_type) for f in files]
    folder = Path(destination)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        path = folder / f.name
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(f.body)
        tmp.replace(path)  # readers never see a half-written export
        written.append(str(path))
    return written
