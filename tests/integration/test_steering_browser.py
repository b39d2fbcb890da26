"""The steering reports' HTML pages in a real headless browser (Chromium): laid out at the width
of an A4 page less 10 mm margins (190 mm = 718 CSS px), nothing is wider than that, for the six
Hälsingland members over a whole year with nine-digit amounts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from billing_jobs.reports.per_inhabitant import per_inhabitant_page, per_inhabitant_rows
from billing_jobs.reports.target import Baseline, target_page, target_report
from chargeback.catalogue import load_catalogue
from tests.integration.test_report_browser import headless

pytestmark = pytest.mark.integration
A4_PX = 718  # 190 mm (A4's 210 mm less two 10 mm margins) at 96 CSS px per inch
CATALOGUE = load_catalogue(Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml")
D = Decimal
# A year of large invoices: every member, every service, every month (the widest figures).
ACTUAL = {
    (m, s): {f"2026-{month:02d}": D("1234567.89") for month in range(1, 13)}
    for m in CATALOGUE.municipality_codes
    for s in CATALOGUE.service_ids
}


def rendered_width(html: str, tmp_path: Path) -> int:
    """The page's full width (``scrollWidth``) in Chromium with an A4-wide window."""
    page = tmp_path / "page.html"
    probe = "<script>document.body.dataset.width = document.documentElement.scrollWidth</script>"
    page.write_text(html.replace("</body>", probe + "</body>"), encoding="utf-8")
    dom = headless(f"--window-size={A4_PX},1016", "--dump-dom", page.as_uri())
    marker = 'data-width="'
    start = dom.index(marker) + len(marker)
    return int(dom[start : dom.index('"', start)])


def test_the_measure_sees_a_page_wider_than_a4(tmp_path: Path) -> None:
    wide = "<!DOCTYPE html><html><body><div style='width:1200px'>x</div></body></html>"
    assert rendered_width(wide, tmp_path) > A4_PX


def test_the_savings_target_page_fits_an_a4_page(tmp_path: Path) -> None:
    baseline = Baseline(
        baseline_year=2022,
        index={2022: D("1.000"), 2026: D("1.153")},
        members={m: D("123456789.00") for m in CATALOGUE.municipality_codes},
        new_services=("m365-e3",),
    )
    html = target_page(target_report(baseline, CATALOGUE, 2026, ACTUAL))
    assert "<td>Total</td><td class=n>740740734.00</td>" in html
    assert rendered_width(html, tmp_path) <= A4_PX


def test_the_cost_per_inhabitant_page_fits_an_a4_page(tmp_path: Path) -> None:
    html = per_inhabitant_page(2026, per_inhabitant_rows(CATALOGUE, 2026, ACTUAL))
    assert "<th>Month</th><th>Ovanåker</th>" in html
    assert rendered_width(html, tmp_path) <= A4_PX
