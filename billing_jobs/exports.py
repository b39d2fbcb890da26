"""Exports of a billing run, and where they are written (a local folder or S3)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from billing_jobs.pricing import Line
from billing_jobs.runs import Run, sort_lines
from billing_jobs.sie import Seller, render_sie
from chargeback import s3
from chargeback.catalogue import Catalogue
from chargeback.errors import UserError

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
    """The spec's CSV: one row per municipality × cost centre × service, in that order (the lines come
    sorted); a correction of a finalised month follows, with that month in ``period``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in sort_lines(lines):
        writer.writerow(
            (
                run.run_id,
                line.corrects_period or run.period,
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


def render_json(run: Run, lines: Sequence[Line]) -> bytes:
    """The run as JSON: header, lines (amounts as strings, exact) and totals."""
    return (json.dumps(run_document(run, sort_lines(lines)), indent=2, ensure_ascii=False) + "\n").encode()


@dataclass(frozen=True)
class ExportContext:
    """What formats beyond the run itself need: the catalogue (names, accounts) and the seller."""

    catalogue: Catalogue
    seller: Seller
    # The previous month's run and its lines (the latest final one, else the latest draft), for
    # the report's month-over-month change; None when there is none.
    previous: tuple[Run, Sequence[Line]] | None = None
    # Seller and buyers for the Peppol invoices (``--parties`` / CHARGEBACK_PARTIES_FILE).
    parties_file: Path | None = None


def _sie(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    body = render_sie(run, sort_lines(lines), ctx.catalogue, ctx.seller)
    return [ExportFile(f"{run.run_id}.se", body, "text/plain; charset=IBM437")]


def _report(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    from billing_jobs.report_html import run_page

    page = run_page(run, sort_lines(lines), ctx.catalogue, ctx.seller.name, ctx.previous)
    return [ExportFile(f"{run.run_id}.html", page.encode(), "text/html; charset=utf-8")]


def _peppol(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    from billing_jobs.peppol import PartiesError, load_parties, render_invoice

    if ctx.parties_file is None:
        raise PartiesError("the peppol format needs a parties file: --parties or CHARGEBACK_PARTIES_FILE")
    parties = load_parties(ctx.parties_file)
    by_municipality: dict[str, list[Line]] = {}
    for line in sort_lines(lines):
        by_municipality.setdefault(line.municipality, []).append(line)
    return [
        ExportFile(
            f"{run.run_id}.{code}.xml",
            render_invoice(run, code, own, ctx.catalogue, parties),
            "application/xml",
        )
        for code, own in sorted(by_municipality.items())
    ]


FORMATS: dict[str, Callable[[Run, Sequence[Line], ExportContext], list[ExportFile]]] = {
    "csv": lambda run, lines, ctx: [
        ExportFile(f"{run.run_id}.csv", render_csv(run, lines), "text/csv; charset=utf-8")
    ],
    "json": lambda run, lines, ctx: [
        ExportFile(f"{run.run_id}.json", render_json(run, lines), "application/json")
    ],
    "sie": _sie,
    "report": _report,
    "peppol": _peppol,
}


class ExportError(UserError):
    """An export would overwrite what must not change."""

    code = "export.failed"


def with_manifest(run: Run, files: Sequence[ExportFile]) -> list[ExportFile]:
    """The files plus ``<run>.manifest.json``: each file's size and SHA-256, to check what arrived."""
    manifest = {
        "run_id": run.run_id,
        "period": run.period,
        "status": run.status,
        "files": [
            {"name": f.name, "bytes": len(f.body), "sha256": hashlib.sha256(f.body).hexdigest()}
            for f in files
        ],
    }
    body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return [
        *files,
        ExportFile(
            f"{run.run_id}.{files[0].name.rsplit('.', 1)[-1]}.manifest.json", body, "application/json"
        ),
    ]


def write_files(
    files: Sequence[ExportFile], destination: str, *, s3_client: Callable[[], Any], immutable: bool = False
) -> list[str]:
    """Write the files to a local folder or ``s3://bucket/prefix``; return where each went.

    With ``immutable`` (a final run) an existing file is never overwritten: the same content is
    left as it is, different content is an error.
    """
    if destination.startswith("s3://"):
        location = s3.parse_s3_url(destination)
        client = s3_client()
        written = []
        for f in files:
            digest = hashlib.sha256(f.body).hexdigest()
            if immutable:
                found = s3.existing_sha256(client, location, f.name)
                if found == digest:
                    written.append(f"s3://{location.bucket}/{location.key(f.name)} (unchanged)")
                    continue
                if found is not None:
                    raise ExportError(
                        f"s3://{location.bucket}/{location.key(f.name)} exists with other content; "
                        "exports of a final run are never overwritten"
                    )
            written.append(
                s3.put_bytes(client, location, f.name, f.body, content_type=f.content_type, sha256=digest)
            )
        return written
    folder = Path(destination)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        path = folder / f.name
        if immutable and path.exists():
            if path.read_bytes() == f.body:
                written.append(f"{path} (unchanged)")
                continue
            raise ExportError(
                f"{path} exists with other content; exports of a final run are never overwritten"
            )
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(f.body)
        tmp.replace(path)  # readers never see a half-written export
        written.append(str(path))
    return written


def run_header(run: Run) -> dict[str, Any]:
    """A run's header as a JSON-ready dict."""
    return {
        "run_id": run.run_id,
        "period": run.period,
        "municipalities": list(run.municipalities),
        "status": run.status,
        "price_list": run.price_list,
        "currency": run.currency,
        "created_at": run.created_at.isoformat(),
        "changed_at": run.changed_at.isoformat(),
    }


def run_document(run: Run, lines: Sequence[Line], *, created: bool | None = None) -> dict[str, Any]:
    """A run with its lines and totals as a JSON-ready dict (amounts as strings, exact)."""
    doc = run_header(run)
    if created is not None:
        doc["created"] = created
    doc["lines"] = [
        {
            "period": x.corrects_period or run.period,
            "municipality": x.municipality,
            "cost_centre": x.cost_centre,
            "service": x.service,
            "quantity": str(x.quantity),
            "unit": x.unit,
            "unit_price": money(x.unit_price) if x.unit_price is not None else None,
            "amount": money(x.amount),
            "vat_rate": str(x.vat_rate),
            "vat_amount": money(x.vat_amount),
        }
        for x in lines
    ]
    doc["total_amount"] = money(sum((x.amount for x in lines), Decimal(0)))
    doc["total_vat"] = money(sum((x.vat_amount for x in lines), Decimal(0)))
    return doc
