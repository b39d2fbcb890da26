"""IT cost per inhabitant: per member, per service and in total, per month and for the year, with
the organisation's average beside each member (docs/finance.md, "IT cost per inhabitant").

- cost = lines of final runs (corrections in the month they correct), excluding VAT;
- inhabitants = the catalogue's value in force on the first day of the month (of the year, for
  the year's figure);
- per inhabitant = cost ÷ inhabitants, to öre half-up;
- the organisation's average = the cost of all members billed in the period ÷ their inhabitants
  (weighted by inhabitants, not a mean of the members' figures), to öre half-up.

The analyst view ``v_cost_per_inhabitant`` (sql/006) computes the same by month from the synced
catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from billing_jobs.formats.html import page, table
from billing_jobs.reports.target import A4
from chargeback.catalogue import Catalogue
from chargeback.money import cents, money, round_money

ALL = "*"  # the service of a member's total (no service id can be "*")


@dataclass(frozen=True)
class PerInhabitantRow:
    """One member's cost of one service (or ``ALL``) in a month (``YYYY-MM``) or the year (``YYYY``)."""

    period: str
    municipality: str
    name: str
    service: str
    cost: Decimal
    inhabitants: int
    per_inhabitant: Decimal
    organisation_cost: Decimal
    organisation_inhabitants: int
    organisation_per_inhabitant: Decimal


def _inhabitants(catalogue: Catalogue, code: str, day: date) -> int:
    municipality = catalogue.municipality(code)
    found = municipality.inhabitants_on(day)
    return found if found is not None else municipality.inhabitants[0].value


def per_inhabitant_rows(
    catalogue: Catalogue, year: int, actual: Mapping[tuple[str, str], Mapping[str, Decimal]]
) -> list[PerInhabitantRow]:
    """Rows per month with final lines and for the year: per member, its services and ``ALL``;
    sorted by period (months, then the year), municipality and service (``ALL`` first).
    ``actual``: the store's ``actual_by_month`` of the year. Municipalities no longer in the
    catalogue have no inhabitants and are left out."""
    known = set(catalogue.municipality_codes)
    costs: dict[tuple[str, str, str], Decimal] = {}
    for (municipality, service), per_month in actual.items():
        if municipality not in known:
            continue
        for period, amount in per_month.items():
            for p in (period, str(year)):
                for s in (service, ALL):
                    costs[(p, municipality, s)] = costs.get((p, municipality, s), Decimal(0)) + amount
    periods = sorted({p for p, _, _ in costs}, key=lambda p: (len(p) == 4, p))
    rows = []
    for period in periods:
        first_day = date(year, 1, 1) if len(period) == 4 else date(year, int(period[5:7]), 1)
        members = sorted({m for p, m, _ in costs if p == period})
        inhabitants = {m: _inhabitants(catalogue, m, first_day) for m in members}
        org_inhabitants = sum(inhabitants.values())
        services = sorted({s for p, _, s in costs if p == period}, key=lambda s: (s != ALL, s))
        for service in services:
            org_cost = sum((costs.get((period, m, service), Decimal(0)) for m in members), Decimal(0))
            org_per = round_money(org_cost / org_inhabitants)
            for m in members:
                cost = costs.get((period, m, service), Decimal(0))
                rows.append(
                    PerInhabitantRow(
                        period,
                        m,
                        catalogue.municipality(m).name,
                        service,
                        cost,
                        inhabitants[m],
                        round_money(cost / inhabitants[m]),
                        org_cost,
                        org_inhabitants,
                        org_per,
                    )
                )
    return rows


HEADER = (
    "period",
    "municipality",
    "name",
    "service",
    "cost",
    "inhabitants",
    "per_inhabitant",
    "organisation_per_inhabitant",
)


def row_values(row: PerInhabitantRow) -> list[object]:
    """A row as the table and CSV show it."""
    return [
        row.period,
        row.municipality,
        row.name,
        row.service,
        money(row.cost),
        row.inhabitants,
        money(row.per_inhabitant),
        money(row.organisation_per_inhabitant),
    ]


def document(row: PerInhabitantRow) -> dict[str, Any]:
    """A row as JSON."""
    return {
        "period": row.period,
        "municipality": row.municipality,
        "name": row.name,
        "service": row.service,
        "cost": money(row.cost),
        "inhabitants": row.inhabitants,
        "per_inhabitant": money(row.per_inhabitant),
        "organisation_cost": money(row.organisation_cost),
        "organisation_inhabitants": row.organisation_inhabitants,
        "organisation_per_inhabitant": money(row.organisation_per_inhabitant),
    }


def per_inhabitant_page(year: int, rows: Sequence[PerInhabitantRow]) -> str:
    """Three tables narrow enough for an A4 page: the year per member; the year per service with a
    column per member and the average; the months' totals with a column per member and the average."""
    members = sorted({(r.municipality, r.name) for r in rows})
    year_rows = [r for r in rows if r.period == str(year)]
    body = "<h2>The year, all services</h2>\n" + table(
        ["Member", "Inhabitants", "Cost", "Per inhabitant", "Organisation", "Difference"],
        [
            [
                f"{r.municipality} {r.name}",
                r.inhabitants,
                cents(r.cost),
                cents(r.per_inhabitant),
                cents(r.organisation_per_inhabitant),
                cents(r.per_inhabitant - r.organisation_per_inhabitant),
            ]
            for r in year_rows
            if r.service == ALL
        ],
    )

    def grid(selected: Sequence[PerInhabitantRow], key: str) -> list[list[object]]:
        keys = sorted({getattr(r, key) for r in selected}, key=lambda k: (k == ALL, k))
        out: list[list[object]] = []
        for k in keys:
            mine = {r.municipality: r for r in selected if getattr(r, key) == k}
            first = next(iter(mine.values()))
            out.append(
                [
                    "all services" if k == ALL else k,
                    *[cents(mine[m].per_inhabitant) if m in mine else None for m, _ in members],
                    cents(first.organisation_per_inhabitant),
                ]
            )
        return out

    columns = [name for _, name in members]
    body += "<h2>The year per service, per inhabitant</h2>\n" + table(
        ["Service", *columns, "Organisation"], grid(year_rows, "service")
    )
    body += "<h2>Months, all services, per inhabitant</h2>\n" + table(
        ["Month", *columns, "Organisation"],
        grid([r for r in rows if r.service == ALL and r.period != str(year)], "period"),
    )
    return page(
        f"IT cost per inhabitant {year}",
        "Final runs (corrections in the month they correct), excl. VAT, ÷ inhabitants on the first day "
        "of the period; the organisation's figure is all members' cost ÷ all members' inhabitants.",
        A4 + body,
    )
