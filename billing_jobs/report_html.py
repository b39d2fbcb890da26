"""The service-level and budget reports as self-contained HTML pages (inline CSS, no scripts),
for finance and member municipalities to read and pass on."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from html import escape

from billing_jobs.budget import BudgetRow
from billing_jobs.exports import money
from billing_jobs.sla import SlaRow
from chargeback.catalogue import Catalogue, ServiceLevels
from chargeback.period import Period

_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1d2733}
h1{font-size:1.5rem;margin:0 0 .25rem}p.sub{color:#5b6672;margin:0 0 1.5rem}
table{border-collapse:collapse;margin:0 0 1.5rem}th,td{padding:.3rem .6rem;border-bottom:1px solid #dde3e9}
th{text-align:left;background:#f3f6f9}td.n{text-align:right;font-variant-numeric:tabular-nums}
.met{color:#11703b;font-weight:600}.missed{color:#b3261e;font-weight:600}
"""


def _page(title: str, subtitle: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="sv"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><h1>{escape(title)}</h1><p class=sub>{escape(subtitle)}</p>\n{body}</body></html>\n"
    )


def _cell(value: object) -> str:
    if value is None:
        return "<td class=n>–</td>"
    if isinstance(value, bool):
        return f"<td class={'met' if value else 'missed'}>{'met' if value else 'missed'}</td>"
    if isinstance(value, int | Decimal) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        return f"<td class=n>{escape(str(value))}</td>"
    return f"<td>{escape(str(value))}</td>"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>\n" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n"


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
    table = _table(
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
    return _page(
        f"Service level {period}",
        f"Closed tickets; times count within {hours} ({catalogue.timezone}).",
        table,
    )


def budget_page(through: Period, year: int, rows: Sequence[BudgetRow]) -> str:
    """Budget, actual, forecast and variance per municipality and service; months in columns."""
    months = [f"{year}-{m:02d}" for m in range(1, through.month + 1)]
    table = _table(
        ["Municipality", "Service", "Budget", *months, "Actual", "Forecast", "Variance"],
        [
            [
                r.municipality,
                r.service,
                money(r.budget),
                *[money(r.months[m]) if m in r.months else None for m in months],
                money(r.actual),
                money(r.forecast),
                money(r.variance),
            ]
            for r in rows
        ],
    )
    return _page(
        f"Budget {year} against actual",
        f"Final runs through {through}; forecast = actual ÷ invoiced months × 12; amounts excl. VAT.",
        table,
    )
