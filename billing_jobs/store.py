"""Every ClickHouse query of billing and its reports, in one place.

Each query is built as a value (``Query``: SQL text and parameters; ``Insert``: table, columns and
rows) by a pure function, so the unit tests assert the exact SQL and arguments without a database
(tests/unit/test_store.py); ``BillingStore`` runs them on a ClickHouse connection and turns rows
into the model's types. Run states are rows with increasing revision (ReplacingMergeTree): the
newest revision of a run is its state.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from billing_jobs.model import (
    FINAL,
    Billed,
    DataQuality,
    DeadLetters,
    LateUsage,
    Line,
    PeriodTotals,
    Run,
    SourceDays,
    SubjectUsage,
    sort_lines,
)
from chargeback.clickhouse import ClickHouse, from_settings, require_schema
from chargeback.errors import UserError
from chargeback.events import DEFAULT_COST_CENTRE
from chargeback.period import Period
from chargeback.settings import ClickHouseSettings

RUN_COLUMNS = (
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
)
LINE_COLUMNS = (
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
# How far back a new run looks for finalised months to correct.
LOOKBACK_MONTHS = 24


class RunError(UserError):
    """A run cannot be found or cannot change as asked."""

    code = "run.invalid"


@dataclass(frozen=True)
class Query:
    """A SELECT as a value: its SQL text and parameters (``%(name)s`` placeholders)."""

    sql: str
    params: dict[str, Any] | None = None


@dataclass(frozen=True)
class Insert:
    """An INSERT as a value: table, columns and rows."""

    table: str
    columns: tuple[str, ...]
    rows: list[tuple[object, ...]]


# --- the queries, as values ----------------------------------------------------------------------

PERIOD_TOTALS_SQL = """
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
"""


SUBJECTS_SQL = """
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


def subjects_query(period: Period, municipalities: Sequence[str] = ()) -> Query:
    """A period's usage per subject (its days, quantities and latest attributes) per
    municipality, cost centre and service: what each line's quantity is made of."""
    params: dict[str, Any] = {"first": period.first_day, "last": period.last_day}
    where = ""
    if municipalities:
        where = " AND municipality IN %(municipalities)s"
        params["municipalities"] = tuple(municipalities)
    return Query(SUBJECTS_SQL.format(where=where), params)


def period_totals_query(period: Period) -> Query:
    """A period's usage sums per municipality, cost centre and service (the meters' inputs)."""
    return Query(PERIOD_TOTALS_SQL, {"first": period.first_day, "last": period.last_day})


def find_run_query(run_id: str) -> Query:
    """A run's newest revision."""
    return Query(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM billing_runs WHERE run_id = %(id)s "
        "ORDER BY revision DESC LIMIT 1",
        {"id": run_id},
    )


def list_runs_query(period: Period | None = None) -> Query:
    """Every run's newest revision, of one month or all."""
    where = "WHERE period = %(period)s " if period else ""
    return Query(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM billing_runs {where}"
        "ORDER BY run_id, revision DESC LIMIT 1 BY run_id",
        {"period": str(period)} if period else None,
    )


def lines_query(run_id: str) -> Query:
    """A run's lines (in no particular order)."""
    return Query(
        "SELECT municipality, cost_centre, service, quantity, unit, unit_price, amount, vat_rate, "
        "vat_amount, currency, price_list, period, run_id FROM billing_lines WHERE run_id = %(id)s",
        {"id": run_id},
    )


def stored_line_keys_query(run_id: str) -> Query:
    """The keys of a run's lines already stored (by an earlier attempt that failed before its header)."""
    return Query(
        "SELECT period, municipality, cost_centre, service FROM billing_lines WHERE run_id = %(id)s",
        {"id": run_id},
    )


def finalised_periods_query(before: Period, months: int = LOOKBACK_MONTHS) -> Query:
    """The months before ``before`` (at most ``months`` back) with a final run, and its scope."""
    since = before
    for _ in range(months):
        since = since.previous()
    return Query(
        "SELECT period, municipalities FROM billing_runs "
        "WHERE period < %(before)s AND period >= %(since)s "
        "GROUP BY run_id, period, municipalities HAVING argMax(status, revision) = 'final'",
        {"before": str(before), "since": str(since)},
    )


def billed_query(period: Period) -> Query:
    """What final runs billed for a month, per line key."""
    return Query(
        "SELECT l.municipality, l.cost_centre, l.service, sum(l.quantity), sum(l.amount), sum(l.vat_amount) "
        "FROM billing_lines AS l "
        "INNER JOIN "
        "(SELECT run_id, argMax(status, revision) AS status FROM billing_runs GROUP BY run_id) AS r "
        "ON l.run_id = r.run_id "
        "WHERE r.status = 'final' AND l.period = %(period)s "
        "GROUP BY l.municipality, l.cost_centre, l.service",
        {"period": str(period)},
    )


def actual_by_month_query(year: int, through: Period | None = None) -> Query:
    """Invoiced amounts of final runs per municipality, service and month of a year."""
    return Query(
        "SELECT municipality, service, period, sum(amount) FROM v_charges_final "
        "WHERE period >= %(first)s AND period <= %(last)s GROUP BY municipality, service, period",
        {"first": f"{year}-01", "last": str(through) if through else f"{year}-12"},
    )


def tickets_query(period: Period, municipalities: Sequence[str] = ()) -> Query:
    """The usage events of a month (by usage day) that carry a ticket's opened and closed times."""
    where = ""
    params: dict[str, Any] = {"first": period.first_day, "last": period.last_day}
    if municipalities:
        where = " AND municipality IN %(municipalities)s"
        params["municipalities"] = tuple(municipalities)
    return Query(
        "SELECT municipality, subject, attributes FROM usage_events "
        "WHERE day >= %(first)s AND day <= %(last)s "
        "AND position(attributes, '\"opened\"') > 0 AND position(attributes, '\"closed\"') > 0"
        f"{where} ORDER BY municipality, subject",
        params,
    )


def source_days_query(period: Period) -> Query:
    """The days on which each municipality's sources sent events, from the first day of the month
    before ``period`` to its last (a source of last month that fell silent is still named)."""
    return Query(
        "SELECT municipality, source, day FROM usage_events "
        "WHERE day >= %(first)s AND day <= %(last)s "
        "GROUP BY municipality, source, day ORDER BY municipality, source, day",
        {"first": period.previous().first_day, "last": period.last_day},
    )


def unallocated_subjects_query(period: Period) -> Query:
    """Per municipality and source: distinct subjects of the period billed to UNALLOCATED."""
    return Query(
        "SELECT municipality, source, uniqExact(subject) FROM usage_events "
        "WHERE day >= %(first)s AND day <= %(last)s AND cost_centre = %(unallocated)s "
        "GROUP BY municipality, source ORDER BY municipality, source",
        {"first": period.first_day, "last": period.last_day, "unallocated": DEFAULT_COST_CENTRE},
    )


def dead_letters_query(period: Period) -> Query:
    """Messages refused during a period (by the day they were refused, UTC), per key and reason."""
    return Query(
        "SELECT message_key, reason, count() FROM dead_letters "
        "WHERE toDate(dead_at) >= %(first)s AND toDate(dead_at) <= %(last)s "
        "GROUP BY message_key, reason ORDER BY message_key, reason",
        {"first": period.first_day, "last": period.last_day},
    )


def late_usage_query(periods: Sequence[str]) -> Query:
    """Late usage of finalised months per line key: its first and last day and how many events."""
    return Query(
        "SELECT municipality, cost_centre, service, period, min(day), max(day), count() "
        "FROM v_late_usage WHERE period IN %(periods)s "
        "GROUP BY municipality, cost_centre, service, period "
        "ORDER BY municipality, cost_centre, service, period",
        {"periods": tuple(periods)},
    )


def source_last_days_query(first: date, last: date) -> Query:
    """Each source's last day with events between two days, with its municipality."""
    return Query(
        "SELECT source, municipality, max(day) FROM usage_events "
        "WHERE day >= %(first)s AND day <= %(last)s GROUP BY source, municipality "
        "ORDER BY municipality, source",
        {"first": first, "last": last},
    )


def final_runs_query(before: Period, months: int = LOOKBACK_MONTHS) -> Query:
    """The newest revision of every run of the ``months`` months before ``before`` (the caller keeps
    the final ones: a run's state is its newest revision)."""
    since = window_start(before, months)
    return Query(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM billing_runs "
        "WHERE period < %(before)s AND period >= %(since)s "
        "ORDER BY run_id, revision DESC LIMIT 1 BY run_id",
        {"before": str(before), "since": str(since)},
    )


def window_start(before: Period, months: int = LOOKBACK_MONTHS) -> Period:
    """The oldest month a run of ``before`` still corrects."""
    since = before
    for _ in range(months):
        since = since.previous()
    return since


def catalogue_query(sha256: str) -> Query:
    """The catalogue a run was priced with, by the SHA-256 of its bytes."""
    return Query(
        "SELECT body FROM billing_catalogues WHERE catalogue_sha256 = %(sha)s LIMIT 1", {"sha": sha256}
    )


def catalogue_insert(sha256: str, body: str, stored_at: datetime) -> Insert:
    """A catalogue's text under its SHA-256."""
    return Insert(
        "billing_catalogues", ("catalogue_sha256", "body", "stored_at"), [(sha256, body, stored_at)]
    )


def reasons_query(run_id: str) -> Query:
    """Why each correction line of a run exists."""
    return Query(
        "SELECT period, municipality, cost_centre, service, any(reason) FROM billing_line_reasons "
        "WHERE run_id = %(id)s GROUP BY period, municipality, cost_centre, service",
        {"id": run_id},
    )


def reasons_insert(run: Run, lines: Sequence[Line]) -> Insert:
    """The reasons of a run's correction lines."""
    return Insert(
        "billing_line_reasons",
        ("run_id", "period", "municipality", "cost_centre", "service", "reason"),
        [
            (run.run_id, x.corrects_period, x.municipality, x.cost_centre, x.service, x.reason)
            for x in lines
            if x.corrects_period and x.reason
        ],
    )


REPRICED_SQL = """
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


def repriced_query(before: Period, months: int = LOOKBACK_MONTHS) -> Query:
    """Finalised months (in the window of a run of ``before``) and members that a final run
    repriced, with that run's catalogue, its month and when it was priced (oldest first)."""
    return Query(REPRICED_SQL, {"before": str(before), "since": str(window_start(before, months))})


LATE_BEYOND_WINDOW_SQL = """
SELECT municipality, period, service, sum(quantity) AS quantity, count() AS events
FROM v_late_usage
WHERE period < %(since)s
GROUP BY municipality, period, service
ORDER BY municipality, period, service
"""


def late_beyond_window_query(before: Period, months: int = LOOKBACK_MONTHS) -> Query:
    """Usage stored after its month was finalised, of months older than the correction window of a
    run of ``before``: no run corrects it any more."""
    return Query(LATE_BEYOND_WINDOW_SQL, {"since": str(window_start(before, months))})


MONTH_DEAD_LETTERS_SQL = """
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
"""


def month_dead_letters_query(period: Period) -> Query:
    """Dead letters of a month per message key (the event's municipality) and whether the reason is
    an identifier the catalogue does not know (unknown municipality or service): a letter belongs to
    the month of its event's ``time``, or of when it was refused when the message has none."""
    return Query(MONTH_DEAD_LETTERS_SQL, {"period": str(period)})


LATE_OF_MONTH_SQL = """
SELECT municipality, count() AS events, sum(quantity) AS quantity
FROM usage_events
WHERE day >= %(first)s AND day <= %(last)s AND stored_at > %(since)s
GROUP BY municipality
ORDER BY municipality
"""


def late_of_month_query(period: Period, since: datetime) -> Query:
    """Usage of a month stored after ``since`` (when its draft was priced), per municipality."""
    return Query(LATE_OF_MONTH_SQL, {"first": period.first_day, "last": period.last_day, "since": since})


def header_insert(run: Run) -> Insert:
    """A run's header row (one revision of its state)."""
    return Insert(
        "billing_runs",
        RUN_COLUMNS,
        [
            (
                run.run_id,
                run.period,
                list(run.municipalities),
                run.status,
                run.price_list,
                run.currency,
                run.catalogue_sha256,
                run.usage_sha256,
                run.created_at,
                run.changed_at,
                run.revision,
            )
        ],
    )


def lines_insert(run: Run, lines: Sequence[Line]) -> Insert:
    """A run's line rows; a correction's ``period`` is the month it corrects."""
    return Insert(
        "billing_lines",
        LINE_COLUMNS,
        [
            (
                run.run_id,
                line.corrects_period or run.period,
                line.municipality,
                line.cost_centre,
                line.service,
                line.quantity,
                line.unit,
                line.unit_price,
                line.amount,
                line.vat_rate,
                line.vat_amount,
                line.currency,
                line.price_list,
            )
            for line in lines
        ],
    )


# --- the store ----------------------------------------------------------------------------------


class BillingStore:
    """Billing's reads and writes on one ClickHouse connection."""

    def __init__(self, ch: ClickHouse) -> None:
        self.ch = ch

    def _select(self, query: Query) -> list[tuple[Any, ...]]:
        return self.ch.execute(query.sql, query.params)

    def _insert(self, insert: Insert) -> None:
        self.ch.insert(insert.table, insert.columns, insert.rows)

    def period_totals(self, period: Period) -> list[PeriodTotals]:
        """The period's sums per municipality, cost centre and service, from ``usage_events``."""
        rows = self._select(period_totals_query(period))
        return [PeriodTotals(m, cc, s, Decimal(es), int(sd), Decimal(dm)) for m, cc, s, es, sd, dm in rows]

    def subjects(self, period: Period, municipalities: Sequence[str] = ()) -> list[SubjectUsage]:
        """The period's usage per subject, by municipality, cost centre, service and subject."""
        return [
            SubjectUsage(m, cc, s, subject, int(days), Decimal(qs), Decimal(ms), _details(attributes))
            for m, cc, s, subject, days, qs, ms, attributes in self._select(
                subjects_query(period, municipalities)
            )
        ]

    def find_run(self, run_id: str) -> Run | None:
        """The run's newest revision, or None."""
        rows = self._select(find_run_query(run_id))
        return _run(rows[0]) if rows else None

    def get_run(self, run_id: str) -> Run:
        """The run, or a RunError naming it."""
        run = self.find_run(run_id)
        if run is None:
            raise RunError(f"no billing run {run_id}; `chargeback billing list` shows the runs there are")
        return run

    def list_runs(self, period: Period | None = None) -> list[Run]:
        """Every run's newest revision, newest first."""
        rows = self._select(list_runs_query(period))
        return sorted((_run(r) for r in rows), key=lambda r: (r.created_at, r.run_id), reverse=True)

    def load_lines(self, run_id: str) -> list[Line]:
        """The run's lines in the one line order (``sort_lines``), correction lines with their reason."""
        rows = self._select(lines_query(run_id))
        reasons = {tuple(r[:4]): str(r[4]) for r in self._select(reasons_query(run_id))} if rows else {}
        return sort_lines(
            [
                Line(
                    municipality=m,
                    cost_centre=cc,
                    service=s,
                    quantity=_dec(q),
                    unit=unit,
                    unit_price=_dec(up) if up is not None else None,
                    amount=_dec(a),
                    vat_rate=_dec(vr),
                    vat_amount=_dec(va),
                    currency=cur,
                    price_list=pl,
                    corrects_period=line_period if line_period != rid[:7] else None,
                    reason=reasons.get((line_period, m, cc, s), "") if line_period != rid[:7] else "",
                )
                for m, cc, s, q, unit, up, a, vr, va, cur, pl, line_period, rid in rows
            ]
        )

    def write_lines(self, run: Run, lines: Sequence[Line]) -> None:
        """Store the run's lines that are not stored yet.

        An earlier attempt at this run may have stored some or all of its lines and failed before
        its header. The run id names the same period, scope, catalogue and usage, so those lines
        are these lines: only the ones not stored yet are written, and a retry never doubles a line.
        """
        stored = {tuple(row) for row in self._select(stored_line_keys_query(run.run_id))}
        insert = lines_insert(run, lines)
        self._insert(replace(insert, rows=[r for r in insert.rows if r[1:5] not in stored]))
        reasons = reasons_insert(run, lines)
        if reasons.rows:  # a replacing table: a retry writing them again changes nothing
            self._insert(reasons)

    def write_header(self, run: Run) -> None:
        """Store a revision of the run's header (its state)."""
        self._insert(header_insert(run))

    def finalised_periods(self, before: Period) -> dict[str, set[str] | None]:
        """Earlier months with a final run, and the municipalities those runs covered (None: all)."""
        covered: dict[str, set[str] | None] = {}
        for period, scope in self._select(finalised_periods_query(before)):
            if not scope or covered.get(period, set()) is None:
                covered[period] = None
            else:
                covered[period] = (covered.get(period) or set()) | set(scope)
        return covered

    def final_runs(self, before: Period) -> list[Run]:
        """The final runs of the months a run of ``before`` corrects, oldest month first."""
        runs = [_run(r) for r in self._select(final_runs_query(before))]
        return sorted((r for r in runs if r.status == FINAL), key=lambda r: (r.period, r.run_id))

    def repriced(self, before: Period) -> dict[tuple[str, str], str]:
        """(corrected month, municipality) -> the catalogue SHA-256 of the latest final run that
        repriced that member's month (with ``--reprice-invoiced``)."""
        return {(str(p), str(m)): str(sha) for p, m, sha, *_ in self._select(repriced_query(before))}

    def save_catalogue(self, sha256: str, body: str, stored_at: datetime) -> None:
        """Keep a catalogue's text under its SHA-256 (once: a replacing table)."""
        if not self._select(catalogue_query(sha256)):
            self._insert(catalogue_insert(sha256, body, stored_at))

    def catalogue_text(self, sha256: str) -> str | None:
        """The text of the catalogue with this SHA-256, or None when no run stored it."""
        rows = self._select(catalogue_query(sha256))
        return str(rows[0][0]) if rows else None

    def late_beyond_window(self, before: Period) -> list[tuple[str, str, str, Decimal, int]]:
        """(municipality, month, service, quantity, events) of late usage no run of ``before`` corrects."""
        return [
            (str(m), str(p), str(s), _dec(q), int(n))
            for m, p, s, q, n in self._select(late_beyond_window_query(before))
        ]

    def source_days(self, period: Period) -> list[tuple[str, str, date]]:
        """(municipality, source, day) with events, from the month before ``period`` to its end."""
        return [(str(m), str(s), d) for m, s, d in self._select(source_days_query(period))]

    def month_dead_letters(self, period: Period) -> list[tuple[str, bool, int]]:
        """(message key, unmapped identifier?, letters) of the dead letters of a month's events."""
        return [(str(k), bool(u), int(n)) for k, u, n in self._select(month_dead_letters_query(period))]

    def late_of_month(self, period: Period, since: datetime) -> dict[str, tuple[int, Decimal]]:
        """Per municipality: events of ``period`` stored after ``since`` and their quantity."""
        return {str(m): (int(n), _dec(q)) for m, n, q in self._select(late_of_month_query(period, since))}

    def billed(self, period: Period) -> Billed:
        """What final runs billed for a month so far: quantity, amount, VAT per line key."""
        rows = self._select(billed_query(period))
        return {(m, cc, s): (Decimal(q), Decimal(a), Decimal(v)) for m, cc, s, q, a, v in rows}

    def actual_by_month(
        self, year: int, through: Period | None = None
    ) -> dict[tuple[str, str], dict[str, Decimal]]:
        """Invoiced amounts (final runs) per municipality and service and month of the year, up to
        and including ``through`` (default: the whole year)."""
        out: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(dict)
        for municipality, service, period, amount in self._select(actual_by_month_query(year, through)):
            out[(municipality, service)][period] = Decimal(amount)
        return dict(out)

    def source_last_days(self, first: date, last: date) -> list[tuple[str, str, date]]:
        """(source, municipality, last day with events) of the sources that sent events between
        ``first`` and ``last``."""
        return [(str(s), str(m), day) for s, m, day in self._select(source_last_days_query(first, last))]

    def ticket_attributes(
        self, period: Period, municipalities: Sequence[str] = ()
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """(municipality, subject, attributes) of the month's ticket events, by municipality and subject."""
        return [
            (m, subject, json.loads(attributes))
            for m, subject, attributes in self._select(tickets_query(period, municipalities))
        ]

    def data_quality(self, period: Period, corrected: Sequence[str] = ()) -> DataQuality:
        """What the warehouse knows may be missing from a month's figures: each source's days with
        events in the month (every source that sent events this month or the month before) and
        subjects without a cost centre, the month's dead letters, and the late usage of the
        ``corrected`` months."""
        days: dict[tuple[str, str], list[date]] = defaultdict(list)
        for municipality, source, day in self._select(source_days_query(period)):
            found = days[(municipality, source)]  # a source of last month is named even if silent
            if day >= period.first_day:
                found.append(day)
        unallocated = {
            (m, source): int(n) for m, source, n in self._select(unallocated_subjects_query(period))
        }
        sources = tuple(
            SourceDays(m, source, tuple(found), unallocated.get((m, source), 0))
            for (m, source), found in sorted(days.items())
        )
        dead = tuple(DeadLetters(k, r, int(n)) for k, r, n in self._select(dead_letters_query(period)))
        late = (
            tuple(
                LateUsage(m, cc, s, p, first, last, int(n))
                for m, cc, s, p, first, last, n in self._select(late_usage_query(corrected))
            )
            if corrected
            else ()
        )
        return DataQuality(sources, dead, late)


@contextmanager
def open_store(settings: ClickHouseSettings) -> Iterator[BillingStore]:
    """A store on the configured ClickHouse, closed afterwards."""
    ch = from_settings(settings)
    try:
        require_schema(ch)  # after an upgrade, never before `chargeback db migrate`
        yield BillingStore(ch)
    finally:
        ch.close()


def _run(row: tuple[object, ...]) -> Run:
    values = dict(zip(RUN_COLUMNS, row, strict=True))
    return Run(
        run_id=str(values["run_id"]),
        period=str(values["period"]),
        municipalities=tuple(str(m) for m in values["municipalities"]),  # type: ignore[attr-defined]
        status=str(values["status"]),
        price_list=str(values["price_list"]),
        currency=str(values["currency"]),
        catalogue_sha256=str(values["catalogue_sha256"]),
        usage_sha256=str(values["usage_sha256"]),
        created_at=values["created_at"],  # type: ignore[arg-type]
        changed_at=values["changed_at"],  # type: ignore[arg-type]
        revision=int(values["revision"]),  # type: ignore[call-overload]
    )


def _details(attributes: str) -> tuple[tuple[str, str], ...]:
    try:
        values = json.loads(attributes) if attributes else {}
    except ValueError:
        return ()
    if not isinstance(values, dict):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in values.items() if v is not None and v != ""))


def _dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))
