"""Export formats: each turns a run and its lines into files of bytes; where the bytes go is
``billing_jobs.destinations``.

``FORMATS`` maps a ``billing export --format`` name to its function. It puts the lines in the one
line order (``model.sort_lines``) once, so an export is the same whatever order the lines come in;
the renderers below it take the lines in the order given.
"""

from __future__ import annotations

import hashlib
import json as jsonlib  # the name json is this package's json format module
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from billing_jobs.formats.csv import render_csv
from billing_jobs.formats.json import render_json
from billing_jobs.formats.sie import render_sie
from billing_jobs.model import DRAFT, FINAL, DataQuality, Line, Run, SubjectUsage, sort_lines
from billing_jobs.parties import Parties, PartiesError, Seller, load_parties, seller_of
from chargeback.catalogue import Catalogue
from chargeback.errors import UserError


class ExportRefused(UserError):
    """An export that would pass a draft (or void) run off as invoices."""

    code = "export.not_final"


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
    # Seller (the one seller identity of Peppol and SIE) and buyers (``--parties`` /
    # CHARGEBACK_PARTIES_FILE).
    parties_file: Path | None = None
    # ``--draft``: Peppol and SIE may preview a draft run, every file marked as a draft.
    draft: bool = False
    # (corrected month, municipality) -> the id of that month's final invoice, for the
    # BillingReference of the documents that correct it.
    corrected_invoices: Mapping[tuple[str, str], str] = field(default_factory=dict)
    # The run's month's usage per subject, for the specification.
    subjects: Sequence[SubjectUsage] = ()
    # The report's data-quality figures (read from the warehouse by the export command).
    quality: DataQuality = field(default_factory=DataQuality)
    # A member's share billed to UNALLOCATED above this is flagged in the report.
    unallocated_warning_share: Decimal = Decimal("0.10")
    # The CSV dialect: ``spec`` (the spec's CSV, unchanged) or ``excel-sv`` (Swedish Excel).
    dialect: str = "spec"
    # The Tax Administration's SAF-T Financial folder (KOSTRA grouping and standard tax codes),
    # for --format saft (CHARGEBACK_SAFT_DIR).
    saft_dir: Path | None = None

    def parties(self, fmt: str) -> Parties:
        """The checked parties file; the ``fmt`` export cannot go without one."""
        if self.parties_file is None:
            raise PartiesError(f"the {fmt} format needs a parties file: --parties or CHARGEBACK_PARTIES_FILE")
        return load_parties(self.parties_file)


def draft_export(run: Run, ctx: ExportContext, fmt: str) -> bool:
    """Whether the run's ``fmt`` files are drafts (True) or final (False); a draft without
    ``--draft`` and a void run are refused: they are no invoices."""
    if run.status == FINAL:
        return False
    if run.status == DRAFT and ctx.draft:
        return True
    if run.status == DRAFT:
        raise ExportRefused(
            f"run {run.run_id} is a draft: finalise it before exporting {fmt}, or add --draft for a "
            "preview marked as a draft in every file"
        )
    raise ExportRefused(f"run {run.run_id} is {run.status}: it has no {fmt} export")


Format = Callable[[Run, Sequence[Line], ExportContext], list[ExportFile]]


def csv_files(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    """``<run>.csv``: the spec's CSV, or with ``dialect="excel-sv"`` what Swedish Excel opens."""
    return [ExportFile(f"{run.run_id}.csv", render_csv(run, lines, ctx.dialect), "text/csv; charset=utf-8")]


def xlsx_files(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    """``<run>.xlsx``: the CSV's rows as an Excel workbook with typed cells."""
    from billing_jobs.formats.xlsx import XLSX_TYPE, render_xlsx

    return [ExportFile(f"{run.run_id}.xlsx", render_xlsx(run, lines, ctx.catalogue), XLSX_TYPE)]


def json_files(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    """``<run>.json``."""
    return [ExportFile(f"{run.run_id}.json", render_json(run, lines), "application/json")]


def sie_files(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    """``<run>.si`` (a draft: ``<run>.draft.si``): SIE 4I vouchers, the seller from the parties
    file."""
    draft = draft_export(run, ctx, "sie")
    seller = seller_of(ctx.parties("sie"))
    body = render_sie(run, lines, ctx.catalogue, seller, draft=draft)
    name = f"{run.run_id}.draft.si" if draft else f"{run.run_id}.si"
    return [ExportFile(name, body, "text/plain; charset=IBM437")]


def report_files(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    """``<run>.html`` (the organisation's overview) and ``<run>.<municipality>.html`` per member."""
    from billing_jobs.formats.report import report_pages

    pages = report_pages(
        run,
        lines,
        ctx.catalogue,
        ctx.seller.name,
        ctx.quality,
        ctx.previous,
        limit=ctx.unallocated_warning_share,
    )
    return [ExportFile(p.name, p.html.encode(), "text/html; charset=utf-8") for p in pages]


def peppol_files(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    """``<run>.<municipality>.xml`` (a draft: ``<run>.<municipality>.draft.xml``): one Peppol
    invoice, or credit note when its lines net negative, per municipality."""
    from billing_jobs.formats.peppol import render_document

    draft = draft_export(run, ctx, "peppol")
    parties = ctx.parties("peppol")
    by_municipality: dict[str, list[Line]] = {}
    for line in lines:
        by_municipality.setdefault(line.municipality, []).append(line)
    return [
        ExportFile(
            f"{run.run_id}.{code}.draft.xml" if draft else f"{run.run_id}.{code}.xml",
            render_document(
                run,
                code,
                own,
                ctx.catalogue,
                parties,
                draft=draft,
                corrected_invoices=ctx.corrected_invoices,
            ),
            "application/xml",
        )
        for code, own in sorted(by_municipality.items())
    ]


def saft_files(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    """``<run>.saft.xml`` (a draft: ``<run>.draft.saft.xml``): the SAF-T Financial 1.30 audit
    file of the run's postings, the company and customers from the parties file."""
    from billing_jobs.formats.saft import SaftError, load_reference, render_saft

    draft = draft_export(run, ctx, "saft")
    parties = ctx.parties("saft")
    if ctx.saft_dir is None:
        raise SaftError("the saft format needs the SAF-T code lists: set CHARGEBACK_SAFT_DIR")
    body = render_saft(run, lines, ctx.catalogue, parties, load_reference(ctx.saft_dir), draft=draft)
    name = f"{run.run_id}.draft.saft.xml" if draft else f"{run.run_id}.saft.xml"
    return [ExportFile(name, body, "application/xml")]


def specification_files(run: Run, lines: Sequence[Line], ctx: ExportContext) -> list[ExportFile]:
    """``<run>.<municipality>.specification.csv`` and ``.xlsx`` (a draft run:
    ``<run>.<municipality>.draft.specification.csv`` and ``.xlsx``, the workbook's sheets headed
    by a draft line): per member, the subjects behind each of its lines. A draft is not refused:
    the specification is a preview finance reads before finalising."""
    from billing_jobs.formats.specification import (
        COLUMNS,
        COLUMNS_NB,
        render_specification_csv,
        render_specification_xlsx,
        specification_names,
        specification_rows,
    )

    # The workbook is for people: its titles (and a draft's line) in bokmål for a Norwegian report
    # locale.
    language = "nb" if ctx.catalogue.report_locale.startswith(("nb", "no")) else "sv"
    titles = COLUMNS_NB if language == "nb" else COLUMNS
    files = []
    for code in sorted({x.municipality for x in lines}):
        rows = specification_rows(run, lines, ctx.subjects, ctx.catalogue, code)
        xlsx, csv = specification_names(run, code)
        files.append(ExportFile(csv, render_specification_csv(rows), "text/csv; charset=utf-8"))
        files.append(
            ExportFile(
                xlsx,
                render_specification_xlsx(run, rows, titles, language=language),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        )
    return files


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
        "xlsx": xlsx_files,
        "peppol": peppol_files,
        "saft": saft_files,
        "specification": specification_files,
    }.items()
}


def with_manifest(run: Run, files: Sequence[ExportFile]) -> list[ExportFile]:
    """The files plus ``<run>.<ext>.manifest.json`` (``<run>.draft.<ext>.manifest.json`` beside a
    draft's preview): each file's size and SHA-256, to check what arrived."""
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
    draft = all(".draft." in f.name for f in files)  # a draft's Peppol, SIE or SAF-T preview
    # Formats that share a file type keep their own manifest, so exporting several formats of a
    # final run to one folder never writes one manifest over another: the SAF-T file is XML as the
    # Peppol files are ("saft.xml"), a specification is CSV and XLSX as the csv and xlsx exports are.
    first = files[0].name
    if first.endswith(".saft.xml"):
        ext = "saft.xml"
    elif ".specification." in first:
        ext = "specification"
    else:
        ext = first.rsplit(".", 1)[-1]
    return [
        *files,
        ExportFile(
            f"{run.run_id}.{'draft.' if draft else ''}{ext}.manifest.json",
            body,
            "application/json",
        ),
    ]


__all__ = ["FORMATS", "ExportContext", "ExportFile", "ExportRefused", "Format", "Seller", "with_manifest"]
