"""The billing store's queries: the exact SQL text and parameters each one emits, without a
database (the integration tests run them on both ClickHouse backends)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from billing_jobs import store
from billing_jobs.model import DataQuality, DeadLetters, LateUsage, Line, PeriodTotals, Run, SourceDays
from billing_jobs.store import BillingStore, Insert, Query, RunError
from chargeback.period import Period

D = Decimal
OCT = Period(2026, 10)
RUN_SELECT = (
    "SELECT run_id, period, municipalities, status, price_list, currency, catalogue_sha256, "
    "usage_sha256, created_at, changed_at, revision FROM billing_runs "
)
WHEN = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
RUN = Run("2026-10-abc", "2026-10", ("2183",), "draft", "2026", "SEK", "c" * 64, "u" * 64, WHEN, WHEN, 2)


class Recorder:
    """A ClickHouse that records what it is asked and answers with the rows it was given."""

    def __init__(self, *answers: list[tuple[Any, ...]]) -> None:
        self.answers = list(answers)
        self.selects: list[tuple[str, Mapping[str, Any] | None]] = []
        self.inserts: list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]] = []

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        self.selects.append((sql, params))
        return self.answers.pop(0) if self.answers else []

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.inserts.append((table, tuple(columns), [tuple(r) for r in rows]))

    def close(self) -> None:
        pass


def test_period_totals_query() -> None:
    assert store.period_totals_query(OCT) == Query(
        """
SELECT municipality, cost_centre, service,
       sum(q_sum) AS event_sum, count() AS subject_days, sum(q_max) AS daily_max_sum
FROM
(
    SELECT municipality, cost_centre, service, day, subject,
           sum(quantity) AS q_sum, max(quantity) AS q_max
    FROM usage_events
    WHERE day >= %(first)s AND day <= %(last)s
    GROUP BY municipality, cost_centre, service, day, subject
) AS per_subject_day
GROUP BY municipality, cost_centre, service
ORDER BY municipality, cost_centre, service
""",
        {"first": date(2026, 10, 1), "last": date(2026, 10, 31)},
    )


def test_find_run_query() -> None:
    assert store.find_run_query("2026-10-abc") == Query(
        RUN_SELECT + "WHERE run_id = %(id)s ORDER BY revision DESC LIMIT 1", {"id": "2026-10-abc"}
    )


def test_list_runs_query_of_a_month_and_of_all() -> None:
    assert store.list_runs_query(OCT) == Query(
        RUN_SELECT + "WHERE period = %(period)s ORDER BY run_id, revision DESC LIMIT 1 BY run_id",
        {"period": "2026-10"},
    )
    assert store.list_runs_query() == Query(
        RUN_SELECT + "ORDER BY run_id, revision DESC LIMIT 1 BY run_id", None
    )


def test_lines_and_stored_line_keys_queries() -> None:
    assert store.lines_query("r1") == Query(
        "SELECT municipality, cost_centre, service, quantity, unit, unit_price, amount, vat_rate, "
        "vat_amount, currency, price_list, period, run_id FROM billing_lines WHERE run_id = %(id)s",
        {"id": "r1"},
    )
    assert store.stored_line_keys_query("r1") == Query(
        "SELECT period, municipality, cost_centre, service FROM billing_lines WHERE run_id = %(id)s",
        {"id": "r1"},
    )


def test_finalised_periods_query_looks_back_24_months() -> None:
    assert store.finalised_periods_query(OCT) == Query(
        "SELECT period, municipalities FROM billing_runs "
        "WHERE period < %(before)s AND period >= %(since)s "
        "GROUP BY run_id, period, municipalities HAVING argMax(status, revision) = 'final'",
        {"before": "2026-10", "since": "2024-10"},
    )
    assert store.finalised_periods_query(Period(2026, 1), months=1).params == {
        "before": "2026-01",
        "since": "2025-12",
    }


def test_billed_query() -> None:
    assert store.billed_query(OCT) == Query(
        "SELECT l.municipality, l.cost_centre, l.service, sum(l.quantity), sum(l.amount), sum(l.vat_amount) "
        "FROM billing_lines AS l INNER JOIN "
        "(SELECT run_id, argMax(status, revision) AS status FROM billing_runs GROUP BY run_id) AS r "
        "ON l.run_id = r.run_id WHERE r.status = 'final' AND l.period = %(period)s "
        "GROUP BY l.municipality, l.cost_centre, l.service",
        {"period": "2026-10"},
    )


def test_actual_by_month_query_through_a_month_or_the_year() -> None:
    sql = (
        "SELECT municipality, service, period, sum(amount) FROM v_charges_final "
        "WHERE period >= %(first)s AND period <= %(last)s GROUP BY municipality, service, period"
    )
    assert store.actual_by_month_query(2026, OCT) == Query(sql, {"first": "2026-01", "last": "2026-10"})
    assert store.actual_by_month_query(2026) == Query(sql, {"first": "2026-01", "last": "2026-12"})


def test_source_last_days_query() -> None:
    assert store.source_last_days_query(date(2026, 9, 1), date(2026, 10, 31)) == Query(
        "SELECT source, municipality, max(day) FROM usage_events "
        "WHERE day >= %(first)s AND day <= %(last)s GROUP BY source, municipality "
        "ORDER BY municipality, source",
        {"first": date(2026, 9, 1), "last": date(2026, 10, 31)},
    )


def test_tickets_query_with_and_without_municipalities() -> None:
    base = (
        "SELECT municipality, subject, attributes FROM usage_events "
        "WHERE day >= %(first)s AND day <= %(last)s "
        "AND position(attributes, '\"opened\"') > 0 AND position(attributes, '\"closed\"') > 0"
    )
    days = {"first": date(2026, 10, 1), "last": date(2026, 10, 31)}
    assert store.tickets_query(OCT) == Query(base + " ORDER BY municipality, subject", days)
    assert store.tickets_query(OCT, ["2183", "2184"]) == Query(
        base + " AND municipality IN %(municipalities)s ORDER BY municipality, subject",
        {**days, "municipalities": ("2183", "2184")},
    )


def test_header_insert_is_one_revision_row() -> None:
    assert store.header_insert(RUN) == Insert(
        "billing_runs",
        (
            "run_id",
            "period",
            "municipalities",
            "status",
            "price_list",
            "currency",
            "catalogue_sha256",
            "usage_sha256",
            "created_at",
            "changed_at",
            "revision",
        ),
        [("2026-10-abc", "2026-10", ["2183"], "draft", "2026", "SEK", "c" * 64, "u" * 64, WHEN, WHEN, 2)],
    )


def line(cc: str, corrects: str | None = None) -> Line:
    amounts = (D("310.00"), D("620.00"), D("0.25"), D("155.00"))
    return Line("2183", cc, "pc-standard", D(2), "st", *amounts, "SEK", "2026", corrects)


def test_lines_insert_puts_a_correction_in_the_month_it_corrects() -> None:
    insert = store.lines_insert(RUN, [line("BUF"), line("BUF", "2026-09")])
    assert (insert.table, insert.columns[:5]) == (
        "billing_lines",
        ("run_id", "period", "municipality", "cost_centre", "service"),
    )
    assert insert.columns[5:] == (
        "quantity",
        "unit",
        "unit_price",
        "amount",
        "vat_rate",
        "vat_amount",
        "currency",
        "price_list",
    )
    common = (D(2), "st", D("310.00"), D("620.00"), D("0.25"), D("155.00"), "SEK", "2026")
    assert insert.rows == [
        ("2026-10-abc", "2026-10", "2183", "BUF", "pc-standard", *common),
        ("2026-10-abc", "2026-09", "2183", "BUF", "pc-standard", *common),
    ]


def test_store_runs_the_queries_and_reads_their_rows() -> None:
    ch = Recorder(
        [("2183", "BUF", "pc-standard", "31", 31, "0")],
        [("2026-10-abc", "2026-10", ["2183"], "final", "2026", "SEK", "c", "u", WHEN, WHEN, 3)],
        [],
    )
    billing = BillingStore(ch)
    assert billing.period_totals(OCT) == [PeriodTotals("2183", "BUF", "pc-standard", D(31), 31, D(0))]
    assert billing.get_run("2026-10-abc").status == "final"
    with pytest.raises(
        RunError, match=r"^no billing run nope; `chargeback billing list` shows the runs there are$"
    ):
        billing.get_run("nope")
    assert ch.selects == [
        (store.period_totals_query(OCT).sql, {"first": date(2026, 10, 1), "last": date(2026, 10, 31)}),
        (store.find_run_query("x").sql, {"id": "2026-10-abc"}),
        (store.find_run_query("x").sql, {"id": "nope"}),
    ]


def test_store_loads_lines_in_the_one_line_order_and_names_corrections() -> None:
    row = ("2183", "SOC", "pc-standard", D(1), "st", None, D("5.00"), D("0.25"), D("1.25"), "SEK", "2026")
    ch = Recorder(
        [
            (*row, "2026-10", "2026-10-abc"),
            (*row[:1], "BUF", *row[2:], "2026-09", "2026-10-abc"),
            (*row[:1], "BUF", *row[2:], "2026-10", "2026-10-abc"),
        ],
        [("2026-09", "2183", "BUF", "pc-standard", "late usage")],
    )
    lines = BillingStore(ch).load_lines("2026-10-abc")
    assert [(x.cost_centre, x.corrects_period, x.reason) for x in lines] == [
        ("BUF", None, ""),
        ("BUF", "2026-09", "late usage"),
        ("SOC", None, ""),
    ]
    assert ch.selects == [
        (store.lines_query("x").sql, {"id": "2026-10-abc"}),
        (
            "SELECT period, municipality, cost_centre, service, any(reason) FROM billing_line_reasons "
            "WHERE run_id = %(id)s GROUP BY period, municipality, cost_centre, service",
            {"id": "2026-10-abc"},
        ),
    ]


def test_a_retry_writes_only_the_lines_not_stored_yet_then_the_header() -> None:
    ch = Recorder([("2026-10", "2183", "BUF", "pc-standard")])
    billing = BillingStore(ch)
    billing.write_lines(RUN, [line("BUF"), line("SOC")])
    billing.write_header(RUN)
    assert ch.selects == [
        (
            "SELECT period, municipality, cost_centre, service FROM billing_lines WHERE run_id = %(id)s",
            {"id": "2026-10-abc"},
        )
    ]
    assert [(table, [r[3] for r in rows]) for table, _, rows in ch.inserts] == [
        ("billing_lines", ["SOC"]),
        ("billing_runs", ["draft"]),
    ]


def test_finalised_periods_merge_scopes_and_all_wins() -> None:
    ch = Recorder(
        [
            ("2026-08", ["2183"]),
            ("2026-08", ["2184"]),
            ("2026-09", ["2183"]),
            ("2026-09", []),
            ("2026-09", ["2184"]),
        ]
    )
    assert BillingStore(ch).finalised_periods(OCT) == {"2026-08": {"2183", "2184"}, "2026-09": None}


def test_billed_actual_and_ticket_rows_are_typed() -> None:
    ch = Recorder(
        [("2183", "BUF", "pc-standard", "2", "620.00", "155.00")],
        [("2183", "pc-standard", "2026-09", "620.00"), ("2183", "pc-standard", "2026-10", "310.00")],
        [("2183", "INC1", '{"opened": "2026-10-01T08:00:00Z", "closed": "2026-10-01T09:00:00Z"}')],
    )
    billing = BillingStore(ch)
    assert billing.billed(OCT) == {("2183", "BUF", "pc-standard"): (D(2), D("620.00"), D("155.00"))}
    assert billing.actual_by_month(2026, OCT) == {
        ("2183", "pc-standard"): {"2026-09": D("620.00"), "2026-10": D("310.00")}
    }
    assert billing.ticket_attributes(OCT, ["2183"]) == [
        ("2183", "INC1", {"opened": "2026-10-01T08:00:00Z", "closed": "2026-10-01T09:00:00Z"})
    ]
    assert [params for _, params in ch.selects] == [
        {"period": "2026-10"},
        {"first": "2026-01", "last": "2026-10"},
        {"first": date(2026, 10, 1), "last": date(2026, 10, 31), "municipalities": ("2183",)},
    ]


def test_subjects_query_with_and_without_municipalities() -> None:
    sql = """
SELECT municipality, cost_centre, service, subject,
       count() AS days, sum(q_sum) AS quantity_sum, sum(q_max) AS max_sum,
       argMax(attrs, last_time) AS attributes
FROM
(
    SELECT municipality, cost_centre, service, day, subject,
           sum(quantity) AS q_sum, max(quantity) AS q_max,
           argMax(attributes, event_time) AS attrs, max(event_time) AS last_time
    FROM usage_events
    WHERE day >= %(first)s AND day <= %(last)s{where}
    GROUP BY municipality, cost_centre, service, day, subject
) AS per_subject_day
GROUP BY municipality, cost_centre, service, subject
ORDER BY municipality, cost_centre, service, subject
"""
    days = {"first": date(2026, 10, 1), "last": date(2026, 10, 31)}
    assert store.subjects_query(OCT) == Query(sql.format(where=""), days)
    assert store.subjects_query(OCT, ["2183"]) == Query(
        sql.format(where=" AND municipality IN %(municipalities)s"), {**days, "municipalities": ("2183",)}
    )


def test_subjects_keep_what_the_collector_said_of_them() -> None:
    ch = Recorder(
        [
            ("2183", "BUF", "pc-standard", "PC1", 16, D("16"), D("16"), '{"device_name":"BUF-PC1","n":3}'),
            ("2183", "BUF", "storage-file", "S1", 2, D("300"), D("200"), ""),
        ]
    )
    found = BillingStore(ch).subjects(OCT)
    assert [(s.subject, s.days, s.quantity_sum, s.max_sum, s.details) for s in found] == [
        ("PC1", 16, D("16"), D("16"), (("device_name", "BUF-PC1"), ("n", "3"))),
        ("S1", 2, D("300"), D("200"), ()),
    ]


def test_data_quality_queries_and_their_rows() -> None:
    # From the month before: a source that fell silent is still named.
    assert store.source_days_query(OCT) == Query(
        "SELECT municipality, source, day FROM usage_events "
        "WHERE day >= %(first)s AND day <= %(last)s "
        "GROUP BY municipality, source, day ORDER BY municipality, source, day",
        {"first": date(2026, 9, 1), "last": date(2026, 10, 31)},
    )
    assert store.unallocated_subjects_query(OCT) == Query(
        "SELECT municipality, source, uniqExact(subject) FROM usage_events "
        "WHERE day >= %(first)s AND day <= %(last)s AND cost_centre = %(unallocated)s "
        "GROUP BY municipality, source ORDER BY municipality, source",
        {"first": date(2026, 10, 1), "last": date(2026, 10, 31), "unallocated": "UNALLOCATED"},
    )
    assert store.dead_letters_query(OCT) == Query(
        "SELECT message_key, reason, count() FROM dead_letters "
        "WHERE toDate(dead_at) >= %(first)s AND toDate(dead_at) <= %(last)s "
        "GROUP BY message_key, reason ORDER BY message_key, reason",
        {"first": date(2026, 10, 1), "last": date(2026, 10, 31)},
    )
    assert store.late_usage_query(["2026-09"]) == Query(
        "SELECT municipality, cost_centre, service, period, min(day), max(day), count() "
        "FROM v_late_usage WHERE period IN %(periods)s "
        "GROUP BY municipality, cost_centre, service, period "
        "ORDER BY municipality, cost_centre, service, period",
        {"periods": ("2026-09",)},
    )
    ch = Recorder(
        [
            ("2183", "intune", date(2026, 9, 30)),
            ("2183", "intune", date(2026, 10, 1)),
            ("2183", "intune", date(2026, 10, 2)),
            ("2183", "topdesk", date(2026, 9, 29)),
        ],
        [("2183", "intune", 12)],
        [("2183", "unknown service", 3)],
        [("2183", "BUF", "pc-standard", "2026-09", date(2026, 9, 28), date(2026, 9, 30), 12)],
    )
    found = BillingStore(ch).data_quality(OCT, ["2026-09"])
    assert found == DataQuality(
        (
            SourceDays("2183", "intune", (date(2026, 10, 1), date(2026, 10, 2)), 12),
            SourceDays("2183", "topdesk", (), 0),  # silent all October
        ),
        (DeadLetters("2183", "unknown service", 3),),
        (LateUsage("2183", "BUF", "pc-standard", "2026-09", date(2026, 9, 28), date(2026, 9, 30), 12),),
    )
    # Without corrected months, v_late_usage is not asked.
    ch = Recorder([], [], [])
    assert BillingStore(ch).data_quality(OCT) == DataQuality()
    assert len(ch.selects) == 3


def test_final_runs_query_and_the_correction_window() -> None:
    assert store.final_runs_query(OCT) == Query(
        RUN_SELECT + "WHERE period < %(before)s AND period >= %(since)s "
        "ORDER BY run_id, revision DESC LIMIT 1 BY run_id",
        {"before": "2026-10", "since": "2024-10"},
    )
    assert store.window_start(Period(2026, 1), 1) == Period(2025, 12)
    # The newest revision of each run; only final ones are kept, oldest month first.
    final = ("2026-09-b", "2026-09", ["2183"], "final", "2026", "SEK", "c" * 64, "u" * 64, WHEN, WHEN, 2)
    void = ("2026-08-a", "2026-08", [], "void", "2026", "SEK", "c" * 64, "u" * 64, WHEN, WHEN, 2)
    older = ("2026-08-c", "2026-08", [], "final", "2026", "SEK", "d" * 64, "u" * 64, WHEN, WHEN, 3)
    runs = BillingStore(Recorder([final, void, older])).final_runs(OCT)
    assert [(r.run_id, r.catalogue_sha256[0]) for r in runs] == [("2026-08-c", "d"), ("2026-09-b", "c")]


def test_a_run_keeps_its_catalogue_once_under_its_sha256() -> None:
    assert store.catalogue_query("ab") == Query(
        "SELECT body FROM billing_catalogues WHERE catalogue_sha256 = %(sha)s LIMIT 1", {"sha": "ab"}
    )
    fresh = Recorder()
    BillingStore(fresh).save_catalogue("ab", "currency: SEK\n", WHEN)
    assert fresh.inserts == [
        ("billing_catalogues", ("catalogue_sha256", "body", "stored_at"), [("ab", "currency: SEK\n", WHEN)])
    ]
    known = Recorder([("currency: SEK\n",)])
    BillingStore(known).save_catalogue("ab", "currency: SEK\n", WHEN)
    assert known.inserts == []
    assert BillingStore(Recorder([("currency: SEK\n",)])).catalogue_text("ab") == "currency: SEK\n"
    assert BillingStore(Recorder()).catalogue_text("ab") is None


def test_correction_reasons_are_written_with_the_lines() -> None:
    late = Line(
        "2183", "BUF", "ticket-incident", D(1), "st", D("95.00"), D("95.00"), D("0.25"), D("23.75"), "SEK",
        "2026", corrects_period="2026-09", reason="late usage",
    )  # fmt: skip
    ch = Recorder()
    BillingStore(ch).write_lines(RUN, [line("BUF"), late])
    assert ch.inserts[1] == (
        "billing_line_reasons",
        ("run_id", "period", "municipality", "cost_centre", "service", "reason"),
        [("2026-10-abc", "2026-09", "2183", "BUF", "ticket-incident", "late usage")],
    )
    only_own = Recorder()
    BillingStore(only_own).write_lines(RUN, [line("BUF")])
    assert [table for table, _, _ in only_own.inserts] == ["billing_lines"]


def test_repriced_query() -> None:
    query = store.repriced_query(OCT)
    assert query.params == {"before": "2026-10", "since": "2024-10"}
    assert query.sql == (
        """
SELECT DISTINCT l.period, l.municipality, r.catalogue_sha256, r.period, r.created_at, r.run_id
FROM billing_line_reasons AS l
INNER JOIN
(
    SELECT run_id, any(period) AS period, any(catalogue_sha256) AS catalogue_sha256,
           any(created_at) AS created_at, argMax(status, revision) AS status
    FROM billing_runs
    GROUP BY run_id
) AS r ON l.run_id = r.run_id
WHERE r.status = 'final' AND position(l.reason, 'repriced') > 0
  AND l.period < %(before)s AND l.period >= %(since)s
ORDER BY l.period, l.municipality, r.period, r.created_at, r.run_id
"""
    )
    # The latest repricing run of a member's month wins.
    rows = [
        ("2026-08", "2183", "a" * 64, "2026-09", WHEN, "r1"),
        ("2026-08", "2183", "b" * 64, "2026-10", WHEN, "r2"),
        ("2026-09", "2184", "a" * 64, "2026-10", WHEN, "r2"),
    ]
    assert BillingStore(Recorder(rows)).repriced(Period(2026, 11)) == {
        ("2026-08", "2183"): "b" * 64,
        ("2026-09", "2184"): "a" * 64,
    }


def test_late_usage_beyond_the_window_query() -> None:
    assert store.late_beyond_window_query(OCT) == Query(
        """
SELECT municipality, period, service, sum(quantity) AS quantity, count() AS events
FROM v_late_usage
WHERE period < %(since)s
GROUP BY municipality, period, service
ORDER BY municipality, period, service
""",
        {"since": "2024-10"},
    )
    rows = [("2183", "2024-06", "ticket-incident", "50.000000", 50)]
    assert BillingStore(Recorder(rows)).late_beyond_window(OCT) == [
        ("2183", "2024-06", "ticket-incident", D(50), 50)
    ]


def test_the_queries_of_what_may_be_missing() -> None:
    assert store.month_dead_letters_query(OCT) == Query(
        """
SELECT message_key, startsWith(reason, 'unknown municipality:') OR startsWith(reason, 'unknown service:')
       AS unmapped, count() AS letters
FROM
(
    SELECT message_key, reason, visitParamExtractString(value, 'time') AS event_time, dead_at
    FROM dead_letters
) AS letters
WHERE if(event_time != '', substring(event_time, 1, 7), substring(toString(toDate(dead_at)), 1, 7))
      = %(period)s
GROUP BY message_key, unmapped
ORDER BY message_key, unmapped
""",
        {"period": "2026-10"},
    )
    assert store.late_of_month_query(OCT, WHEN) == Query(
        """
SELECT municipality, count() AS events, sum(quantity) AS quantity
FROM usage_events
WHERE day >= %(first)s AND day <= %(last)s AND stored_at > %(since)s
GROUP BY municipality
ORDER BY municipality
""",
        {"first": date(2026, 10, 1), "last": date(2026, 10, 31), "since": WHEN},
    )
    ch = Recorder(
        [("2183", "urn:t", date(2026, 10, 2))],
        [("2183", 0, 1), ("9999", 1, 2)],
        [("2183", 2, "2.000000")],
    )
    billing = BillingStore(ch)
    assert billing.source_days(OCT) == [("2183", "urn:t", date(2026, 10, 2))]
    assert billing.month_dead_letters(OCT) == [("2183", False, 1), ("9999", True, 2)]
    assert billing.late_of_month(OCT, WHEN) == {"2183": (2, D(2))}
