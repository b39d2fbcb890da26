"""SIE 4 export of a billing run: one voucher per municipality for Swedish accounting systems.

Each voucher (``#VER``) credits the catalogue's revenue account of every service per cost centre
(``#OBJEKT`` of dimension 1, kostnadsställe), credits output VAT per rate, and debits accounts
receivable with the total including VAT, so it balances to exactly 0.00. The file is encoded as
the format requires: IBM PC 8-bit (code page 437), CRLF line ends.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing_jobs.model import Line, Run
from chargeback.catalogue import Catalogue
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


@dataclass(frozen=True)
class Seller:
    """Who issues the vouchers (the shared IT organisation)."""

    name: str
    org_number: str | None = None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chargeback")
    except PackageNotFoundError:
        return "0"


def quote(text: str) -> str:
    """A SIE string: in double quotes, embedded quotes and backslashes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_sie(run: Run, lines: Sequence[Line], catalogue: Catalogue, seller: Seller) -> bytes:
    """The run as one SIE 4 file (bytes in code page 437, CRLF)."""
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
                raise ValueError(f"no output VAT account for rate {line.vat_rate}")
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
        out.append(f"#ORGNR {seller.org_number}")
    out.append(f"#RAR 0 {period.year}0101 {period.year}1231")
    out += [f"#KONTO {number} {quote(name)}" for number, name in sorted(accounts.items())]
    out.append(f'#DIM {COST_CENTRE_DIMENSION} "Kostnadsställe"')
    out += [f"#OBJEKT {COST_CENTRE_DIMENSION} {quote(cc)} {quote(cc)}" for cc in sorted(cost_centres)]
    voucher_day = f"{period.last_day:%Y%m%d}"
    for number, code in enumerate(sorted(by_municipality), start=1):
        name = catalogue.municipality(code).name if code in catalogue.municipality_codes else code
        out.append(f'#VER "A" {number} {voucher_day} {quote(f"{name} {run.period}")}')
        out.append("{")
        out.extend(_transactions(by_municipality[code], catalogue))
        out.append("}")
    text = "\r\n".join(out) + "\r\n"
    return text.encode("cp437", errors="replace")


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
