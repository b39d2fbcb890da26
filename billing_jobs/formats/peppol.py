"""Peppol BIS Billing 3.0 documents (UBL 2.1): one per municipality of a run.

A municipality whose lines for the run add up to 0 or more gets an invoice (``Invoice``, type 380);
one whose lines net negative (its corrections of earlier months outweigh the month) gets a credit
note (``CreditNote``, type 381) for the amount, which references (``BillingReference``) the
invoices it corrects: the final runs' invoices of the corrected months.

Seller, payment account and buyers come from a parties file (``billing_jobs.parties``, checked
when loaded). Each run line becomes a document line: the service is the item, the cost centre the
buyer's accounting reference (BT-133); a correction names the month it corrects in its note and as
the line's period (BG-26), and the document's period (BG-14) spans every month its lines bill. A
line's amount is never carried by a negative price (rule BR-27): a negative amount is a negative
quantity at a positive price; a correction whose quantity and amount differ in sign (a price
change) is one unit (C62), +1 or -1, at the amount. A credit note shows the credited amounts, so
its lines are the run lines with their signs turned. Amounts are the run's, to the öre: line
amounts, VAT per category as the sum of the lines' VAT, and totals that add up. The item price
carries as many decimals as quantity × price needs to give the line amount back
exactly (BIS rule PEPPOL-EN16931-R120 allows 0.02 of slack).

Every document has one note (BIS allows one) naming the run, its month and the months it corrects;
a draft's note starts with ``UTKAST / DRAFT — not an invoice``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal

from lxml import etree as ET

from billing_jobs.formats.kid import invoice_kid
from billing_jobs.model import FINAL, Line, Run
from billing_jobs.parties import Parties, PartiesError, Party, load_parties, payment_reference
from chargeback.catalogue import Catalogue
from chargeback.money import money, quantity
from chargeback.period import Period

CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NS = {
    "": INVOICE_NS,
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
DRAFT_NOTE = "UTKAST / DRAFT — not an invoice"
# Catalogue units as UN/ECE Recommendation 20 codes; anything else is "one" (C62).
UNIT_CODES = {
    "st": "C62",
    "stk": "C62",
    "GiB": "E34",
    "GB": "E34",
    "mån": "MON",
    "mnd": "MON",
    "h": "HUR",
    "tim": "HUR",
}

__all__ = ["PartiesError", "load_parties", "render_document", "render_invoice"]


def document_id(run_id: str, municipality: str) -> str:
    """The id of a run's invoice or credit note to a municipality (BT-1)."""
    return f"{run_id}-{municipality}"


def is_credit_note(lines: Sequence[Line]) -> bool:
    """A municipality's lines that net negative are a credit note."""
    return sum((line.amount for line in lines), Decimal(0)) < 0


def issue_date(run: Run) -> date:
    """The day a final run was finalised (a draft: the day it was priced): no clock, so a
    re-export gives the same bytes."""
    return (run.changed_at if run.status == FINAL else run.created_at).date()


def _price(amount: Decimal, count: Decimal) -> tuple[Decimal, Decimal, bool]:
    """(quantity, price, as_one_unit) for a document line: quantity × price gives the amount back
    and the price is never negative. ``as_one_unit``: the quantity does not carry the amount's sign
    (none, or opposite), so the line is +1 or -1 unit at the amount."""
    if not count or (amount and (amount < 0) != (count < 0)):
        return (Decimal(-1) if amount < 0 else Decimal(1)), abs(amount).quantize(Decimal("0.01")), True
    price = Decimal(0)
    for places in range(2, 13):
        price = (amount / count).quantize(Decimal(1).scaleb(-places))
        if abs(price * count - amount) < Decimal("0.005"):
            break
    return count, price, False


def _category(rate: Decimal) -> tuple[str, str]:
    percent = quantity(rate * 100)
    return ("S" if rate > 0 else "Z"), percent


def _months(lines: Sequence[Line]) -> list[str]:
    return sorted({line.corrects_period for line in lines if line.corrects_period})


def document_note(run: Run, lines: Sequence[Line], *, draft: bool) -> str:
    """The document's one note: a draft's marker, the run, its month, what it corrects."""
    parts = [DRAFT_NOTE] if draft else []
    parts.append(f"Billing run {run.run_id} for {run.period}, price list {run.price_list}")
    corrected = _months(lines)
    if corrected:
        parts.append(f"corrects {', '.join(corrected)}")
    return "; ".join(parts)


def render_document(
    run: Run,
    municipality: str,
    lines: Sequence[Line],
    catalogue: Catalogue,
    parties: Parties,
    *,
    draft: bool = False,
    corrected_invoices: Mapping[tuple[str, str], str] | None = None,
) -> bytes:
    """One municipality's invoice (lines net 0 or more) or credit note (net negative), as UBL 2.1
    XML. ``corrected_invoices`` maps (month, municipality) to the id of the final invoice of that
    month, for the ``BillingReference`` of every corrected month."""
    buyer = parties.buyers.get(municipality)
    if buyer is None:
        raise PartiesError(f"municipality {municipality} has no buyer in the parties file")
    credit = is_credit_note(lines)
    sign = Decimal(-1) if credit else Decimal(1)
    kind = "CreditNote" if credit else "Invoice"
    line_tag, quantity_tag = (
        ("CreditNoteLine", "CreditedQuantity") if credit else ("InvoiceLine", "InvoicedQuantity")
    )
    cac, cbc, currency = f"{{{NS['cac']}}}", f"{{{NS['cbc']}}}", run.currency
    namespaces: dict[str | None, str] = {
        None: CREDIT_NOTE_NS if credit else INVOICE_NS,
        "cac": NS["cac"],
        "cbc": NS["cbc"],
    }
    # The default namespace's prefix is None, which the type stubs do not know.
    root = ET.Element(f"{{{namespaces[None]}}}{kind}", nsmap=namespaces)  # type: ignore[arg-type]

    def amount(parent: ET._Element, tag: str, value: Decimal) -> None:
        _cbc(parent, cbc, tag, money(value), currencyID=currency)

    issued = issue_date(run)
    own_id = document_id(run.run_id, municipality)
    for tag, text in (("CustomizationID", CUSTOMIZATION), ("ProfileID", PROFILE), ("ID", own_id)):
        _cbc(root, cbc, tag, text)
    _cbc(root, cbc, "IssueDate", issued.isoformat())
    if credit:
        _cbc(root, cbc, "CreditNoteTypeCode", "381")
    else:
        _cbc(root, cbc, "DueDate", (issued + timedelta(days=parties.payment.days_due)).isoformat())
        _cbc(root, cbc, "InvoiceTypeCode", "380")
    _cbc(root, cbc, "Note", document_note(run, lines, draft=draft))
    _cbc(root, cbc, "DocumentCurrencyCode", currency)
    _cbc(root, cbc, "BuyerReference", buyer.reference or "")
    corrected = _months(lines)
    # The months the lines bill: the run's own and those corrected (a line's period lies within).
    months = sorted({line.corrects_period or run.period for line in lines} or {run.period})
    first, last = Period.parse(months[0]), Period.parse(months[-1])
    invoice_period = ET.SubElement(root, cac + "InvoicePeriod")
    _cbc(invoice_period, cbc, "StartDate", first.first_day.isoformat())
    _cbc(invoice_period, cbc, "EndDate", last.last_day.isoformat())
    for month in corrected:
        reference = (corrected_invoices or {}).get((month, municipality))
        if reference:
            billing = ET.SubElement(
                ET.SubElement(root, cac + "BillingReference"), cac + "InvoiceDocumentReference"
            )
            _cbc(billing, cbc, "ID", reference)
    _party(root, cac, cbc, "AccountingSupplierParty", parties.seller, supplier=True)
    _party(root, cac, cbc, "AccountingCustomerParty", buyer)
    if not credit:
        means = ET.SubElement(root, cac + "PaymentMeans")
        _cbc(means, cbc, "PaymentMeansCode", "30")
        kid = parties.payment.kid
        reference = (
            invoice_kid(run.period, municipality, kid) if kid else payment_reference(own_id, run.period)
        )
        _cbc(means, cbc, "PaymentID", reference)
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
        by_rate[line.vat_rate] = [taxable + sign * line.amount, vat + sign * line.vat_amount]
    net = sign * sum((line.amount for line in lines), Decimal(0))
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
        count, price, as_one_unit = _price(sign * line.amount, sign * line.quantity)
        document_line = ET.SubElement(root, cac + line_tag)
        _cbc(document_line, cbc, "ID", str(number))
        note = _line_note(line, as_one_unit)
        if note:
            _cbc(document_line, cbc, "Note", note)
        unit = "C62" if as_one_unit else UNIT_CODES.get(line.unit, "C62")
        _cbc(document_line, cbc, quantity_tag, quantity(count), unitCode=unit)
        _cbc(document_line, cbc, "LineExtensionAmount", money(sign * line.amount), currencyID=currency)
        _cbc(document_line, cbc, "AccountingCost", line.cost_centre)
        if line.corrects_period:
            corrected_month = Period.parse(line.corrects_period)
            line_period = ET.SubElement(document_line, cac + "InvoicePeriod")
            _cbc(line_period, cbc, "StartDate", corrected_month.first_day.isoformat())
            _cbc(line_period, cbc, "EndDate", corrected_month.last_day.isoformat())
        item = ET.SubElement(document_line, cac + "Item")
        service = services.get(line.service)
        _cbc(item, cbc, "Name", service.name if service else line.service)
        sellers_id = ET.SubElement(item, cac + "SellersItemIdentification")
        _cbc(sellers_id, cbc, "ID", line.service)
        _tax_category(item, cac, cbc, "ClassifiedTaxCategory", line.vat_rate)
        price_element = ET.SubElement(document_line, cac + "Price")
        _cbc(price_element, cbc, "PriceAmount", format(price, "f"), currencyID=currency)
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return body + b"\n"


render_invoice = render_document  # the name of one municipality's document before credit notes


def _line_note(line: Line, as_one_unit: bool) -> str | None:
    if line.corrects_period:
        note = f"Correction of {line.corrects_period}"
        if as_one_unit:
            note += f" (quantity {quantity(line.quantity)} {line.unit}, amount {money(line.amount)})"
        return note
    if not line.quantity:
        return "Minimum charge without usage"
    return None


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


def _party(root: ET._Element, cac: str, cbc: str, role: str, party: Party, *, supplier: bool = False) -> None:
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
    if supplier and party.address.country == "NO":
        # A Norwegian company names its register on the invoice (foretaksregisterloven § 10-2,
        # rule NO-R-002): a second tax scheme "TAX" with the text Foretaksregisteret.
        register = ET.SubElement(holder, cac + "PartyTaxScheme")
        _cbc(register, cbc, "CompanyID", "Foretaksregisteret")
        _cbc(ET.SubElement(register, cac + "TaxScheme"), cbc, "ID", "TAX")
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
