"""KID payment references: mod 10 (Luhn) and mod 11 check digits, exact values."""

from __future__ import annotations

import pytest

from billing_jobs.formats.kid import invoice_kid, kid_number, luhn_digit, mod11_digit


def test_luhn_check_digits() -> None:
    assert luhn_digit("7992739871") == "3"  # the textbook example
    assert kid_number("1234567", "mod10") == "12345674"
    assert kid_number("0", "mod10") == "00"


def test_mod11_check_digits_with_0_for_11_and_dash_for_10() -> None:
    # weights 2..7 from the right: the Norwegian account 4530.12.34566 and org. number 921 500 017
    assert (mod11_digit("4530123456"), mod11_digit("92150001")) == ("6", "7")
    assert kid_number("1234567", "mod11") == "12345674"
    assert mod11_digit("11") == "6"  # 1x2 + 1x3 = 5: 11 - 5
    assert mod11_digit("28") == "0"  # 8x2 + 2x3 = 22, remainder 0: 11, written 0
    assert mod11_digit("6") == "-"  # 6x2 = 12, remainder 1: 10, written -


def test_an_invoices_kid_is_its_month_and_municipality_with_the_check_digit() -> None:
    assert invoice_kid("2026-10", "1870", "mod10") == "20261018707"
    assert invoice_kid("2026-10", "1870", "mod11") == "20261018706"
    assert [invoice_kid("2026-11", code, "mod10") for code in ("1866", "1867", "1868", "1870", "1871")] == [
        "20261118663",  # 2026111866: 6x2=12 -> 3, 6, 8x2=16 -> 7, 1, 1x2, 1, 6x2 -> 3, 2, 0, 2 = 27 -> 3
        "20261118671",
        "20261118689",
        "20261118705",  # 2026111870: 0, 7, 8x2 -> 7, 1, 2, 1, 3, 2, 0, 2 = 25 -> 5
        "20261118713",
    ]


def test_a_kid_is_digits_only() -> None:
    with pytest.raises(ValueError, match="a KID is made of digits, not '12a'"):
        kid_number("12a", "mod10")
