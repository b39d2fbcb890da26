"""SIE 4 export: exact file text, balanced vouchers, code page 437 and CRLF."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from billing_jobs.formats.sie import Seller, render_sie
from billing_jobs.model import Line, Run
from chargeback.catalogue import load_catalogue

CATALOGUE = load_catalogue(Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml")
D = Decimal
AT = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)
RUN = Run("2026-10-abc", "2026-10", (), "final", "2026", "SEK", "", "", AT, AT, 2)


def line(m: str, cc: str, service: str, amount: str, vat: str) -> Line:
    return Line(m, cc, service, D(1), "st", D(amount), D(amount), D("0.25"), D(vat), "SEK", "2026")


LINES = [
    line("2183", "BUF", "pc-standard", "470.00", "117.50"),
    line("2183", "SOC", "pc-standard", "310.00", "77.50"),
    line("2183", "UNALLOCATED", "base-offering", "125000.00", "31250.00"),
    line("2184", "KS", "storage-file", "450.00", "112.50"),
]


def test_the_file_is_exactly_this() -> None:
    body = render_sie(RUN, LINES, CATALOGUE, Seller("Hälsinglands IT", "222000-1234"))
    text = body.decode("cp437")
    assert text.split("\r\n")[2:] == [
        "#FORMAT PC8",
        "#GEN 20261103",
        "#SIETYP 4",
        '#FNAMN "Hälsinglands IT"',
        "#ORGNR 222000-1234",
        "#RAR 0 20260101 20261231",
        '#KONTO 1510 "Kundfordringar"',
        '#KONTO 2611 "Utgående moms 25 %"',
        '#KONTO 3040 "Basutbud"',
        '#KONTO 3041 "Standarddator"',
        '#KONTO 3042 "Fillagring"',
        '#DIM 1 "Kostnadsställe"',
        '#OBJEKT 1 "BUF" "BUF"',
        '#OBJEKT 1 "KS" "KS"',
        '#OBJEKT 1 "SOC" "SOC"',
        '#OBJEKT 1 "UNALLOCATED" "UNALLOCATED"',
        '#VER "A" 1 20261031 "Bollnäs 2026-10"',
        "{",
        "#TRANS 1510 {} 157225.00",  # 125780.00 + VAT 31445.00
        '#TRANS 3040 {1 "UNALLOCATED"} -125000.00',
        '#TRANS 3041 {1 "BUF"} -470.00',
        '#TRANS 3041 {1 "SOC"} -310.00',
        "#TRANS 2611 {} -31445.00",
        "}",
        '#VER "A" 2 20261031 "Hudiksvall 2026-10"',
        "{",
        "#TRANS 1510 {} 562.50",
        '#TRANS 3042 {1 "KS"} -450.00',
        "#TRANS 2611 {} -112.50",
        "}",
        "",
    ]
    assert text.startswith('#FLAGGA 0\r\n#PROGRAM "chargeback" "')
    assert "ä".encode("cp437") in body and b"\r\n" in body and b"\n\n" not in body


def test_every_voucher_balances_to_zero() -> None:
    text = render_sie(RUN, LINES, CATALOGUE, Seller("X")).decode("cp437")
    vouchers = text.split("#VER")[1:]
    for voucher in vouchers:
        amounts = [D(row.rsplit(" ", 1)[1]) for row in voucher.split("\r\n") if row.startswith("#TRANS")]
        assert sum(amounts) == 0


def test_the_same_run_gives_the_same_bytes() -> None:
    assert render_sie(RUN, LINES, CATALOGUE, Seller("X")) == render_sie(
        RUN, list(LINES), CATALOGUE, Seller("X")
    )
