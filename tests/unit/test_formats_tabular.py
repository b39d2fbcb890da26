"""Excel-ready exports: ``--format xlsx`` (typed cells) and ``--format csv --dialect excel-sv``
(what Excel on a Swedish Windows opens in columns); the spec's CSV stays as it is."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from billing_jobs.formats import FORMATS, ExportContext, Seller
from billing_jobs.formats.csv import render_csv
from billing_jobs.model import Line, Run
from tests.unit.test_formats_html import CATALOGUE

D = Decimal
WHEN = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)
RUN = Run("2026-10-abc", "2026-10", (), "final", "2026", "SEK", "c" * 64, "u" * 64, WHEN, WHEN, 1)
LINES = [
    Line(
        "2183",
        "BUF",
        "pc-standard",
        D("448.322581"),
        "st",
        D("310.00"),
        D("138980.00"),
        D("0.25"),
        D("34745.00"),
        "SEK",
        "2026",
    ),
    Line(
        "2183",
        "SOC",
        "base-offering",
        D("1"),
        "mån",
        None,
        D("1911785.62"),
        D("0.25"),
        D("477946.41"),
        "SEK",
        "2026",
    ),
    Line(
        "2184",
        "KS",
        "ticket-incident",
        D("-2"),
        "st",
        D("95.00"),
        D("-190.00"),
        D("0.25"),
        D("-47.50"),
        "SEK",
        "2026",
        "2026-09",
    ),
]
CONTEXT = ExportContext(CATALOGUE, Seller("Hälsinglands IT"))


def test_the_spec_csv_is_unchanged_by_default() -> None:
    spec = render_csv(RUN, LINES)
    assert spec == render_csv(RUN, LINES, "spec")
    assert spec.decode("utf-8").splitlines()[1] == (
        "2026-10-abc,2026-10,2183,BUF,pc-standard,448.322581,st,310.00,138980.00,0.25,34745.00,SEK,2026"
    )
    assert not spec.startswith(b"\xef\xbb\xbf") and b"\r\n" not in spec


def test_excel_sv_dialect_semicolons_decimal_commas_bom_crlf() -> None:
    body = render_csv(RUN, LINES, "excel-sv")
    assert body.startswith(b"\xef\xbb\xbf")
    text = body[3:].decode("utf-8")
    assert text.split("\r\n") == [
        "run_id;period;municipality;cost_centre;service;quantity;unit;unit_price;amount;vat_rate;vat_amount;"
        "currency;price_list",
        "2026-10-abc;2026-10;2183;BUF;pc-standard;448,322581;st;310,00;138980,00;0,25;34745,00;SEK;2026",
        "2026-10-abc;2026-10;2183;SOC;base-offering;1;mån;;1911785,62;0,25;477946,41;SEK;2026",
        "2026-10-abc;2026-09;2184;KS;ticket-incident;-2;st;95,00;-190,00;0,25;-47,50;SEK;2026",
        "",
    ]
    (exported,) = FORMATS["csv"](RUN, LINES, ExportContext(CATALOGUE, Seller("x"), dialect="excel-sv"))
    assert exported.name == "2026-10-abc.csv" and exported.body == body


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown CSV dialect 'excel'"):
        render_csv(RUN, LINES, "excel")


def test_xlsx_has_typed_cells_with_ore_formats_and_dates() -> None:
    (exported,) = FORMATS["xlsx"](RUN, LINES, CONTEXT)
    assert exported.name == "2026-10-abc.xlsx"
    assert exported.content_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(exported.body))["lines"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == (
        "run_id",
        "period",
        "municipality",
        "municipality_name",
        "cost_centre",
        "service",
        "service_name",
        "quantity",
        "unit",
        "unit_price",
        "amount",
        "vat_rate",
        "vat_amount",
        "currency",
        "price_list",
    )
    # In the lines' order: 2183 BUF, 2183 SOC, 2184 KS (a correction of September).
    # The month is a date cell (Excel dates have no time zone): its first day.
    assert [r[1].date() for r in rows[1:]] == [date(2026, 10, 1), date(2026, 10, 1), date(2026, 9, 1)]
    assert rows[1][:1] + rows[1][2:] == (
        "2026-10-abc",
        "2183",
        "Bollnäs",
        "BUF",
        "pc-standard",
        "Standarddator",
        448.322581,
        "st",
        310,
        138980,
        0.25,
        34745,
        "SEK",
        "2026",
    )
    assert rows[2][9] is None and rows[2][10] == 1911785.62
    assert rows[3][10] == -190
    cells = sheet[2]
    assert cells[1].is_date and cells[1].number_format == "yyyy-mm"
    assert cells[7].data_type == "n" and cells[7].number_format == "#,##0.00####"
    assert cells[10].data_type == "n" and cells[10].number_format == "#,##0.00"
    assert cells[11].number_format == "0%"
    assert sheet.freeze_panes == "A2"


def test_xlsx_bytes_depend_on_the_run_only() -> None:
    (first,) = FORMATS["xlsx"](RUN, LINES, CONTEXT)
    (again,) = FORMATS["xlsx"](RUN, list(reversed(LINES)), CONTEXT)
    assert first.body == again.body  # a final run's export can be written again unchanged
