"""A run as JSON: header, lines (amounts as exact strings) and totals; also what ``billing run``,
``show`` and ``list`` print with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from billing_jobs.model import Line, Run
from chargeback.money import money, quantity


def run_header(run: Run) -> dict[str, Any]:
    """A run's header as a JSON-ready dict."""
    return {
        "run_id": run.run_id,
        "period": run.period,
        "municipalities": list(run.municipalities),
        "status": run.status,
        "price_list": run.price_list,
        "currency": run.currency,
        "created_at": run.created_at.isoformat(),
        "changed_at": run.changed_at.isoformat(),
    }


def run_document(run: Run, lines: Sequence[Line], *, created: bool | None = None) -> dict[str, Any]:
    """A run with its lines and totals as a JSON-ready dict (amounts as strings, exact); numbers
    are written as in the CSV export (quantity ``10`` or ``0.5``, not ``10.000000``)."""
    doc = run_header(run)
    if created is not None:
        doc["created"] = created
    doc["lines"] = [
        {
            "period": x.corrects_period or run.period,
            "municipality": x.municipality,
            "cost_centre": x.cost_centre,
            "service": x.service,
            "quantity": quantity(x.quantity),
            "unit": x.unit,
            "unit_price": money(x.unit_price) if x.unit_price is not None else None,
            "amount": money(x.amount),
            "vat_rate": quantity(x.vat_rate),
            "vat_amount": money(x.vat_amount),
            **({"reason": x.reason} if x.corrects_period else {}),
        }
        for x in lines
    ]
    doc["total_amount"] = money(sum((x.amount for x in lines), Decimal(0)))
    doc["total_vat"] = money(sum((x.vat_amount for x in lines), Decimal(0)))
    return doc


def render_json(run: Run, lines: Sequence[Line]) -> bytes:
    """The run as a JSON file, lines in their order (``sort_lines``)."""
    return (json.dumps(run_document(run, lines), indent=2, ensure_ascii=False) + "\n").encode()
