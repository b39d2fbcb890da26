"""The parties of invoices: one seller (the shared IT organisation, the one seller identity of both
the Peppol invoices and the SIE file), its payment account, and a buyer per municipality.

A parties file (``--parties`` or ``CHARGEBACK_PARTIES_FILE``) is checked when it is loaded, so a
mistake is named before any invoice is written (``file:line: party: what is wrong``):

- organisation numbers are taken as finance writes them (``556677-8899``, ``556677 8899``) and kept
  as the rules require: Swedish (country SE, Peppol scheme 0007) 10 digits whose last digit is the
  Luhn check digit; Norwegian (NO, scheme 0192) 9 digits with the mod 11 check digit;
- a Peppol endpoint id is checked by its scheme: 0007 and 0192 as above, 0088 (GLN) 13 digits with
  the GS1 mod 10 check digit; other schemes are kept as written, without spaces;
- a VAT number must belong to the organisation number: ``SE`` + the 10 digits + ``01``, or ``NO`` +
  the 9 digits + ``MVA``; the seller must have one (its invoices charge VAT);
- a bankgiro (7-8 digits) or plusgiro (2-8 digits) is kept as digits (``123-4567`` -> ``1234567``);
  its check digit is the bank's to verify and the Peppol rules check only the form (SE-R-008), so a
  number finance copies from its bank is never refused here; an IBAN is kept without spaces and
  must pass its mod 97 check;
- every buyer has a ``reference`` (BuyerReference, BT-10): Swedish public buyers route invoices on it.

Each invoice also gets a payment reference (``payment_reference``): an OCR number with a Luhn
check digit, derived from the invoice so that a re-export gives the same one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from chargeback import yamlfile
from chargeback.errors import UserError

SWEDISH, NORWEGIAN, GLN = "0007", "0192", "0088"


class PartiesError(UserError):
    """A parties file that cannot be used, or a municipality without a buyer."""

    code = "parties.invalid"


def _text(value: Any) -> Any:
    """Identifiers may be written as bare YAML numbers; they are text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Text = Annotated[str, BeforeValidator(_text), Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Endpoint(_Strict):
    """A Peppol participant id: ``scheme`` is the ICD (0007: Swedish organisation number, 0192:
    Norwegian, 0088: GLN)."""

    scheme: Text = Field(pattern=r"^[0-9]{4}$")
    id: Text


def _country(value: Any) -> Any:
    """YAML 1.1 reads a bare ``NO`` (Norway) as false; a country is never a yes/no value."""
    return "NO" if value is False else value


class Address(_Strict):
    street: str | None = None
    city: str = Field(min_length=1)
    postal_code: Annotated[str | None, BeforeValidator(_text)] = None
    country: Annotated[str, BeforeValidator(_country), Field(pattern=r"^[A-Z]{2}$")]


class Contact(_Strict):
    name: str | None = None
    phone: Annotated[str | None, BeforeValidator(_text)] = None
    email: str | None = None


class Party(_Strict):
    """A seller or buyer as the invoice names it; after loading, identifiers are as the rules
    require them (digits only)."""

    name: str = Field(min_length=1)
    org_number: Text  # legal registration, BT-30 / BT-47
    vat_number: str | None = None  # BT-31 / BT-48, with country prefix
    endpoint: Endpoint
    address: Address
    contact: Contact | None = None
    reference: Annotated[str | None, BeforeValidator(_text)] = None  # the buyer's reference (BT-10)


class Payment(_Strict):
    """Credit transfer (code 30) to a bankgiro, plusgiro or IBAN account."""

    account: Text
    kind: str = Field(default="bankgiro", pattern=r"^(bankgiro|plusgiro|iban)$")
    bic: str | None = None
    days_due: int = Field(default=30, ge=0)
    terms: str = "30 dagar netto"
    # A Norwegian KID as the payment reference (BT-83): the month, the municipality code and a
    # mod 10 (Luhn) or mod 11 check digit (``billing_jobs.formats.kid``); without it an OCR number.
    kid: Literal["mod10", "mod11"] | None = None


class Parties(_Strict):
    seller: Party
    payment: Payment
    buyers: dict[str, Party]


@dataclass(frozen=True)
class Seller:
    """The seller identity of every export: the parties file's seller."""

    name: str
    org_number: str | None = None


def seller_of(parties: Parties) -> Seller:
    """The one seller identity (name, organisation number as 10 digits) of Peppol and SIE."""
    return Seller(parties.seller.name, parties.seller.org_number)


def luhn_valid(digits: str) -> bool:
    """True when the last digit is the Luhn (mod 10) check digit of the others."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def luhn_digit(digits: str) -> str:
    """The Luhn check digit to append to ``digits``."""
    return next(d for d in "0123456789" if luhn_valid(digits + d))


def norwegian_valid(digits: str) -> bool:
    """A Norwegian organisation number: 9 digits, the last the mod 11 check digit (weights
    3 2 7 6 5 4 3 2)."""
    if not re.fullmatch(r"[0-9]{9}", digits):
        return False
    remainder = sum(int(d) * w for d, w in zip(digits[:8], (3, 2, 7, 6, 5, 4, 3, 2), strict=True)) % 11
    check = (11 - remainder) % 11
    return check != 10 and check == int(digits[8])


def gln_valid(digits: str) -> bool:
    """A GLN: 13 digits, the last the GS1 mod 10 check digit (weights 1 3 1 3 ... from the left)."""
    if not re.fullmatch(r"[0-9]{13}", digits):
        return False
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == int(digits[12])


def iban_valid(iban: str) -> bool:
    """An IBAN: country, check digits and account, mod 97 = 1."""
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}", iban):
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _compact(value: str) -> str:
    """Without the spaces and hyphens people write in identifiers."""
    return re.sub(r"[\s-]", "", value)


def swedish_org_number(value: str) -> str:
    """``556677-8899`` as ``5566778899``; raises ValueError naming what is wrong."""
    digits = _compact(value)
    if not re.fullmatch(r"[0-9]{10}", digits):
        raise ValueError(f"{value!r} is not a Swedish organisation number (10 digits, as 556677-8899)")
    if not luhn_valid(digits):
        raise ValueError(
            f"{value!r} fails its check digit (Luhn): the last digit should be {luhn_digit(digits[:9])}"
        )
    return digits


def norwegian_org_number(value: str) -> str:
    """``974 760 673`` as ``974760673``; raises ValueError naming what is wrong."""
    digits = _compact(value)
    if not re.fullmatch(r"[0-9]{9}", digits):
        raise ValueError(f"{value!r} is not a Norwegian organisation number (9 digits)")
    if not norwegian_valid(digits):
        raise ValueError(f"{value!r} fails its check digit (mod 11)")
    return digits


def gln(value: str) -> str:
    digits = _compact(value)
    if not re.fullmatch(r"[0-9]{13}", digits):
        raise ValueError(f"{value!r} is not a GLN (13 digits)")
    if not gln_valid(digits):
        raise ValueError(f"{value!r} fails its check digit (GS1 mod 10)")
    return digits


ORG_NUMBER_BY_COUNTRY = {"SE": swedish_org_number, "NO": norwegian_org_number}
ENDPOINT_BY_SCHEME = {SWEDISH: swedish_org_number, NORWEGIAN: norwegian_org_number, GLN: gln}


def account_number(kind: str, value: str) -> str:
    """A bankgiro or plusgiro as digits (``123-4567`` -> ``1234567``), an IBAN without spaces."""
    if kind == "iban":
        iban = re.sub(r"\s", "", value).upper()
        if not iban_valid(iban):
            raise ValueError(f"{value!r} is not a valid IBAN (its mod 97 check fails)")
        return iban
    digits = _compact(value)
    sizes = (7, 8) if kind == "bankgiro" else tuple(range(2, 9))
    if not digits.isdigit() or len(digits) not in sizes:
        size = "7 or 8" if kind == "bankgiro" else "2 to 8"
        raise ValueError(f"{value!r} is not a {kind} number ({size} digits)")
    return digits


def _vat_number(value: str, country: str, org_number: str) -> str:
    vat = re.sub(r"[\s-]", "", value).upper()
    expected = {"SE": f"SE{org_number}01", "NO": f"NO{org_number}MVA"}.get(country)
    if expected is not None and vat != expected:
        raise ValueError(
            f"{value!r} does not belong to organisation number {org_number}: it should be {expected}"
        )
    return vat


def _checked_party(
    party: Party, role: str, where: tuple[str, ...], line_of: Any, problems: list[str]
) -> Party:
    """The party with its identifiers written as the rules require; each mistake appended to
    ``problems`` as ``line: role (name): field: what``."""
    update: dict[str, Any] = {}

    def fail(field: tuple[str, ...], message: str) -> None:
        problems.append(f"{line_of((*where, *field))}: {role} ({party.name}): {'.'.join(field)}: {message}")

    org_rule = ORG_NUMBER_BY_COUNTRY.get(party.address.country)
    org_number: str | None = party.org_number.strip()
    try:
        org_number = org_rule(party.org_number) if org_rule else org_number
        update["org_number"] = org_number
    except ValueError as exc:
        fail(("org_number",), str(exc))
        org_number = None  # its VAT number cannot be checked against it
    endpoint_rule = ENDPOINT_BY_SCHEME.get(party.endpoint.scheme)
    try:
        endpoint_id = (
            endpoint_rule(party.endpoint.id) if endpoint_rule else re.sub(r"\s", "", party.endpoint.id)
        )
        update["endpoint"] = Endpoint(scheme=party.endpoint.scheme, id=endpoint_id)
    except ValueError as exc:
        fail(("endpoint", "id"), f"{exc} (scheme {party.endpoint.scheme})")
    if party.vat_number is not None:
        try:
            if org_number is not None:
                update["vat_number"] = _vat_number(party.vat_number, party.address.country, org_number)
        except ValueError as exc:
            fail(("vat_number",), str(exc))
    elif role == "seller":
        fail(
            ("vat_number",),
            "the seller needs its VAT number (SE + organisation number + 01) on invoices with VAT",
        )
    if role != "seller" and not (party.reference or "").strip():
        fail(
            ("reference",),
            "missing: every buyer needs a reference (BuyerReference), on which public buyers route "
            "invoices; add reference: with the buyer's reference code or contact",
        )
    return party.model_copy(update=update)


def load_parties(path: Path) -> Parties:
    """Read and check a parties file; every mistake is named with the file, line and party."""
    try:
        doc = yamlfile.load(path)
    except yamlfile.YamlFileError as exc:
        raise PartiesError(str(exc).replace("cannot read the file", "cannot read the parties file")) from exc
    problems = [f"{path}:{line}: {message}" for line, message in doc.duplicates]
    try:
        parties = Parties.model_validate(doc.data)
    except ValidationError as exc:
        problems += [
            f"{path}:{doc.line_of(tuple(str(p) for p in e['loc']))}: "
            f"{yamlfile.field_path(tuple(e['loc']))}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        raise PartiesError("\n".join(problems)) from exc

    def line_of(key: tuple[str, ...]) -> str:
        return f"{path}:{doc.line_of(key)}"

    found: list[str] = []
    seller = _checked_party(parties.seller, "seller", ("seller",), line_of, found)
    buyers = {
        code: _checked_party(buyer, f"buyer {code}", ("buyers", code), line_of, found)
        for code, buyer in parties.buyers.items()
    }
    payment = parties.payment
    try:
        payment = payment.model_copy(update={"account": account_number(payment.kind, payment.account)})
    except ValueError as exc:
        found.append(f"{line_of(('payment', 'account'))}: payment ({payment.kind}): account: {exc}")
    problems += found
    if problems:
        raise PartiesError("\n".join(problems))
    return Parties(seller=seller, payment=payment, buyers=buyers)


def payment_reference(invoice_id: str, period: str) -> str:
    """The invoice's OCR payment reference: the month (YYYYMM), 8 digits derived from the invoice
    id, and a Luhn check digit; the same invoice always gets the same number."""
    derived = int(hashlib.sha256(invoice_id.encode()).hexdigest(), 16) % 10**8
    base = f"{period.replace('-', '')}{derived:08d}"
    return base + luhn_digit(base)
