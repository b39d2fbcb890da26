"""Self-contained HTML pages (inline CSS, no scripts) for finance and member municipalities to
read and pass on: the page and table helpers every HTML report uses, and the run report
(``billing export --format report``)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from billing_jobs.model import FINAL, Line, Run
from chargeback.catalogue import Catalogue
from chargeback.money import cents, money, quantity, signed_money

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1d2733}
h1{font-size:1.5rem;margin:0 0 .25rem}p.sub{color:#5b6672;margin:0 0 1.5rem}
table{border-collapse:collapse;margin:0 0 1.5rem}th,td{padding:.3rem .6rem;border-bottom:1px solid #dde3e9}
th{text-align:left;background:#f3f6f9}td.n{text-align:right;font-variant-numeric:tabular-nums}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
.draft{background:#fff3cd;border:2px solid #b58100;padding:.5rem 1rem;font-weight:700}
.met{color:#11703b;font-weight:600}.missed{color:#b3261e;font-weight:600}
"""


def page(title: str, subtitle: str, body: str) -> str:
    """A whole HTML document: title, subtitle and body."""
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
    if isinstance(value, int | Decimal):
        return f"<td class=n>{escape(str(value))}</td>"
    return f"<td>{escape(str(value))}</td>"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A table; numbers right-aligned, None as a dash, booleans as met/missed."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>\n" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n"


# --- a billing run ------------------------------------------------------------------------------

_BAR = "#2f6db5"


def bar_chart(bars: Sequence[tuple[str, Decimal]], *, width: int = 720, bar_height: int = 22) -> str:
    """A horizontal bar chart as inline SVG: one labelled bar per (label, amount), largest first;
    bar lengths are proportional to the amounts (negative amounts draw no bar)."""
    label_width, value_width = 200, 130
    plot = width - label_width - value_width
    largest = max((amount for _, amount in bars), default=Decimal(0))
    rows = []
    for i, (label, amount) in enumerate(bars):
        y = i * (bar_height + 6)
        length = int(plot * amount / largest) if largest > 0 and amount > 0 else 0
        rows.append(
            f'<text x="{label_width - 8}" y="{y + bar_height - 6}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="bar" x="{label_width}" y="{y}" width="{length}" height="{bar_height}" '
            f'fill="{_BAR}"/>'
            f'<text x="{label_width + length + 6}" y="{y + bar_height - 6}">{money(amount)}</text>'
        )
    height = max(len(bars) * (bar_height + 6), bar_height)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="cost per service" font-size="13" font-family="sans-serif">{"".join(rows)}</svg>\n'
    )


def _change(now: Decimal, before: Decimal | None) -> str:
    if before is None:
        return "new"
    diff = now - before
    if not before:
        return signed_money(diff)
    return f"{signed_money(diff)} ({(diff * 100 / before).quantize(Decimal('0.1')):+}%)"


def run_page(
    run: Run,
    lines: Sequence[Line],
    catalogue: Catalogue,
    seller_name: str,
    previous: tuple[Run, Sequence[Line]] | None,
) -> str:
    """A billing run for people: totals per municipality, cost per service, change against the
    previous month's run, and every line."""
    names = {m.code: m.name for m in catalogue.municipalities}
    services = {s.id: s.name for s in catalogue.services}
    totals: dict[str, list[Decimal]] = {}
    per_service: dict[str, Decimal] = {}
    for line in lines:
        excl, vat = totals.setdefault(line.municipality, [Decimal(0), Decimal(0)])
        totals[line.municipality] = [excl + line.amount, vat + line.vat_amount]
        per_service[line.service] = per_service.get(line.service, Decimal(0)) + line.amount
    grand = [
        sum((t[0] for t in totals.values()), Decimal(0)),
        sum((t[1] for t in totals.values()), Decimal(0)),
    ]
    totals_table = table(
        ["Municipality", f"Excl. VAT ({run.currency})", "VAT", "Total"],
        [
            [f"{code} {names.get(code, '')}".strip(), cents(excl), cents(vat), cents(excl + vat)]
            for code, (excl, vat) in sorted(totals.items())
        ]
        + [["Total", cents(grand[0]), cents(grand[1]), cents(grand[0] + grand[1])]],
    )
    chart = bar_chart(
        sorted(
            ((f"{services.get(s, s)}", amount) for s, amount in per_service.items()),
            key=lambda bar: (-bar[1], bar[0]),
        )
    )
    if previous is None:
        change = "<p>No previous run: no month-over-month change to show.</p>\n"
    else:
        before_run, before_lines = previous
        before: dict[tuple[str, str], Decimal] = {}
        for line in before_lines:
            key = (line.municipality, line.service)
            before[key] = before.get(key, Decimal(0)) + line.amount
        now: dict[tuple[str, str], Decimal] = {}
        for line in lines:
            key = (line.municipality, line.service)
            now[key] = now.get(key, Decimal(0)) + line.amount
        change = (
            f"<p>Against run {escape(before_run.run_id)} ({escape(before_run.status)}) "
            f"of {escape(before_run.period)}.</p>\n"
        )
        change += table(
            ["Municipality", "Service", before_run.period, run.period, "Change"],
            [
                [
                    key[0],
                    key[1],
                    cents(before[key]) if key in before else None,
                    cents(now.get(key, Decimal(0))),
                    _change(now.get(key, Decimal(0)), before.get(key)),
                ]
                for key in sorted(set(now) | set(before))
            ],
        )
    lines_table = table(
        ["Municipality", "Cost centre", "Service", "Quantity", "Unit", "Unit price", "Amount", "VAT", "Note"],
        [
            [
                line.municipality,
                line.cost_centre,
                line.service,
                Decimal(quantity(line.quantity)),
                line.unit,
                cents(line.unit_price) if line.unit_price is not None else None,
                cents(line.amount),
                cents(line.vat_amount),
                f"corrects {line.corrects_period}" if line.corrects_period else "",
            ]
            for line in lines
        ],
    )
    status = (
        '<p class="draft">DRAFT: this run is not final and may still change.</p>\n'
        if run.status != FINAL
        else ""
    )
    body = (
        f"{status}<h2>Totals per municipality</h2>\n{totals_table}"
        f"<h2>Cost per service</h2>\n{chart}"
        f"<h2>Change against the previous month</h2>\n{change}"
        f"<h2>Lines</h2>\n{lines_table}"
    )
    subtitle = f"run {run.run_id}, {run.status}, price list {run.price_list}, {run.currency}"
    subtitle = f"{seller_name}; {subtitle}" if seller_name else subtitle  # without a parties file
    return page(f"Billing {run.period}", subtitle, body)
