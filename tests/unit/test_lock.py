"""The billing lock's statements as values, how a holder is named, and the run lifecycle's pure
rules: a voided run's id is never used again, overlap of runs by municipality, the words of a run."""

from __future__ import annotations

from datetime import UTC, datetime

from billing_jobs.lock import (
    Holder,
    create_lock_query,
    drop_lock_query,
    holder_query,
    lock_exists_query,
)
from billing_jobs.model import Run
from billing_jobs.service import covered_by_both, run_command, run_id_for, run_label, scope_words
from chargeback.period import Period

OCT = Period(2026, 10)
AT = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)


def run(run_id: str, municipalities: tuple[str, ...] = (), period: str = "2026-10") -> Run:
    return Run(run_id, period, municipalities, "draft", "2026", "SEK", "", "", AT, AT, 1)


def test_the_lock_is_a_table_created_without_if_not_exists_and_dropped() -> None:
    assert create_lock_query("chargeback").sql == (
        "CREATE TABLE chargeback.billing_lock "
        "(host String, pid UInt32, command String, acquired_at DateTime('UTC'), token String) ENGINE = Log"
    )
    assert create_lock_query("chargeback").params is None
    assert drop_lock_query("chargeback").sql == "DROP TABLE IF EXISTS chargeback.billing_lock"
    assert lock_exists_query("chargeback").sql == (
        "SELECT count(), toUnixTimestamp(max(metadata_modification_time)) FROM system.tables "
        "WHERE database = %(db)s AND name = %(name)s"
    )
    assert lock_exists_query("chargeback").params == {"db": "chargeback", "name": "billing_lock"}
    assert holder_query("t_1").sql == (
        "SELECT host, pid, command, acquired_at, token FROM t_1.billing_lock ORDER BY acquired_at LIMIT 1"
    )


def test_a_database_name_that_is_not_an_identifier_never_reaches_the_sql() -> None:
    import pytest

    with pytest.raises(ValueError, match="not a plain identifier: 'x; DROP'"):
        create_lock_query("x; DROP")


def test_a_holder_is_named_by_command_process_host_and_time() -> None:
    holder = Holder("finance-1", 4242, "billing run --period 2026-10", AT, "t")
    assert holder.describe() == (
        "billing run --period 2026-10 (pid 4242 on host finance-1, since 2026-11-03 07:00:00 UTC)"
    )


def test_a_holder_that_has_not_written_its_row_is_named_by_the_locks_age() -> None:
    assert Holder("", 0, "", AT, "").describe() == (
        "a billing command that has not recorded itself (the lock exists since 2026-11-03 07:00:00 UTC)"
    )


def test_a_voided_run_id_is_never_used_again_generation_counts_the_voids() -> None:
    # Generation 0 is the digest runs always had: re-runs stay byte-identical while nothing is voided.
    assert run_id_for(OCT, (), "c" * 64, "u" * 64) == "2026-10-58938bbbc420"
    assert run_id_for(OCT, (), "c" * 64, "u" * 64, 0) == "2026-10-58938bbbc420"
    # sha256("2026-10|*|cc…c|uu…u|generation 1")[:12], and 2
    assert run_id_for(OCT, (), "c" * 64, "u" * 64, 1) == "2026-10-2919f4a1b37f"
    assert run_id_for(OCT, (), "c" * 64, "u" * 64, 2) == "2026-10-728add0b6254"


def test_runs_overlap_by_municipality_a_run_of_all_covers_every_one() -> None:
    every, bollnas, both, hudiksvall = (
        run("a"),
        run("b", ("2183",)),
        run("c", ("2183", "2184")),
        run("d", ("2184",)),
    )
    assert covered_by_both(every, every) == "all municipalities"
    assert covered_by_both(every, bollnas) == "municipality 2183"
    assert covered_by_both(both, every) == "municipalities 2183, 2184"
    assert covered_by_both(both, hudiksvall) == "municipality 2184"
    assert covered_by_both(bollnas, hudiksvall) == ""
    assert covered_by_both(every, run("e", (), period="2026-11")) == ""


def test_a_run_is_named_with_its_month_and_municipalities_and_how_to_price_it_again() -> None:
    assert scope_words(()) == "all municipalities"
    assert run_label(run("2026-10-0123456789ab")) == "run 2026-10-0123456789ab (2026-10, all municipalities)"
    assert run_label(run("2026-10-0123456789ab", ("2183", "2184"))) == (
        "run 2026-10-0123456789ab (2026-10, municipalities 2183, 2184)"
    )
    assert run_command(run("x", ("2183", "2184"))) == (
        "chargeback billing run --period 2026-10 --municipality 2183 --municipality 2184"
    )
