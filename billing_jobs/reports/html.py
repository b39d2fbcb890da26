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
    label = {r.municipality: f"{r.municipality} {names.get(r.municipality, '')}".strip() for r in rows}
    # Two tables, so that the page fits an A4 width: the tickets, then the targets.
    volumes = table(
        ["Municipality", "Tickets", "Phone", "E-mail", "Portal", "Opened outside hours"],
        [
            [
                label[r.municipality],
                r.tickets,
                r.by_channel["phone"],
                r.by_channel["e-mail"],
                r.by_channel["portal"],
                r.opened_outside_hours,
            ]
            for r in rows
        ],
    )
    targets = table(
        [
            "Municipality",
            "Phone answer (s)",
            f"≤ {levels.phone_answer_seconds} s",
            "First response (min)",
            "Resolution (h)",
            "First contact (%)",
            f"≥ {levels.first_contact_resolution * 100:.0f} %",
            *[f"{p} within {levels.resolution_hours[p]} h" for p in priorities],
        ],
        [
            [
                label[r.municipality],
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
    rows_table = f"<h2>Tickets</h2>\n{volumes}<h2>Against the targets</h2>\n{targets}"
    hours = f"opening hours {levels.opens}–{levels.closes}, weekdays {', '.join(map(str, levels.weekdays))}"
    return page(
        f"Service level {period}",
        f"Closed tickets; times count within {hours} ({catalogue.timezone}).",
        rows_table,
        lang="en",
    )


def budget_page(through: Period, year: int, rows: Sequence[BudgetRow]) -> str:
    """Budget, actual, forecast and variance per municipality and service; months in columns."""
    months = [f"{year}-{m:02d}" for m in range(1, through.month + 1)]
    summary = table(
        ["Municipality", "Service", "Budget", "Actual", "Forecast", "Variance"],
        [
            [
                r.municipality,
                r.service,
                cents(r.budget),
                cents(r.actual),
                cents(r.forecast),
                cents(r.variance),
            ]
            for r in rows
        ],
    )
    # The invoiced months in tables of at most six, so that the page fits an A4 width.
    per_month = "".join(
        table(
            ["Municipality", "Service", *chunk],
            [
                [r.municipality, r.service, *[cents(r.months[m]) if m in r.months else None for m in chunk]]
                for r in rows
            ],
        )
        for chunk in (months[i : i + 6] for i in range(0, len(months), 6))
    )
    rows_table = f"{summary}<h2>Actual per month</h2>\n{per_month}"
    return page(
        f"Budget {year} against actual",
        f"Final runs through {through}; forecast = actual ÷ invoiced months × 12; amounts excl. VAT.",
        rows_table,
        lang="en",
    )
