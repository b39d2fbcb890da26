"""SAF-T Financial 1.30 export: valid against the Tax Administration's XSD, balanced transactions,
KOSTRA grouping and standard tax codes, totals equal to the run's to the øre.

The SAF-T folder is CHARGEBACK_SAFT_DIR (default ../shared/saf-t-1.30 beside the repository); a
missing folder fails these tests, it never skips them.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree as ET

from billing_jobs.formats import FORMATS, ExportContext, ExportRefused, Seller, with_manifest
from billing_jobs.formats.saft import (
    NS,
    SCHEMA_FILE,
    SaftError,
    load_reference,
    render_saft,
)
from billing_jobs.model import Line, Run
from billing_jobs.parties import load_parties
from billing_jobs.settings import DEFAULT_SAFT_DIR
from chargeback.catalogue import load_catalogue

ROOT = Path(__file__).resolve().parents[2]
SAFT_DIR = Path(os.environ.get("CHARGEBACK_SAFT_DIR", DEFAULT_SAFT_DIR))
CATALOGUE_FILE = ROOT / "demo" / "data" / "vesteralen" / "catalogue.yaml"
PARTIES_FILE = ROOT / "demo" / "data" / "vesteralen" / "parties.yaml"
CATALOGUE = load_catalogue(CATALOGUE_FILE)
PARTIES = load_parties(PARTIES_FILE)
D = Decimal
AT = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)
RUN = Run("2026-10-abcdef123456", "2026-10", (), "final", "2026", "NOK", "", "", AT, AT, 2)
X = {"s": NS}


def line(m: str, cc: str, service: str, amount: str, vat: str, corrects: str | None = None) -> Line:
    return Line(m, cc, service, D(1), "stk", D(amount), D(amount), D("0.25"), D(vat), "NOK", "2026", corrects)


LINES = [
    line("1870", "OPPV", "pc-standard", "530.00", "132.50"),
    line("1870", "HELSE", "pc-standard", "265.00", "66.25"),
    line("1870", "UNALLOCATED", "base-offering", "45000.00", "11250.00"),
    line("1871", "ADM", "storage-file", "390.00", "97.50"),
    line("1871", "ADM", "storage-file", "-780.00", "-195.00", "2026-09"),
]


@pytest.fixture(scope="module")
def schema() -> ET.XMLSchema:
    path = SAFT_DIR / SCHEMA_FILE
    assert path.is_file(), f"{path} is missing: set CHARGEBACK_SAFT_DIR to the SAF-T 1.30 folder"
    return ET.XMLSchema(ET.parse(str(path)))


def render(lines: list[Line] = LINES, run: Run = RUN) -> ET._Element:
    return ET.fromstring(render_saft(run, lines, CATALOGUE, PARTIES, load_reference(SAFT_DIR)))


def text(doc: ET._Element, path: str) -> list[str]:
    return [str(e.text) for e in doc.findall(path, X)]


def test_the_file_validates_against_the_official_xsd(schema: ET.XMLSchema) -> None:
    doc = render()
    assert schema.validate(doc), schema.error_log
    assert doc.tag == f"{{{NS}}}AuditFile"


def test_the_header_names_the_seller_the_month_and_nok() -> None:
    doc = render()
    header = "s:Header/"
    assert text(doc, header + "s:AuditFileVersion") == ["1.30"]
    assert text(doc, header + "s:AuditFileCountry") == ["NO"]
    assert text(doc, header + "s:AuditFileDateCreated") == ["2026-11-03"]
    assert text(doc, header + "s:Company/s:RegistrationNumber") == ["921500017"]
    assert text(doc, header + "s:Company/s:Name") == ["Vesterålen IKT"]
    assert text(doc, header + "s:Company/s:Contact/s:ContactPerson/*") == ["Kari", "Nordmann"]
    assert text(doc, header + "s:Company/s:TaxRegistration/s:TaxRegistrationNumber") == ["921500017MVA"]
    assert text(doc, header + "s:Company/s:BankAccount/s:IBANNumber") == ["NO5245301234566"]
    assert text(doc, header + "s:DefaultCurrencyCode") == ["NOK"]
    assert text(doc, header + "s:SelectionCriteria/*") == ["10", "2026", "10", "2026"]
    assert text(doc, header + "s:TaxAccountingBasis") == ["A"]


def test_accounts_carry_kostra_art_codes_and_their_balances() -> None:
    accounts = [
        [str(e.text) for e in account]
        for account in render().findall("s:MasterFiles/s:GeneralLedgerAccounts/s:Account", X)
    ]
    assert accounts == [
        ["17500", "Grunnpakke IKT", "KA_K", "750", "GL", "0.00", "45000.00"],
        ["17501", "Standard PC", "KA_K", "750", "GL", "0.00", "795.00"],
        # 390.00 billed less 780.00 credited for September: a debit balance of 390.00
        ["17502", "Fillagring", "KA_K", "750", "GL", "0.00", "390.00"],
        ["2130", "Kundefordringer", "KA_K", "13", "GL", "0.00", "56756.25"],  # 45405.00 + VAT 11351.25
        ["2327", "Skyldig utgående merverdiavgift", "KA_K", "32", "GL", "0.00", "11351.25"],
    ]
    closing = [
        ET.QName(e.tag).localname
        for e in render().findall("s:MasterFiles/s:GeneralLedgerAccounts/s:Account/*", X)
        if ET.QName(e.tag).localname.startswith("Closing")
    ]
    assert closing == [
        "ClosingCreditBalance",
        "ClosingCreditBalance",
        "ClosingDebitBalance",
        "ClosingDebitBalance",
        "ClosingCreditBalance",
    ]


def test_the_grouping_codes_are_the_kostra_lists() -> None:
    reference = load_reference(SAFT_DIR)
    assert reference.grouping["750"] == "Refusjon fra kommuner"
    assert reference.grouping["13"] == "Kundefordringer"
    assert reference.grouping["32"] == "Annen kortsiktig gjeld"
    assert reference.tax_codes["3"] == "Utgående merverdiavgift"


def test_customers_are_the_member_municipalities_with_org_numbers() -> None:
    customers = render().findall("s:MasterFiles/s:Customers/s:Customer", X)
    assert [
        (
            c.findtext("s:CustomerID", namespaces=X),
            c.findtext("s:RegistrationNumber", namespaces=X),
            c.findtext("s:Name", namespaces=X),
            [f"{ET.QName(e.tag).localname} {e.text}" for e in c.findall("s:BalanceAccount/*", X)],
        )
        for c in customers
    ] == [
        (
            "1870",
            "938600058",
            "Sortland kommune",
            ["AccountID 2130", "OpeningDebitBalance 0.00", "ClosingDebitBalance 57243.75"],
        ),
        (
            "1871",
            "938600015",
            "Andøy kommune",
            ["AccountID 2130", "OpeningDebitBalance 0.00", "ClosingCreditBalance 487.50"],
        ),
    ]


def test_the_tax_table_holds_standard_code_3_for_25_per_cent() -> None:
    details = render().findall("s:MasterFiles/s:TaxTable/s:TaxTableEntry/s:TaxCodeDetails", X)
    assert [[str(e.text) for e in d] for d in details] == [
        ["3", "Utgående merverdiavgift", "25", "NO", "3", "100"]
    ]


def postings(doc: ET._Element) -> dict[str, list[tuple[str, str, Decimal, str | None]]]:
    found: dict[str, list[tuple[str, str, Decimal, str | None]]] = {}
    for transaction in doc.findall("s:GeneralLedgerEntries/s:Journal/s:Transaction", X):
        rows = []
        for row in transaction.findall("s:Line", X):
            side = "D" if row.find("s:DebitAmount", X) is not None else "C"
            amount = (
                D(row.findtext("s:DebitAmount/s:Amount", namespaces=X) or "")
                if side == "D"
                else D(row.findtext("s:CreditAmount/s:Amount", namespaces=X) or "")
            )
            rows.append(
                (
                    str(row.findtext("s:AccountID", namespaces=X)),
                    side,
                    amount,
                    row.findtext("s:Analysis/s:AnalysisID", namespaces=X),
                )
            )
        found[str(transaction.findtext("s:TransactionID", namespaces=X))] = rows
    return found


def test_the_journal_posts_each_invoice_exactly() -> None:
    assert postings(render()) == {
        "2026-10-abcdef123456-1870": [
            ("2130", "D", D("57243.75"), None),  # 45795.00 + VAT 11448.75
            ("17500", "C", D("45000.00"), "UNALLOCATED"),
            ("17501", "C", D("265.00"), "HELSE"),
            ("17501", "C", D("530.00"), "OPPV"),
            ("2327", "C", D("11448.75"), None),
        ],
        "2026-10-abcdef123456-1871": [
            ("2130", "C", D("487.50"), None),  # a net credit: -390.00 - VAT 97.50
            ("17502", "C", D("390.00"), "ADM"),
            ("17502", "D", D("780.00"), "ADM"),  # the correction of September
            ("2327", "D", D("97.50"), None),
        ],
    }


def test_every_transaction_balances_and_the_totals_are_the_runs() -> None:
    doc = render()
    for rows in postings(doc).values():
        assert sum(a for _, side, a, _ in rows if side == "D") == sum(
            a for _, side, a, _ in rows if side == "C"
        )
    entries = "s:GeneralLedgerEntries/"
    assert text(doc, entries + "s:NumberOfEntries") == ["2"]
    assert (
        text(doc, entries + "s:TotalDebit") == text(doc, entries + "s:TotalCredit") == ["58121.25"]
    )  # 57243.75 + 780.00 + 97.50
    revenue = sum(
        (
            D(-a if side == "D" else a)
            for rows in postings(doc).values()
            for acc, side, a, _ in rows
            if acc[0] == "1"
        ),
        D(0),
    )
    assert revenue == sum((x.amount for x in LINES), D(0)) == D("45405.00")
    vat = sum(
        (
            D(-a if side == "D" else a)
            for rows in postings(doc).values()
            for acc, side, a, _ in rows
            if acc == "2327"
        ),
        D(0),
    )
    assert vat == sum((x.vat_amount for x in LINES), D(0)) == D("11351.25")


def test_revenue_lines_carry_their_vat_and_corrections_name_their_month() -> None:
    doc = render()
    correction = doc.findall("s:GeneralLedgerEntries/s:Journal/s:Transaction", X)[1].findall("s:Line", X)[2]
    assert correction.findtext("s:Description", namespaces=X) == "Fillagring korreksjon av 2026-09"
    tax = correction.find("s:TaxInformation", X)
    assert tax is not None
    assert [(ET.QName(e.tag).localname, (e.text or "").strip()) for e in tax] == [
        ("TaxType", "MVA"),
        ("TaxCode", "3"),
        ("TaxPercentage", "25"),
        ("TaxBase", "780.00"),
        ("DebitTaxAmount", ""),
    ]
    assert correction.findtext("s:TaxInformation/s:DebitTaxAmount/s:Amount", namespaces=X) == "195.00"
    voucher_types = text(doc, "s:GeneralLedgerEntries/s:Journal/s:Transaction/s:VoucherType")
    assert voucher_types == ["Utgående faktura", "Kreditnota"]


def test_the_same_run_gives_the_same_bytes() -> None:
    reference = load_reference(SAFT_DIR)
    assert render_saft(RUN, LINES, CATALOGUE, PARTIES, reference) == render_saft(
        RUN, LINES, CATALOGUE, PARTIES, reference
    )
    files = FORMATS["saft"](RUN, list(reversed(LINES)), _context())
    assert [f.name for f in files] == ["2026-10-abcdef123456.saft.xml"]
    assert files[0].body == FORMATS["saft"](RUN, LINES, _context())[0].body


def _context(**kwargs: object) -> ExportContext:
    values: dict[str, object] = {"parties_file": PARTIES_FILE, "saft_dir": SAFT_DIR, **kwargs}
    return ExportContext(CATALOGUE, Seller("x"), None, **values)  # type: ignore[arg-type]


def test_a_run_in_another_currency_is_refused_in_one_sentence() -> None:
    sek = Run("2026-10-abc", "2026-10", (), "final", "2026", "SEK", "", "", AT, AT, 2)
    with pytest.raises(SaftError) as caught:
        render_saft(sek, LINES, CATALOGUE, PARTIES, load_reference(SAFT_DIR))
    assert (
        str(caught.value) == "SAF-T Financial is the Norwegian audit file in NOK; run 2026-10-abc is in SEK"
    )


def test_a_rate_without_a_norwegian_code_is_refused() -> None:
    odd = [Line("1870", "A", "pc-standard", D(1), "stk", D(1), D(10), D("0.06"), D("0.60"), "NOK", "2026")]
    with pytest.raises(SaftError) as caught:
        render(odd)
    assert str(caught.value) == (
        "no Norwegian standard tax code for a VAT rate of 6 %; use 25 %, 15 %, 12 %, 0 %"
    )


def test_a_municipality_without_a_buyer_is_refused() -> None:
    with pytest.raises(SaftError) as caught:
        render([line("9999", "A", "pc-standard", "1.00", "0.25")])
    assert str(caught.value) == "municipality 9999 has no buyer in the parties file"


def test_a_missing_folder_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(SaftError) as caught:
        load_reference(tmp_path)
    assert str(caught.value).startswith(f"cannot read the SAF-T code lists in {tmp_path} (")
    assert str(caught.value).endswith(
        "set CHARGEBACK_SAFT_DIR to the folder with KOSTRA_Arts_2024_kommuner.csv and Standard_Tax_Codes.csv"
    )


def test_a_draft_is_refused_unless_asked_for_and_then_marked() -> None:
    draft_run = replace(RUN, status="draft")
    with pytest.raises(ExportRefused) as caught:
        FORMATS["saft"](draft_run, LINES, _context())
    assert str(caught.value) == (
        "run 2026-10-abcdef123456 is a draft: finalise it before exporting saft, or add --draft for a "
        "preview marked as a draft in every file"
    )
    files = FORMATS["saft"](draft_run, LINES, _context(draft=True))
    assert [f.name for f in files] == ["2026-10-abcdef123456.draft.saft.xml"]
    assert ET.fromstring(files[0].body).findtext("s:Header/s:HeaderComment", namespaces=X) == (
        "UTKAST / DRAFT — not an invoice: Billing run 2026-10-abcdef123456 for 2026-10, price list 2026, "
        "draft"
    )


def test_its_manifest_is_not_the_peppol_files_manifest() -> None:
    saft = with_manifest(RUN, FORMATS["saft"](RUN, LINES, _context()))
    assert [f.name for f in saft] == [
        "2026-10-abcdef123456.saft.xml",
        "2026-10-abcdef123456.saft.xml.manifest.json",
    ]
    draft = replace(RUN, status="draft")
    names = [f.name for f in with_manifest(draft, FORMATS["saft"](draft, LINES, _context(draft=True)))]
    assert names[-1] == "2026-10-abcdef123456.draft.saft.xml.manifest.json"
