"""Row isolation on the real ClickHouse server: a member logs in and sees only its own rows.

The test server (Debian's 18.16) is configured by files and has no row filters, so members read
their own member database (copies of their rows, fed as rows arrive); the same isolation is
checked here by logging in as a member, through the ``chargeback db users`` command.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

import devstack
from billing_jobs import service
from billing_jobs.store import BillingStore
from chargeback.catalogue import load_catalogue
from chargeback.clickhouse import ClickHouse, ClickHouseError, connect
from chargeback.events import Known
from chargeback.period import Period
from chargeback.retry import RetryPolicy
from chargeback_cli.main import cli
from streams.sink import Record, UsageSink
from warehouse.access import VIEWS
from warehouse.member_databases import COPIED_TABLES, MemberDatabase, build_member_databases
from warehouse.migrations import migrate, sync_catalogue

pytestmark = pytest.mark.integration

CATALOGUE = load_catalogue(Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml")
OCTOBER = Period(2026, 10)
ENV = {"BOLLNAS_PW": "b-secret", "HUDIK_PW": "h-secret", "ANALYST_PW": "a-secret"}
ACCESS_YAML = """\
analysts:
  - {name: analyst, password_env: ANALYST_PW}
members:
  - {name: bollnas, municipality: "2183", password_env: BOLLNAS_PW}
  - {name: hudiksvall, municipality: "2184", password_env: HUDIK_PW}
"""
# Per view: the condition that picks one municipality's rows from the analyst's full view.
MEMBER_ROWS = {view: "municipality = %(code)s" for view in VIEWS} | {
    "v_dead_letters": "municipality_key = %(code)s"
}


def event(eid: str, municipality: str, subject: str, when: str = "2026-10-05T06:00:00Z") -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": eid,
            "source": f"urn:chargeback:collector:{municipality}:intune",
            "type": "chargeback.usage.v1",
            "time": when,
            "data": {
                "municipality": municipality,
                "service": "pc-standard",
                "subject": subject,
                "quantity": "1",
            },
        }
    ).encode()


def store(ch: ClickHouse, records: list[Record], at: datetime) -> None:
    """Through the stream worker's own sink, as in production."""
    sink = UsageSink(
        ch, known=Known({"2183", "2184"}, {"pc-standard"}), tz=ZoneInfo("Europe/Stockholm"), clock=lambda: at
    )
    sink.store(sink.prepare(records))


def login(url: str, user: str, password: str, database: str) -> ClickHouse:
    deadline = time.monotonic() + 20
    while True:  # the server reloads its users files every few seconds
        try:
            ch = connect(url.replace("clickhouse://", f"clickhouse://{user}:{password}@"), database)
            ch.execute("SELECT 1")
            return ch
        except ClickHouseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def db_users(url: str, access: Path, users_xml: Path) -> str:
    result = CliRunner().invoke(
        cli,
        ["db", "users", "--config", str(access), "--users-xml", str(users_xml)],
        env={"CHARGEBACK_CLICKHOUSE_URL": url, "CHARGEBACK_CLICKHOUSE_DATABASE": "access", **ENV},
    )
    assert result.exit_code == 0, result.output
    return result.output


def view_rows(ch: ClickHouse, view: str, where: str = "", code: str = "") -> list[tuple[Any, ...]]:
    rows = ch.execute(f"SELECT * FROM {view}" + (f" WHERE {where}" if where else ""), {"code": code})
    return sorted(rows, key=repr)


def copy_counts(admin: ClickHouse, member_db: str) -> dict[str, int]:
    return {t.name: admin.execute(f"SELECT count() FROM {member_db}.{t.name}")[0][0] for t in COPIED_TABLES}


def test_logins_are_read_only_and_members_see_only_their_rows(tmp_path: Path) -> None:
    state = tmp_path / "own-clickhouse"
    with devstack.running(["clickhouse"], state_dir=state) as found:
        url = found.clickhouse_url
        assert url
        admin = connect(url, "access", create=True)
        migrate(admin)
        sync_catalogue(admin, CATALOGUE, now=datetime(2026, 10, 1, tzinfo=UTC))
        store(
            admin,
            [
                Record("usage", 0, 0, b"2183", event("e0", "2183", "PC0")),
                Record("usage", 0, 1, b"2183", event("e1", "2183", "PC1")),
                Record("usage", 0, 2, b"2184", event("e2", "2184", "PC2")),
                Record("usage", 0, 3, b"2184", b"broken"),
                Record("usage", 0, 4, b"2183", b"also broken"),
            ],
            datetime(2026, 11, 1, tzinfo=UTC),
        )
        run = service.create_run(
            BillingStore(admin), CATALOGUE, "sha", OCTOBER, now=datetime(2026, 11, 1, 1, tzinfo=UTC)
        ).run
        access = tmp_path / "access.yaml"
        access.write_text(ACCESS_YAML)
        users_xml = state / "clickhouse" / "users.d" / "chargeback.xml"

        output = db_users(url, access, users_xml)
        assert output == (
            "member databases up to date: access_m2183, access_m2184; wrote 3 users to "
            f"{users_xml}; the server loads it within seconds\n"
        )
        assert "secret" not in users_xml.read_text()

        analyst = login(url, "analyst", "a-secret", "access")
        bollnas = login(url, "bollnas", "b-secret", "access_m2183")

        # Rows stored before the member database existed: exactly the member's, in every view.
        assert bollnas.execute("SELECT event_id, municipality FROM v_usage_events ORDER BY event_id") == [
            ("e0", "2183"),
            ("e1", "2183"),
        ]
        assert bollnas.execute("SELECT * FROM v_usage_daily") == [
            ("2183", "UNALLOCATED", "pc-standard", date(2026, 10, 5), "daily_distinct", Decimal(2), 2, 2)
        ]
        assert bollnas.execute("SELECT municipality_key, value FROM v_dead_letters") == [
            ("2183", "also broken")
        ]
        # October priced for all six: 2 device-days of 31 at 310.00, the flat base offering, and
        # 26500 of 129400 inhabitants' share of 100000.00 SOC a month (floor in öre; the three
        # remaining öre go to larger remainders).
        assert bollnas.execute(
            "SELECT municipality, service, quantity, amount, status FROM v_charges ORDER BY service"
        ) == [
            ("2183", "base-offering", Decimal("1"), Decimal("125000.00"), "draft"),
            ("2183", "pc-standard", Decimal("0.064516"), Decimal("20.00"), "draft"),
            ("2183", "soc-shared", Decimal("1"), Decimal("20479.13"), "draft"),
        ]
        for view in VIEWS:
            mine = view_rows(bollnas, view)
            assert mine == view_rows(analyst, view, MEMBER_ROWS[view], "2183"), view
            assert view_rows(bollnas, view, f"NOT ({MEMBER_ROWS[view]})", "2183") == [], view
        assert bollnas.execute("SELECT count() FROM v_charges_final") == [(0,)]

        # The main database and another member's database are out of reach.
        for database in ("access", "access_m2184"):
            # 18.16 ends the handshake of a login to a database it may not read (its log says
            # "Access denied to database ..."); the client sees the connection closed.
            with pytest.raises(ClickHouseError):
                connect(url.replace("clickhouse://", "clickhouse://bollnas:b-secret@"), database).execute(
                    "SELECT 1"
                )
            with pytest.raises(
                ClickHouseError, match=f"Access denied to database {database} for user bollnas"
            ):
                bollnas.execute(f"SELECT count() FROM {database}.usage_events")
            with pytest.raises(
                ClickHouseError, match=f"Access denied to database {database} for user bollnas"
            ):
                bollnas.execute(f"SELECT count() FROM {database}.v_usage_events")

        # Rows written after the member database exists arrive through the feed.
        service.finalize_run(
            BillingStore(admin),
            run.run_id,
            CATALOGUE,
            now=datetime(2026, 11, 2, tzinfo=UTC),
            accept_gaps=True,
        )
        store(
            admin,
            [
                Record("usage", 0, 5, b"2183", event("e5", "2183", "PC5", "2026-10-20T06:00:00Z")),
                Record("usage", 0, 6, b"2184", event("e6", "2184", "PC6")),
            ],
            datetime(2026, 11, 3, tzinfo=UTC),
        )
        assert bollnas.execute("SELECT event_id FROM v_usage_events ORDER BY event_id") == [
            ("e0",),
            ("e1",),
            ("e5",),
        ]
        assert bollnas.execute("SELECT event_id, period FROM v_late_usage") == [("e5", "2026-10")]
        assert bollnas.execute("SELECT DISTINCT run_id, municipality FROM v_charges_final") == [
            (run.run_id, "2183")
        ]
        before = {view: view_rows(bollnas, view) for view in VIEWS}
        for view in VIEWS:
            assert before[view] == view_rows(analyst, view, MEMBER_ROWS[view], "2183"), view
        counts = copy_counts(admin, "access_m2183")
        assert counts["usage_events"] == 3
        assert counts["dead_letters"] == 1
        assert counts["billing_runs"] == 2  # the draft and the final revision

        # Running it again copies nothing twice.
        db_users(url, access, users_xml)
        assert copy_counts(admin, "access_m2183") == counts
        assert {view: view_rows(bollnas, view) for view in VIEWS} == before

        hudiksvall = login(url, "hudiksvall", "h-secret", "access_m2184")
        assert hudiksvall.execute("SELECT event_id FROM v_usage_events ORDER BY event_id") == [
            ("e2",),
            ("e6",),
        ]
        assert hudiksvall.execute("SELECT value FROM v_dead_letters") == [("broken",)]

        assert analyst.execute("SELECT count() FROM v_usage_events") == [(5,)]
        with pytest.raises(ClickHouseError, match=r"(?i)readonly"):
            bollnas.insert("usage_events", ["event_id"], [("forged",)])
        with pytest.raises(ClickHouseError):
            wrong = url.replace("clickhouse://", "clickhouse://bollnas:wrong@")
            connect(wrong, "access_m2183").execute("SELECT 1")
        for ch in (bollnas, hudiksvall, analyst, admin):
            ch.close()


@pytest.fixture
def open_database(clickhouse: ClickHouse, clickhouse_url: str) -> Iterator[Callable[[str], ClickHouse]]:
    """Opens (creating) further databases beside the ``clickhouse`` fixture's; drops them after."""
    opened: set[str] = set()

    def open_(name: str) -> ClickHouse:
        opened.add(name)
        return connect(clickhouse_url, name, create=True)

    try:
        yield open_
    finally:
        for name in opened:
            clickhouse.execute(f"DROP DATABASE IF EXISTS {name}")


def test_member_databases_copy_exactly_the_members_rows_on_both_backends(
    clickhouse: ClickHouse, open_database: Callable[[str], ClickHouse]
) -> None:
    sync_catalogue(clickhouse, CATALOGUE, now=datetime(2026, 10, 1, tzinfo=UTC))
    store(
        clickhouse,
        [
            Record("usage", 0, 0, b"2183", event("e0", "2183", "PC0")),
            Record("usage", 0, 1, b"2184", event("e1", "2184", "PC1")),
            Record("usage", 0, 2, b"2183", b"broken"),
        ],
        datetime(2026, 11, 1, tzinfo=UTC),
    )
    service.create_run(
        BillingStore(clickhouse),
        CATALOGUE,
        "sha",
        OCTOBER,
        ["2184"],
        now=datetime(2026, 11, 1, tzinfo=UTC),
    )
    member_db = f"{clickhouse.database}_m2183"
    members = [MemberDatabase("2183", member_db)]

    build_member_databases(clickhouse, open_database, members)
    # A column a later migration might add to a main table breaks neither the feed nor a re-run.
    clickhouse.execute("ALTER TABLE usage_events ADD COLUMN note String")
    store(
        clickhouse,
        [Record("usage", 0, 3, b"2183", event("e3", "2183", "PC3", "2026-10-06T06:00:00Z"))],
        datetime(2026, 11, 2, tzinfo=UTC),
    )
    build_member_databases(clickhouse, open_database, members)

    assert copy_counts(clickhouse, member_db) == {
        "usage_events": 2,
        "billing_lines": 0,
        "dead_letters": 1,
        "billing_runs": 0,  # a run for 2184 only
        "catalogue_services": 6,
        "catalogue_municipalities": 6,
        "catalogue_prices": 12,  # six services in two price lists
    }
    member = open_database(member_db)
    assert member.execute("SELECT event_id, day FROM v_usage_events ORDER BY event_id") == [
        ("e0", date(2026, 10, 5)),
        ("e3", date(2026, 10, 6)),
    ]
    assert member.execute("SELECT day, quantity FROM v_usage_daily ORDER BY day") == [
        (date(2026, 10, 5), Decimal(1)),
        (date(2026, 10, 6), Decimal(1)),
    ]
    assert member.execute("SELECT month, quantity_total FROM v_usage_monthly") == [
        (date(2026, 10, 1), Decimal(2))
    ]
    assert member.execute("SELECT municipality_key, value FROM v_dead_letters") == [("2183", "broken")]
    assert member.execute("SELECT count() FROM v_charges") == [(0,)]
    assert [t for (t,) in member.execute("SHOW TABLES") if t.endswith("_backfill")] == []


def test_rows_inserted_while_member_databases_are_built_are_copied_once(
    server_database: ClickHouse, clickhouse_server_url: str
) -> None:
    ch = server_database
    migrate(ch)

    def records(start: int, end: int) -> list[Record]:
        codes = ["2183" if i % 2 == 0 else "2184" for i in range(start, end)]
        return [
            Record("usage", 0, i, code.encode(), event(f"e{i:06d}", code, f"PC{i}"))
            for i, code in zip(range(start, end), codes, strict=True)
        ]

    store(ch, records(0, 2000), datetime(2026, 11, 1, tzinfo=UTC))
    stop = threading.Event()
    written = [2000]

    def write() -> None:
        # The stream worker's sink, writing small batches for as long as the databases are built.
        # On 18.16 an insert that starts while a feed is being created fails with "Table ...
        # doesn't exist" before writing anything; the sink finds nothing landed and writes it again.
        writer = connect(clickhouse_server_url, ch.database)
        sink = UsageSink(
            writer,
            known=Known({"2183", "2184"}, {"pc-standard"}),
            tz=ZoneInfo("Europe/Stockholm"),
            clock=lambda: datetime(2026, 11, 1, tzinfo=UTC),
            retry=RetryPolicy(first_s=0.05, cap_s=0.05, retry_on=(ClickHouseError,)),
        )
        try:
            while not stop.is_set():
                sink.store(sink.prepare(records(written[0], written[0] + 20)))
                written[0] += 20
        finally:
            writer.close()

    names = [f"{ch.database}_m{n}" for n in range(3)]
    thread = threading.Thread(target=write)
    thread.start()
    try:
        for name in names:
            build_member_databases(
                ch, lambda db: connect(clickhouse_server_url, db, create=True), [MemberDatabase("2183", name)]
            )
        deadline = time.monotonic() + 60
        while written[0] < 2600 and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)  # and rows written after them, through the feeds alone
    finally:
        stop.set()
        thread.join()
    try:
        assert written[0] >= 2600
        expected = ch.execute(
            "SELECT event_id FROM usage_events WHERE municipality = '2183' ORDER BY event_id"
        )
        assert len(expected) == written[0] // 2
        for name in names:
            assert ch.execute(f"SELECT event_id FROM {name}.usage_events ORDER BY event_id") == expected, name
    finally:
        for name in names:
            ch.execute(f"DROP DATABASE IF EXISTS {name}")
