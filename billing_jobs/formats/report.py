"""Member reports (``billing export --format report``): one HTML page per member municipality,
``<run>.<municipality>.html``, and the organisation's overview, ``<run>.html``.

Pages are Jinja2 templates (``billing_jobs/templates``, autoescaped) in the catalogue's locale
(``formats.local``): amounts, quantities and dates as the reader writes them, service names,
subtotals per cost centre, each line's one-sentence explanation (``formats.summary``) with a link to
the member's specification (``<run>.<municipality>.specification.xlsx`` / ``.csv``, a draft's
``<run>.<municipality>.draft.specification.xlsx`` / ``.csv``: ``specification_names``), corrections
naming the month they correct and why, and a data-quality box (with the month's usage alerts,
gathered by the export command). Pages fit an A4 page (794 px at
96 dpi) and carry no script.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from billing_jobs.formats.html import bar_chart
from billing_jobs.formats.local import NBSP, Local
from billing_jobs.formats.specification import specification_names
from billing_jobs.formats.summary import line_summary
from billing_jobs.model import FINAL, REPRICED, SILENT, Alert, DataQuality, LateUsage, Line, Run
from chargeback.catalogue import Catalogue, Distributed, Flat
from chargeback.events import DEFAULT_COST_CENTRE
from chargeback.period import Period

ZERO = Decimal(0)
# A member's UNALLOCATED share above this is flagged in its data-quality box.
UNALLOCATED_WARNING_SHARE = Decimal("0.10")

_ENV = Environment(
    loader=PackageLoader("billing_jobs", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=False,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Page:
    """One page of the report: its file name, its municipality (None: the overview) and its HTML."""

    name: str
    municipality: str | None
    html: str


def _ranges(days: Sequence[date], local: Local) -> str:
    """Consecutive days as ranges: ``14–15 november 2026, 20 november 2026``."""
    out: list[tuple[date, date]] = []
    for d in sorted(days):
        if out and out[-1][1] + timedelta(days=1) == d:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return ", ".join(local.days(first, last) for first, last in out)


def _last_counted_day(run: Run, period: Period, catalogue: Catalogue) -> date:
    """The period's last day, or the day the run was made when that is earlier (a preview)."""
    made = run.changed_at.astimezone(catalogue.tz).date() if run.changed_at.tzinfo else run.changed_at.date()
    return max(period.first_day, min(period.last_day, made))


def _source_name(source: str) -> str:
    """A collector's source as people call it: ``urn:chargeback:collector:2183:devices`` is ``devices``."""
    return source.rsplit(":", 1)[-1] if source.startswith("urn:chargeback:collector:") else source


def _quality(
    code: str | None,
    lines: Sequence[Line],
    quality: DataQuality,
    period: Period,
    last_day: date,
    local: Local,
    limit: Decimal,
    catalogue: Catalogue,
) -> dict[str, Any]:
    w = local.words
    # Flat and distributed prices (and minimums without usage) are UNALLOCATED by design: the share
    # is of what usage was billed for, where a cost centre could have been known.
    try:
        prices = catalogue.price_list_for(period.first_day).prices
    except ValueError:
        prices = {}
    mine = [
        x
        for x in lines
        if (code is None or x.municipality == code)
        and x.quantity != 0
        and not isinstance(prices.get(x.service), Flat | Distributed)
    ]
    total = sum((x.amount for x in mine), ZERO)
    unallocated = sum((x.amount for x in mine if x.cost_centre == DEFAULT_COST_CENTRE), ZERO)
    share = unallocated / total if total > 0 else ZERO
    sources = [s for s in quality.sources if code is None or s.municipality == code]
    counted = [period.first_day + timedelta(days=i) for i in range((last_day - period.first_day).days + 1)]
    days_without = []
    label = {
        s: _source_name(s.source) if code is not None else f"{s.municipality} {_source_name(s.source)}"
        for s in sources
    }
    for s in sources:
        missing = [d for d in counted if d not in set(s.days)]
        days_without.append(
            {
                "source": label[s],
                "count": len(missing),
                "of": w["of_days"].format(days=len(counted)),
                "ranges": _ranges(missing, local),
            }
        )
    dead: dict[str, int] = defaultdict(int)
    for d in quality.dead_letters:
        if code is None or d.key == code:
            dead[d.reason] += d.count
    name = catalogue.municipality(code).name if code in catalogue.municipality_codes else code
    return {
        "municipality": None if code is None else f"{code} {name}",
        "unallocated_share": local.percent(share),
        "unallocated_amount": local.money(unallocated),
        "unallocated_warning": w["unallocated_warning"].format(limit=local.percent(limit))
        if share > limit
        else "",
        "unmapped": [
            {
                "source": label[s],
                "count": s.unallocated_subjects,
            }
            for s in sources
            if s.unallocated_subjects
        ],
        "dead_total": sum(dead.values()),
        "dead": [{"reason": r, "count": n} for r, n in sorted(dead.items())],
        "days_without": days_without,
        # The month's usage alerts: the member's own on its page, every member's on the overview.
        "alerts": [
            _alert_text(a, local, catalogue, with_member=code is None)
            for a in quality.alerts
            if code is None or a.municipality == code
        ],
    }


def _alert_text(alert: Alert, local: Local, catalogue: Catalogue, *, with_member: bool) -> str:
    """A usage alert in the report's language, with the catalogue's service name and the locale's
    numbers and dates (the English ``message`` is what the command line and JSON show)."""
    w = local.words
    member = f"{alert.municipality} " if with_member else ""
    if alert.kind == SILENT and alert.last_day is not None:
        return member + w["alert_silent"].format(
            source=_source_name(alert.source),
            days=alert.silent_working_days,
            last_day=local.day(alert.last_day),
            allowed=alert.allowed_working_days,
        )
    if alert.before is None or alert.now is None:
        return alert.message
    names = {s.id: s.name for s in catalogue.services}
    change = w["alert_new"] if alert.change_pct is None else local.signed_percent(alert.change_pct)
    return member + w["alert_change"].format(
        service=names.get(alert.service, alert.service),
        before=local.whole(alert.before),
        now=local.whole(alert.now),
        change=change,
        threshold=local.number(alert.threshold_pct or ZERO, 0) + NBSP + "%",
    )


def _correction_reason(line: Line, late: Sequence[LateUsage], local: Local) -> str:
    w = local.words
    assert line.corrects_period is not None
    found = [
        x
        for x in late
        if (x.municipality, x.cost_centre, x.service, x.period)
        == (line.municipality, line.cost_centre, line.service, line.corrects_period)
    ]
    head = f"{w['correction']} {local.month(line.corrects_period)}"
    if not found:
        return f"{head}: {w['repricing']}"
    first = min(x.first_day for x in found)
    last = max(x.last_day for x in found)
    events = sum(x.events for x in found)
    noun = w["event"] if events == 1 else w["events"]
    late_text = f"{w['late_usage']} {local.days(first, last)} ({local.whole(events)} {noun})"
    # Repriced as well, at finance's request (--reprice-invoiced): the line says both.
    return f"{head}: {late_text}; {w['repricing']}" if REPRICED in line.reason else f"{head}: {late_text}"


def member_page(
    run: Run,
    code: str,
    lines: Sequence[Line],
    catalogue: Catalogue,
    seller_name: str,
    quality: DataQuality,
    *,
    limit: Decimal = UNALLOCATED_WARNING_SHARE,
) -> str:
    """One member's page; ``lines`` are the run's lines (the member's are picked out)."""
    local = Local(catalogue.report_locale, run.currency)
    w = local.words
    period = Period.parse(run.period)
    mine = [x for x in lines if x.municipality == code]
    names = {s.id: s.name for s in catalogue.services}
    xlsx, csv = specification_names(run, code)
    same_service: dict[str, list[Line]] = defaultdict(list)
    for x in mine:
        if x.corrects_period is None:
            same_service[x.service].append(x)
    centres: dict[str, list[Line]] = defaultdict(list)
    for x in mine:
        centres[x.cost_centre].append(x)
    centre_rows = []
    for cc, own in sorted(centres.items()):
        rows = []
        for x in own:
            if x.corrects_period is None:
                why = line_summary(x, same_service[x.service], catalogue, period, local)
            else:
                why = _correction_reason(x, quality.late_usage, local)
            rows.append(
                {
                    "service": names.get(x.service, x.service),
                    "service_id": x.service,
                    "quantity": f"{local.number(x.quantity)} {x.unit}",
                    "unit_price": local.price(x.unit_price) if x.unit_price is not None else "–",
                    "amount": local.money(x.amount),
                    "explanation": why,
                    "href": xlsx,
                    "correction": x.corrects_period is not None,
                }
            )
        centre_rows.append(
            {"code": cc, "rows": rows, "subtotal": local.money(sum((x.amount for x in own), ZERO))}
        )
    excl = sum((x.amount for x in mine), ZERO)
    vat = sum((x.vat_amount for x in mine), ZERO)
    name = catalogue.municipality(code).name if code in catalogue.municipality_codes else code
    return _ENV.get_template("member.html.j2").render(
        lang=local.language,
        w=w,
        title=f"{w['title']} {local.month(period)} – {name}",
        subtitle=_subtitle(run, seller_name, local),
        draft=run.status != FINAL,
        totals={"excl": local.money(excl), "vat": local.money(vat), "total": local.money(excl + vat)},
        specification=[{"name": xlsx, "href": xlsx}, {"name": csv, "href": csv}],
        centres=centre_rows,
        quality=_quality(
            code, lines, quality, period, _last_counted_day(run, period, catalogue), local, limit, catalogue
        ),
    )


def _subtitle(run: Run, seller_name: str, local: Local) -> str:
    w = local.words
    about = f"{w['run']} {run.run_id}, {local.status(run.status)}, {w['price_list']} {run.price_list}"
    # Without a parties file there is no seller to name.
    return f"{w['generated_for'].format(seller=seller_name)}; {about}" if seller_name else about


def overview_page(
    run: Run,
    lines: Sequence[Line],
    catalogue: Catalogue,
    seller_name: str,
    quality: DataQuality,
    previous: tuple[Run, Sequence[Line]] | None,
    *,
    limit: Decimal = UNALLOCATED_WARNING_SHARE,
) -> str:
    """The organisation's page: each member's totals (linked to its page), cost per service, change
    against the previous month, and each member's data quality."""
    local = Local(catalogue.report_locale, run.currency)
    w = local.words
    period = Period.parse(run.period)
    names = {s.id: s.name for s in catalogue.services}
    members = {m.code: m.name for m in catalogue.municipalities}
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    per_service: dict[str, Decimal] = defaultdict(Decimal)
    for x in lines:
        excl, vat = totals.get(x.municipality, (ZERO, ZERO))
        totals[x.municipality] = (excl + x.amount, vat + x.vat_amount)
        per_service[x.service] += x.amount
    grand_excl = sum((t[0] for t in totals.values()), ZERO)
    grand_vat = sum((t[1] for t in totals.values()), ZERO)
    chart = bar_chart(
        sorted(((names.get(s, s), a) for s, a in per_service.items()), key=lambda b: (-b[1], b[0])),
        value_text=local.money,
    )
    change = None
    if previous is not None:
        before_run, before_lines = previous
        before: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for x in before_lines:
            before[(x.municipality, x.service)] += x.amount
        now: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for x in lines:
            if x.corrects_period is None:  # corrections belong to the month they correct
                now[(x.municipality, x.service)] += x.amount
        rows = []
        for key in sorted(set(now) | set(before)):
            b, n = before.get(key), now.get(key, ZERO)
            if b is None:
                diff = w["new"]
            elif b:
                sign = "+" if n >= b else ""
                diff = f"{sign}{local.money(n - b)} ({sign}{local.percent((n - b) / b)})"
            else:
                diff = f"{'+' if n >= 0 else ''}{local.money(n)}"
            rows.append(
                {
                    "municipality": f"{key[0]} {members.get(key[0], '')}".strip(),
                    "service": names.get(key[1], key[1]),
                    "before": local.money(b) if b is not None else "–",
                    "now": local.money(n),
                    "change": diff,
                }
            )
        change = {
            "intro": w["against_run"].format(
                run=before_run.run_id,
                status=local.status(before_run.status),
                period=local.month(before_run.period),
            ),
            "before": local.month(before_run.period),
            "now": local.month(period),
            "rows": rows,
        }
    last_day = _last_counted_day(run, period, catalogue)
    return _ENV.get_template("overview.html.j2").render(
        lang=local.language,
        w=w,
        title=f"{w['title']} {local.month(period)} – {w['overview']}",
        subtitle=_subtitle(run, seller_name, local),
        draft=run.status != FINAL,
        members=[
            {
                "name": f"{code} {members.get(code, '')}".strip(),
                "href": f"{run.run_id}.{code}.html",
                "excl": local.money(excl),
                "vat": local.money(vat),
                "total": local.money(excl + vat),
            }
            for code, (excl, vat) in sorted(totals.items())
        ],
        totals={
            "excl": local.money(grand_excl),
            "vat": local.money(grand_vat),
            "total": local.money(grand_excl + grand_vat),
        },
        chart=Markup(chart),  # bar_chart escapes every label itself
        change=change,
        qualities=[_quality(None, lines, quality, period, last_day, local, limit, catalogue)],
    )


def report_pages(
    run: Run,
    lines: Sequence[Line],
    catalogue: Catalogue,
    seller_name: str,
    quality: DataQuality,
    previous: tuple[Run, Sequence[Line]] | None,
    *,
    limit: Decimal = UNALLOCATED_WARNING_SHARE,
) -> list[Page]:
    """The overview and one page per municipality with lines in the run."""
    pages = [
        Page(
            f"{run.run_id}.html",
            None,
            overview_page(run, lines, catalogue, seller_name, quality, previous, limit=limit),
        )
    ]
    for code in sorted({x.municipality for x in lines}):
        html = member_page(run, code, lines, catalogue, seller_name, quality, limit=limit)
        pages.append(Page(f"{run.run_id}.{code}.html", code, html))
    return pages


__all__ = [
    "UNALLOCATED_WARNING_SHARE",
    "Page",
    "member_page",
    "overview_page",
    "report_pages",
    "specification_names",
]
