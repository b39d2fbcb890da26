"""The billing lock: one billing command that changes runs (run, finalize, void) at a time per database.

The lock is a table, ``<database>.billing_lock``. ``CREATE TABLE`` without ``IF NOT EXISTS`` succeeds
for exactly one client, on the 18.16 server as on a current one and in chDB (the DDL is atomic: the
others get "table already exists"), so whoever creates it holds the lock; ``DROP TABLE`` releases it.
The holder writes one row into it: host, process id, command and time, so a refused command can
name the holder. A process that died while holding the lock leaves the table behind: once the
holder is older than the timeout (``CHARGEBACK_BILLING_LOCK_TIMEOUT_SECONDS``) the refusal says so,
and ``chargeback billing unlock`` releases it after finance has checked that the holder is gone.
Nothing takes a stale lock over by itself: a long run that is merely slow must never be joined by
a second one.

chDB adds its own, stricter exclusion: a data folder is opened by one process at a time, so a
second billing process on the same folder is refused before it reaches this lock (see
``chargeback.clickhouse``); the table lock still serialises commands within one process.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from billing_jobs.settings import BillingSettings
from billing_jobs.store import BillingStore, Query, open_store
from chargeback.clickhouse import ChdbFolderBusyError, ClickHouse, ClickHouseError, check_identifier
from chargeback.errors import UserError

LOCK_TABLE = "billing_lock"
# How often a command that waits for the lock looks again.
POLL_SECONDS = 0.2
# How long a refused command waits for the holder's row between the holder's CREATE and its INSERT.
HOLDER_ROW_WAIT_SECONDS = 1.0


class BillingLockedError(UserError):
    """Another billing command holds the lock on the database."""

    code = "billing.locked"


@dataclass(frozen=True)
class Holder:
    """Who holds the billing lock: where, which process, what command, since when."""

    host: str
    pid: int
    command: str
    acquired_at: datetime
    token: str

    def describe(self) -> str:
        """``billing run --period 2026-10 (pid 123 on host h, since 2026-10-05 08:00:00 UTC)``."""
        since = f"{self.acquired_at:%Y-%m-%d %H:%M:%S} UTC"
        if not self.token:  # a holder that took the lock and has not written its row (or died first)
            return f"a billing command that has not recorded itself (the lock exists since {since})"
        return f"{self.command} (pid {self.pid} on host {self.host}, since {since})"


# --- the statements, as values ------------------------------------------------------------------


def create_lock_query(database: str) -> Query:
    """The statement that takes the lock: it fails when the table exists (no ``IF NOT EXISTS``)."""
    return Query(
        f"CREATE TABLE {check_identifier(database)}.{LOCK_TABLE} "
        "(host String, pid UInt32, command String, acquired_at DateTime('UTC'), token String) "
        "ENGINE = Log"
    )


def drop_lock_query(database: str) -> Query:
    """The statement that releases the lock."""
    return Query(f"DROP TABLE IF EXISTS {check_identifier(database)}.{LOCK_TABLE}")


def lock_exists_query(database: str) -> Query:
    """Whether the lock table exists, and when it was created (its metadata's time, as a Unix time:
    the column is in the server's time zone)."""
    return Query(
        "SELECT count(), toUnixTimestamp(max(metadata_modification_time)) FROM system.tables "
        "WHERE database = %(db)s AND name = %(name)s",
        {"db": database, "name": LOCK_TABLE},
    )


def holder_query(database: str) -> Query:
    """The holder's row."""
    return Query(
        f"SELECT host, pid, command, acquired_at, token FROM {check_identifier(database)}.{LOCK_TABLE} "
        "ORDER BY acquired_at LIMIT 1"
    )


# --- taking and releasing -----------------------------------------------------------------------


def read_holder(ch: ClickHouse) -> Holder | None:
    """The lock's holder, or None when nobody holds it.

    Between the holder's CREATE and its INSERT the table has no row yet; this waits a moment for
    it, and past that names an unrecorded holder, aged by the table's creation time.
    """
    deadline = time.monotonic() + HOLDER_ROW_WAIT_SECONDS
    while True:
        try:
            rows = ch.execute(holder_query(ch.database).sql)
        except ClickHouseError:
            rows = None
        if rows:
            host, pid, command, acquired_at, token = rows[0]
            return Holder(str(host), int(pid), str(command), _aware(acquired_at), str(token))
        found = ch.execute(*_args(lock_exists_query(ch.database)))
        if not found or not found[0][0]:
            return None
        if time.monotonic() >= deadline:
            created = datetime.fromtimestamp(int(found[0][1]), UTC)
            return Holder("", 0, "", created, "")
        time.sleep(0.05)


def release(ch: ClickHouse) -> None:
    """Drop the lock table, whoever holds it (``billing unlock``; the holder's own release)."""
    ch.execute(drop_lock_query(ch.database).sql)


def unlock(
    ch: ClickHouse,
    *,
    timeout: timedelta,
    force: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Holder | None:
    """Release a lock whose holder is older than ``timeout`` (any lock with ``force``); return the
    holder released, None when nobody held it; refuse a lock that is not stale."""
    holder = read_holder(ch)
    if holder is None:
        return None
    if clock() - holder.acquired_at <= timeout and not force:
        raise BillingLockedError(
            f"the billing lock on database {ch.database} is held by {holder.describe()}, not longer than "
            f"the {int(timeout.total_seconds())} s timeout; it is released when that command ends "
            "(`--force` releases it anyway, when you know it is no longer running)"
        )
    release(ch)
    return holder


@contextmanager
def billing_lock(
    ch: ClickHouse,
    command: str,
    *,
    refused: Callable[[], str],
    timeout: timedelta,
    wait_seconds: float = 0.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_wait: Callable[[Holder], None] = lambda holder: None,
) -> Iterator[Holder]:
    """Hold the billing lock of ``ch``'s database while the block runs.

    ``command`` is what this process does, as the holder's record shows it; ``refused`` begins the
    sentence a refusal says, made when needed (``billing finalize of run X (2026-10, all
    municipalities) refused``).
    When another command holds the lock this waits up to ``wait_seconds`` (``on_wait`` hears of the
    holder once), then raises ``BillingLockedError`` naming the holder and the way forward.
    """
    me = Holder(socket.gethostname(), os.getpid(), command, clock().replace(microsecond=0), uuid.uuid4().hex)
    deadline = time.monotonic() + wait_seconds
    told = False
    while True:
        try:
            ch.execute(create_lock_query(ch.database).sql)
            break
        except ClickHouseError:
            holder = read_holder(ch)
            if holder is None:
                if time.monotonic() < deadline + POLL_SECONDS:
                    time.sleep(POLL_SECONDS / 4)
                    continue  # released in between: try again
                raise  # not a held lock: the database's own error
        age = clock() - holder.acquired_at
        if age > timeout:
            raise BillingLockedError(
                f"{refused()}: the billing lock on database {ch.database} is held by {holder.describe()}, "
                f"longer than the {int(timeout.total_seconds())} s timeout; if that command is no longer "
                "running, release the lock with `chargeback billing unlock` and try again"
            )
        if time.monotonic() >= deadline:
            raise BillingLockedError(
                f"{refused()}: another billing command holds the lock on database {ch.database}: "
                f"{holder.describe()}; try again when it has finished"
            )
        if not told:
            on_wait(holder)
            told = True
        time.sleep(POLL_SECONDS)
    recorded = False
    try:
        ch.insert(
            LOCK_TABLE,
            ("host", "pid", "command", "acquired_at", "token"),
            [(me.host, me.pid, me.command, me.acquired_at, me.token)],
        )
        recorded = True
        yield me
    finally:
        if recorded:
            _release_own(ch, me.token)
        else:
            release(ch)


def _release_own(ch: ClickHouse, token: str) -> None:
    """Drop the lock if its row is this holder's: a command that ``billing unlock --force`` let in
    while this one still ran keeps its lock (and a lock already gone stays gone)."""
    try:
        rows = ch.execute(holder_query(ch.database).sql)
    except ClickHouseError:
        return  # no lock table: nothing of ours to release
    if rows and str(rows[0][4]) == token:
        release(ch)


def _args(query: Query) -> tuple[str, dict[str, object] | None]:
    return query.sql, query.params


def _aware(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"not a time: {value!r}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@contextmanager
def locked_store(
    settings: BillingSettings,
    command: str,
    *,
    refused: Callable[[BillingStore | None], str],
    on_wait: Callable[[Holder], None] = lambda holder: None,
) -> Iterator[BillingStore]:
    """A store on the configured ClickHouse, with the billing lock held while it is used.

    ``refused(store)`` begins the one sentence a refusal says (``store`` is None when the database
    could not even be opened); a chDB folder that another process has open is refused in the same
    words as a held lock.
    """
    with ExitStack() as stack:
        try:
            store = stack.enter_context(open_store(settings))
        except ChdbFolderBusyError as exc:
            raise BillingLockedError(f"{refused(None)}: {exc}") from exc
        stack.enter_context(
            billing_lock(
                store.ch,
                command,
                refused=lambda: refused(store),
                timeout=timedelta(seconds=settings.billing_lock_timeout_seconds),
                wait_seconds=settings.billing_lock_wait_seconds,
                on_wait=on_wait,
            )
        )
        yield store
