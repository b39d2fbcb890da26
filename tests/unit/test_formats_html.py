"""The run report (``billing export --format report``): totals, chart, month-over-month change."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from billing_jobs.formats import FORMATS, ExportContext, Seller
from billing_jobs.formats.html import bar_chart
from billing_jobs.model import Line, Run
from chargeback.catalogue import load_catalogue

CATALOGUE = load_catalogue(Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml")
D = Decimal


def run(period: str, status: str) -> Run:
    when = datetime(2026, 11, 3, tzinfo=UTC)
    return Run(f"{period}-abc", period, (), status, "2026", "SEK", "c" * 64, "u" * 64, when, when, 1)


def line(
    m: str, cc: str, service: str, qty: str, price: str | None, amount: str, note: str | None = None
) -> Line:
    vat = (D(amount) * D("0.25")).quantize(D("0.01"))
    return Line(
        m,
        cc,
        service,
        D(qty),
        "st",
        D(price) if price else None,
        D(amount),
        D("0.25"),
        vat,
        "SEK",
        "2026",
        note,
    )


OCTOBER = [
    line("2183", "BUF", "pc-standard", "31", "310.00", "9610.00"),
    line("2183", "SOC", "ticket-incident", "3", "95.00", "285.00"),
    line("2184", "KS", "pc-standard", "2", "310.00", "620.00"),
    line("2184", "KS", "ticket-incident", "1", "95.00", "95.00", note="2026-09"),
]
SEPTEMBER = [line("2183", "BUF", "pc-standard", "30", "310.00", "9300.00")]


def test_totals_chart_change_and_lines_to_the_ore() -> None:
    page = run_page(
        run("2026-10", "draft"),
        OCTOBER,
        CATALOGUE,
        "Hälsinglands IT <AB>",
        (run("2026-09", "final"), SEPTEMBER),
    )
    assert "DRAFT: this run is not final" in page and "Hälsinglands IT &lt;AB&gt;" in page
    # 2183: 9610.00 + 285.00 = 9895.00, VAT 2402.50 + 71.25 = 2473.75; 2184: 715.00 + 178.75
    assert (
        "<td>2183 Bollnäs</td><td class=n>9895.00</td><td class=n>2473.75</td><td class=n>12368.75</td>"
        in page
    )
    assert (
        "<td>2184 Hudiksvall</td><td class=n>715.00</td><td class=n>178.75</td><td class=n>893.75</td>"
        in page
    )
    assert "<td>Total</td><td class=n>10610.00</td><td class=n>2652.50</td><td class=n>13262.50</td>" in page
    # Bars are proportional: pc-standard 10230.00 is the full 390 px, ticket-incident 380.00 is 14 px.
    widths = re.findall(r'<rect class="bar" x="200" y="\d+" width="(\d+)"', page)
    assert widths == ["390", "14"]
    # 2183 pc-standard 9300.00 -> 9610.00: +310.00 (+3.3 %); everything else is new this month.
    assert "<td class=n>9300.00</td><td class=n>9610.00</td><td>+310.00 (+3.3%)</td>" in page
    assert (
        "<td>2183</td><td>ticket-incident</td><td class=n>–</td><td class=n>285.00</td><td>new</td>" in page
    )
    assert "<td>corrects 2026-09</td>" in page
    assert "<script" not in page


def test_final_run_without_previous_and_the_export_is_deterministic() -> None:
    context = ExportContext(CATALOGUE, Seller("Hälsinglands IT"))
    (first,) = FORMATS["report"](run("2026-10", "final"), OCTOBER, context)
    (again,) = FORMATS["report"](run("2026-10", "final"), list(reversed(OCTOBER)), context)
    assert first.name == "2026-10-abc.html" and first.content_type == "text/html; charset=utf-8"
    assert first.body == again.body  # lines are sorted; no clock in the page
    text = first.body.decode()
    assert "DRAFT" not in text and "No previous run: no month-over-month change to show." in text


def test_bar_chart_of_nothing_and_of_negative_amounts() -> None:
    assert 'height="22"' in bar_chart([])
    assert 'width="0"' in bar_chart([("credit", D("-5.00"))])
