"""Export formats: each turns a run and its lines into files of bytes; where the bytes go is
``billing_jobs.destinations``.

``FORMATS`` maps a ``billing export --format`` name to its function. It puts the lines in the one
line order (``model.sort_lines``) once, so an export is the same whatever order the lines come in;
the renderers below it take the lines in the order given.
"""

from __future__ import annotations

import hashlib
import json as jsonlib  # the name json is this package's json format module
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from billing_jobs.formats.csv import render_csv
from billing_jobs.formats.json import render_json
from billing_jobs.formats.sie import Seller, render_sie
from billing_jobs.model import Line, Run, sort_lines
from chargeback.catalogue import Catalogue


@dataclass(frozen=True)
class ExportFile:
    """One file of an export."""

    name: str
    body: bytes
    content_type: str


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


Format = Callable[[Run, Sequence[Line], ExportContext], list[ExportFile]]


def csv_files(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    """``<run>.csv``."""
    return [ExportFile(f"{run.run_id}.csv", render_csv(run, lines), "text/csv; charset=utf-8")]


def json_files(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    """``<run>.json``."""
    return [ExportFile(f"{run.run_id}.json", render_json(run, lines), "application/json")]


def sie_files(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    """``<run>.se``: SIE 4 vouchers."""
    body = render_sie(run, lines, ctx.catalogue, ctx.seller)
    return [ExportFile(f"{run.run_id}.se", body, "text/plain; charset=IBM437")]


def report_files(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    """``<run>.html``: the run report."""
    from billing_jobs.formats.html import run_page

    page = run_page(run, lines, ctx.catalogue, ctx.seller.name, ctx.previous)
    return [ExportFile(f"{run.run_id}.html", page.encode(), "text/html; charset=utf-8")]


def peppol_files(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    """``<run>.<municipality>.xml``: one Peppol invoice per municipality."""
    from billing_jobs.formats.peppol import PartiesError, load_parties, render_invoice

    if ctx.parties_file is None:
        raise PartiesError("the peppol format needs a parties file: --parties or CHARGEBACK_PARTIES_FILE")
    parties = load_parties(ctx.parties_file)
    by_municipality: dict[str, list[Line]] = {}
    for line in lines:
        by_municipality.setdefault(line.municipality, []).append(line)
    return [
        ExportFile(
            f"{run.run_id}.{code}.xml",
            render_invoice(run, code, own, ctx.catalogue, parties),
            "application/xml",
        )
        for code, own in sorted(by_municipality.items())
    ]


def _in_line_order(fmt: Format) -> Format:
    def ordered(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
        return fmt(run, sort_lines(lines), ctx)

    ordered.__doc__ = fmt.__doc__
    return ordered


FORMATS: dict[str, Format] = {
    name: _in_line_order(fmt)
    for name, fmt in {
        "csv": csv_files,
        "json": json_files,
        "sie": sie_files,
        "report": report_files,
        "peppol": peppol_files,
    }.items()
}


def with_manifest(run: Run, files: Sequence[ExportFile]) -> list[ExportFile]:
    """The files plus ``<run>.<ext>.manifest.json``: each file's size and SHA-256, to check what
    arrived."""
    manifest = {
        "run_id": run.run_id,
        "period": run.period,
        "status": run.status,
        "files": [
            {"name": f.name, "bytes": len(f.body), "sha256": hashlib.sha256(f.body).hexdigest()}
            for f in files
        ],
    }
    body = (jsonlib.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return [
        *files,
        ExportFile(
            f"{run.run_id}.{files[0].name.rsplit('.', 1)[-1]}.manifest.json", body, "application/json"
        ),
    ]


__all__ = ["FORMATS", "ExportContext", "ExportFile", "Format", "Seller", "with_manifest"]
