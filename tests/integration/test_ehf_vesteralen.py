"""EHF: the Vesterålen invoices (a Norwegian seller: organisation number as scheme 0192, NO…MVA,
"Foretaksregisteret", KID with a mod 10 check digit, an IBAN whose account carries its mod 11
digit) pass the official Peppol BIS Billing 3.0 rules, the Norwegian NO-R-* rules among them,
with no fatal finding and no warning, for the demo month and for a month that corrects it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree as ET

from billing_jobs.formats.peppol import render_document
from billing_jobs.model import Line, Run, Usage
from billing_jobs.parties import load_parties
from billing_jobs.pricing import price_period
from chargeback.catalogue import load_catalogue
from chargeback.period import Period
from tests.einvoice_rules import assert_official_rules_pass

pytestmark = pytest.mark.einvoice

DATA = Path(__file__).resolve().parents[2] / "demo" / "data" / "vesteralen"
CATALOGUE = load_catalogue(DATA / "catalogue.yaml")
PARTIES = load_parties(DATA / "parties.yaml")
NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
D = Decimal
OCT, NOV = Period(2026, 10), Period(2026, 11)
AT = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)
USAGE = [
    Usage("1870", "OPPV", "pc-standard", D("412.516129")),
    Usage("1870", "HELSE", "m365-e3", D("640")),
    Usage("1870", "ADM", "ticket-incident", D("180")),
    Usage("1870", "TEKN", "storage-file", D("2310.5")),
    Usage("1867", "OPPV", "pupil-device", D("252")),
    Usage("1871", "HELSE", "pc-standard", D("190")),
]


def run_of(period: Period) -> Run:
    return Run(f"{period}-abcdef123456", str(period), (), "final", "2026", "NOK", "", "", AT, AT, 2)


def invoices(run: Run, lines: list[Line]) -> dict[str, bytes]:
    codes = sorted({x.municipality for x in lines})
    return {
        c: render_document(run, c, [x for x in lines if x.municipality == c], CATALOGUE, PARTIES)
        for c in codes
    }


def test_the_demo_months_invoices_pass_the_official_rules() -> None:
    lines = price_period(CATALOGUE, OCT, USAGE)
    documents = invoices(run_of(OCT), lines)
    assert sorted(documents) == ["1866", "1867", "1868", "1870", "1871"]
    for body in documents.values():
        validation = assert_official_rules_pass(body)
        assert (len(validation.fatal), len(validation.warnings)) == (0, 0)
    sortland = ET.fromstring(documents["1870"])
    supplier = "cac:AccountingSupplierParty/cac:Party/"
    assert sortland.find(supplier + "cbc:EndpointID", NS).get("schemeID") == "0192"  # type: ignore[union-attr]
    assert [e.text for e in sortland.findall(supplier + "cac:PartyTaxScheme/cbc:CompanyID", NS)] == [
        "NO921500017MVA",
        "Foretaksregisteret",
    ]
    assert sortland.findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=NS) == "20261018707"
    assert sortland.findtext("cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID", namespaces=NS) == (
        "NO5245301234566"
    )
    assert sortland.findtext("cbc:DocumentCurrencyCode", namespaces=NS) == "NOK"


def test_a_correction_months_invoices_pass_the_official_rules() -> None:
    """November corrects October: Sortland's October storage less (a negative line, a negative
    quantity at a positive price) and Andøy's October PCs more, beside November's own lines."""
    own = price_period(CATALOGUE, NOV, USAGE)
    corrections = [
        Line(
            "1870",
            "TEKN",
            "storage-file",
            D("-300"),
            "GiB",
            D("390.00"),
            D("-1170.00"),
            D("0.25"),
            D("-292.50"),
            "NOK",
            "2026",
            "2026-10",
        ),
        Line(
            "1871",
            "HELSE",
            "pc-standard",
            D("12"),
            "stk",
            D("265.00"),
            D("3180.00"),
            D("0.25"),
            D("795.00"),
            "NOK",
            "2026",
            "2026-10",
        ),
    ]
    lines = [*own, *corrections]
    documents = invoices(run_of(NOV), lines)
    for body in documents.values():
        assert_official_rules_pass(body)
    sortland = ET.fromstring(documents["1870"])
    notes = [line.findtext("cbc:Note", namespaces=NS) for line in sortland.findall("cac:InvoiceLine", NS)]
    assert "Correction of 2026-10" in notes
    negative = [
        line
        for line in sortland.findall("cac:InvoiceLine", NS)
        if line.findtext("cbc:LineExtensionAmount", namespaces=NS) == "-1170.00"
    ]
    assert [
        (
            x.findtext("cbc:InvoicedQuantity", namespaces=NS),
            x.findtext("cac:Price/cbc:PriceAmount", namespaces=NS),
        )
        for x in negative
    ] == [("-300", "3.90")]
    assert sortland.findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=NS) == "20261118705"


def test_a_kid_by_mod_11_passes_too() -> None:
    parties = PARTIES.model_copy(update={"payment": PARTIES.payment.model_copy(update={"kid": "mod11"})})
    lines = [x for x in price_period(CATALOGUE, OCT, USAGE) if x.municipality == "1870"]
    body = render_document(run_of(OCT), "1870", lines, CATALOGUE, parties)
    assert_official_rules_pass(body)
    assert ET.fromstring(body).findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=NS) == "20261018706"


def test_a_net_credit_in_a_correction_month_is_a_credit_note_that_passes() -> None:
    """Andøy's November: its October PCs billed 12 too many, nothing else: a credit note (381)
    referencing October's invoice."""
    credit = [
        Line(
            "1871",
            "HELSE",
            "pc-standard",
            D("-12"),
            "stk",
            D("265.00"),
            D("-3180.00"),
            D("0.25"),
            D("-795.00"),
            "NOK",
            "2026",
            "2026-10",
        )
    ]
    body = render_document(
        run_of(NOV),
        "1871",
        credit,
        CATALOGUE,
        PARTIES,
        corrected_invoices={("2026-10", "1871"): "2026-10-X-1871"},
    )
    assert_official_rules_pass(body)
    root = ET.fromstring(body)
    assert ET.QName(root.tag).localname == "CreditNote"
    assert root.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "381"
    assert root.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", namespaces=NS) == (
        "2026-10-X-1871"
    )
