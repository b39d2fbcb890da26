"""Peppol BIS Billing 3.0 invoices (UBL 2.1): one per municipality of a run.

Seller and buyers come from a parties file (``CHARGEBACK_PARTIES_FILE`` or ``--parties``). Each
run line becomes an invoice line: the service is the item, the cost centre the buyer's
accounting reference (BT-133), the correction period a line note. Amounts are the run's, to the
öre: line amounts, VAT per category as the sum of the lines' VAT (the spec's per-line rule), and
totals that add up. The item price carries as many decimals as quantity × price needs to give the
line amount back exactly (BIS rule PEPPOL-EN16931-R120 allows 0.02 of slack).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from lxml import etree as ET
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from billing_jobs.model import FINAL, Line, Run
from chargeback import yamlfile
from chargeback.catalogue import Catalogue
from chargeback.errors import UserError
from chargeback.money import money, quantity
from chargeback.period import Period

CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
NS = {
    "": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
# Catalogue units as UN/ECE Recommendation 20 codes; anything else is "one" (C62).
UNIT_CODES = {"st": "C62", "GiB": "E34", "GB": "E34", "mån": "MON", "h": "HUR", "tim": "HUR"}


class PartiesError(UserError):
    """A parties file that cannot be used, or a municipality without a buyer."""

    code = "parties.invalid"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Endpoint(_Strict):
    """A Peppol participant id: ``scheme`` is the ICD (0007: Swedish org. number, 0192: Norwegian)."""

    scheme: str = Field(pattern=r"^[0-9]{4}$")
    id: str = Field(min_length=1)


class Address(_Strict):
    street: str | None = None
    city: str = Field(min_length=1)
    postal_code: str | None = None
    country: str = Field(pattern=r"^[A-Z]{2}$")


class Contact(_Strict):
    name: str | None = None
    phone: str | None = None
    email: str | None = None


class Party(_Strict):
    """A seller or buyer as the invoice names it."""

    name: str = Field(min_length=1)
    org_number: str = Field(min_length=1)  # legal registration, BT-30 / BT-47
    vat_number: str | None = None  # BT-31 / BT-48, with country prefix
    endpoint: Endpoint
    address: Address
    contact: Contact | None = None
    reference: str | None = None  # the buyer's reference (BT-10), e.g. a person or unit


class Payment(_Strict):
    """Credit transfer (code 30) to a bankgiro, plusgiro or IBAN account."""

    account: str = Field(min_length=1)
    kind: str = Field(default="bankgiro", pattern=r"^(bankgiro|plusgiro|iban)$")
    bic: str | None = None
    days_due: int = Field(default=30, ge=0)
    terms: str = "30 dagar netto"


class Parties(_Strict):
    seller: Party
    payment: Payment
    buyers: dict[str, Party]


def load_parties(path: Path) -> Parties:
    """Read a parties file; mistakes are named with the file and field."""
    try:
        raw = yamlfile.load_plain(path)
    except yamlfile.YamlFileError as exc:
        raise PartiesError(str(exc).replace("cannot read the file", "cannot read the parties file")) from exc
    try:
        return Parties.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise PartiesError(f"{path}: {problems}") from exc


def issue_date(run: Run) -> date:
    """The day a final run was finalised (a draft: the day it was priced): no clock, so a
    re-export gives the same bytes."""
    return (run.changed_at if run.status == FINAL else run.created_at).date()


def _price(line: Line) -> tuple[Decimal, Decimal]:
    """(quantity, price) for the invoice line: quantity × price gives the amount back."""
    if not line.quantity:  # an amount without usage (a minimum): one unit at the amount
        return Decimal(1), line.amount
    for places in range(2, 13):
        price = (line.amount / line.quantity).quantize(Decimal(1).scaleb(-places))
        if abs(price * line.quantity - line.amount) < Decimal("0.005"):
            return line.quantity, price
    return line.quantity, price


def _category(rate: Decimal) -> tuple[str, str]:
    percent = quantity(rate * 100)
    return ("S" if rate > 0 else "Z"), percent


def render_invoice(
    run: Run, municipality: str, lines: Sequence[Line], catalogue: Catalogue, parties: Parties
) -> bytes:
    """One municipality's invoice for the run, as UBL 2.1 XML."""
    buyer = parties.buyers.get(municipality)
    if buyer is None:
        raise PartiesError(f"municipality {municipality} has no buyer in the parties file")
    cac, cbc, currency = f"{{{NS['cac']}}}", f"{{{NS['cbc']}}}", run.currency
    namespaces: dict[str | None, str] = {k or None: v for k, v in NS.items()}
    # The default namespace's prefix is None, which the type stubs do not know.
    root = ET.Element(f"{{{NS['']}}}Invoice", nsmap=namespaces)  # type: ignore[arg-type]

    def amount(parent: ET._Element, tag: str, value: Decimal) -> None:
        _cbc(parent, cbc, tag, money(value), currencyID=currency)

    period = Period.parse(run.period)
    issued = issue_date(run)
    for tag, text in (
        ("CustomizationID", CUSTOMIZATION),
        ("ProfileID", PROFILE),
        ("ID", f"{run.run_id}-{municipality}"),
        ("IssueDate", issued.isoformat()),
        ("DueDate", (issued + timedelta(days=parties.payment.days_due)).isoformat()),
        ("InvoiceTypeCode", "380"),
    ):
        _cbc(root, cbc, tag, text)
    _cbc(root, cbc, "Note", f"Billing run {run.run_id} for {run.period}, price list {run.price_list}")
    _cbc(root, cbc, "DocumentCurrencyCode", currency)
    _cbc(root, cbc, "BuyerReference", buyer.reference or municipality)
    invoice_period = ET.SubElement(root, cac + "InvoicePeriod")
    _cbc(invoice_period, cbc, "StartDate", period.first_day.isoformat())
    _cbc(invoice_period, cbc, "EndDate", period.last_day.isoformat())
    _party(root, cac, cbc, "AccountingSupplierParty", parties.seller)
    _party(root, cac, cbc, "AccountingCustomerParty", buyer)
    means = ET.SubElement(root, cac + "PaymentMeans")
    _cbc(means, cbc, "PaymentMeansCode", "30")
    _cbc(means, cbc, "PaymentID", f"{run.run_id}-{municipality}")
    account = ET.SubElement(means, cac + "PayeeFinancialAccount")
    _cbc(account, cbc, "ID", parties.payment.account)
    if parties.payment.kind != "iban" or parties.payment.bic:
        branch = ET.SubElement(account, cac + "FinancialInstitutionBranch")
        branch_id = parties.payment.bic or f"SE:{parties.payment.kind.upper()}"
        _cbc(branch, cbc, "ID", branch_id)
    terms = ET.SubElement(root, cac + "PaymentTerms")
    _cbc(terms, cbc, "Note", parties.payment.terms)

    by_rate: dict[Decimal, list[Decimal]] = {}
    for line in lines:
        taxable, vat = by_rate.setdefault(line.vat_rate, [Decimal(0), Decimal(0)])
        by_rate[line.vat_rate] = [taxable + line.amount, vat + line.vat_amount]
    net = sum((line.amount for line in lines), Decimal(0))
    vat_total = sum((v for _, v in by_rate.values()), Decimal(0))
    tax_total = ET.SubElement(root, cac + "TaxTotal")
    amount(tax_total, "TaxAmount", vat_total)
    for rate, (taxable, vat) in sorted(by_rate.items()):
        subtotal = ET.SubElement(tax_total, cac + "TaxSubtotal")
        amount(subtotal, "TaxableAmount", taxable)
        amount(subtotal, "TaxAmount", vat)
        _tax_category(subtotal, cac, cbc, "TaxCategory", rate)
    totals = ET.SubElement(root, cac + "LegalMonetaryTotal")
    amount(totals, "LineExtensionAmount", net)
    amount(totals, "TaxExclusiveAmount", net)
    amount(totals, "TaxInclusiveAmount", net + vat_total)
    amount(totals, "PayableAmount", net + vat_total)

    services = {s.id: s for s in catalogue.services}
    for number, line in enumerate(lines, start=1):
        invoiced, price = _price(line)
        invoice_line = ET.SubElement(root, cac + "InvoiceLine")
        _cbc(invoice_line, cbc, "ID", str(number))
        if line.corrects_period:
            _cbc(invoice_line, cbc, "Note", f"Correction of {line.corrects_period}")
        elif not line.quantity:
            _cbc(invoice_line, cbc, "Note", "Minimum charge without usage")
        unit = UNIT_CODES.get(line.unit, "C62") if line.quantity else "C62"
        _cbc(invoice_line, cbc, "InvoicedQuantity", quantity(invoiced), unitCode=unit)
        _cbc(invoice_line, cbc, "LineExtensionAmount", money(line.amount), currencyID=currency)
        _cbc(invoice_line, cbc, "AccountingCost", line.cost_centre)
        item = ET.SubElement(invoice_line, cac + "Item")
        service = services.get(line.service)
        _cbc(item, cbc, "Name", service.name if service else line.service)
        sellers_id = ET.SubElement(item, cac + "SellersItemIdentification")
        _cbc(sellers_id, cbc, "ID", line.service)
        _tax_category(item, cac, cbc, "ClassifiedTaxCategory", line.vat_rate)
        price_element = ET.SubElement(invoice_line, cac + "Price")
        _cbc(price_element, cbc, "PriceAmount", format(price, "f"), currencyID=currency)
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return body + b"\n"


def _cbc(parent: ET._Element, cbc: str, tag: str, text: str, **attrs: str) -> ET._Element:
    element = ET.SubElement(parent, cbc + tag, attrs)
    element.text = text
    return element


def _tax_category(parent: ET._Element, cac: str, cbc: str, tag: str, rate: Decimal) -> None:
    category = ET.SubElement(parent, cac + tag)
    code, percent = _category(rate)
    _cbc(category, cbc, "ID", code)
    _cbc(category, cbc, "Percent", percent)
    scheme = ET.SubElement(category, cac + "TaxScheme")
    _cbc(scheme, cbc, "ID", "VAT")


def _party(root: ET._Element, cac: str, cbc: str, role: str, party: Party) -> None:
    holder = ET.SubElement(ET.SubElement(root, cac + role), cac + "Party")
    _cbc(holder, cbc, "EndpointID", party.endpoint.id, schemeID=party.endpoint.scheme)
    name = ET.SubElement(holder, cac + "PartyName")
    _cbc(name, cbc, "Name", party.name)
    address = ET.SubElement(holder, cac + "PostalAddress")
    if party.address.street:
        _cbc(address, cbc, "StreetName", party.address.street)
    _cbc(address, cbc, "CityName", party.address.city)
    if party.address.postal_code:
        _cbc(address, cbc, "PostalZone", party.address.postal_code)
    country = ET.SubElement(address, cac + "Country")
    _cbc(country, cbc, "IdentificationCode", party.address.country)
    if party.vat_number:
        tax = ET.SubElement(holder, cac + "PartyTaxScheme")
        _cbc(tax, cbc, "CompanyID", party.vat_number)
        _cbc(ET.SubElement(tax, cac + "TaxScheme"), cbc, "ID", "VAT")
    legal = ET.SubElement(holder, cac + "PartyLegalEntity")
    _cbc(legal, cbc, "RegistrationName", party.name)
    _cbc(legal, cbc, "CompanyID", party.org_number)
    if party.contact:
        contact = ET.SubElement(holder, cac + "Contact")
        for tag, value in (
            ("Name", party.contact.name),
            ("Telephone", party.contact.phone),
            ("ElectronicMail", party.contact.email),
        ):
            if value:
                _cbc(contact, cbc, tag, value)
