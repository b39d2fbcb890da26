"""The reports in a real headless browser (Chromium): the overview renders and its chart draws bars
in proportion to the amounts; a member page shows its Swedish totals as a reader sees them; no
element of a member page, the overview, the budget or the service-level report is wider than an
A4 page (794 px at 96 dpi); ``--pdf`` prints A4 pages."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import replace
from datetime import date
from decimal import Decimal
from html import unescape
from pathlib import Path

import pytest

from billing_jobs.formats import FORMATS, ExportContext, ExportFile, Seller
from billing_jobs.formats.html import A4_PX
from billing_jobs.formats.pdf import print_pdfs
from billing_jobs.model import CHANGE, SILENT, Alert
from billing_jobs.reports.budget import BudgetRow
from billing_jobs.reports.html import budget_page, sla_page
from billing_jobs.reports.sla import sla_rows
from chargeback.catalogue import ServiceLevels
from chargeback.period import Period
from tests.unit import test_formats_report as member
from tests.unit.test_formats_html import CATALOGUE, OCTOBER, SEPTEMBER, run
from tests.unit.test_reports_sla import STOCKHOLM, TICKETS

pytestmark = pytest.mark.integration
BAR = (0x2F, 0x6D, 0xB5)


def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        pytest.fail("no Chromium: scripts/bootstrap --clickhouse-server installs it")
    return found


def headless(*args: str) -> str:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--force-device-scale-factor=1"]
    done = subprocess.run([browser(), *flags, *args], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def read_png(path: Path) -> tuple[int, int, list[list[tuple[int, int, int]]]]:
    """Width, height and RGB rows of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows = zlib.decompress(idat), width * channels, []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up, up_left = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
        rows.append([tuple(line[i : i + 3]) for i in range(0, stride, channels)])
        previous = line
    return width, height, rows  # type: ignore[return-value]


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    context = ExportContext(CATALOGUE, Seller("Hälsinglands IT"), (run("2026-09", "final"), SEPTEMBER))
    page = FORMATS["report"](run("2026-10", "draft"), OCTOBER, context)[0]  # the overview
    html = tmp_path / page.name
    html.write_bytes(page.body)

    dom = unescape(headless("--dump-dom", html.as_uri()))  # &nbsp; is the no-break space
    assert "13\u00a0262,50\u00a0kr" in dom and "UTKAST: körningen är inte slutlig och kan ändras." in dom

    shot = tmp_path / "report.png"
    headless(f"--screenshot={shot}", "--window-size=1200,1400", html.as_uri())
    width, height, pixels = read_png(shot)
    assert (width, height) == (1200, 1400)
    # Not a blank page: plenty of text and rules.
    ink = sum(1 for row in pixels for px in row if sum(px) < 600)
    assert ink > 5_000, ink
    # The chart's two bars: rows of bar-coloured pixels, 390 and 14 px wide (10 230,00 and 380,00 kr).
    bar_widths = sorted({sum(1 for px in row if px == BAR) for row in pixels} - {0}, reverse=True)
    assert bar_widths[:2] == [390, 14], bar_widths[:5]


# Appended to a copy of a page: writes what the browser laid out into the DOM that --dump-dom prints.
MEASURE = """<script>
const all = [...document.querySelectorAll("body *")];
const widest = all.reduce((m, e) => Math.max(m, e.getBoundingClientRect().right), 0);
const over = all.filter((e) => e.getBoundingClientRect().right > %(limit)d).map((e) => e.tagName);
const pre = document.createElement("pre");
pre.id = "measured";
pre.textContent = JSON.stringify({
  widest: Math.ceil(widest),
  scroll: document.documentElement.scrollWidth,
  over: over.slice(0, 5),
  total: document.getElementById("total") ? document.getElementById("total").innerText : null,
  excl: document.getElementById("excl") ? document.getElementById("excl").innerText : null,
});
document.body.appendChild(pre);
</script>"""


def measure(tmp_path: Path, name: str, html: str) -> dict[str, object]:
    """Lay the page out in a window wider than A4 and report its widest element and totals."""
    path = tmp_path / name
    path.write_text(html.replace("</body>", MEASURE % {"limit": A4_PX} + "</body>"), encoding="utf-8")
    dom = headless("--window-size=1400,1000", "--dump-dom", path.as_uri())
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom)
    assert found is not None, dom[-2000:]
    return dict(json.loads(unescape(found.group(1))))


def test_member_page_shows_swedish_totals_and_fits_a4(tmp_path: Path) -> None:
    # With usage alerts in the data-quality box: a source's long name wraps inside the page.
    alerts = (
        Alert(CHANGE, "2183", "ticket-incident", Decimal(5), Decimal(2), Decimal("-60.0"), Decimal(25)),
        Alert(
            SILENT,
            "2183",
            source="urn:chargeback:collector:2183:microsoft-intune-managed-devices",
            last_day=date(2026, 10, 26),
            silent_working_days=4,
            allowed_working_days=3,
        ),
    )
    quality = replace(member.QUALITY, alerts=alerts)
    context = ExportContext(member.CATALOGUE, Seller("Hälsinglands IT"), quality=quality)
    pages = {f.name: f.body.decode() for f in FORMATS["report"](member.run(), member.LINES, context)}
    seen = measure(tmp_path, "member.html", pages["2026-10-abc.2183.html"])
    # What a reader sees, separators and all: 624 159,13 kr + 156 039,79 kr VAT.
    assert seen["excl"] == "624\u00a0159,13\u00a0kr"
    assert seen["total"] == "780\u00a0198,92\u00a0kr"
    assert seen["over"] == [] and int(str(seen["widest"])) <= A4_PX and int(str(seen["scroll"])) <= 1400
    overview = measure(tmp_path, "overview.html", pages["2026-10-abc.html"])
    assert overview["total"] == "780\u00a0198,92\u00a0kr"
    assert overview["over"] == [] and int(str(overview["widest"])) <= A4_PX


def test_budget_and_sla_reports_fit_a4(tmp_path: Path) -> None:
    months = {f"2026-{m:02d}": Decimal("123456.78") for m in range(1, 13)}
    rows = [
        BudgetRow(
            code,
            service,
            Decimal("1500000.00"),
            months,
            Decimal("1481481.36"),
            Decimal("1481481.36"),
            Decimal("-18518.64"),
        )
        for code in ("2121", "2132", "2161", "2182", "2183", "2184")
        for service in ("pc-standard", "ticket-incident", "storage-file", "m365-e3")
    ]
    budget = measure(tmp_path, "budget.html", budget_page(Period(2026, 12), 2026, rows))
    assert budget["over"] == [] and int(str(budget["widest"])) <= A4_PX
    levels = ServiceLevels(resolution_hours={"P1": 4, "P2": 8, "P3": 24})
    sla = measure(
        tmp_path,
        "sla.html",
        sla_page(Period(2026, 10), CATALOGUE, levels, sla_rows(TICKETS, levels, STOCKHOLM)),
    )
    assert sla["over"] == [] and int(str(sla["widest"])) <= A4_PX


def test_pdf_is_printed_on_a4(tmp_path: Path) -> None:
    context = ExportContext(member.CATALOGUE, Seller("Hälsinglands IT"), quality=member.QUALITY)
    pages = FORMATS["report"](member.run(), member.LINES, context)
    pdfs = print_pdfs(pages, browser(), member.run().created_at)
    assert [p.name for p in pdfs] == ["2026-10-abc.pdf", "2026-10-abc.2183.pdf"]
    assert b"/URI (2026-10-abc.2183.specification.xlsx)" in pdfs[1].body
    for p in pdfs:
        assert p.body.startswith(b"%PDF-") and p.content_type == "application/pdf"
        # A4 is 595 × 842 points (rounded); the page's @page rule asks for it.
        sizes = re.findall(rb"/MediaBox \[0 0 ([0-9.]+) ([0-9.]+)\]", p.body)
        assert sizes and {(round(float(w)), round(float(h))) for w, h in sizes} == {(595, 842)}
        # Links stay relative to the exported files, and the cross-reference table fits the bytes.
        assert b"file://" not in p.body
        start = int(re.findall(rb"startxref\n(\d+)\n%%EOF", p.body)[-1])
        table = p.body[start:].split(b"\n")
        assert table[0] == b"xref"
        for number in range(1, int(table[1].split()[1])):
            assert p.body[int(table[2 + number][:10]) :].startswith(b"%d 0 obj" % number)
        # Dated by the run, not the clock: printing again gives the same bytes.
        assert b"/CreationDate (D:20261103070000+00'00')" in p.body
    assert print_pdfs(pages, browser(), member.run().created_at) == pdfs
    assert print_pdfs([ExportFile("x.csv", b"", "text/csv")], browser()) == []
