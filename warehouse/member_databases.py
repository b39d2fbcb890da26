"""A database per member municipality holding only its own rows, for servers configured by files.

Servers without SQL access control or per-table row filters (ClickHouse before 19.4, such as
18.16) can only allow or refuse whole databases, and they check a view's inner tables too. So
each member gets its own database (``<database>_m<code>`` unless configured) with:

- a copy of each member table holding only the member's rows, and of the shared catalogue tables;
- a materialized view per table (``<table>_feed``) that copies the member's rows of every insert
  into the main table as it happens;
- the analysts' views, created from the migrations' own ``CREATE VIEW`` statements inside the
  member database, so their unqualified names read the member's copies.

The price is a second copy of each member's rows and one filtered write per member per insert.

Every table is insert-only: usage events and dead letters are written once per Kafka position,
billing lines once per run, and a run's state change or a catalogue sync is a new row (a higher
``revision`` or ``synced_at``), never an update. So a copy is exact when it holds each main row
once, and rows already there can be recognised by the table's key (``COPIED_TABLES``).

Rows already in the main tables are copied by a backfill. An insert feeds the materialized views
that exist when it starts and writes the main table before the views, and it stays in
``system.processes`` until both are written. The order, each step safe to repeat:

1. create the copy and its feed (``IF NOT EXISTS``): every insert starting from now is copied;
2. wait until the inserts running now have finished: every row of an insert that started
   before the feed existed is now in the main table;
3. snapshot the member's rows of the main table into a staging table;
4. wait until the inserts running now have finished: every row in the snapshot that an insert
   fed through step 1's view is now in the copy, so the copy holds it under its key;
5. insert the snapshot's rows whose key the copy does not hold, and drop the staging table.

A snapshot row is thus either in the copy already (fed, or copied by an earlier run) or was
never fed (written before the feed existed, or its feed failed): step 5 adds exactly those. Rows
written after the snapshot reach the copy through the feed alone. Running it again adds nothing.
(``billing_runs`` and the catalogue tables are ReplacingMergeTree: a merge in either the main
table or the copy may drop superseded revisions, and a re-run may copy one back; the views read
only the newest revision, so what members see is the same.)
It assumes synchronous inserts (ClickHouse's default; the stream worker and billing use them)
and one run at a time.

On 18.16 an insert that starts while a materialized view on its table is being created can fail
with "Table ... doesn't exist" (the view is registered as a dependency before it is attached),
having written nothing. The stream worker's sink writes such a batch again; other writers
(billing, catalogue sync) should not run while member databases are created.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from chargeback.clickhouse import ClickHouse, ClickHouseError, check_identifier, literal
from chargeback.errors import UserError
from warehouse.migrations import SQL_DIR, discover


class MemberDatabaseError(UserError):
    """A member database cannot be built; the message says which and why."""

    code = "member_database.invalid"


@dataclass(frozen=True)
class CopiedTable:
    """A main table copied into member databases."""

    name: str
    # The rows a member sees ({code} is its municipality code); None: every row (shared data).
    condition: str | None
    # Identifies a row among those written to the table: how the backfill recognises copied rows.
    key: tuple[str, ...]


COPIED_TABLES = (
    CopiedTable(
        "usage_events",
        "municipality = {code}",
        ("kafka_topic", "kafka_partition", "kafka_offset", "event_id"),
    ),
    CopiedTable(
        "billing_lines",
        "municipality = {code}",
        ("run_id", "period", "municipality", "cost_centre", "service"),
    ),
    CopiedTable("dead_letters", "message_key = {code}", ("kafka_topic", "kafka_partition", "kafka_offset")),
    CopiedTable(
        "billing_runs", "has(municipalities, {code}) OR empty(municipalities)", ("run_id", "revision")
    ),
    CopiedTable("catalogue_services", None, ("service", "synced_at")),
    CopiedTable("catalogue_municipalities", None, ("municipality", "synced_at")),
    CopiedTable("catalogue_prices", None, ("price_list", "service", "synced_at")),
)
FEED_SUFFIX = "_feed"
BACKFILL_SUFFIX = "_backfill"
# Statements of queries that write: what the backfill waits for (18.16's match() has no (?i)).
_RUNNING_INSERTS = "SELECT query_id FROM system.processes WHERE match(upper(query), '^\\\\s*INSERT\\\\s')"


def member_database(database: str, code: str, configured: str | None = None) -> str:
    """The member's database: the configured name, or ``<database>_m<code>``."""
    return check_identifier(configured or f"{database}_m{code}")


def member_condition(table: CopiedTable, code: str) -> str | None:
    """The condition that keeps the member's rows of ``table``; None for shared tables."""
    return table.condition.format(code=literal(code)) if table.condition else None


def _where(table: CopiedTable, code: str) -> str:
    condition = member_condition(table, code)
    return f" WHERE {condition}" if condition else ""


def copy_statements(database: str, member_db: str) -> list[str]:
    """The copy tables, made like the main tables (step 1; safe to re-run)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {member_db}.{table.name} AS {database}.{table.name}"
        for table in COPIED_TABLES
    ]


def feed_statements(
    database: str, member_db: str, code: str, columns: Mapping[str, Sequence[str]]
) -> list[str]:
    """The materialized views that feed the copies (step 1; safe to re-run).

    ``columns`` are each copy's columns: the feeds, the snapshot and the backfill name them, so a
    column added to a main table later breaks neither inserts into it nor a re-run (a copy keeps
    the columns it was made with; rebuild the member database to get new ones).
    """
    return [
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {member_db}.{table.name}{FEED_SUFFIX} "
        f"TO {member_db}.{table.name} AS SELECT {', '.join(columns[table.name])} "
        f"FROM {database}.{table.name}{_where(table, code)}"
        for table in COPIED_TABLES
    ]


def snapshot_statements(
    database: str, member_db: str, code: str, columns: Mapping[str, Sequence[str]]
) -> list[str]:
    """The member's rows of the main tables into staging tables (step 3)."""
    out = []
    for table in COPIED_TABLES:
        stage = f"{member_db}.{table.name}{BACKFILL_SUFFIX}"
        cols = ", ".join(columns[table.name])
        # Plain MergeTree in insertion order: no merge may collapse rows of the snapshot.
        out.append(f"DROP TABLE IF EXISTS {stage}")
        out.append(f"CREATE TABLE {stage} AS {database}.{table.name} ENGINE = MergeTree() ORDER BY tuple()")
        out.append(
            f"INSERT INTO {stage} ({cols}) SELECT {cols} FROM {database}.{table.name}{_where(table, code)}"
        )
    return out


def backfill_statements(member_db: str, columns: Mapping[str, Sequence[str]]) -> list[str]:
    """The snapshot's rows that the copies do not hold yet, then the staging tables dropped (step 5)."""
    out = []
    for table in COPIED_TABLES:
        stage = f"{member_db}.{table.name}{BACKFILL_SUFFIX}"
        cols = ", ".join(columns[table.name])
        key = ", ".join(table.key)
        out.append(
            f"INSERT INTO {member_db}.{table.name} ({cols}) SELECT {cols} FROM {stage} "
            f"WHERE ({key}) NOT IN (SELECT {key} FROM {member_db}.{table.name})"
        )
        out.append(f"DROP TABLE {stage}")
    return out


def view_statements(sql_dir: Path = SQL_DIR) -> list[str]:
    """The migrations' ``CREATE VIEW`` statements, in order; run in a member database, their
    unqualified names resolve to its copies."""
    return [s for m in discover(sql_dir) for s in m.statements() if s.upper().startswith("CREATE VIEW")]


def table_columns(ch: ClickHouse, database: str) -> dict[str, list[str]]:
    """The stored columns of each copied table in ``database``, in table order."""
    out = {}
    for table in COPIED_TABLES:
        try:
            rows = ch.execute(f"DESCRIBE TABLE {database}.{table.name}")
        except ClickHouseError as exc:
            raise MemberDatabaseError(
                f"table {database}.{table.name} cannot be read ({exc}); run chargeback db migrate first"
            ) from exc
        out[table.name] = [str(r[0]) for r in rows if str(r[2]) not in ("MATERIALIZED", "ALIAS")]
    return out


def wait_for_running_inserts(
    ch: ClickHouse,
    *,
    timeout_s: float = 300.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once every insert that runs now has finished (inserts started later do not count)."""
    running = {str(qid) for (qid,) in ch.execute(_RUNNING_INSERTS)}
    deadline = clock() + timeout_s
    while running:
        if clock() > deadline:
            raise MemberDatabaseError(
                f"{len(running)} inserts still running after {timeout_s:.0f} s; run chargeback db users "
                "again when they have finished (what was done so far is kept)"
            )
        sleep(0.05)
        running &= {str(qid) for (qid,) in ch.execute("SELECT query_id FROM system.processes")}


@dataclass(frozen=True)
class MemberDatabase:
    """A member database to build: the municipality and the database's name."""

    code: str
    name: str


def build_member_databases(
    admin: ClickHouse,
    open_database: Callable[[str], ClickHouse],
    members: Sequence[MemberDatabase],
    *,
    wait: Callable[[ClickHouse], None] = wait_for_running_inserts,
    sql_dir: Path = SQL_DIR,
) -> None:
    """Create or complete each member's database: copies, feeds, backfill and views (re-runnable).

    ``admin`` reads and writes the main database; ``open_database(name)`` connects to a database,
    creating it if missing (the views are created there so that their names resolve inside it).
    """
    if not members:
        return
    database = admin.database
    table_columns(admin, database)  # the main tables exist: migrated
    views = view_statements(sql_dir)
    connections = {m.name: open_database(m.name) for m in members}
    columns: dict[str, dict[str, list[str]]] = {}
    try:
        for m in members:
            ch = connections[m.name]
            for statement in copy_statements(database, m.name):
                ch.execute(statement)
            columns[m.name] = table_columns(ch, m.name)
            for statement in feed_statements(database, m.name, m.code, columns[m.name]):
                ch.execute(statement)
        wait(admin)
        for m in members:
            for statement in snapshot_statements(database, m.name, m.code, columns[m.name]):
                connections[m.name].execute(statement)
        wait(admin)
        for m in members:
            for statement in (*backfill_statements(m.name, columns[m.name]), *views):
                connections[m.name].execute(statement)
    finally:
        for ch in connections.values():
            ch.close()
