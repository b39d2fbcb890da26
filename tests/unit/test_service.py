"""The one pipeline that prices a month (totals → usage → price), without a database: the store
is given the rows ClickHouse would return (the integration tests run it on both backends)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from billing_jobs.model import Line, Usage
from billing_jobs.service import (
    LateBeyondWindow,
    _days,
    _with_reasons,
    check_begun,
    month_bounds,
    price_month,
    run_id_for,
)
from billing_jobs.store import BillingStore, RunError, period_totals_query
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


def test_a_month_begins_and_ends_at_midnight_in_the_catalogues_time_zone_across_dst() -> None:
    march = Period(2027, 3)  # summer time begins on 28 March 2027: March begins in CET, ends in CEST
    assert [t.astimezone(UTC) for t in month_bounds(CATALOGUE, march)] == [
        datetime(2027, 2, 28, 23, tzinfo=UTC),
        datetime(2027, 3, 31, 22, tzinfo=UTC),
    ]
    with pytest.raises(
        RunError,
        match=r"^billing run of 2027-03 refused: 2027-03 has not begun in Europe/Stockholm \(it begins "
        r"2027-03-01 00:00 CET\); a month can be run once it has begun$",
    ):
        check_begun(CATALOGUE, march, datetime(2027, 2, 28, 22, 59, 59, tzinfo=UTC))
    assert check_begun(CATALOGUE, march, datetime(2027, 2, 28, 23, tzinfo=UTC)) == (
        "2027-03 has not ended in Europe/Stockholm (it ends 2027-04-01 00:00 CEST): this draft is a preview "
        "and cannot be finalised before then"
    )
    assert check_begun(CATALOGUE, march, datetime(2027, 3, 31, 21, 59, 59, tzinfo=UTC)) is not None
    assert check_begun(CATALOGUE, march, datetime(2027, 3, 31, 22, tzinfo=UTC)) is None
    # December ends at 2027-01-01 00:00 CET = 2026-12-31 23:00 UTC.
    assert (
        check_begun(CATALOGUE, Period(2026, 12), datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC)) is not None
    )
    assert check_begun(CATALOGUE, Period(2026, 12), datetime(2026, 12, 31, 23, tzinfo=UTC)) is None
    with pytest.raises(ValueError, match="now must carry a time zone"):
        check_begun(CATALOGUE, march, datetime(2027, 3, 5))  # noqa: DTZ001 - the mistake under test


def test_missing_days_are_written_as_ranges() -> None:
    days = [date(2026, 10, d) for d in (1, 4, 5, 6, 11, 31)]
    assert _days(days) == "2026-10-01, 2026-10-04 to 2026-10-06, 2026-10-11, 2026-10-31"
    assert _days([date(2026, 10, 30), date(2026, 10, 31)]) == "2026-10-30 to 2026-10-31"


def test_a_repriced_correction_says_whether_it_is_late_usage_repriced_or_both() -> None:
    def corr(service: str, quantity: str, amount: str) -> Line:
        return Line(
            "2183", "BUF", service, D(quantity), "st", None, D(amount), D("0.25"), D(amount) / 4,
            "SEK", "2026", corrects_period="2026-09",
        )  # fmt: skip

    late = [corr("ticket-incident", "1", "95.00"), corr("storage-file", "1", "450.00")]
    full = [corr("pc-standard", "0", "10.00"), corr("ticket-incident", "1", "105.00"), late[1]]
    assert [(x.service, x.reason) for x in _with_reasons(full, late)] == [
        ("pc-standard", "repriced"),
        ("ticket-incident", "late usage, repriced"),
        ("storage-file", "late usage"),
    ]
    assert _with_reasons([], late) == []


def test_late_usage_beyond_the_window_in_one_sentence() -> None:
    assert str(LateBeyondWindow("2183", "2024-06", "ticket-incident", D(50), 50)) == (
        "late usage older than the 24-month correction window is not billed: 2183 2024-06 ticket-incident "
        "quantity 50.000000 (50 events)"
    )
