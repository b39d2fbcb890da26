"""The specification workbook of a NOK catalogue has its column titles in bokmål; its CSV keeps
the same machine columns as everywhere."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from openpyxl import load_workbook

from billing_jobs.formats import FORMATS, ExportContext, Seller
from billing_jobs.formats.specification import COLUMNS, COLUMNS_NB
from billing_jobs.model import Run
from billing_jobs.pricing import price_period
from chargeback.catalogue import Catalogue, load_catalogue
from chargeback.period import Period

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def workbook_titles(catalogue: Catalogue, currency: str) -> tuple[list[object], bytes]:
    lines = price_period(catalogue, Period(2026, 10), [])
    run = Run("2026-10-abc", "2026-10", (), "final", "2026", currency, "", "", AT, AT, 1)
    files = FORMATS["specification"](run, lines, ExportContext(catalogue, Seller("x")))
    first = lines[0].municipality
    xlsx = next(f for f in files if f.name == f"2026-10-abc.{first}.specification.xlsx")
    csv = next(f for f in files if f.name == f"2026-10-abc.{first}.specification.csv")
    sheet = load_workbook(io.BytesIO(xlsx.body)).worksheets[0]
    return [c.value for c in sheet[1]], csv.body


def test_a_nok_catalogues_workbook_speaks_bokmaal() -> None:
    titles, csv = workbook_titles(
        load_catalogue(ROOT / "demo" / "data" / "vesteralen" / "catalogue.yaml"), "NOK"
    )
    assert titles == list(COLUMNS_NB)
    assert titles[:4] == ["Kommune", "Tjeneste", "Tjenestenavn", "Ansvar"] and len(COLUMNS_NB) == len(COLUMNS)
    assert csv.decode("utf-8-sig").splitlines()[0] == ",".join(COLUMNS)


def test_a_sek_catalogues_workbook_is_unchanged() -> None:
    titles, _csv = workbook_titles(load_catalogue(ROOT / "tests" / "fixtures" / "catalogue.yaml"), "SEK")
    assert titles == list(COLUMNS)
