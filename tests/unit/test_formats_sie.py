"""SIE 4I export: exact file text, the seller identity of the parties file, vouchers naming the
invoice or credit note they post, read back by an independent parser: every voucher balances and
equals its Peppol document to the öre; code page 437 with a defined transliteration, never a
silent '?'; drafts marked."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from billing_jobs.formats import FORMATS, ExportContext, ExportRefused, with_manifest
from billing_jobs.formats.sie import TRANSLITERATION, SieError, encode, render_sie
from billing_jobs.model import Line, Run
from billing_jobs.parties import Seller
from chargeback.catalogue import load_catalogue

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = load_catalogue(ROOT / "tests" / "fixtures" / "catalogue.yaml")
PARTIES = ROOT / "demo" / "data" / "parties.yaml"
SELLER = Seller("Hälsinglands IT-förbund", "2220001230")
D = Decimal
AT = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)
RUN = Run("2026-10-abc", "2026-10", (), "final", "2026", "SEK", "", "", AT, AT, 2)


def line(m: str, cc: str, service: str, amount: str, vat: str, corrects: str | None = None) -> Line:
    return Line(m, cc, service, D(1), "st", D(amount), D(amount), D("0.25"), D(vat), "SEK", "2026", corrects)


LINES = [
    line("2183", "BUF", "pc-standard", "470.00", "117.50"),
    line("2183", "SOC", "pc-standard", "310.00", "77.50"),
    line("2183", "UNALLOCATED", "base-offering", "125000.00", "31250.00"),
    line("2184", "KS", "storage-file", "450.00", "112.50"),
]


def test_the_file_is_exactly_this() -> None:
    body = render_sie(RUN, LINES, CATALOGUE, SELLER)
    text = body.decode("cp437")
    assert text.split("\r\n")[2:] == [
        "#FORMAT PC8",
        "#GEN 20261103",
        "#SIETYP 4",
        '#FNAMN "Hälsinglands IT-förbund"',
        "#ORGNR 222000-1230",
        "#KPTYP EUBAS97",
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
        '#VER "A" 1 20261031 "Faktura 2026-10-abc-2183 Bollnäs 2026-10"',
        "{",
        "#TRANS 1510 {} 157225.00",  # 125780.00 + VAT 31445.00
        '#TRANS 3040 {1 "UNALLOCATED"} -125000.00',
        '#TRANS 3041 {1 "BUF"} -470.00',
        '#TRANS 3041 {1 "SOC"} -310.00',
        "#TRANS 2611 {} -31445.00",
        "}",
        '#VER "A" 2 20261031 "Faktura 2026-10-abc-2184 Hudiksvall 2026-10"',
        "{",
        "#TRANS 1510 {} 562.50",
        '#TRANS 3042 {1 "KS"} -450.00',
        "#TRANS 2611 {} -112.50",
        "}",
        "",
    ]
    assert text.startswith('#FLAGGA 0\r\n#PROGRAM "chargeback" "')
    assert "ä".encode("cp437") in body and b"\r\n" in body and b"\n\n" not in body


# An independent reader of the SIE 4 lines this project writes: labels, quoted strings with
# backslash escapes, object lists in braces, vouchers in { }.
TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\{[^}]*\})|(\S+)')


def tokens(row: str) -> list[str]:
    out = []
    for match in TOKEN.finditer(row):
        if match.group(1) is not None:
            out.append(re.sub(r"\\(.)", r"\1", match.group(1)))
        else:
            out.append(match.group(2) or match.group(3))
    return out


def read_sie(
    body: bytes,
) -> tuple[dict[str, list[list[str]]], list[tuple[str, list[tuple[str, str, Decimal]]]]]:
    """(labels outside vouchers -> their fields, [(voucher text, [(account, objects, amount)])])."""
    assert not body.replace(b"\r\n", b"").count(b"\n") and body.endswith(b"\r\n")
    labels: dict[str, list[list[str]]] = {}
    vouchers: list[tuple[str, list[tuple[str, str, Decimal]]]] = []
    inside = False
    for row in body.decode("cp437").split("\r\n")[:-1]:
        fields = tokens(row)
        if fields == ["{"]:
            inside = True
        elif fields == ["}"]:
            inside = False
        elif inside:
            assert fields[0] == "#TRANS", row
            vouchers[-1][1].append((fields[1], fields[2], Decimal(fields[3])))
        elif fields[0] == "#VER":
            vouchers.append((fields[4], []))
        else:
            labels.setdefault(fields[0], []).append(fields[1:])
    return labels, vouchers


CORRECTED = [
    line("2183", "BUF", "pc-standard", "310.00", "77.50"),
    line("2183", "BUF", "m365-e3", "-260.00", "-65.00", "2026-09"),
    line("2184", "KS", "pc-standard", "-930.00", "-232.50", "2026-09"),
    line("2184", "SOC", "ticket-incident", "95.00", "23.75", "2026-09"),
]


def test_read_back_every_voucher_balances_and_equals_its_peppol_document() -> None:
    ctx = ExportContext(CATALOGUE, Seller("ignored"), parties_file=PARTIES)
    (sie,) = FORMATS["sie"](RUN, CORRECTED, ctx)
    assert sie.name == "2026-10-abc.si"  # a vouchers-only (4I) file
    labels, vouchers = read_sie(sie.body)
    # The seller identity is the parties file's, the same as the Peppol documents'.
    assert (labels["#FNAMN"], labels["#ORGNR"], labels["#KPTYP"]) == (
        [["Hälsinglands IT-förbund"]],
        [["222000-1230"]],
        [["EUBAS97"]],
    )
    documents = {}
    for f in FORMATS["peppol"](RUN, CORRECTED, ctx):
        doc = etree.fromstring(f.body)
        ns = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
        kind = "Kreditnota" if etree.QName(doc).localname == "CreditNote" else "Faktura"
        payable = Decimal(doc.findtext("{*}LegalMonetaryTotal/cbc:PayableAmount", namespaces=ns))
        documents[(kind, doc.findtext("cbc:ID", namespaces=ns))] = payable if kind == "Faktura" else -payable
    assert documents == {
        ("Faktura", "2026-10-abc-2183"): D("62.50"),  # 310.00 - 260.00 + VAT 77.50 - 65.00
        ("Kreditnota", "2026-10-abc-2184"): D("-1043.75"),  # -930.00 + 95.00 + VAT -232.50 + 23.75
    }
    assert [text for text, _ in vouchers] == [
        "Faktura 2026-10-abc-2183 Bollnäs 2026-10",
        "Kreditnota 2026-10-abc-2184 Hudiksvall 2026-10",
    ]
    for text, transactions in vouchers:
        assert sum(amount for _, _, amount in transactions) == 0, text
        kind, document = text.split()[:2]
        receivable = [amount for account, _, amount in transactions if account == "1510"]
        assert receivable == [documents[(kind, document)]]


def test_a_character_code_page_437_lacks_is_transliterated_or_refused() -> None:
    assert encode("Østre Toten – “IT”") == 'Östre Toten - "IT"'.encode("cp437")
    assert TRANSLITERATION["ø"] == "ö" and TRANSLITERATION["€"] == "EUR"
    body = render_sie(RUN, LINES, CATALOGUE, Seller("Sør-Hålogaland IT", "2220001230"))
    assert b'#FNAMN "S\x94r-H\x86logaland IT"' in body and b"?" not in body
    with pytest.raises(SieError) as refused:
        render_sie(RUN, LINES, CATALOGUE, Seller("Łódź IT"))
    assert str(refused.value) == (
        "the SIE file cannot hold 'ź' (U+017A) on its line 6 (#FNAMN \"Łódź IT\"): code page 437 has no "
        "such character and it has no transliteration; write the name without it"
    )


def test_a_draft_is_refused_unless_asked_for_and_then_marked() -> None:
    draft = replace(RUN, status="draft")
    with pytest.raises(ExportRefused, match=r"^run 2026-10-abc is a draft: finalise it before exporting sie"):
        FORMATS["sie"](draft, LINES, ExportContext(CATALOGUE, SELLER, parties_file=PARTIES))
    files = with_manifest(
        draft,
        FORMATS["sie"](draft, LINES, ExportContext(CATALOGUE, SELLER, parties_file=PARTIES, draft=True)),
    )
    assert [f.name for f in files] == ["2026-10-abc.draft.si", "2026-10-abc.draft.si.manifest.json"]
    _, vouchers = read_sie(files[0].body)
    assert [text for text, _ in vouchers] == [
        "UTKAST/DRAFT Faktura 2026-10-abc-2183 Bollnäs 2026-10",
        "UTKAST/DRAFT Faktura 2026-10-abc-2184 Hudiksvall 2026-10",
    ]


def test_sie_needs_the_parties_file_for_its_seller() -> None:
    from billing_jobs.parties import PartiesError

    with pytest.raises(
        PartiesError, match=r"^the sie format needs a parties file: --parties or CHARGEBACK_PARTIES_FILE$"
    ):
        FORMATS["sie"](RUN, LINES, ExportContext(CATALOGUE, SELLER))


def test_the_same_run_gives_the_same_bytes() -> None:
    assert render_sie(RUN, LINES, CATALOGUE, SELLER) == render_sie(RUN, list(LINES), CATALOGUE, SELLER)


def test_a_vat_rate_sie_has_no_account_for_is_one_sentence() -> None:
    import pytest

    from billing_jobs.formats.sie import SieError

    odd = Line(
        "2183", "BUF", "pc-standard", D(1), "st", D("310"), D("310.00"), D("0.15"), D("46.50"), "SEK", "2026"
    )
    with pytest.raises(SieError) as caught:
        render_sie(RUN, [odd], CATALOGUE, SELLER)
    assert str(caught.value) == (
        "SIE cannot post VAT at 15 % (service pc-standard): its output VAT accounts are for 25, 12 and 6 %; "
        "correct the service's vat_rate in the catalogue or export another format"
    )
