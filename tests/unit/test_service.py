"""The one pipeline that prices a month (totals → usage → price), without a database: the store
is given the rows ClickHouse would return (the integration tests run it on both backends)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from billing_jobs.model import Line, Usage
from billing_jobs.service import price_month, run_id_for
from billing_jobs.store import BillingStore, period_totals_query
from chargeback.catalogue import load_catalogue
from chargeback.period import Period
from tests.unit.test_store import Recorder

CATALOGUE = load_catalogue(Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml")
D = Decimal
OCT = Period(2026, 10)


def pc_line(lines: list[Line]) -> Line:
    return next(x for x in lines if x.service == "pc-standard")


def test_a_month_is_read_metered_and_priced() -> None:
    # 62 subject-days in 31 days: 2 computers on average, 2 × 310.00
    ch = Recorder([("2183", "BUF", "pc-standard", "62", 62, "62")])
    lines = price_month(BillingStore(ch), CATALOGUE, OCT, ["2183"])
    assert ch.selects == [(period_totals_query(OCT).sql, period_totals_query(OCT).params)]
    assert pc_line(lines) == Line(
        "2183", "BUF", "pc-standard", D("2.000000"), "st", D("310.00"), D("620.00"), D("0.25"), D("155.00"),
        "SEK", "2026",
    )  # fmt: skip
    assert {x.municipality for x in lines} == {"2183"}


def test_usage_already_metered_is_not_read_again() -> None:
    ch = Recorder()
    usage = [Usage("2183", "SOC", "pc-standard", D(1))]
    lines = price_month(BillingStore(ch), CATALOGUE, OCT, ["2183"], usage=usage)
    assert ch.selects == []
    assert (pc_line(lines).cost_centre, pc_line(lines).quantity, pc_line(lines).amount) == (
        "SOC",
        D("1.000000"),
        D("310.00"),
    )


def test_the_run_id_is_the_period_and_a_digest_of_scope_catalogue_and_usage() -> None:
    # sha256("2026-10|*|cc…c|uu…u")[:12]; a scope is its codes joined by commas
    assert run_id_for(OCT, (), "c" * 64, "u" * 64) == "2026-10-58938bbbc420"
    assert run_id_for(OCT, ("2183", "2184"), "c" * 64, "u" * 64) == "2026-10-c8f6929e1ae0"
