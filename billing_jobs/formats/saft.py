"""SAF-T Financial 1.30: the Norwegian Tax Administration's audit file of a run's postings.

One file per run (``billing export RUN --format saft``): the header (the seller of the parties
file as the company, the run's month as the selection, NOK), the general ledger accounts with
their grouping, the customers (the member municipalities), the VAT codes used, and one sales
journal with a transaction per invoice, as the run's Peppol/EHF invoices bill it::

    debit  receivables (the municipality as customer)   net + VAT
    credit revenue per service account and cost centre   net        (tax information: code, base, VAT)
    credit output VAT per rate                            VAT

so every transaction balances to the øre and the totals are the run's. A negative amount (a net
credit in a correction) is posted on the other side, as a positive amount.

Grouping (``GroupingCategory``/``GroupingCode``): the organisation is a municipal collaboration,
so its accounts are grouped by the KOSTRA art codes for municipalities (category ``KA_K``).
Every customer of a run is a member municipality, and KOSTRA classifies income by counterparty
first: what a municipality pays for the shared services is art **750** "Refusjon fra kommuner",
not 650 "Annet merverdiavgiftspliktig salg" (sales to others than the public sector) nor 775
(sales *to* an intermunicipal company). Receivables are balance code **13** "Kundefordringer"
and output VAT owed is **32** "Annen kortsiktig gjeld". The codes are checked against the KOSTRA
list of the SAF-T folder (``CHARGEBACK_SAFT_DIR``), the VAT codes against its standard tax codes:
25 % is standard code 3 (output VAT, regular rate), 15 % code 31, 12 % code 33, and a service
without VAT code 6 (turnover outside the VAT act).

Opening balances are 0.00: the file holds the run's postings, not the ledger before it. Dates
come from the run (no clock), so a re-export gives the same bytes.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from lxml import etree as ET

from billing_jobs.formats.peppol import DRAFT_NOTE, issue_date
from billing_jobs.model import Line, Run
from billing_jobs.parties import Parties, Party, Payment
from chargeback.catalogue import Catalogue
from chargeback.errors import UserError
from chargeback.money import money, quantity
from chargeback.period import Period

NS = "urn:StandardAuditFile-Taxation-Financial:NO"
SCHEMA_FILE = "Norwegian_SAF-T_Financial_Schema_v_1.30.xsd"
GROUPING_FILE = "KOSTRA_Arts_2024_kommuner.csv"
TAX_CODES_FILE = "Standard_Tax_Codes.csv"
GROUPING_CATEGORY = "KA_K"
REVENUE_GROUPING = "750"  # Refusjon fra kommuner
RECEIVABLES = ("2130", "Kundefordringer", "13")  # account, description, KOSTRA balance code
OUTPUT_VAT = ("2327", "Skyldig utgående merverdiavgift", "32")
# VAT rate -> standard tax code of the Norwegian Tax Administration (output VAT).
STANDARD_TAX_CODES = {
    Decimal("0.25"): "3",
    Decimal("0.15"): "31",
    Decimal("0.12"): "33",
    Decimal("0"): "6",
}
COST_CENTRE_ANALYSIS = ("ANSVAR", "Kundens ansvar (kostnadssted)")
JOURNAL = ("S", "Salgsfakturaer, fakturering av felles IKT-tjenester", "S")


class SaftError(UserError):
    """A run or setting the SAF-T Financial export cannot use."""

    code = "saft.invalid"


@dataclass(frozen=True)
class Reference:
    """What the export reads from the Tax Administration's SAF-T folder: KOSTRA grouping codes
    (code -> description) and standard tax codes (code -> Norwegian description)."""

    grouping: dict[str, str]
    tax_codes: dict[str, str]


def load_reference(folder: Path) -> Reference:
    """The grouping and tax code lists of the SAF-T folder; a missing file is one sentence."""
    try:
        with (folder / GROUPING_FILE).open(encoding="utf-8-sig", newline="") as handle:
            grouping = {
                row["GroupingCode"].strip(): row["CodeDescriptionNOB"].strip()
                for row in csv.DictReader(handle, delimiter=";")
                if row["GroupingCategory"] == GROUPING_CATEGORY
            }
        with (folder / TAX_CODES_FILE).open(encoding="utf-8-sig", newline="") as handle:
            tax_codes = {
                row["Code"].strip(): row["DescriptionNOB"].strip()
                for row in csv.DictReader(handle, delimiter=";")
            }
    except (OSError, KeyError) as exc:
        raise SaftError(
            f"cannot read the SAF-T code lists in {folder} ({exc}); set CHARGEBACK_SAFT_DIR to the folder "
            f"with {GROUPING_FILE} and {TAX_CODES_FILE}"
        ) from exc
    for code in (REVENUE_GROUPING, RECEIVABLES[2], OUTPUT_VAT[2]):
        if code not in grouping:
            raise SaftError(f"{folder / GROUPING_FILE} has no KOSTRA code {code}")
    return Reference(grouping, tax_codes)


def digits(text: str) -> str:
    """An identifier as the file wants it: ``921 500 017`` -> ``921500017``."""
    return re.sub(r"[^0-9]", "", text)


def _tax_code(rate: Decimal, reference: Reference) -> str:
    code = STANDARD_TAX_CODES.get(rate.normalize() if rate else Decimal(0))
    if code is None or code not in reference.tax_codes:
        known = ", ".join(f"{quantity(r * 100)} %" for r in STANDARD_TAX_CODES)
        raise SaftError(
            f"no Norwegian standard tax code for a VAT rate of {quantity(rate * 100)} %; use {known}"
        )
    return code


@dataclass
class _Posting:
    account: str
    amount: Decimal  # debit positive, credit negative
    description: str
    cost_centre: str | None = None
    customer: str | None = None
    tax: tuple[str, Decimal, Decimal, Decimal] | None = None  # code, rate, base, VAT (credit +)


def _postings(
    run: Run, code: str, lines: Sequence[Line], catalogue: Catalogue, reference: Reference
) -> list[_Posting]:
    """One invoice's postings: receivables, revenue per account, cost centre, rate and corrected
    month, output VAT per rate."""
    revenue: dict[tuple[str, str, Decimal, str], list[Decimal]] = defaultdict(
        lambda: [Decimal(0), Decimal(0)]
    )
    vat: dict[Decimal, Decimal] = defaultdict(Decimal)
    for line in lines:
        key = (
            catalogue.service(line.service).account,
            line.cost_centre,
            line.vat_rate,
            line.corrects_period or "",
        )
        revenue[key][0] += line.amount
        revenue[key][1] += line.vat_amount
        vat[line.vat_rate] += line.vat_amount
    net = sum((v[0] for v in revenue.values()), Decimal(0))
    total = net + sum(vat.values(), Decimal(0))
    kind = "Faktura" if total >= 0 else "Kreditnota"
    rows = [_Posting(RECEIVABLES[0], total, f"{kind} {run.run_id}-{code}", customer=code)]
    names = {s.account: s.name for s in catalogue.services}
    for (account, cost_centre, rate, corrects), (amount, tax) in sorted(revenue.items()):
        if amount or tax:
            what = f"korreksjon av {corrects}" if corrects else run.period
            rows.append(
                _Posting(
                    account,
                    -amount,
                    f"{names.get(account, account)} {what}",
                    cost_centre=cost_centre,
                    tax=(_tax_code(rate, reference), rate, amount, tax),
                )
            )
    for rate, amount in sorted(vat.items()):
        if amount:
            rows.append(_Posting(OUTPUT_VAT[0], -amount, f"Utgående merverdiavgift {quantity(rate * 100)} %"))
    return rows


def render_saft(
    run: Run,
    lines: Sequence[Line],
    catalogue: Catalogue,
    parties: Parties,
    reference: Reference,
    *,
    draft: bool = False,
) -> bytes:
    """The run as one SAF-T Financial 1.30 XML file; a draft's header comment says so."""
    if run.currency != "NOK":
        raise SaftError(
            f"SAF-T Financial is the Norwegian audit file in NOK; run {run.run_id} is in {run.currency}"
        )
    period = Period.parse(run.period)
    by_municipality: dict[str, list[Line]] = defaultdict(list)
    for line in lines:
        by_municipality[line.municipality].append(line)
    for code in by_municipality:
        if code not in parties.buyers:
            raise SaftError(f"municipality {code} has no buyer in the parties file")
    journal = {
        code: _postings(run, code, own, catalogue, reference) for code, own in sorted(by_municipality.items())
    }
    root = ET.Element(f"{{{NS}}}AuditFile", nsmap={None: NS})  # type: ignore[dict-item]
    _header(root, run, period, parties.seller, parties.payment, draft)
    _master_files(root, run, catalogue, parties, journal, reference)
    _entries(root, run, period, journal, parties)
    ET.indent(root, space="  ")
    body: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return body + b"\n"


def _el(parent: ET._Element, tag: str, text: str | None = None) -> ET._Element:
    element = ET.SubElement(parent, f"{{{NS}}}{tag}")
    if text is not None:
        element.text = text
    return element


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chargeback")[:18]
    except PackageNotFoundError:
        return "0"


def _address(parent: ET._Element, party: Party, kind: str) -> None:
    address = _el(parent, "Address")
    if party.address.street:
        _el(address, "StreetName", party.address.street)
    _el(address, "City", party.address.city)
    if party.address.postal_code:
        _el(address, "PostalCode", party.address.postal_code)
    _el(address, "Country", party.address.country)
    _el(address, "AddressType", kind)


def _contact(parent: ET._Element, party: Party) -> None:
    """The contact person (mandatory for the company): the parties file's contact name split into
    first and last name, or the party's own name when there is none."""
    contact = party.contact
    name = (contact.name if contact and contact.name else party.name).split()
    first, last = (" ".join(name[:-1]), name[-1]) if len(name) > 1 else (name[0], name[0])
    element = _el(parent, "Contact")
    person = _el(element, "ContactPerson")
    _el(person, "FirstName", first)
    _el(person, "LastName", last)
    if contact and contact.phone:
        _el(element, "Telephone", contact.phone)
    if contact and contact.email:
        _el(element, "Email", contact.email)


def _tax_registration(parent: ET._Element, party: Party) -> None:
    if party.vat_number:
        registration = _el(parent, "TaxRegistration")
        # Norwegian practice: the organisation number followed by MVA, without the NO prefix.
        _el(registration, "TaxRegistrationNumber", party.vat_number.removeprefix("NO").replace(" ", ""))
        _el(registration, "TaxAuthority", "Skatteetaten")


def _header(
    root: ET._Element, run: Run, period: Period, seller: Party, payment: Payment, draft: bool
) -> None:
    header = _el(root, "Header")
    _el(header, "AuditFileVersion", "1.30")
    _el(header, "AuditFileCountry", "NO")
    _el(header, "AuditFileDateCreated", run.changed_at.date().isoformat())
    _el(header, "SoftwareCompanyName", "chargeback")
    _el(header, "SoftwareID", "chargeback")
    _el(header, "SoftwareVersion", _version())
    company = _el(header, "Company")
    _el(company, "RegistrationNumber", digits(seller.org_number))
    _el(company, "Name", seller.name)
    _address(company, seller, "StreetAddress")
    _contact(company, seller)
    _tax_registration(company, seller)
    bank = _el(company, "BankAccount")
    if payment.kind == "iban":
        _el(bank, "IBANNumber", payment.account.replace(" ", ""))
    else:
        _el(bank, "BankAccountNumber", digits(payment.account))
    if payment.bic:
        _el(bank, "BIC", payment.bic)
    _el(header, "DefaultCurrencyCode", run.currency)
    selection = _el(header, "SelectionCriteria")
    _el(selection, "PeriodStart", str(period.month))
    _el(selection, "PeriodStartYear", str(period.year))
    _el(selection, "PeriodEnd", str(period.month))
    _el(selection, "PeriodEndYear", str(period.year))
    comment = f"Billing run {run.run_id} for {run.period}, price list {run.price_list}, {run.status}"
    if draft:
        comment = f"{DRAFT_NOTE}: {comment}"
    _el(header, "HeaderComment", comment)
    _el(header, "TaxAccountingBasis", "A")


def _balance(parent: ET._Element, closing: Decimal) -> None:
    _el(parent, "OpeningDebitBalance", "0.00")
    if closing < 0:
        _el(parent, "ClosingCreditBalance", money(-closing))
    else:
        _el(parent, "ClosingDebitBalance", money(closing))


def _master_files(
    root: ET._Element,
    run: Run,
    catalogue: Catalogue,
    parties: Parties,
    journal: dict[str, list[_Posting]],
    reference: Reference,
) -> None:
    postings = [p for rows in journal.values() for p in rows]
    movement: dict[str, Decimal] = defaultdict(Decimal)
    for posting in postings:
        movement[posting.account] += posting.amount
    names = {s.account: s.name for s in catalogue.services}
    accounts = {
        RECEIVABLES[0]: (RECEIVABLES[1], RECEIVABLES[2]),
        OUTPUT_VAT[0]: (OUTPUT_VAT[1], OUTPUT_VAT[2]),
    }
    masters = _el(root, "MasterFiles")
    ledger = _el(masters, "GeneralLedgerAccounts")
    for account in sorted(movement):
        description, grouping = accounts.get(account, (names.get(account, account), REVENUE_GROUPING))
        element = _el(ledger, "Account")
        _el(element, "AccountID", account)
        _el(element, "AccountDescription", description)
        _el(element, "GroupingCategory", GROUPING_CATEGORY)
        _el(element, "GroupingCode", grouping)
        _el(element, "AccountType", "GL")
        _balance(element, movement[account])

    customers = _el(masters, "Customers")
    for code, rows in sorted(journal.items()):
        buyer = parties.buyers[code]
        customer = _el(customers, "Customer")
        _el(customer, "RegistrationNumber", digits(buyer.org_number))
        _el(customer, "Name", buyer.name)
        _address(customer, buyer, "BillingAddress")
        _tax_registration(customer, buyer)
        _el(customer, "CustomerID", code)
        balance = _el(customer, "BalanceAccount")
        _el(balance, "AccountID", RECEIVABLES[0])
        _balance(balance, sum((p.amount for p in rows if p.customer == code), Decimal(0)))
        info = _el(customer, "PartyInfo")
        terms = _el(info, "PaymentTerms")
        _el(terms, "Days", str(parties.payment.days_due))
        _el(info, "CurrencyCode", run.currency)
        _el(info, "Type", "Government")

    table = _el(masters, "TaxTable")
    entry = _el(table, "TaxTableEntry")
    _el(entry, "TaxType", "MVA")
    _el(entry, "Description", "Merverdiavgift")
    used = sorted({(p.tax[0], p.tax[1]) for p in postings if p.tax}, key=lambda t: (int(t[0]), t[1]))
    for tax_code, rate in used:
        details = _el(entry, "TaxCodeDetails")
        _el(details, "TaxCode", tax_code)
        _el(details, "Description", reference.tax_codes[tax_code])
        _el(details, "TaxPercentage", quantity(rate * 100))
        _el(details, "Country", "NO")
        _el(details, "StandardTaxCode", tax_code)
        _el(details, "BaseRate", "100")

    cost_centres = sorted({p.cost_centre for p in postings if p.cost_centre})
    if cost_centres:
        analysis = _el(masters, "AnalysisTypeTable")
        for cost_centre in cost_centres:
            row = _el(analysis, "AnalysisTypeTableEntry")
            _el(row, "AnalysisType", COST_CENTRE_ANALYSIS[0])
            _el(row, "AnalysisTypeDescription", COST_CENTRE_ANALYSIS[1])
            _el(row, "AnalysisID", cost_centre)
            _el(row, "AnalysisIDDescription", cost_centre)


def _amount(parent: ET._Element, tag: str, value: Decimal) -> None:
    _el(_el(parent, tag), "Amount", money(value))


def _entries(
    root: ET._Element, run: Run, period: Period, journal: dict[str, list[_Posting]], parties: Parties
) -> None:
    postings = [p for rows in journal.values() for p in rows]
    debit = sum((p.amount for p in postings if p.amount > 0), Decimal(0))
    credit = -sum((p.amount for p in postings if p.amount < 0), Decimal(0))
    entries = _el(root, "GeneralLedgerEntries")
    _el(entries, "NumberOfEntries", str(len(journal)))
    _el(entries, "TotalDebit", money(debit))
    _el(entries, "TotalCredit", money(credit))
    element = _el(entries, "Journal")
    _el(element, "JournalID", JOURNAL[0])
    _el(element, "Description", JOURNAL[1])
    _el(element, "Type", JOURNAL[2])
    posted = period.last_day.isoformat()
    due = (issue_date(run) + timedelta(days=parties.payment.days_due)).isoformat()
    for code, rows in journal.items():
        invoice = f"{run.run_id}-{code}"
        transaction = _el(element, "Transaction")
        _el(transaction, "TransactionID", invoice)
        _el(transaction, "Period", str(period.month))
        _el(transaction, "PeriodYear", str(period.year))
        _el(transaction, "TransactionDate", posted)
        _el(transaction, "SourceID", "chargeback")
        _el(transaction, "VoucherType", "Utgående faktura" if rows[0].amount >= 0 else "Kreditnota")
        _el(transaction, "Description", f"{parties.buyers[code].name} {run.period}")
        _el(transaction, "SystemEntryDate", run.created_at.date().isoformat())
        _el(transaction, "GLPostingDate", posted)
        _el(transaction, "CustomerID", code)
        for number, posting in enumerate(rows, start=1):
            line = _el(transaction, "Line")
            _el(line, "RecordID", str(number))
            _el(line, "AccountID", posting.account)
            if posting.cost_centre:
                analysis = _el(line, "Analysis")
                _el(analysis, "AnalysisType", COST_CENTRE_ANALYSIS[0])
                _el(analysis, "AnalysisID", posting.cost_centre)
            _el(line, "SourceDocumentID", invoice)
            if posting.customer:
                _el(line, "CustomerID", posting.customer)
            _el(line, "Description", posting.description)
            side = "DebitAmount" if posting.amount >= 0 else "CreditAmount"
            _amount(line, side, abs(posting.amount))
            if posting.tax:
                tax_code, rate, base, tax = posting.tax
                info = _el(line, "TaxInformation")
                _el(info, "TaxType", "MVA")
                _el(info, "TaxCode", tax_code)
                _el(info, "TaxPercentage", quantity(rate * 100))
                _el(info, "TaxBase", money(abs(base)))
                _amount(info, "CreditTaxAmount" if tax >= 0 else "DebitTaxAmount", abs(tax))
            if posting.customer:
                _el(line, "DueDate", due)
