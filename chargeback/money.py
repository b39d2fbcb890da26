"""Money and quantity as text, and their quanta: the one place every export and report formats them.

Amounts are kept to öre (``CENTS``, 0.01); billable quantities to six decimals (``QUANTITY``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENTS = Decimal("0.01")
QUANTITY = Decimal("0.000001")


def cents(value: Decimal) -> Decimal:
    """An amount to öre (the context's rounding: half-even), e.g. for a table cell."""
    return value.quantize(CENTS)


def money(value: Decimal) -> str:
    """An amount with exactly two decimals: ``12.50``, ``-3.00``."""
    return format(cents(value), "f")


def signed_money(value: Decimal) -> str:
    """An amount change with its sign and two decimals: ``+310.00``, ``-3.00``."""
    return f"{value:+.2f}"


def quantity(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: ``0.5``, ``10``, ``12.333333``."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def round_money(value: Decimal) -> Decimal:
    """To öre, half-up (the pricing rule)."""
    return value.quantize(CENTS, rounding=ROUND_HALF_UP)


def round_quantity(value: Decimal) -> Decimal:
    """To 6 decimals, half-up (the metering rule)."""
    return value.quantize(QUANTITY, rounding=ROUND_HALF_UP)


def swedish(value: Decimal, places: int | None = None) -> str:
    """A number as Swedish text: digits grouped by three with a space, a decimal comma;
    ``places`` fixes the decimals (2 for money: ``1 911 785,62``), None keeps them without trailing
    zeros (a quantity: ``448,322581``, ``2``)."""
    text = format(value.quantize(Decimal(1).scaleb(-places)), "f") if places is not None else quantity(value)
    sign = "-" if text.startswith("-") else ""
    whole, _, decimals = text.lstrip("-").partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    grouped = " ".join([whole, *groups])
    return sign + grouped + ("," + decimals if decimals else "")


def swedish_money(value: Decimal) -> str:
    """An amount as Swedish text with two decimals: ``2 × 95,00``, ``1 911 785,62``."""
    return swedish(value, 2)
