"""Self-contained HTML pages (inline CSS, no scripts) for finance and member municipalities to
read and pass on: the page, table and chart helpers of the service-level and budget reports and
the run report (``billing_jobs.formats.report``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from html import escape

from chargeback.money import money

# An A4 page's width at 96 dpi: no page is wider, so each prints and reads on a laptop unchanged.
A4_PX = 794
_CSS = f"""
@page{{size:A4;margin:12mm}}*{{box-sizing:border-box}}
body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:12px;line-height:1.4;
margin:0;padding:24px 32px;max-width:{A4_PX}px;color:#1d2733}}
h1{{font-size:20px;margin:0 0 4px}}p.sub{{color:#5b6672;margin:0 0 16px}}
table{{border-collapse:collapse;margin:0 0 16px;width:100%}}
th,td{{padding:3px 5px;border-bottom:1px solid #dde3e9;vertical-align:top;overflow-wrap:anywhere}}
th{{text-align:left;background:#f3f6f9;font-weight:600}}
td.n{{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}}
h2{{font-size:15px;margin:20px 0 6px}}
.draft{{background:#fff3cd;border:2px solid #b58100;padding:6px 12px;font-weight:700}}
.met{{color:#11703b;font-weight:600}}.missed{{color:#b3261e;font-weight:600}}
"""


def page(title: str, subtitle: str, body: str, *, lang: str = "sv") -> str:
    """A whole HTML document: title, subtitle and body, in the language ``lang``."""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{escape(lang)}"><head><meta charset="utf-8">'
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


def bar_chart(
    bars: Sequence[tuple[str, Decimal]],
    *,
    width: int = 720,
    bar_height: int = 22,
    value_text: Callable[[Decimal], str] = money,
) -> str:
    """A horizontal bar chart as inline SVG: one labelled bar per (label, amount), in the order
    given; bar lengths are proportional to the amounts (negative amounts draw no bar); each bar's
    value written by ``value_text``."""
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
            f'<text x="{label_width + length + 6}" y="{y + bar_height - 6}">'
            f"{escape(value_text(amount))}</text>"
        )
    height = max(len(bars) * (bar_height + 6), bar_height)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="cost per service" font-size="13" font-family="sans-serif">{"".join(rows)}</svg>\n'
    )
