"""Peppol BIS Billing 3.0 invoices and credit notes: valid against the official UBL 2.1 Invoice
schema, the BIS business rules that can be checked offline, and amounts worked out by hand to the
öre; negative lines, credit notes and drafts. (The official Schematron rules decide in
tests/integration/test_peppol_official_rules.py.)"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from billing_jobs.formats import FORMATS, ExportContext, ExportRefused, Seller
from billing_jobs.formats.peppol import PartiesError
from billing_jobs.model import Line, Run
from chargeback.catalogue import load_catalogue
from tests.einvoice_rules import official_rules_dir

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = load_catalogue(ROOT / "tests" / "fixtures" / "catalogue.yaml")
PARTIES = ROOT / "demo" / "data" / "parties.yaml"


@cache
def ubl_invoice_schema() -> etree.XMLSchema:
    """The official UBL 2.1 Invoice schema, from the rules folder (CHARGEBACK_EINVOICE_RULES_DIR)."""
    return etree.XMLSchema(
        etree.parse(str(official_rules_dir() / "ubl-2.1" / "maindoc" / "UBL-Invoice-2.1.xsd"))
    )


NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
D = Decimal


def line(m: str, cc: str, service: str, qty: str, amount: str, rate: str, note: str | None = None) -> Line:
    vat = (D(amount) * D(rate)).quantize(D("0.01"))
    unit = {"storage-file": "GiB", "soc-shared": "mån"}.get(service, "st")
    return Line(m, cc, service, D(qty), unit, None, D(amount), D(rate), vat, "SEK", "2026", note)


LINES = [
    line("2183", "BUF", "pc-standard", "31", "9610.00", "0.25"),
    line("2183", "SOC", "storage-file", "150.5", "900.00", "0.25"),  # 2 packages: 900/150.5 a GiB
    line("2183", "UNALLOCATED", "soc-shared", "1", "8333.33", "0"),
    line("2184", "KS", "pc-standard", "2", "620.00", "0.25"),
    line("2184", "KS", "ticket-incident", "1", "95.00", "0.25", note="2026-09"),
]
RUN = Run(
    "2026-10-abc", "2026-10", (), "final", "2026", "SEK", "c" * 64, "u" * 64,
    datetime(2026, 11, 2, 9, tzinfo=UTC), datetime(2026, 11, 3, 14, tzinfo=UTC), 2,
)  # fmt: skip


def export(
    parties: Path | None = PARTIES,
    lines: list[Line] = LINES,
    run: Run = RUN,
    *,
    draft: bool = False,
    corrected: dict[tuple[str, str], str] | None = None,
) -> dict[str, bytes]:
    context = ExportContext(
        CATALOGUE,
        Seller("Hälsinglands IT"),
        parties_file=parties,
        draft=draft,
        corrected_invoices=corrected or {},
    )
    return {f.name: f.body for f in FORMATS["peppol"](run, lines, context)}


def dec(element: etree._Element, path: str) -> Decimal:
    return Decimal(element.findtext(path, namespaces=NS))


def bis_problems(doc: etree._Element) -> list[str]:
    """The BIS 3.0 / EN 16931 rules on totals, VAT and lines (the arithmetic of the official
    Schematron, with its tolerances), checked without the rule engine."""
    problems = []
    lines = doc.findall("cac:InvoiceLine", NS)
    totals = doc.find("cac:LegalMonetaryTotal", NS)
    line_sum = sum((dec(x, "cbc:LineExtensionAmount") for x in lines), D(0))
    if dec(totals, "cbc:LineExtensionAmount") != line_sum:
        problems.append("BR-CO-10: sum of line net amounts")
    if dec(totals, "cbc:TaxExclusiveAmount") != dec(totals, "cbc:LineExtensionAmount"):
        problems.append("BR-CO-13: total without VAT")
    tax_total = doc.find("cac:TaxTotal", NS)
    subtotals = tax_total.findall("cac:TaxSubtotal", NS)
    if dec(tax_total, "cbc:TaxAmount") != sum((dec(s, "cbc:TaxAmount") for s in subtotals), D(0)):
        problems.append("BR-CO-14: VAT total is the sum of the categories")
    if dec(totals, "cbc:TaxInclusiveAmount") != dec(totals, "cbc:TaxExclusiveAmount") + dec(
        tax_total, "cbc:TaxAmount"
    ):
        problems.append("BR-CO-15: total with VAT")
    if dec(totals, "cbc:PayableAmount") != dec(totals, "cbc:TaxInclusiveAmount"):
        problems.append("BR-CO-16: amount due")
    per_category: dict[tuple[str, Decimal], Decimal] = defaultdict(Decimal)
    for x in lines:
        category = x.find("cac:Item/cac:ClassifiedTaxCategory", NS)
        per_category[(category.findtext("cbc:ID", namespaces=NS), dec(category, "cbc:Percent"))] += dec(
            x, "cbc:LineExtensionAmount"
        )
        quantity, price = dec(x, "cbc:InvoicedQuantity"), dec(x, "cac:Price/cbc:PriceAmount")
        if abs(quantity * price - dec(x, "cbc:LineExtensionAmount")) > D("0.02"):
            problems.append(f"PEPPOL-EN16931-R120: line {x.findtext('cbc:ID', namespaces=NS)}")
        if price < 0:
            problems.append("BR-27: negative item price")
    for s in subtotals:
        category = s.find("cac:TaxCategory", NS)
        key = (category.findtext("cbc:ID", namespaces=NS), dec(category, "cbc:Percent"))
        if dec(s, "cbc:TaxableAmount") != per_category.pop(key, None):
            problems.append(f"BR-S-08/BR-Z-08: taxable amount of {key}")
        expected = (dec(s, "cbc:TaxableAmount") * key[1] / 100).quantize(D("0.01"))
        if abs(dec(s, "cbc:TaxAmount") - expected) > 1:
            problems.append(f"BR-CO-17: VAT of {key}")
        if key[0] == "Z" and key[1] != 0:
            problems.append("BR-Z-05: zero-rated with a rate")
    if per_category:
        problems.append(f"BR-CO-18: categories without a subtotal {sorted(per_category)}")
    for path, rule in (
        ("cbc:CustomizationID", "BR-01"),
        ("cbc:ProfileID", "PEPPOL-EN16931-R001"),
        ("cbc:BuyerReference", "PEPPOL-EN16931-R003"),
        ("cac:AccountingSupplierParty/cac:Party/cbc:EndpointID", "PEPPOL-EN16931-R020"),
        ("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", "PEPPOL-EN16931-R010"),
        (
            "cac:AccountingSupplierParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode",
            "BR-09",
        ),
    ):
        if not doc.findtext(path, namespaces=NS):
            problems.append(f"{rule}: {path}")
    return problems


def test_one_valid_invoice_per_municipality_with_hand_worked_totals() -> None:
    files = export()
    assert sorted(files) == ["2026-10-abc.2183.xml", "2026-10-abc.2184.xml"]
    expected = {  # net, VAT, payable
        "2183": (D("18843.33"), D("2627.50"), D("21470.83")),  # 9610.00+900.00+8333.33; 2402.50+225.00+0
        "2184": (D("715.00"), D("178.75"), D("893.75")),
    }
    for code, (net, vat, payable) in expected.items():
        doc = etree.fromstring(files[f"2026-10-abc.{code}.xml"])
        ubl_invoice_schema().assertValid(doc)
        assert bis_problems(doc) == []
        totals = doc.find("cac:LegalMonetaryTotal", NS)
        assert (dec(totals, "cbc:LineExtensionAmount"), dec(doc, "cac:TaxTotal/cbc:TaxAmount")) == (net, vat)
        assert dec(totals, "cbc:PayableAmount") == payable
        assert doc.findtext("cbc:ID", namespaces=NS) == f"2026-10-abc-{code}"
        assert doc.findtext("cbc:IssueDate", namespaces=NS) == "2026-11-03"  # finalised
        assert doc.findtext("cbc:DueDate", namespaces=NS) == "2026-12-03"
    bollnas = etree.fromstring(files["2026-10-abc.2183.xml"])
    assert bollnas.findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=NS) == "202610672738913"  # OCR
    assert bollnas.findtext("cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID", namespaces=NS) == "1234566"
    assert bollnas.findtext("cbc:BuyerReference", namespaces=NS) == "Ekonomiavdelningen"
    assert (
        bollnas.findtext("cbc:Note", namespaces=NS) == "Billing run 2026-10-abc for 2026-10, price list 2026"
    )
    supplier = bollnas.find("cac:AccountingSupplierParty/cac:Party", NS)
    assert [
        supplier.findtext(path, namespaces=NS)
        for path in (
            "cbc:EndpointID",
            "cac:PartyTaxScheme/cbc:CompanyID",
            "cac:PartyLegalEntity/cbc:CompanyID",
        )
    ] == ["2220001230", "SE222000123001", "2220001230"]


def test_lines_carry_cost_centre_exact_price_and_corrections() -> None:
    bollnas = etree.fromstring(export()["2026-10-abc.2183.xml"])
    storage = bollnas.findall("cac:InvoiceLine", NS)[1]
    assert storage.findtext("cbc:AccountingCost", namespaces=NS) == "SOC"
    assert storage.find("cbc:InvoicedQuantity", NS).attrib["unitCode"] == "E34"
    price = dec(storage, "cac:Price/cbc:PriceAmount")
    assert price == D("5.98007") and abs(price * D("150.5") - D("900.00")) < D("0.005")
    subtotals = bollnas.findall("cac:TaxTotal/cac:TaxSubtotal", NS)
    assert [
        (s.findtext("cac:TaxCategory/cbc:ID", namespaces=NS), dec(s, "cbc:TaxableAmount")) for s in subtotals
    ] == [
        ("Z", D("8333.33")),
        ("S", D("10510.00")),
    ]
    hudiksvall = etree.fromstring(export()["2026-10-abc.2184.xml"])
    notes = [x.findtext("cbc:Note", namespaces=NS) for x in hudiksvall.findall("cac:InvoiceLine", NS)]
    assert notes == [None, "Correction of 2026-09"]
    assert (
        hudiksvall.findtext("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", namespaces=NS)
        == "2120002262"
    )


def test_re_export_is_byte_identical_and_parties_are_required(tmp_path: Path) -> None:
    assert export() == export()
    with pytest.raises(PartiesError, match="needs a parties file"):
        export(None)
    partial = tmp_path / "parties.yaml"
    partial.write_text(PARTIES.read_text().split('  "2183"')[0])
    with pytest.raises(PartiesError, match="municipality 2183 has no buyer in the parties file"):
        export(partial)
    broken = tmp_path / "broken.yaml"
    broken.write_text("seller: {name: X}\n")
    with pytest.raises(PartiesError, match=r"broken.yaml:1: seller.org_number: Field required"):
        export(broken)


def test_the_invoice_of_a_month_with_corrections_spans_the_corrected_month() -> None:
    hudiksvall = etree.fromstring(
        export(corrected={("2026-09", "2184"): "2026-09-def-2184"})["2026-10-abc.2184.xml"]
    )
    assert hudiksvall.findtext("cbc:Note", namespaces=NS) == (
        "Billing run 2026-10-abc for 2026-10, price list 2026; corrects 2026-09"
    )
    period = [
        hudiksvall.findtext(f"cac:InvoicePeriod/cbc:{t}", namespaces=NS) for t in ("StartDate", "EndDate")
    ]
    assert period == ["2026-09-01", "2026-10-31"]
    correction = hudiksvall.findall("cac:InvoiceLine", NS)[1]
    line_period = [
        correction.findtext(f"cac:InvoicePeriod/cbc:{t}", namespaces=NS) for t in ("StartDate", "EndDate")
    ]
    assert line_period == ["2026-09-01", "2026-09-30"]
    assert hudiksvall.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", namespaces=NS) == (
        "2026-09-def-2184"
    )


NOVEMBER = Run(
    "2026-11-def", "2026-11", (), "final", "2026", "SEK", "c" * 64, "u" * 64,
    datetime(2026, 12, 2, 9, tzinfo=UTC), datetime(2026, 12, 3, 14, tzinfo=UTC), 2,
)  # fmt: skip
CORRECTIONS = [
    line("2183", "BUF", "pc-standard", "31", "9610.00", "0.25"),
    line("2183", "BUF", "m365-e3", "-1", "-260.00", "0.25", note="2026-10"),  # fewer licences
    line("2183", "SOC", "m365-e3", "0", "-60.00", "0.25", note="2026-10"),  # a lower tier price
    line("2183", "KS", "m365-e3", "1", "-20.00", "0.25", note="2026-10"),  # more, each cheaper
    line("2184", "KS", "pc-standard", "-3", "-930.00", "0.25", note="2026-10"),
    line("2184", "SOC", "ticket-incident", "1", "95.00", "0.25", note="2026-10"),
]
INVOICED = {("2026-10", "2183"): "2026-10-abc-2183", ("2026-10", "2184"): "2026-10-abc-2184"}


def line_values(doc: etree._Element, tag: str) -> list[tuple[str | None, ...]]:
    quantity_tag = "cbc:InvoicedQuantity" if tag == "cac:InvoiceLine" else "cbc:CreditedQuantity"
    return [
        (
            x.findtext(quantity_tag, namespaces=NS),
            x.find(quantity_tag, NS).attrib["unitCode"],
            x.findtext("cac:Price/cbc:PriceAmount", namespaces=NS),
            x.findtext("cbc:LineExtensionAmount", namespaces=NS),
            x.findtext("cbc:Note", namespaces=NS),
        )
        for x in doc.findall(tag, NS)
    ]


def test_negative_lines_are_negative_quantities_at_positive_prices() -> None:
    bollnas = etree.fromstring(
        export(lines=CORRECTIONS, run=NOVEMBER, corrected=INVOICED)["2026-11-def.2183.xml"]
    )
    assert etree.QName(bollnas).localname == "Invoice"
    ubl_invoice_schema().assertValid(bollnas)
    assert bis_problems(bollnas) == []
    assert line_values(bollnas, "cac:InvoiceLine") == [  # in the line order: cost centre, service
        ("-1", "C62", "260.00", "-260.00", "Correction of 2026-10"),
        ("31", "C62", "310.00", "9610.00", None),
        # a quantity of the other sign, or none: one unit, -1, at the amount, the figures in the note
        ("-1", "C62", "20.00", "-20.00", "Correction of 2026-10 (quantity 1 st, amount -20.00)"),
        ("-1", "C62", "60.00", "-60.00", "Correction of 2026-10 (quantity 0 st, amount -60.00)"),
    ]
    totals = bollnas.find("cac:LegalMonetaryTotal", NS)
    # 9610.00 - 260.00 - 60.00 - 20.00 = 9270.00; VAT 2402.50 - 65.00 - 15.00 - 5.00 = 2317.50
    assert (dec(totals, "cbc:LineExtensionAmount"), dec(totals, "cbc:PayableAmount")) == (
        D("9270.00"),
        D("11587.50"),
    )


def test_a_member_whose_lines_net_negative_gets_a_credit_note() -> None:
    files = export(lines=CORRECTIONS, run=NOVEMBER, corrected=INVOICED)
    assert sorted(files) == ["2026-11-def.2183.xml", "2026-11-def.2184.xml"]
    note = etree.fromstring(files["2026-11-def.2184.xml"])
    assert note.tag == "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote"
    assert [note.findtext(f"cbc:{t}", namespaces=NS) for t in ("CustomizationID", "ID", "IssueDate")] == [
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0",
        "2026-11-def-2184",
        "2026-12-03",
    ]
    assert note.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "381"
    assert (
        note.findtext("cbc:Note", namespaces=NS)
        == "Billing run 2026-11-def for 2026-11, price list 2026; corrects 2026-10"
    )
    assert note.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", namespaces=NS) == (
        "2026-10-abc-2184"
    )
    period = [note.findtext(f"cac:InvoicePeriod/cbc:{t}", namespaces=NS) for t in ("StartDate", "EndDate")]
    assert period == ["2026-10-01", "2026-10-31"]
    assert note.find("cac:PaymentMeans", NS) is None and note.find("cbc:DueDate", NS) is None
    # Credited: 930.00 - 95.00 = 835.00, VAT 232.50 - 23.75 = 208.75; the lines with their signs turned.
    assert line_values(note, "cac:CreditNoteLine") == [
        ("3", "C62", "310.00", "930.00", "Correction of 2026-10"),
        ("-1", "C62", "95.00", "-95.00", "Correction of 2026-10"),
    ]
    totals = note.find("cac:LegalMonetaryTotal", NS)
    assert [
        totals.findtext(f"cbc:{t}", namespaces=NS)
        for t in ("LineExtensionAmount", "TaxInclusiveAmount", "PayableAmount")
    ] == [
        "835.00",
        "1043.75",
        "1043.75",
    ]
    assert note.findtext("cac:TaxTotal/cbc:TaxAmount", namespaces=NS) == "208.75"


def test_a_draft_is_refused_unless_asked_for_and_then_says_so() -> None:
    draft = replace(RUN, status="draft")
    with pytest.raises(ExportRefused) as refused:
        export(run=draft)
    assert str(refused.value) == (
        "run 2026-10-abc is a draft: finalise it before exporting peppol, or add --draft for a preview "
        "marked as a draft in every file"
    )
    files = export(run=draft, draft=True)
    assert sorted(files) == ["2026-10-abc.2183.draft.xml", "2026-10-abc.2184.draft.xml"]
    assert [etree.fromstring(body).findtext("cbc:Note", namespaces=NS) for body in files.values()] == [
        "UTKAST / DRAFT — not an invoice; Billing run 2026-10-abc for 2026-10, price list 2026",
        "UTKAST / DRAFT — not an invoice; Billing run 2026-10-abc for 2026-10, price list 2026; "
        "corrects 2026-09",
    ]
    void = replace(RUN, status="void")
    with pytest.raises(ExportRefused, match=r"^run 2026-10-abc is void: it has no peppol export$"):
        export(run=void, draft=True)
    # A final run exported with --draft is the final invoice, unmarked.
    assert export(draft=True) == export()
