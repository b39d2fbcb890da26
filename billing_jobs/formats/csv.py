"""The spec's CSV export of a run: one row per line."""

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


def render_csv(run: Run, lines: Sequence[Line]) -> bytes:
    """One row per municipality × cost centre × service, in the lines' order (``sort_lines``); a
    correction of a finalised month has that month in ``period``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for line in lines:
        writer.writerow(
            (
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
        )
    return out.getvalue().encode("utf-8")
