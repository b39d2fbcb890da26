"""Money and quantity text: the one formatting every export and report uses."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chargeback.money import (
    CENTS,
    QUANTITY,
    cents,
    money,
    quantity,
    round_money,
    round_quantity,
    signed_money,
)

D = Decimal


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0", "0.00"),
        ("12.5", "12.50"),
        ("-3", "-3.00"),
        ("1E+3", "1000.00"),
        ("0.125", "0.12"),
        ("0.135", "0.14"),
    ],
)
def test_money_has_exactly_two_decimals(value: str, text: str) -> None:
    # quantize with the context's rounding (half-even), as the exports always have
    assert money(D(value)) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0", "0"),
        ("0.000", "0"),
        ("10", "10"),
        ("10.500000", "10.5"),
        ("1E+2", "100"),
        ("12.333333", "12.333333"),
    ],
)
def test_quantity_has_no_exponent_nor_trailing_zeros(value: str, text: str) -> None:
    assert quantity(D(value)) == text


def test_quanta_and_rounding() -> None:
    assert D("0.01") == CENTS
    assert D("0.000001") == QUANTITY
    assert cents(D("2.345")) == D("2.34")
    assert round_money(D("2.345")) == D("2.35")
    assert round_quantity(D("0.0000005")) == D("0.000001")


def test_signed_money_shows_the_sign_of_a_change() -> None:
    assert [signed_money(D(v)) for v in ("310", "-3.005", "0", "0.125")] == [
        "+310.00",
        "-3.00",
        "+0.00",
        "+0.12",
    ]


@pytest.mark.parametrize(
    ("value", "places", "text"),
    [
        ("1911785.62", 2, "1 911 785,62"),
        ("95", 2, "95,00"),
        ("-1234.5", 2, "-1 234,50"),
        ("132000", None, "132 000"),
        ("448.322581", None, "448,322581"),
        ("2.000000", None, "2"),
        ("0.25", None, "0,25"),
    ],
)
def test_swedish_numbers(value: str, places: int | None, text: str) -> None:
    from chargeback.money import swedish

    assert swedish(D(value), places) == text
