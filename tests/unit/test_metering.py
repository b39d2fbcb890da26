"""Metering rules: billable quantities from a period's sums.

The contract is docs/contract.md, "From events to billable quantities".
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing_jobs.metering import billable_quantity
from billing_jobs.model import PeriodTotals


def totals(event_sum: str = "0", subject_days: int = 0, daily_max_sum: str = "0") -> PeriodTotals:
    return PeriodTotals("2183", "BUF", "svc", Decimal(event_sum), subject_days, Decimal(daily_max_sum))


def test_ten_pcs_all_month_bill_as_ten() -> None:
    assert billable_quantity("daily_distinct", totals(subject_days=10 * 30), 30) == Decimal("10.000000")


def test_pc_added_on_the_16th_of_a_30_day_month_bills_half() -> None:
    assert billable_quantity("daily_distinct", totals(subject_days=15), 30) == Decimal("0.500000")


def test_share_with_100_gib_for_half_the_month_is_50_gib_months() -> None:
    assert billable_quantity("daily_max", totals(daily_max_sum="1500"), 30) == Decimal("50.000000")


def test_count_is_the_sum_of_quantities_not_divided() -> None:
    assert billable_quantity("count", totals(event_sum="1301.5"), 31) == Decimal("1301.500000")


@pytest.mark.parametrize(
    ("subject_days", "days", "expected"),
    [
        (47, 31, "1.516129"),  # 1.5161290322...
        (2, 3, "0.666667"),  # 0.6666666...: half-up rounds the 7th decimal up
        (1, 8_000_000, "0.000000"),  # 0.000000125 -> 0.000000
        (5, 8_000_000, "0.000001"),  # 0.000000625 -> 0.000001
    ],
)
def test_rounding_to_six_decimals_half_up(subject_days: int, days: int, expected: str) -> None:
    assert billable_quantity("daily_distinct", totals(subject_days=subject_days), days) == Decimal(expected)


def test_exact_half_at_the_seventh_decimal_rounds_up() -> None:
    # 0.0000005 x 2 days = 0.000001 summed maxima; / 2 = 0.0000005 -> 0.000001 (half-up, not banker's)
    assert billable_quantity("daily_max", totals(daily_max_sum="0.000001"), 2) == Decimal("0.000001")


def test_unknown_meter_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown meter: hourly"):
        billable_quantity("hourly", totals(), 30)
