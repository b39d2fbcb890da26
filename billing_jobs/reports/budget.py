"""Budget against actual: yearly budgets per municipality and service, the invoiced months, and
the forecast for the year at the current rate.

Actual = lines of final runs (the store's ``actual_by_month``), by the month they bill
(corrections count in the month they correct). Forecast = actual so far / invoiced months × 12.
Variance = forecast − budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from chargeback import yamlfile
from chargeback.catalogue import _exact
from chargeback.errors import UserError
from chargeback.money import round_money


class BudgetError(UserError):
    """A budget file that cannot be used."""

    code = "budget.invalid"


class Budgets(BaseModel):
    """``year`` and ``budgets[municipality][service]`` = the year's amount excluding VAT."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    year: int
    budgets: dict[str, dict[str, Decimal]]


def load_budgets(path: Path) -> Budgets:
    """Read a budget file; amounts must be quoted decimals, like the catalogue's."""
    try:
        raw = yamlfile.load_plain(path) or {}
        for per_service in (raw.get("budgets") or {}).values():
            for service, value in list(per_service.items()):
                per_service[service] = _exact(value)
        return Budgets.model_validate(raw)
    except yamlfile.YamlFileError as exc:
        raise BudgetError(str(exc)) from exc
    except (ValidationError, ValueError, AttributeError) as exc:
        raise BudgetError(f"{path}: {exc}") from exc


@dataclass(frozen=True)
class BudgetRow:
    """One municipality and service over the year."""

    municipality: str
    service: str
    budget: Decimal
    months: dict[str, Decimal]
    actual: Decimal
    forecast: Decimal
    variance: Decimal


def budget_report(budgets: Budgets, actual: dict[tuple[str, str], dict[str, Decimal]]) -> list[BudgetRow]:
    """Rows for every budgeted or invoiced municipality and service, sorted."""
    invoiced_months = len({p for months in actual.values() for p in months})
    keys = {(m, s) for m, per in budgets.budgets.items() for s in per} | set(actual)
    rows = []
    for municipality, service in sorted(keys):
        months = actual.get((municipality, service), {})
        total = sum(months.values(), Decimal(0))
        forecast = round_money(total / invoiced_months * 12) if invoiced_months else Decimal(0)
        budget = budgets.budgets.get(municipality, {}).get(service, Decimal(0))
        rows.append(
            BudgetRow(
                municipality,
                service,
                budget,
                dict(sorted(months.items())),
                total,
                forecast,
                forecast - budget,
            )
        )
    return rows


@dataclass(frozen=True)
class MemberBudget:
    """One municipality's year: its budget, what final runs billed so far, the forecast for the
    year at that rate, the variance (forecast − budget) and that as a share of the budget."""

    municipality: str
    budget: Decimal
    actual: Decimal
    forecast: Decimal
    variance: Decimal
    variance_share: Decimal | None  # variance ÷ budget, to 0.001; None without a budget


def budget_by_member(rows: list[BudgetRow]) -> list[MemberBudget]:
    """The budget report's rows added up per municipality (every service), sorted by code."""
    sums: dict[str, list[Decimal]] = {}
    for row in rows:
        total = sums.setdefault(row.municipality, [Decimal(0)] * 3)
        total[0] += row.budget
        total[1] += row.actual
        total[2] += row.forecast
    members = []
    for code, (budget, actual, forecast) in sorted(sums.items()):
        variance = forecast - budget
        members.append(
            MemberBudget(code, budget, actual, forecast, variance, variance_share(variance, budget))
        )
    return members


def variance_share(variance: Decimal, budget: Decimal) -> Decimal | None:
    """variance ÷ budget to 0.001 (a tenth of a per cent), half-up; None without a budget."""
    return (variance / budget).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP) if budget else None
