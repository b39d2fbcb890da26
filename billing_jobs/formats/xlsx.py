"""A run's lines as an Excel workbook (``billing export --format xlsx``): the CSV's columns plus
municipality and service names, with typed cells: quantities and amounts are numbers (amounts in
an öre format), the billed month is a date, names and codes are text.

The bytes depend on the run and its lines only (the workbook's times are the run's, every zip entry
has one fixed time), so exporting a final run twice gives the same file.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from datetime import UTC, date, datetime

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from billing_jobs.model import Line, Run
from chargeback.catalogue import Catalogue
from chargeback.period import Period

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MONEY_FORMAT = "#,##0.00"
QUANTITY_FORMAT = "#,##0.00####"
RATE_FORMAT = "0%"
MONTH_FORMAT = "yyyy-mm"

# (header, width, number format or None)
COLUMNS: tuple[tuple[str, int, str | None], ...] = (
    ("run_id", 24, None),
    ("period", 10, MONTH_FORMAT),
    ("municipality", 12, None),
    ("municipality_name", 18, None),
    ("cost_centre", 14, None),
    ("service", 18, None),
    ("service_name", 24, None),
    ("quantity", 14, QUANTITY_FORMAT),
    ("unit", 6, None),
    ("unit_price", 12, MONEY_FORMAT),
    ("amount", 14, MONEY_FORMAT),
    ("vat_rate", 8, RATE_FORMAT),
    ("vat_amount", 12, MONEY_FORMAT),
    ("currency", 8, None),
    ("price_list", 10, None),
)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_MODIFIED = re.compile(rb"<dcterms:modified([^>]*)>[^<]*</dcterms:modified>")


def _month(text: str) -> date:
    return Period.parse(text).first_day


def render_xlsx(run: Run, lines: Sequence[Line], catalogue: Catalogue) -> bytes:
    """One sheet, ``lines``: a header row and one row per line, in the lines' order."""
    municipalities = {m.code: m.name for m in catalogue.municipalities}
    services = {s.id: s.name for s in catalogue.services}
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "lines"
    sheet.append([c[0] for c in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for line in lines:
        sheet.append(
            [
                run.run_id,
                _month(line.corrects_period or run.period),
                line.municipality,
                municipalities.get(line.municipality, ""),
                line.cost_centre,
                line.service,
                services.get(line.service, ""),
                line.quantity,
                line.unit,
                line.unit_price,
                line.amount,
                line.vat_rate,
                line.vat_amount,
                line.currency,
                line.price_list,
            ]
        )
    for i, (_, width, number_format) in enumerate(COLUMNS, start=1):
        letter = get_column_letter(i)
        sheet.column_dimensions[letter].width = width
        if number_format:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=i, max_col=i):
                cell.number_format = number_format
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    made = run.created_at.astimezone(UTC).replace(tzinfo=None) if run.created_at.tzinfo else run.created_at
    book.properties.creator = "chargeback"
    book.properties.created = made
    out = io.BytesIO()
    book.save(out)
    return _fixed_times(out.getvalue(), made)


def _fixed_times(body: bytes, made: datetime) -> bytes:
    """The same workbook with the run's time as its modified time and one time on every zip entry."""
    stamp = made.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(body)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "docProps/core.xml":
                data = _MODIFIED.sub(rb"<dcterms:modified\1>" + stamp + rb"</dcterms:modified>", data)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


__all__ = ["XLSX_TYPE", "render_xlsx"]
