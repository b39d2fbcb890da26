"""Budget against actual: forecast at the current rate and variance, to the öre."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from billing_jobs.reports.budget import BudgetError, BudgetRow, Budgets, budget_report, load_budgets

D = Decimal


def test_forecast_is_the_invoiced_months_rate_times_twelve() -> None:
    budgets = Budgets(
        year=2026, budgets={"2183": {"pc-standard": D("40000.00"), "storage-file": D("5000.00")}}
    )
    actual = {
        ("2183", "pc-standard"): {"2026-01": D("3100.00"), "2026-02": D("3410.00"), "2026-03": D("3255.50")},
        ("2184", "pc-standard"): {"2026-03": D("100.00")},
    }
    assert budget_report(budgets, actual) == [
        # 9765.50 / 3 months x 12 = 39062.00; variance -938.00
        BudgetRow(
            "2183",
            "pc-standard",
            D("40000.00"),
            actual[("2183", "pc-standard")],
            D("9765.50"),
            D("39062.00"),
            D("-938.00"),
        ),
        BudgetRow("2183", "storage-file", D("5000.00"), {}, D(0), D("0.00"), D("-5000.00")),
        # not budgeted at all: the whole forecast is variance (100.00 / 3 x 12 = 400.00)
        BudgetRow(
            "2184", "pc-standard", D(0), {"2026-03": D("100.00")}, D("100.00"), D("400.00"), D("400.00")
        ),
    ]


def test_budget_file_amounts_must_be_quoted(tmp_path: Path) -> None:
    good = tmp_path / "b.yaml"
    good.write_text('year: 2026\nbudgets:\n  "2183": {pc-standard: "40000.00"}\n')
    assert load_budgets(good).budgets == {"2183": {"pc-standard": D("40000.00")}}
    bad = tmp_path / "bad.yaml"
    bad.write_text('year: 2026\nbudgets:\n  "2183": {pc-standard: 40000.10}\n')
    with pytest.raises(BudgetError, match="must be quoted to be exact"):
        load_budgets(bad)
