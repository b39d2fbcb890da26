"""The service-level and budget reports as self-contained HTML pages, built with the run report's
page and table helpers."""

from __future__ import annotations

from collections.abc import Sequence

from billing_jobs.formats.html import page, table
from billing_jobs.reports.budget import BudgetRow
from billing_jobs.reports.sla import SlaRow
from chargeback.catalogue import Catalogue, ServiceLevels
from chargeback.money import cents
from chargeback.period import Period


def sla_page(period: Period, catalogue: Catalogue, levels: ServiceLevels, rows: Sequence[SlaRow]) -> str:
    """Service level per municipality against the targets, one table."""
    names = {m.code: m.name for m in catalogue.municipalities}
    priorities = sorted(levels.resolution_hours)
    header = [
        "Municipality",
        "Tickets",
        "Phone",
        "E-mail",
        "Portal",
        "Opened outside hours",
        "Phone answer (s)",
        f"≤ {levels.phone_answer_seconds} s",
        "First response (min)",
        "Resolution (h)",
        "First contact (%)",
        f"≥ {levels.first_contact_resolution * 100:.0f} %",
        *[f"{p} within {levels.resolution_hours[p]} h" for p in priorities],
    ]
    rows_table = table(
        header,
        [
            [
                f"{r.municipality} {names.get(r.municipality, '')}".strip(),
                r.tickets,
                r.by_channel["phone"],
                r.by_channel["e-mail"],
                r.by_channel["portal"],
                r.opened_outside_hours,
                r.phone_answer_avg_s,
                r.phone_answer_met,
                r.first_response_avg_min,
                r.resolution_avg_h,
                r.first_contact_rate,
                r.first_contact_met,
                *[
                    f"{r.resolution_within_target[p][0]} / {r.resolution_within_target[p][1]}"
                    for p in priorities
                ],
            ]
            for r in rows
        ],
    )
    hours = f"opening hours {levels.opens}–{levels.closes}, weekdays {', '.join(map(str, levels.weekdays))}"
    return page(
        f"Service level {period}",
        f"Closed tickets; times count within {hours} ({catalogue.timezone}).",
        rows_table,
    )


def budget_page(through: Period, year: int, rows: Sequence[BudgetRow]) -> str:
    """Budget, actual, forecast and variance per municipality and service; months in columns."""
    months = [f"{year}-{m:02d}" for m in range(1, through.month + 1)]
    rows_table = table(
        ["Municipality", "Service", "Budget", *months, "Actual", "Forecast", "Variance"],
        [
            [
                r.municipality,
                r.service,
                cents(r.budget),
                *[cents(r.months[m]) if m in r.months else None for m in months],
                cents(r.actual),
                cents(r.forecast),
                cents(r.variance),
            ]
            for r in rows
        ],
    )
    return page(
        f"Budget {year} against actual",
        f"Final runs through {through}; forecast = actual ÷ invoiced months × 12; amounts excl. VAT.",
        rows_table,
    )
