"""The official e-invoice rules decide: the validator (UBL 2.1 XSD + CEN EN 16931 + PEPPOL BIS
3.0.19 Schematron, compiled by our own step and run with SaxonC-HE) is proven on the official
examples of the rules folder, which pass, and on broken copies of them, where the expected rule
fires and nothing else. Then the project's own Peppol export is checked with it.

The rules folder is CHARGEBACK_EINVOICE_RULES_DIR (default ../shared/einvoice-rules beside the
repository); a missing folder fails these tests, it never skips them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree as ET

from billing_jobs.einvoice.validator import EInvoiceError, Validation, Validator
from tests.einvoice_rules import assert_official_rules_pass

pytestmark = pytest.mark.einvoice

NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
EXAMPLES = ["Vat-category-S.xml", "base-example.xml", "vat-category-E.xml", "vat-category-Z.xml"]
CEN, PEPPOL, XSD = "CEN EN 16931", "PEPPOL BIS 3.0.19", "UBL 2.1 XSD"
SUPPLIER = "cac:AccountingSupplierParty/cac:Party"


def examples_dir(rules_dir: Path) -> Path:
    return rules_dir / "peppol-bis-3.0.19" / "examples"


def findings(validation: Validation) -> list[tuple[str, str, str]]:
    return [(f.rule, f.flag, f.source) for f in validation.findings]


def test_the_rules_folder_holds_the_official_examples(einvoice_rules_dir: Path) -> None:
    assert sorted(p.name for p in examples_dir(einvoice_rules_dir).glob("*.xml")) == EXAMPLES


@pytest.mark.parametrize("example", EXAMPLES)
def test_official_example_passes_xsd_and_both_schematrons(
    example: str, einvoice_rules_dir: Path, einvoice_validator: Validator
) -> None:
    validation = einvoice_validator.validate((examples_dir(einvoice_rules_dir) / example).read_bytes())
    assert validation.document_type == "Invoice"
    assert validation.schema == einvoice_rules_dir / "ubl-2.1" / "maindoc" / "UBL-Invoice-2.1.xsd"
    # As found: none of the four official examples draws a fatal finding or a warning.
    assert (len(validation.fatal), len(validation.warnings)) == (0, 0)
    assert validation.findings == ()


def _edit(path: str, text: str) -> Callable[[ET._Element], None]:
    def edit(doc: ET._Element) -> None:
        element = doc.find(path, NS)
        assert element is not None, path
        element.text = text

    return edit


def _remove(path: str) -> Callable[[ET._Element], None]:
    def remove(doc: ET._Element) -> None:
        element = doc.find(path, NS)
        assert element is not None, path
        element.getparent().remove(element)  # type: ignore[union-attr]

    return remove


def _negative_price(doc: ET._Element) -> None:
    """The example's second line (-3 days at 500) as 3 days at -500: the same amount."""
    line = doc.findall("cac:InvoiceLine", NS)[1]
    _edit("cbc:InvoicedQuantity", "3")(line)
    _edit("cac:Price/cbc:PriceAmount", "-500")(line)


def _swedish_seller(org_number: str) -> Callable[[ET._Element], None]:
    """The seller made Swedish: country SE, a Swedish VAT number, the organisation number as
    legal id and as Peppol endpoint (0007)."""

    def edit(doc: ET._Element) -> None:
        _edit(f"{SUPPLIER}/cac:PostalAddress/cac:Country/cbc:IdentificationCode", "SE")(doc)
        _edit(f"{SUPPLIER}/cac:PartyTaxScheme/cbc:CompanyID", "SE556036079301")(doc)
        _edit(f"{SUPPLIER}/cac:PartyLegalEntity/cbc:CompanyID", org_number)(doc)
        endpoint = doc.find(f"{SUPPLIER}/cbc:EndpointID", NS)
        assert endpoint is not None
        endpoint.set("schemeID", "0007")
        endpoint.text = org_number

    return edit


def _swedish_bankgiro(account: str) -> Callable[[ET._Element], None]:
    def edit(doc: ET._Element) -> None:
        _swedish_seller("5560360793")(doc)
        _edit("cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID", account)(doc)
        _edit(
            "cac:PaymentMeans/cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID", "SE:BANKGIRO"
        )(doc)

    return edit


def _unknown_element(doc: ET._Element) -> None:
    ET.SubElement(doc, f"{{{NS['cbc']}}}Colour").text = "blue"


BROKEN = {
    "no CustomizationID (BT-24)": (
        _remove("cbc:CustomizationID"),
        [("BR-01", "fatal", CEN), ("PEPPOL-EN16931-R004", "fatal", PEPPOL)],
    ),
    "total with VAT (BT-112) one cent off": (
        _edit("cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount", "1656.26"),
        # BT-112 no longer equals BT-109 + BT-110, and the amount due no longer follows from it
        [("BR-CO-15", "fatal", CEN), ("BR-CO-16", "fatal", CEN)],
    ),
    "amount due (BT-115) wrong": (
        _edit("cac:LegalMonetaryTotal/cbc:PayableAmount", "1600.00"),
        [("BR-CO-16", "fatal", CEN)],
    ),
    "sum of line amounts (BT-106) wrong": (
        _edit("cac:LegalMonetaryTotal/cbc:LineExtensionAmount", "1400"),
        [("BR-CO-10", "fatal", CEN), ("BR-CO-13", "fatal", CEN)],
    ),
    "negative item price (BT-146)": (_negative_price, [("BR-27", "fatal", CEN)]),
    "Swedish seller's organisation number with a hyphen": (
        _swedish_seller("556036-0793"),
        [
            ("PEPPOL-COMMON-R049", "fatal", PEPPOL),  # the 0007 endpoint id
            ("SE-R-003", "fatal", PEPPOL),  # not numeric
            ("SE-R-004", "fatal", PEPPOL),  # not 10 characters
            ("SE-R-013", "fatal", PEPPOL),  # Luhn check digit (of a non-number)
        ],
    ),
    "Swedish seller's organisation number with a wrong check digit": (
        _swedish_seller("5560360794"),
        [("PEPPOL-COMMON-R049", "fatal", PEPPOL), ("SE-R-013", "fatal", PEPPOL)],
    ),
    "Swedish seller, bankgiro with a hyphen": (
        _swedish_bankgiro("123-4567"),
        [("SE-R-008", "warning", PEPPOL)],
    ),
    "Swedish seller, bankgiro of 6 digits": (
        _swedish_bankgiro("123456"),
        [("SE-R-009", "warning", PEPPOL)],
    ),
    "an element UBL does not have": (
        _unknown_element,
        [("UBL-XSD", "fatal", XSD)],
    ),
    "amount due that is no number": (
        _edit("cac:LegalMonetaryTotal/cbc:PayableAmount", "abc"),
        # the two rules whose tests cannot read it are fatal findings ("could not be evaluated")
        [("UBL-XSD", "fatal", XSD), ("BR-CO-16", "fatal", CEN), ("BR-CO-25", "fatal", CEN)],
    ),
    "an empty element": (_edit("cbc:AccountingCost", ""), [("PEPPOL-EN16931-R008", "fatal", PEPPOL)]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_copy_of_the_base_example_fires_the_expected_rules(
    case: str, einvoice_rules_dir: Path, einvoice_validator: Validator
) -> None:
    edit, expected = BROKEN[case]
    doc = ET.fromstring((examples_dir(einvoice_rules_dir) / "base-example.xml").read_bytes())
    edit(doc)
    assert findings(einvoice_validator.validate(ET.tostring(doc))) == expected


def test_a_swedish_seller_with_clean_identifiers_passes(
    einvoice_rules_dir: Path, einvoice_validator: Validator
) -> None:
    doc = ET.fromstring((examples_dir(einvoice_rules_dir) / "base-example.xml").read_bytes())
    _swedish_bankgiro("1234567")(doc)
    assert einvoice_validator.validate(ET.tostring(doc)).findings == ()


def test_a_finding_says_where_and_what(einvoice_rules_dir: Path, einvoice_validator: Validator) -> None:
    doc = ET.fromstring((examples_dir(einvoice_rules_dir) / "base-example.xml").read_bytes())
    _negative_price(doc)
    (finding,) = einvoice_validator.validate(ET.tostring(doc)).findings
    assert finding.location == "/Invoice[1]/cac:InvoiceLine[2]"
    assert finding.text == "[BR-27]-The Item net price (BT-146) shall NOT be negative."


def _credit_note(invoice: bytes) -> bytes:
    """The base example as a UBL CreditNote (type 381) with the same parties, lines and totals."""
    text = invoice.decode()
    for old, new in (
        ("xsd:Invoice-2", "xsd:CreditNote-2"),
        ("<Invoice ", "<CreditNote "),
        ("</Invoice>", "</CreditNote>"),
        (
            "<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>",
            "<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>",
        ),
        ("cac:InvoiceLine>", "cac:CreditNoteLine>"),
        ("cbc:InvoicedQuantity", "cbc:CreditedQuantity"),
        ("<cbc:DueDate>2017-12-01</cbc:DueDate>", ""),  # a credit note has no due date in UBL
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text.encode()


def test_a_credit_note_is_checked_by_both_schematrons_without_a_schema(
    einvoice_rules_dir: Path, einvoice_validator: Validator
) -> None:
    """The rules folder has UBL-Invoice-2.1.xsd but no UBL-CreditNote-2.1.xsd: a credit note is
    checked by the Schematron files only, and the result says so."""
    credit_note = _credit_note((examples_dir(einvoice_rules_dir) / "base-example.xml").read_bytes())
    validation = einvoice_validator.validate(credit_note)
    assert (validation.document_type, validation.schema) == ("CreditNote", None)
    assert validation.schema_missing == einvoice_rules_dir / "ubl-2.1" / "maindoc" / "UBL-CreditNote-2.1.xsd"
    assert validation.findings == ()
    broken = credit_note.replace(
        b'<cbc:PriceAmount currencyID="EUR">400<', b'<cbc:PriceAmount currencyID="EUR">-400<'
    )
    assert findings(einvoice_validator.validate(broken)) == [
        ("BR-27", "fatal", CEN),
        ("PEPPOL-EN16931-R120", "fatal", PEPPOL),  # 7 x -400 is not the line amount 2800
    ]


def test_what_is_not_a_ubl_invoice_is_refused(einvoice_validator: Validator) -> None:
    with pytest.raises(EInvoiceError, match=r"^order.xml: the root element \{urn:x\}Order is neither"):
        einvoice_validator.validate(b'<Order xmlns="urn:x"/>', "order.xml")
    with pytest.raises(EInvoiceError, match=r"^cut.xml: not well-formed XML"):
        einvoice_validator.validate(b"<Invoice", "cut.xml")


def test_an_incomplete_rules_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        EInvoiceError, match=rf"the e-invoice rules folder {tmp_path} is missing {tmp_path}/ubl"
    ):
        Validator(tmp_path)


def test_the_schematron_is_compiled_once_per_process(
    einvoice_rules_dir: Path, einvoice_validator: Validator
) -> None:
    again = Validator(einvoice_rules_dir)
    assert [id(s) for s in again.schematrons] == [id(s) for s in einvoice_validator.schematrons]


def test_helper_raises_with_every_finding(einvoice_rules_dir: Path) -> None:
    doc = ET.fromstring((examples_dir(einvoice_rules_dir) / "base-example.xml").read_bytes())
    _remove("cbc:CustomizationID")(doc)
    with pytest.raises(AssertionError) as raised:
        assert_official_rules_pass(ET.tostring(doc))
    assert str(raised.value).splitlines() == [
        "the official e-invoice rules found 2:",
        "  fatal BR-01 (CEN EN 16931) at /Invoice[1]: "
        "[BR-01]-An Invoice shall have a Specification identifier (BT-24).",
        "  fatal PEPPOL-EN16931-R004 (PEPPOL BIS 3.0.19) at /Invoice[1]: Specification identifier MUST "
        "have the value 'urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0'.",
    ]


def test_project_peppol_export_passes(tmp_path: Path) -> None:
    """The project's Peppol export (built as tests/unit/test_formats_peppol.py builds it: a final month of
    two municipalities, a zero-rated line, a price with five decimals, a positive correction line)
    passes the official rules with 0 fatal and 0 warnings with the demo's parties file, whose
    identifiers are written as finance writes them (``222000-1230``, bankgiro ``123-4566``) and
    kept as the rules require. (tests/integration/test_peppol_official_rules.py checks runs priced
    on ClickHouse, corrections and credit notes.)"""
    from tests.unit.test_formats_peppol import PARTIES, export

    assert 'org_number: "222000-1230"' in PARTIES.read_text(encoding="utf-8")
    files = export(PARTIES)
    assert sorted(files) == ["2026-10-abc.2183.xml", "2026-10-abc.2184.xml"]
    for body in files.values():
        validation = assert_official_rules_pass(body)
        assert validation.schema is not None and validation.schema.name == "UBL-Invoice-2.1.xsd"


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from chargeback_cli.main import main

    code: int | str | None = 0
    try:
        main(["billing", "validate-einvoice", *args])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return int(code or 0), out, err


def test_cli_prints_findings_and_exits_1_on_fatal(
    tmp_path: Path, einvoice_rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = examples_dir(einvoice_rules_dir) / "base-example.xml"
    doc = ET.fromstring(example.read_bytes())
    _swedish_bankgiro("123-4567")(doc)
    _swedish_seller("556036-0793")(doc)
    broken = tmp_path / "broken.xml"
    broken.write_bytes(ET.tostring(doc))
    code, out, err = _cli([str(example), str(broken)], capsys)
    party = "/Invoice[1]/cac:AccountingSupplierParty[1]/cac:Party[1]"
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        f"{example}: 0 fatal, 0 warnings",
        f"{broken}: fatal PEPPOL-COMMON-R049 (PEPPOL BIS 3.0.19) at {party}/cbc:EndpointID[1]: "
        "Swedish organization number MUST be stated in the correct format.",
        f"{broken}: fatal SE-R-003 (PEPPOL BIS 3.0.19) at {party}/cac:PartyLegalEntity[1]: "
        "Swedish organisation numbers should be numeric.",
        f"{broken}: fatal SE-R-004 (PEPPOL BIS 3.0.19) at {party}/cac:PartyLegalEntity[1]: "
        "Swedish organisation numbers consist of 10 characters.",
        f"{broken}: fatal SE-R-013 (PEPPOL BIS 3.0.19) at {party}/cac:PartyLegalEntity[1]: "
        "The last digit of a Swedish organization number must be valid according to the Luhn algorithm.",
        f"{broken}: warning SE-R-008 (PEPPOL BIS 3.0.19) at /Invoice[1]/cac:PaymentMeans[1]"
        "/cac:PayeeFinancialAccount[1]/cbc:ID[1]: For Swedish suppliers using Bankgiro, the Account ID "
        "must be numeric",
        f"{broken}: 4 fatal, 1 warning",
    ]


def test_cli_passes_warnings_and_says_when_no_schema_applied(
    tmp_path: Path, einvoice_rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = ET.fromstring((examples_dir(einvoice_rules_dir) / "base-example.xml").read_bytes())
    _swedish_bankgiro("123456")(doc)
    warned = tmp_path / "warned.xml"
    warned.write_bytes(ET.tostring(doc))
    credit_note = tmp_path / "credit-note.xml"
    credit_note.write_bytes(
        _credit_note((examples_dir(einvoice_rules_dir) / "base-example.xml").read_bytes())
    )
    code, out, _ = _cli([str(warned), str(credit_note)], capsys)
    assert code == 0
    assert out.splitlines() == [
        f"{warned}: warning SE-R-009 (PEPPOL BIS 3.0.19) at /Invoice[1]/cac:PaymentMeans[1]"
        "/cac:PayeeFinancialAccount[1]/cbc:ID[1]: For Swedish suppliers using Bankgiro, the Account ID "
        "must have 7-8 characters",
        f"{warned}: 0 fatal, 1 warning",
        f"{credit_note}: not checked against an XSD: the rules folder has no UBL-CreditNote-2.1.xsd",
        f"{credit_note}: 0 fatal, 0 warnings",
    ]


def test_cli_user_mistakes_are_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "run.xml.manifest.json"
    manifest.write_text("{}")
    code, out, err = _cli([str(manifest)], capsys)
    assert (code, out) == (1, "")
    assert err == (
        f"error: {manifest}: not well-formed XML: Start tag expected, '<' not found, line 1, column 1 "
        "(<string>, line 1)\n"
    )
    monkeypatch.setenv("CHARGEBACK_EINVOICE_RULES_DIR", str(tmp_path / "nowhere"))
    code, out, err = _cli([str(manifest)], capsys)
    assert (code, out) == (1, "")
    assert err == (
        f"error: the e-invoice rules folder {tmp_path / 'nowhere'} does not exist "
        "(set CHARGEBACK_EINVOICE_RULES_DIR)\n"
    )
