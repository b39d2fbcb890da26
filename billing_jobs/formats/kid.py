"""KID (kundeidentifikasjonsnummer): the Norwegian payment reference, digits with a check digit
by mod 10 (Luhn) or mod 11, as banks verify it before they accept a payment."""

from __future__ import annotations

from typing import Literal

KidMethod = Literal["mod10", "mod11"]


def luhn_digit(digits: str) -> str:
    """The mod 10 (Luhn) check digit of ``digits``: from the right, every other digit doubled
    (its digits added), the sum brought up to the next ten."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str(-total % 10)


def mod11_digit(digits: str) -> str:
    """The mod 11 check digit of ``digits``: weights 2, 3, 4, 5, 6, 7 repeating from the right;
    11 less the remainder, 0 for 11 and ``-`` for 10 (as KID writes it)."""
    total = sum(int(char) * (2 + position % 6) for position, char in enumerate(reversed(digits)))
    check = 11 - total % 11
    return "0" if check == 11 else "-" if check == 10 else str(check)


def kid_number(base: str, method: KidMethod) -> str:
    """``base`` (digits only) with its check digit."""
    if not base.isdigit() or not base.isascii():
        raise ValueError(f"a KID is made of digits, not {base!r}")
    return base + (luhn_digit(base) if method == "mod10" else mod11_digit(base))


def invoice_kid(period: str, municipality: str, method: KidMethod) -> str:
    """The KID of a member's invoice for a month: the month (YYYYMM), the municipality code and
    the check digit, e.g. 2026-10 and 1870 by mod 10: ``2026101870`` + ``7``."""
    return kid_number(period.replace("-", "") + municipality, method)
