"""The service-level and budget reports as self-contained HTML pages, built with the run report's
page and table helpers."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from billing_jobs.formats.html import page, table
from billing_jobs.formats.local import Local
from billing_jobs.reports.budget import BudgetRow, MemberBudget, variance_share
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


# The member budget page's words per language of the catalogue's report locale (bokmål for a NOK
# catalogue, else Swedish): members read it in their own language.
_MEMBER_BUDGET_WORDS = {
    "nb": {
        "title": "Budsjettkontroll {year}: fordeling per kommune",
        "subtitle": "Fakturert i endelige kjøringer til og med {month}; prognose = fakturert hittil ÷ "
        "fakturerte måneder × 12; avvik = prognose − årsbudsjett; beløp eksklusive mva.",
        "total": "Sum",
        "over": "over budsjett",
        "under": "innenfor budsjett",
    },
    "sv": {
        "title": "Budgetuppföljning {year} per kommun",
        "subtitle": "Fakturerat i slutliga körningar till och med {month}; prognos = fakturerat hittills ÷ "
        "fakturerade månader × 12; avvikelse = prognos − årsbudget; belopp exklusive moms.",
        "total": "Summa",
        "over": "över budget",
        "under": "inom budget",
    },
}
MEMBER_BUDGET_HEADER = {
    "nb": ("Kommune", "Årsbudsjett", "Fakturert hittil", "Prognose for året", "Avvik", "Avvik (%)"),
    "sv": ("Kommun", "Årsbudget", "Fakturerat hittills", "Prognos för året", "Avvikelse", "Avvikelse (%)"),
}


def member_budget_local(catalogue: Catalogue) -> Local:
    """The catalogue's report locale (nb_NO for a NOK catalogue, else sv_SE unless it says)."""
    return Local(catalogue.report_locale, catalogue.currency)


def member_budget_language(local: Local) -> str:
    """``nb`` or ``sv``: the page's words (Swedish for a language without its own)."""
    return local.language if local.language in _MEMBER_BUDGET_WORDS else "sv"


def signed_percent(share: Decimal | None, local: Local) -> str:
    """A variance share with its sign in the locale: ``+2,8 %``, ``-0,6 %``; a dash without one."""
    if share is None:
        return "–"
    return ("+" if share > 0 else "") + local.percent(share)


def member_budget_page(
    through: Period, year: int, members: Sequence[MemberBudget], catalogue: Catalogue
) -> str:
    """The year's budget per member against what is billed and the forecast, with a total row, in
    the catalogue's report locale: bokmål with ``1 911 785,62 kr`` for a NOK catalogue."""
    local = member_budget_local(catalogue)
    lang = member_budget_language(local)
    words = _MEMBER_BUDGET_WORDS[lang]
    names = {m.code: m.name for m in catalogue.municipalities}

    def row(label: str, budget: Decimal, actual: Decimal, forecast: Decimal) -> str:
        variance = forecast - budget
        share = variance_share(variance, budget)
        state = "missed" if variance > 0 else "met"
        cells = [local.money(budget), local.money(actual), local.money(forecast)]
        title = words["over"] if variance > 0 else words["under"]
        percent = signed_percent(share, local)
        return (
            f"<tr><td>{escape(label)}</td>"
            + "".join(f"<td class=n>{escape(c)}</td>" for c in cells)
            + f"<td class='n {state}' title='{escape(title)}'>{escape(local.money(variance))}</td>"
            + f"<td class=n>{escape(percent)}</td></tr>\n"
        )

    head = "".join(f"<th>{escape(h)}</th>" for h in MEMBER_BUDGET_HEADER[lang])
    body = "".join(
        row(f"{m.municipality} {names.get(m.municipality, '')}".strip(), m.budget, m.actual, m.forecast)
        for m in members
    )
    total = row(
        words["total"],
        sum((m.budget for m in members), Decimal(0)),
        sum((m.actual for m in members), Decimal(0)),
        sum((m.forecast for m in members), Decimal(0)),
    )
    rows_table = f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}{total}</tbody></table>\n"
    return page(
        words["title"].format(year=year),
        words["subtitle"].format(month=local.month(through)),
        rows_table,
        lang=local.language,
    )
