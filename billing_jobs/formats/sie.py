"""SIE 4 export of a billing run: a vouchers-only file (type 4I, named ``.si``) with one voucher per
municipality for Swedish accounting systems.

The file names its company from the one seller identity of the parties file (``#FNAMN``,
``#ORGNR`` in SIE's ``nnnnnn-nnnn`` form) and its chart of accounts (``#KPTYP``). Each voucher
(``#VER``) posts one Peppol document and says which: ``Faktura <invoice id>`` or ``Kreditnota
<credit note id>`` (a municipality whose lines net negative), the municipality and the month. It
credits the catalogue's revenue account of every service per cost centre (``#OBJEKT`` of dimension
1, kostnadsställe), credits output VAT per rate, and debits accounts receivable with the document's
total including VAT (negative for a credit note), so it balances to exactly 0.00. A draft's
vouchers say ``UTKAST/DRAFT`` first.

The file is encoded as the format requires: IBM PC 8-bit (code page 437), CRLF line ends. Code page
437 has å ä ö Å Ä Ö é ü æ Æ but not every character a name may hold: those in ``TRANSLITERATION``
are written as given there (ø as ö, dashes as -, typographic quotes as plain ones, € as EUR ...);
any other character the code page cannot hold is an error naming it, never a silent ``?``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

from billing_jobs.formats.peppol import document_id, is_credit_note
from billing_jobs.model import Line, Run
from billing_jobs.parties import Seller
from chargeback.catalogue import Catalogue
from chargeback.errors import UserError
from chargeback.money import money
from chargeback.period import Period

RECEIVABLES = ("1510", "Kundfordringar")
# Output VAT accounts of the Swedish chart of accounts (BAS), by rate.
VAT_ACCOUNTS = {
    Decimal("0.25"): ("2611", "Utgående moms 25 %"),
    Decimal("0.12"): ("2621", "Utgående moms 12 %"),
    Decimal("0.06"): ("2631", "Utgående moms 6 %"),
}
COST_CENTRE_DIMENSION = 1
# The chart of accounts: the BAS chart, as the SIE 4 specification names it.
CHART_OF_ACCOUNTS = "EUBAS97"
DRAFT_MARK = "UTKAST/DRAFT"
# Characters code page 437 lacks, and what the file says instead.
TRANSLITERATION = {
    "ø": "ö", "Ø": "Ö", "õ": "ö", "Õ": "Ö", "œ": "oe", "Œ": "OE",
    "ã": "a", "Ã": "A", "À": "A", "Á": "A", "Â": "A",
    "È": "E", "Ê": "E", "Ë": "E", "Ì": "I", "Í": "I", "Î": "I", "Ï": "I",
    "Ò": "O", "Ó": "O", "Ô": "O", "Ù": "U", "Ú": "U", "Û": "U", "ý": "y", "Ý": "Y", "Ÿ": "Y",
    "š": "s", "Š": "S", "ž": "z", "Ž": "Z", "č": "c", "Č": "C", "ł": "l", "Ł": "L",
    "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th",
    "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "„": '"', "…": "...",
    "€": "EUR", "\u00a0": " ",
}  # fmt: skip


_TABLE = str.maketrans(TRANSLITERATION)


class SieError(UserError):
    """Text the SIE file's code page cannot hold."""

    code = "sie.unencodable"


class SieVatRateError(SieError):
    """A VAT rate the SIE vouchers have no output VAT account for."""

    code = "sie.vat_rate"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chargeback")
    except PackageNotFoundError:
        return "0"


def quote(text: str) -> str:
    """A SIE string: in double quotes, embedded quotes and backslashes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sie_org_number(org_number: str) -> str:
    """A Swedish organisation number as SIE writes it: ``nnnnnn-nnnn``."""
    return (
        f"{org_number[:6]}-{org_number[6:]}" if org_number.isdigit() and len(org_number) == 10 else org_number
    )


def encode(text: str) -> bytes:
    """``text`` in code page 437, with ``TRANSLITERATION``; a character neither covers raises
    ``SieError`` naming it and the line it is on."""
    try:
        return text.encode("cp437")
    except UnicodeEncodeError:
        pass
    translated = text.translate(_TABLE)
    try:
        return translated.encode("cp437")
    except UnicodeEncodeError as exc:
        ch = translated[exc.start]
        number = translated.count("\r\n", 0, exc.start) + 1  # the table adds no line breaks
        row = text.split("\r\n")[number - 1]
        raise SieError(
            f"the SIE file cannot hold {ch!r} (U+{ord(ch):04X}) on its line {number} ({row.strip()}): "
            "code page 437 has no such character and it has no transliteration; write the name without it"
        ) from None


def voucher_text(run: Run, municipality: str, name: str, lines: Sequence[Line], *, draft: bool) -> str:
    """What a voucher posts: the Peppol document (invoice or credit note), the member, the month."""
    kind = "Kreditnota" if is_credit_note(lines) else "Faktura"
    text = f"{kind} {document_id(run.run_id, municipality)} {name} {run.period}"
    return f"{DRAFT_MARK} {text}" if draft else text


def render_sie(
    run: Run, lines: Sequence[Line], catalogue: Catalogue, seller: Seller, *, draft: bool = False
) -> bytes:
    """The run as one SIE 4I file (bytes in code page 437, CRLF)."""
    period = Period.parse(run.period)
    accounts: dict[str, str] = {RECEIVABLES[0]: RECEIVABLES[1]}
    cost_centres: set[str] = set()
    by_municipality: dict[str, list[Line]] = defaultdict(list)
    for line in lines:
        by_municipality[line.municipality].append(line)
        service = catalogue.service(line.service)
        accounts[service.account] = service.name
        cost_centres.add(line.cost_centre)
        if line.vat_amount:
            vat = VAT_ACCOUNTS.get(line.vat_rate.normalize())
            if vat is None:
                percent = (line.vat_rate * 100).normalize()
                raise SieVatRateError(
                    f"SIE cannot post VAT at {percent:f} % (service {line.service}): "
                    "its output VAT accounts are for 25, 12 and 6 %; correct the service's vat_rate in the "
                    "catalogue or export another format"
                )
            accounts[vat[0]] = vat[1]
    out = [
        "#FLAGGA 0",
        f'#PROGRAM "chargeback" {quote(_version())}',
        "#FORMAT PC8",
        f"#GEN {run.created_at:%Y%m%d}",
        "#SIETYP 4",
        f"#FNAMN {quote(seller.name)}",
    ]
    if seller.org_number:
        out.append(f"#ORGNR {sie_org_number(seller.org_number)}")
    out.append(f"#KPTYP {CHART_OF_ACCOUNTS}")
    out.append(f"#RAR 0 {period.year}0101 {period.year}1231")
    out += [f"#KONTO {number} {quote(name)}" for number, name in sorted(accounts.items())]
    out.append(f'#DIM {COST_CENTRE_DIMENSION} "Kostnadsställe"')
    out += [f"#OBJEKT {COST_CENTRE_DIMENSION} {quote(cc)} {quote(cc)}" for cc in sorted(cost_centres)]
    voucher_day = f"{period.last_day:%Y%m%d}"
    for number, code in enumerate(sorted(by_municipality), start=1):
        name = catalogue.municipality(code).name if code in catalogue.municipality_codes else code
        text = voucher_text(run, code, name, by_municipality[code], draft=draft)
        out.append(f'#VER "A" {number} {voucher_day} {quote(text)}')
        out.append("{")
        out.extend(_transactions(by_municipality[code], catalogue))
        out.append("}")
    return encode("\r\n".join(out) + "\r\n")


def _transactions(lines: Sequence[Line], catalogue: Catalogue) -> list[str]:
    revenue: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    vat: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        revenue[(catalogue.service(line.service).account, line.cost_centre)] += line.amount
        if line.vat_amount:
            vat[VAT_ACCOUNTS[line.vat_rate.normalize()][0]] += line.vat_amount
    total = sum(revenue.values(), Decimal(0)) + sum(vat.values(), Decimal(0))
    rows = [f"#TRANS {RECEIVABLES[0]} {{}} {money(total)}"]
    rows += [
        f"#TRANS {account} {{{COST_CENTRE_DIMENSION} {quote(cc)}}} {money(-value)}"
        for (account, cc), value in sorted(revenue.items())
        if value
    ]
    rows += [f"#TRANS {account} {{}} {money(-value)}" for account, value in sorted(vat.items()) if value]
    return rows
