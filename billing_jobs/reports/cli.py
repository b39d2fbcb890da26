"""``chargeback report sla|budget|target|per-inhabitant|alerts``: reports for the shared
organisation and its members, as a table for people, CSV and JSON for machines, and a
self-contained HTML page to send on."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from billing_jobs.settings import BillingSettings
from chargeback.money import money
from chargeback.period import Period
from chargeback.settings import load_settings

if TYPE_CHECKING:
    from billing_jobs.reports.budget import BudgetRow

FORMAT_CHOICES = click.Choice(["table", "csv", "json", "html"])
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?|[0-9]+/[0-9]+")


@click.group("report")
@click.option(
    "--catalogue", type=click.Path(path_type=Path), help="catalogue YAML (default: CHARGEBACK_CATALOGUE)"
)
@click.pass_context
def report(ctx: click.Context, catalogue: Path | None) -> None:
    """Service level, budget, savings target, cost per inhabitant and usage alert reports."""
    ctx.obj = load_settings(BillingSettings, catalogue=catalogue)


def _period(value: str) -> Period:
    try:
        return Period.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from exc


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return value is None or isinstance(value, int | Decimal) or bool(_NUMBER.fullmatch(str(value)))


def emit(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    fmt: str,
    *,
    documents: Sequence[dict[str, Any]],
    html: str,
    output: Path | None,
) -> None:
    """Write the report in the chosen form to ``output`` or standard output.

    ``table``: aligned columns, numbers right-aligned; ``csv``: the same columns;
    ``json``: ``documents`` (with what does not fit in columns); ``html``: the page.
    """
    if fmt == "json":
        text = json.dumps(list(documents), indent=2, ensure_ascii=False) + "\n"
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([[_text(v) for v in row] for row in rows])
        text = buffer.getvalue()
    elif fmt == "html":
        text = html
    else:
        cells = [list(header), *[[_text(v) for v in row] for row in rows]]
        numeric = [all(_is_number(row[i]) for row in rows) for i in range(len(header))]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        text = "".join(
            "  ".join(
                c.rjust(w) if n else c.ljust(w) for c, w, n in zip(r, widths, numeric, strict=True)
            ).rstrip()
            + "\n"
            for r in cells
        )
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


_FORMAT = click.option("--format", "fmt", type=FORMAT_CHOICES, default="table", show_default=True)
_OUTPUT = click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="a file instead of standard output",
)


@report.command("sla")
@click.option("--period", required=True, help="calendar month, YYYY-MM")
@click.option("--municipality", "municipalities", multiple=True, help="only these (repeatable)")
@_FORMAT
@_OUTPUT
@click.pass_obj
def sla_cmd(
    settings: BillingSettings, period: str, municipalities: tuple[str, ...], fmt: str, output: Path | None
) -> None:
    """Service level per municipality: tickets by channel and priority, answer and resolution
    times in opening hours, first-contact resolution, against the catalogue's targets."""
    from zoneinfo import ZoneInfo

    from billing_jobs.reports.sla import sla_rows, tickets_in
    from billing_jobs.store import open_store
    from chargeback.catalogue import ServiceLevels, load_catalogue

    month = _period(period)
    catalogue = load_catalogue(settings.catalogue)
    levels = catalogue.service_levels or ServiceLevels()
    with open_store(settings) as store:
        rows = sla_rows(tickets_in(store, month, municipalities), levels, ZoneInfo(catalogue.timezone))
    priorities = sorted(levels.resolution_hours)
    header = [
        "municipality",
        "tickets",
        "phone",
        "e-mail",
        "portal",
        "outside_hours",
        "phone_answer_avg_s",
        "phone_answer_target_s",
        "phone_answer_met",
        "first_response_avg_min",
        "resolution_avg_h",
        "first_contact_pct",
        "first_contact_target_pct",
        "first_contact_met",
        *[f"{p}_within_{levels.resolution_hours[p]}h" for p in priorities],
    ]
    values = [
        [
            r.municipality,
            r.tickets,
            r.by_channel["phone"],
            r.by_channel["e-mail"],
            r.by_channel["portal"],
            r.opened_outside_hours,
            r.phone_answer_avg_s,
            r.phone_answer_target_s,
            r.phone_answer_met,
            r.first_response_avg_min,
            r.resolution_avg_h,
            r.first_contact_rate,
            r.first_contact_target,
            r.first_contact_met,
            *[f"{r.resolution_within_target[p][0]}/{r.resolution_within_target[p][1]}" for p in priorities],
        ]
        for r in rows
    ]
    documents = [
        {
            "period": str(month),
            "municipality": r.municipality,
            "tickets": r.tickets,
            "by_channel": dict(sorted(r.by_channel.items())),
            "by_priority": dict(sorted(r.by_priority.items())),
            "opened_outside_hours": r.opened_outside_hours,
            "phone_answered": r.phone_answered,
            "phone_answer_avg_s": _text(r.phone_answer_avg_s) or None,
            "phone_answer_target_s": r.phone_answer_target_s,
            "phone_answer_met": r.phone_answer_met,
            "first_response_avg_min": _text(r.first_response_avg_min) or None,
            "resolution_avg_h": _text(r.resolution_avg_h) or None,
            "resolved_first_contact": r.resolved_first_contact,
            "first_contact_pct": _text(r.first_contact_rate) or None,
            "first_contact_target_pct": str(r.first_contact_target),
            "first_contact_met": r.first_contact_met,
            "resolution_within_target": {
                p: {"within": w, "of": n, "target_hours": levels.resolution_hours[p]}
                for p, (w, n) in r.resolution_within_target.items()
            },
        }
        for r in rows
    ]
    html = ""
    if fmt == "html":
        from billing_jobs.reports.html import sla_page

        html = sla_page(month, catalogue, levels, rows)
    emit(header, values, fmt, documents=documents, html=html, output=output)


@report.command("budget")
@click.option("--budgets", "budget_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--period", required=True, help="the last month to count, YYYY-MM (its year is the budget year)"
)
@click.option(
    "--by",
    type=click.Choice(["service", "member"]),
    default="service",
    show_default=True,
    help="rows per municipality and service, or per member (every service added up; in the "
    "catalogue's report locale: bokmål for a NOK catalogue)",
)
@_FORMAT
@_OUTPUT
@click.pass_obj
def budget_cmd(
    settings: BillingSettings, budget_file: Path, period: str, by: str, fmt: str, output: Path | None
) -> None:
    """Budget against actual: invoiced months up to the period, forecast for the year at the
    current rate, and the variance against the budget."""
    from billing_jobs.reports.budget import BudgetError, budget_report, load_budgets
    from billing_jobs.store import open_store

    month = _period(period)
    budgets = load_budgets(budget_file)
    if budgets.year != month.year:
        raise BudgetError(f"{budget_file}: the budget is for {budgets.year}, the period {month} is not")
    with open_store(settings) as store:
        rows = budget_report(budgets, store.actual_by_month(budgets.year, through=month))
    if by == "member":
        _member_budget(settings, rows, month, budgets.year, fmt, output)
        return
    header = ["municipality", "service", "budget", "actual", "forecast", "variance"]
    values = [
        [r.municipality, r.service, *(money(x) for x in (r.budget, r.actual, r.forecast, r.variance))]
        for r in rows
    ]
    documents = [
        {
            "year": budgets.year,
            "through": str(month),
            "municipality": r.municipality,
            "service": r.service,
            "budget": money(r.budget),
            "actual": money(r.actual),
            "forecast": money(r.forecast),
            "variance": money(r.variance),
            "months": {p: money(a) for p, a in r.months.items()},
        }
        for r in rows
    ]
    html = ""
    if fmt == "html":
        from billing_jobs.reports.html import budget_page

        html = budget_page(month, budgets.year, rows)
    emit(header, values, fmt, documents=documents, html=html, output=output)


def _member_budget(
    settings: BillingSettings, rows: list[BudgetRow], month: Period, year: int, fmt: str, output: Path | None
) -> None:
    """``report budget --by member``: a row per municipality; the table and the page (with a
    total) in the catalogue's report locale (bokmål with ``1 911 785,62 kr`` for a NOK catalogue),
    CSV and JSON with plain amounts."""
    from billing_jobs.reports.budget import budget_by_member
    from billing_jobs.reports.html import (
        MEMBER_BUDGET_HEADER,
        member_budget_language,
        member_budget_local,
        member_budget_page,
        signed_percent,
    )
    from chargeback.catalogue import load_catalogue

    catalogue = load_catalogue(settings.catalogue)
    members = budget_by_member(rows)
    local = member_budget_local(catalogue)
    documents = [
        {
            "year": year,
            "through": str(month),
            "municipality": m.municipality,
            "budget": money(m.budget),
            "actual": money(m.actual),
            "forecast": money(m.forecast),
            "variance": money(m.variance),
            "variance_share": None if m.variance_share is None else str(m.variance_share),
        }
        for m in members
    ]
    if fmt == "table":
        header: Sequence[str] = MEMBER_BUDGET_HEADER[member_budget_language(local)]
        values: list[list[object]] = [
            [
                m.municipality,
                *(local.money(x) for x in (m.budget, m.actual, m.forecast, m.variance)),
                signed_percent(m.variance_share, local),
            ]
            for m in members
        ]
    else:
        header = ["municipality", "budget", "actual", "forecast", "variance", "variance_share"]
        values = [[d[k] if d[k] is not None else "" for k in header] for d in documents]
    html = member_budget_page(month, year, members, catalogue) if fmt == "html" else ""
    emit(header, values, fmt, documents=documents, html=html, output=output)


def _year(value: int) -> int:
    if not 1970 <= value <= 9999:
        raise click.BadParameter(f"{value} is not a year", param_hint="--year")
    return value


@report.command("target")
@click.option(
    "--baseline",
    "baseline_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="baseline YAML: baseline year, index series, members' baseline costs",
)
@click.option("--year", required=True, type=int, help="the year to report, e.g. 2026")
@_FORMAT
@_OUTPUT
@click.pass_obj
def target_cmd(
    settings: BillingSettings, baseline_file: Path, year: int, fmt: str, output: Path | None
) -> None:
    """The savings target: each member's baseline cost indexed to the year, less the target
    share, against the year's final runs and the forecast for the year; new and extended
    services shown apart."""
    from billing_jobs.reports.target import (
        HEADER,
        document,
        load_baseline,
        row_values,
        target_page,
        target_report,
    )
    from billing_jobs.store import open_store
    from chargeback.catalogue import load_catalogue

    _year(year)
    catalogue = load_catalogue(settings.catalogue)
    baseline = load_baseline(baseline_file, catalogue)
    if year <= baseline.baseline_year:
        raise click.BadParameter(
            f"{year} is not after the baseline year {baseline.baseline_year}", param_hint="--year"
        )
    with open_store(settings) as store:
        result = target_report(baseline, catalogue, year, store.actual_by_month(year))
    values = [row_values(r) for r in (*result.rows, result.total)]
    html = target_page(result) if fmt == "html" else ""
    emit(HEADER, values, fmt, documents=[document(result)], html=html, output=output)


@report.command("per-inhabitant")
@click.option("--year", type=int, help="the year to report, e.g. 2026 (default: the year of --period)")
@click.option("--period", help="only this month, YYYY-MM; default: every month of the year and the year")
@click.option(
    "--service", "services", multiple=True, help="only these services (repeatable; * = all services)"
)
@_FORMAT
@_OUTPUT
@click.pass_obj
def per_inhabitant_cmd(
    settings: BillingSettings,
    year: int | None,
    period: str | None,
    services: tuple[str, ...],
    fmt: str,
    output: Path | None,
) -> None:
    """IT cost per inhabitant per member, per service (and * for all services), per month and
    for the year, with the organisation's average beside each member."""
    from billing_jobs.reports.per_inhabitant import (
        HEADER,
        document,
        per_inhabitant_page,
        per_inhabitant_rows,
        row_values,
    )
    from billing_jobs.store import open_store
    from chargeback.catalogue import load_catalogue

    month = _period(period) if period else None
    if year is None:
        if month is None:
            raise click.UsageError("give --year (e.g. --year 2026) or --period (e.g. --period 2026-10)")
        year = month.year
    _year(year)
    if month is not None and month.year != year:
        raise click.BadParameter(f"{month} is not in {year}", param_hint="--period")
    catalogue = load_catalogue(settings.catalogue)
    with open_store(settings) as store:
        rows = per_inhabitant_rows(catalogue, year, store.actual_by_month(year))
    if month is not None:
        rows = [r for r in rows if r.period == str(month)]
    if services:
        rows = [r for r in rows if r.service in services]
    html = per_inhabitant_page(year, rows) if fmt == "html" else ""
    emit(
        HEADER,
        [row_values(r) for r in rows],
        fmt,
        documents=[document(r) for r in rows],
        html=html,
        output=output,
    )


ALERTS_EXIT_CODE = 3  # some alerts: for schedulers (0: none)


@report.command("alerts")
@click.option("--period", required=True, help="calendar month, YYYY-MM")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "prometheus"]),
    default="table",
    show_default=True,
    help="prometheus: the text format for node_exporter's textfile collector",
)
@_OUTPUT
@click.pass_context
def alerts_cmd(ctx: click.Context, period: str, fmt: str, output: Path | None) -> None:
    """Usage alerts of a month: a member's usage of a service changed beyond the threshold since
    the month before, or a source silent for more than the allowed working days. Exit code 0
    when there are none, 3 when there are some."""
    from datetime import datetime

    from billing_jobs.reports.alerts import alert_document, month_alerts, prometheus_text, thresholds_for
    from billing_jobs.store import open_store
    from chargeback.catalogue import load_catalogue

    settings: BillingSettings = ctx.obj
    month = _period(period)
    catalogue = load_catalogue(settings.catalogue)
    thresholds = thresholds_for(catalogue, settings.alert_change, settings.alert_silent_working_days)
    today = datetime.now(catalogue.tz).date()
    if month.first_day > today:
        raise click.BadParameter(f"{month} has not begun", param_hint="--period")
    with open_store(settings) as store:
        alerts = month_alerts(store, catalogue, month, today, thresholds)
    if fmt == "json":
        text = json.dumps([alert_document(month, a) for a in alerts], indent=2, ensure_ascii=False) + "\n"
    elif fmt == "prometheus":
        text = prometheus_text(month, alerts)
    elif alerts:
        text = "".join(f"{a.kind:<7} {a.message}\n" for a in alerts)
    else:
        text = f"no usage alerts for {month}\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        # Written whole, then renamed: a textfile collector never reads half a file.
        partial = output.with_name(output.name + ".tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(output)
        click.echo(f"wrote {output}", err=True)
    if alerts:
        # SystemExit, not ctx.exit: the command line runs click without standalone mode, where
        # ctx.exit's code would be returned instead of becoming the process's exit code.
        sys.exit(ALERTS_EXIT_CODE)
