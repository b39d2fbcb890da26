"""The spec's CSV export of a run: one row per line; and the same rows in the dialect Excel opens
on a Swedish Windows (``excel-sv``: semicolons, decimal commas, UTF-8 with a byte-order mark, CRLF).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from billing_jobs.model import Line, Run
from chargeback.money import money, quantity

COLUMNS = (
    "run_id",
    "period",
    "municipality",
    "cost_centre",
    "service",
    "quantity",
    "unit",
    "unit_price",
    "amount",
    "vat_rate",
    "vat_amount",
    "currency",
    "price_list",
)


SPEC, EXCEL_SV = "spec", "excel-sv"
DIALECTS = (SPEC, EXCEL_SV)
_NUMERIC = frozenset({"quantity", "unit_price", "amount", "vat_rate", "vat_amount"})


def render_csv(run: Run, lines: Sequence[Line], dialect: str = SPEC) -> bytes:
    """One row per municipality × cost centre × service, in the lines' order (``sort_lines``); a
    correction of a finalised month has that month in ``period``.

    ``spec`` is the spec's CSV (comma, decimal point, UTF-8, LF); ``excel-sv`` the same columns
    with ``;``, decimal commas, a UTF-8 byte-order mark and CRLF line ends."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown CSV dialect {dialect!r}: use {' or '.join(DIALECTS)}")
    excel = dialect == EXCEL_SV
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if excel else "\n", delimiter=";" if excel else ",")
    writer.writerow(COLUMNS)
    for line in lines:
        row: tuple[str, ...] = (
            run.run_id,
            line.corrects_period or run.period,
            line.municipality,
            line.cost_centre,
            line.service,
            quantity(line.quantity),
            line.unit,
            money(line.unit_price) if line.unit_price is not None else "",
            money(line.amount),
            quantity(line.vat_rate),
            money(line.vat_amount),
            line.currency,
            line.price_list,
        )
        if excel:
            row = tuple(
                v.replace(".", ",") if c in _NUMERIC else v for c, v in zip(COLUMNS, row, strict=True)
            )
        writer.writerow(row)
    return out.getvalue().encode("utf-8-sig" if excel else "utf-8")
