"""The run report in a real headless browser (Chromium): it renders, its chart draws bars in
proportion to the amounts, and the text a reader sees holds the totals."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from billing_jobs.formats import FORMATS, ExportContext, Seller
from tests.unit.test_formats_html import CATALOGUE, OCTOBER, SEPTEMBER, run

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
    (page,) = FORMATS["report"](run("2026-10", "draft"), OCTOBER, context)
    html = tmp_path / page.name
    html.write_bytes(page.body)

    dom = headless("--dump-dom", html.as_uri())
    assert "13262.50" in dom and "DRAFT: this run is not final" in dom and "corrects 2026-09" in dom

    shot = tmp_path / "report.png"
    headless(f"--screenshot={shot}", "--window-size=1200,1400", html.as_uri())
    width, height, pixels = read_png(shot)
    assert (width, height) == (1200, 1400)
    # Not a blank page: plenty of text and rules.
    ink = sum(1 for row in pixels for px in row if sum(px) < 600)
    assert ink > 5_000, ink
    # The chart's two bars: rows of bar-coloured pixels, 390 and 14 px wide (10230.00 and 380.00).
    bar_widths = sorted({sum(1 for px in row if px == BAR) for row in pixels} - {0}, reverse=True)
    assert bar_widths[:2] == [390, 14], bar_widths[:5]
