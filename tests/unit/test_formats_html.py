"""The run report's overview page (``billing export --format report``): totals per member linked
to their pages, cost per service, month-over-month change, in the catalogue's language."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from billing_jobs.formats import FORMATS, ExportContext, Seller
from billing_jobs.formats.html import bar_chart
from billing_jobs.formats.report import overview_page
from billing_jobs.model import DataQuality, Line, Run
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


NB = "\u00a0"  # Babel's Swedish separators: a no-break space between thousands and before kr


def kr(text: str) -> str:
    """``9 895,00 kr`` as the page writes it: no-break spaces between digits and before kr and %."""
    return re.sub(r"(?<=\d) (?=\d|kr|%)", NB, text)


def test_overview_totals_chart_change_in_swedish() -> None:
    page = overview_page(
        run("2026-10", "draft"),
        OCTOBER,
        CATALOGUE,
        "Hälsinglands IT <AB>",
        DataQuality(),
        (run("2026-09", "final"), SEPTEMBER),
    )
    assert '<html lang="sv">' in page
    assert "<title>Faktureringsunderlag oktober 2026 – Översikt</title>" in page
    assert "UTKAST: körningen är inte slutlig och kan ändras." in page
    assert "Underlag från Hälsinglands IT &lt;AB&gt;; körning 2026-10-abc, utkast, prislista 2026" in page
    # 2183: 9610.00 + 285.00 = 9895.00, VAT 2402.50 + 71.25 = 2473.75; 2184: 715.00 + 178.75
    assert (
        '<tr><td><a href="2026-10-abc.2183.html">2183 Bollnäs</a></td><td class="n">'
        + kr('9 895,00 kr</td><td class="n">2 473,75 kr</td><td class="n">12 368,75 kr</td></tr>')
        in page
    )
    assert (
        '<tr><td><a href="2026-10-abc.2184.html">2184 Hudiksvall</a></td><td class="n">'
        + kr('715,00 kr</td><td class="n">178,75 kr</td><td class="n">893,75 kr</td></tr>')
        in page
    )
    assert kr('<td class="n" id="total">13 262,50 kr</td>') in page
    # Bars are proportional: Standarddator 10 230,00 kr is the full 390 px, Ärende incident 380,00 kr 14 px.
    widths = re.findall(r'<rect class="bar" x="200" y="\d+" width="(\d+)"', page)
    assert widths == ["390", "14"]
    assert ">Standarddator</text>" in page and kr(">10 230,00 kr</text>") in page
    # 2183 Standarddator 9 300,00 -> 9 610,00: +310,00 kr (+3,3 %); everything else is new this month.
    assert (
        kr(
            '<tr><td>2183 Bollnäs</td><td>Standarddator</td><td class="n">9 300,00 kr</td>'
            '<td class="n">9 610,00 kr</td><td class="n">+310,00 kr (+3,3 %)</td></tr>'
        )
        in page
    )
    assert (
        '<tr><td>2183 Bollnäs</td><td>Ärende incident</td><td class="n">–</td>'
        + kr('<td class="n">285,00 kr</td><td class="n">ny</td></tr>')
        in page
    )
    assert "<script" not in page


def test_final_run_without_previous_and_the_export_is_deterministic() -> None:
    context = ExportContext(CATALOGUE, Seller("Hälsinglands IT"))
    first = FORMATS["report"](run("2026-10", "final"), OCTOBER, context)
    again = FORMATS["report"](run("2026-10", "final"), list(reversed(OCTOBER)), context)
    assert [f.name for f in first] == ["2026-10-abc.html", "2026-10-abc.2183.html", "2026-10-abc.2184.html"]
    assert {f.content_type for f in first} == {"text/html; charset=utf-8"}
    assert [f.body for f in first] == [f.body for f in again]  # lines are sorted; no clock in the page
    text = first[0].body.decode()
    assert "UTKAST" not in text and "Ingen tidigare körning att jämföra med." in text
    # Without a parties file there is no seller to name.
    nameless = FORMATS["report"](run("2026-10", "final"), OCTOBER, ExportContext(CATALOGUE, Seller("")))
    assert '<p class="sub">körning 2026-10-abc, slutlig, prislista 2026</p>' in nameless[1].body.decode()


def test_a_nok_catalogue_writes_norwegian_bokmal() -> None:
    norwegian = CATALOGUE.model_copy(update={"currency": "NOK"})
    in_nok = replace(run("2026-10", "final"), currency="NOK")
    page = overview_page(in_nok, OCTOBER, norwegian, "Felles IT", DataQuality(), None)
    assert (
        '<html lang="nb">' in page and "<title>Faktureringsgrunnlag oktober 2026 – Oversikt</title>" in page
    )
    assert kr('<td class="n" id="total">13 262,50 kr</td>') in page
    assert "Ingen tidligere kjøring å sammenligne med." in page


def test_bar_chart_of_nothing_and_of_negative_amounts() -> None:
    assert 'height="22"' in bar_chart([])
    assert 'width="0"' in bar_chart([("credit", D("-5.00"))])
    assert ">-5.00</text>" in bar_chart([("credit", D("-5.00"))])
