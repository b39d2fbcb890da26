"""The one door to ClickHouse: a server through clickhouse-driver, or embedded chDB.

Both backends take the same SQL with ``%(name)s`` parameters and return the same typed Python
values (``Decimal``, ``date``, aware ``datetime``), so nothing above this module knows which one
it talks to. The URL picks the backend:

- ``clickhouse://[user[:password]@]host[:port]`` — a ClickHouse server over the native protocol;
- ``chdb:PATH`` — an embedded chDB data folder (one process per folder: chDB locks it).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from chargeback.errors import ChargebackError
from chargeback.settings import ClickHouseSettings, check_clickhouse_url

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The driver logs a failed connection with its traceback before raising; the error raised here says
# it in one sentence. Processes that configure logging still receive the driver's records.
logging.getLogger("clickhouse_driver").addHandler(logging.NullHandler())


class ClickHouseError(ChargebackError, RuntimeError):
    """A query failed; the message carries the server's reason."""

    code = "clickhouse.failed"


class ClickHouse(Protocol):
    """What the rest of chargeback needs from ClickHouse."""

    backend: str
    database: str

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement; return its rows as tuples of typed values."""
        ...

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows in one block (one part per table partition)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def check_identifier(name: str) -> str:
    """Return ``name`` if it is a plain SQL identifier, else raise (names are never parameters)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


@dataclass(frozen=True)
class Target:
    """A parsed ClickHouse URL."""

    backend: str
    path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 9000
    user: str = "default"
    password: str = ""


def parse_url(url: str) -> Target:
    """Parse ``chdb:PATH`` or ``clickhouse://user:password@host:port``."""
    check_clickhouse_url(url)  # one sentence, password redacted
    if url.startswith("chdb:"):
        return Target(backend="chdb", path=Path(url[len("chdb:") :].removeprefix("//")))
    parts = urlsplit(url)
    assert parts.hostname is not None
    return Target(
        backend="server",
        host=parts.hostname,
        port=parts.port or 9000,
        user=unquote(parts.username) if parts.username else "default",
        password=unquote(parts.password) if parts.password else "",
    )


def connect(url: str, database: str, *, password: str | None = None, create: bool = False) -> ClickHouse:
    """Open ``database`` at ``url``; with ``create`` make the database first if it is missing."""
    check_identifier(database)
    target = parse_url(url)
    if target.backend == "chdb":
        assert target.path is not None
        return ChdbClickHouse(target.path, database, create=create)
    return ServerClickHouse(target, database, password=password, create=create)


def from_settings(
    settings: ClickHouseSettings, *, database: str | None = None, create: bool = False
) -> ClickHouse:
    """Open the ClickHouse the settings name: their URL, database (or ``database``) and password.

    Every command connects through here; close the connection, or use ``contextlib.closing``.
    """
    return connect(
        settings.clickhouse_url,
        database or settings.clickhouse_database,
        password=settings.clickhouse_password_value(),
        create=create,
    )


# The schema this code reads and writes: the number of the newest migration in sql/ (warehouse
# applies them; tests/unit/test_schema_version.py keeps the two equal).
SCHEMA_VERSION = 8


class SchemaMismatch(ClickHouseError):
    """The database's schema is not the one this version of chargeback was written for."""

    code = "clickhouse.schema"


def require_schema(ch: ClickHouse, version: int = SCHEMA_VERSION) -> None:
    """Refuse to work on a database whose applied migrations are not exactly ``version``.

    The stream worker and the billing commands check this when they start, so that after an
    upgrade nothing runs against a schema it does not know (``chargeback db migrate`` first).
    """
    exists = ch.execute(
        "SELECT count() FROM system.tables WHERE database = %(db)s AND name = 'schema_migrations'",
        {"db": ch.database},
    )
    if not exists[0][0]:
        raise SchemaMismatch(f"database {ch.database} has no chargeback schema: run chargeback db migrate")
    applied = int(ch.execute("SELECT max(version) FROM schema_migrations")[0][0] or 0)
    if applied < version:
        raise SchemaMismatch(
            f"the schema of database {ch.database} is at version {applied}, this chargeback needs "
            f"{version}: run chargeback db migrate"
        )
    if applied > version:
        raise SchemaMismatch(
            f"the schema of database {ch.database} is at version {applied}, newer than this "
            f"chargeback ({version}): upgrade chargeback"
        )


@contextmanager
def connected(
    url: str, database: str, *, password: str | None = None, create: bool = False
) -> Iterator[ClickHouse]:
    """``connect`` as a context manager that closes the connection."""
    ch = connect(url, database, password=password, create=create)
    try:
        yield ch
    finally:
        ch.close()


# --- server backend -----------------------------------------------------------------------------


class ServerClickHouse:
    """A ClickHouse server over the native protocol (clickhouse-driver)."""

    backend = "server"

    def __init__(self, target: Target, database: str, *, password: str | None, create: bool) -> None:
        from clickhouse_driver import Client

        self.database = database
        self._client_kwargs: dict[str, Any] = {
            "host": target.host,
            "port": target.port,
            "user": target.user,
            "password": password if password is not None else target.password,
            "connect_timeout": 5,
            "send_receive_timeout": 300,
            "settings": {"use_numpy": False},
        }
        if create:
            from clickhouse_driver.errors import Error

            bootstrap = Client(database="default", **self._client_kwargs)
            try:
                bootstrap.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
            except (Error, OSError, EOFError) as exc:
                raise self._error(exc) from exc
            finally:
                bootstrap.disconnect()
        self._client = Client(database=database, **self._client_kwargs)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        from clickhouse_driver.errors import Error

        try:
            # Parameters are rendered here, not by the driver, so both backends read the same SQL.
            rows = self._client.execute(render(sql, params))
        except (Error, OSError, EOFError) as exc:
            if _unreachable(exc):
                self._client.disconnect()
            raise self._error(exc) from exc
        return [tuple(_utc(v) for v in row) for row in rows] if isinstance(rows, list) else []

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        from clickhouse_driver.errors import Error

        if not rows:
            return
        cols = ", ".join(check_identifier(c) for c in columns)
        try:
            self._client.execute(f"INSERT INTO {check_identifier(table)} ({cols}) VALUES", list(rows))
        except (Error, OSError, EOFError) as exc:
            if _unreachable(exc):
                self._client.disconnect()
            raise self._error(exc) from exc

    def close(self) -> None:
        self._client.disconnect()

    def _error(self, exc: Exception) -> ClickHouseError:
        """The server's reason in one line, or that the server could not be reached at all."""
        if _unreachable(exc):
            where = f"{self._client_kwargs['host']}:{self._client_kwargs['port']}"
            return ClickHouseError(f"ClickHouse server at {where} unreachable: {_first_line(str(exc))}")
        return ClickHouseError(_first_line(str(exc)))


def _unreachable(exc: Exception) -> bool:
    from clickhouse_driver.errors import NetworkError, SocketTimeoutError

    return isinstance(exc, (OSError, EOFError, NetworkError, SocketTimeoutError))


def _utc(value: Any) -> Any:
    # The driver returns DateTime('UTC') columns as aware datetimes on current versions and as naive
    # ones on some older servers; every DateTime column in sql/ is UTC, so naive means UTC.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _first_line(message: str) -> str:
    # Server messages start "Code: N." and put the reason on the next line, before a stack trace.
    text = message.split("Stack trace", 1)[0].strip()
    return " ".join(line.strip() for line in text.splitlines())[:2000]


# --- embedded chDB backend ----------------------------------------------------------------------


@dataclass
class _SharedSession:
    session: Any
    lock: threading.Lock
    current_database: str = ""


_sessions: dict[Path, _SharedSession] = {}
_sessions_lock = threading.Lock()


class ChdbClickHouse:
    """Embedded ClickHouse (chDB) on a data folder; one folder per process, shared by its users."""

    backend = "chdb"

    def __init__(self, path: Path, database: str, *, create: bool) -> None:
        self.database = database
        self._shared = _session_for(path)
        self._column_types: dict[tuple[str, str], dict[str, str]] = {}
        if create:
            self._run(f"CREATE DATABASE IF NOT EXISTS {database}", use_database=False)
        exists = self._run(
            "SELECT count() FROM system.databases WHERE name = %(db)s", {"db": database}, use_database=False
        )
        if not exists[0][0]:
            raise ClickHouseError(
                f"database {database} does not exist in {path} (run: chargeback db migrate)"
            )

    def _run(
        self, sql: str, params: Mapping[str, Any] | None = None, *, use_database: bool = True
    ) -> list[tuple[Any, ...]]:
        text = render(sql, params)
        shared = self._shared
        with shared.lock:
            try:
                # Every connection of this process shares the folder's one session, each with its
                # own database: switch only when the last statement ran in another one.
                if use_database and shared.current_database != self.database:
                    shared.session.query(f"USE {self.database}")
                    shared.current_database = self.database
                result = shared.session.query(text, "JSONCompact")
            except Exception as exc:  # chDB raises its own error type for any server-side error
                raise ClickHouseError(_first_line(str(exc))) from exc
        body = result.bytes() if hasattr(result, "bytes") else bytes(result)
        if not body.strip():
            return []
        doc = json.loads(body, parse_float=Decimal)
        converters = [_converter(col["type"]) for col in doc["meta"]]
        return [tuple(conv(v) for conv, v in zip(converters, row, strict=True)) for row in doc["data"]]

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self._run(sql, params)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        types = self._arrow_types(table, columns)
        if types is None:
            self._insert_json(table, columns, rows)
            return
        import pyarrow as pa

        arrays = []
        for values, kind in zip(zip(*rows, strict=True), types, strict=True):
            if pa.types.is_timestamp(kind) and any(v is not None and v.tzinfo is None for v in values):
                raise ValueError("naive datetime sent to ClickHouse; every timestamp must carry a time zone")
            try:
                arrays.append(pa.array(values, type=kind))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                # Values Arrow does not take as they are (a bool for UInt8, mixed types): the text
                # format lets ClickHouse convert them, as it always did.
                self._insert_json(table, columns, rows)
                return
        self._insert_arrow(table, columns, pa.Table.from_arrays(arrays, names=list(columns)))

    def _insert_arrow(self, table: str, columns: Sequence[str], rows: Any) -> None:
        # chDB reads ``Python(name)`` from the calling frame's variables: ``rows`` must stay a local
        # of the frame that runs the query.
        cols = ", ".join(check_identifier(c) for c in columns)
        shared = self._shared
        with shared.lock:
            try:
                if shared.current_database != self.database:
                    shared.session.query(f"USE {self.database}")
                    shared.current_database = self.database
                shared.session.query(
                    f"INSERT INTO {check_identifier(table)} ({cols}) SELECT {cols} FROM Python(rows)"
                )
            except Exception as exc:  # chDB raises its own error type for any server-side error
                raise ClickHouseError(_first_line(str(exc))) from exc

    def _arrow_types(self, table: str, columns: Sequence[str]) -> list[Any] | None:
        """Arrow types of ``columns`` (cached per table), or None if one has no exact Arrow twin."""
        key = (self.database, table)
        if key not in self._column_types:
            rows = self._run(
                "SELECT name, type FROM system.columns WHERE database = %(db)s AND table = %(t)s",
                {"db": self.database, "t": table},
            )
            self._column_types[key] = dict(rows)
        declared = self._column_types[key]
        if any(c not in declared for c in columns):
            self._column_types.pop(key)  # unknown column: let ClickHouse word the error
            return None
        types = [_arrow_type(declared[c]) for c in columns]
        return None if any(t is None for t in types) else types

    def _insert_json(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        cols = ", ".join(check_identifier(c) for c in columns)
        dumps = json.JSONEncoder(ensure_ascii=False, default=_json_value, separators=(",", ":")).encode
        # One converter per column, chosen from the first row that has a value there: rows of one
        # insert share their column types.
        converters = [_column_converter(rows, i) for i in range(len(columns))]
        pairs = list(enumerate(converters))
        body = "\n".join(dumps([conv(row[i]) for i, conv in pairs]) for row in rows)
        self._run(f"INSERT INTO {check_identifier(table)} ({cols}) FORMAT JSONCompactEachRow\n{body}")

    def close(self) -> None:
        # The session stays open for the process: chDB allows one data folder per process, and
        # other connections of this process may share it.
        pass


def close_all() -> None:
    """Close this process's chDB session, if it opened one.

    Call it before the process exits: left to the interpreter's shutdown, the engine's teardown
    can race with threads that are still alive and crash the process after its work is done.
    """
    with _sessions_lock:
        for shared in _sessions.values():
            with shared.lock:
                shared.session.close()
        _sessions.clear()


def _session_for(path: Path) -> _SharedSession:
    from chdb.session import Session

    key = path.resolve()
    with _sessions_lock:
        if key not in _sessions:
            if _sessions:
                other = next(iter(_sessions))
                raise ClickHouseError(
                    f"this process already uses the chDB folder {other}; chDB allows one folder per process"
                )
            key.mkdir(parents=True, exist_ok=True)
            with _engine_stderr() as said:
                try:
                    session = Session(str(key))  # type: ignore[no-untyped-call]
                except Exception as exc:
                    failure: Exception | None = exc
                else:
                    failure = None
            if failure is not None:
                if "Cannot lock file" in said.text:
                    raise ChdbFolderBusyError(
                        f"the chDB folder {key} is in use by another process (chDB opens a folder in one "
                        "process at a time); try again when that command has finished"
                    ) from failure
                raise ClickHouseError(
                    f"cannot open chDB folder {key}: {_first_line(said.text or str(failure))}"
                ) from failure
            sys.stderr.write(said.text)
            _sessions[key] = _SharedSession(session, threading.Lock())
        return _sessions[key]


class ChdbFolderBusyError(ClickHouseError):
    """Another process has the chDB data folder open."""

    code = "clickhouse.chdb_busy"


@dataclass
class _Captured:
    text: str = ""


@contextmanager
def _engine_stderr() -> Iterator[_Captured]:
    """What the engine writes to the process's standard error (file descriptor 2) meanwhile.

    chDB's engine prints why it cannot open a folder ("Cannot lock file .../status") on descriptor
    2 itself and raises an exception that does not say it; catching the text lets the refusal be
    one sentence of ours instead of the engine's lines.
    """
    captured = _Captured()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", errors="replace")


_ARROW_SCALARS = {
    "String": "string",
    "Date": "date32",
    "UInt8": "uint8",
    "UInt16": "uint16",
    "UInt32": "uint32",
    "UInt64": "uint64",
    "Int8": "int8",
    "Int16": "int16",
    "Int32": "int32",
    "Int64": "int64",
}
_DECIMAL = re.compile(r"^Decimal\((\d+), *(\d+)\)$")


def _arrow_type(type_name: str) -> Any:
    """The Arrow type that carries values of a ClickHouse column exactly, or None."""
    import pyarrow as pa

    if type_name.startswith("Nullable("):
        return _arrow_type(type_name[len("Nullable(") : -1])
    if type_name.startswith("LowCardinality("):
        return _arrow_type(type_name[len("LowCardinality(") : -1])
    if type_name.startswith("Array("):
        inner = _arrow_type(type_name[len("Array(") : -1])
        return None if inner is None else pa.list_(inner)
    if type_name in _ARROW_SCALARS:
        return getattr(pa, _ARROW_SCALARS[type_name])()
    if match := _DECIMAL.match(type_name):
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    if type_name == "DateTime('UTC')":
        # Whole seconds, as the column keeps them; Arrow refuses a naive datetime here.
        return pa.timestamp("s", tz="UTC")
    return None


def _epoch(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive datetime sent to ClickHouse; every timestamp must carry a time zone")
    return int(value.timestamp())


_BY_TYPE: dict[type, Any] = {
    str: None,
    int: None,
    bool: None,
    Decimal: str,
    date: date.isoformat,
    datetime: _epoch,
}


def _column_converter(rows: Sequence[Sequence[Any]], index: int) -> Any:
    kinds = {type(row[index]) for row in rows}
    nullable = type(None) in kinds
    kinds.discard(type(None))
    if len(kinds) != 1 or next(iter(kinds)) not in _BY_TYPE:
        return _json_scalar
    convert = _BY_TYPE[next(iter(kinds))]
    if convert is None:
        return lambda v: v
    return (lambda v: None if v is None else convert(v)) if nullable else convert


def _json_value(value: Any) -> Any:
    raise TypeError(f"cannot send {type(value).__name__} to ClickHouse")


def _json_scalar(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime sent to ClickHouse; every timestamp must carry a time zone")
        return int(value.timestamp())
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json_scalar(v) for v in value]
    return value


def _converter(type_name: str) -> Any:
    if type_name.startswith("Nullable("):
        inner = _converter(type_name[len("Nullable(") : -1])
        return lambda v: None if v is None else inner(v)
    if type_name.startswith("LowCardinality("):
        return _converter(type_name[len("LowCardinality(") : -1])
    if type_name.startswith("Decimal"):
        return lambda v: Decimal(str(v)) if not isinstance(v, Decimal) else v
    if type_name in ("Date", "Date32"):
        return date.fromisoformat
    if type_name.startswith("DateTime"):
        zone = re.search(r"'([^']+)'", type_name)
        tz = ZoneInfo(zone.group(1)) if zone else UTC
        return lambda v: datetime.fromisoformat(v).replace(tzinfo=tz).astimezone(UTC)
    if re.match(r"^U?Int\d+$", type_name):
        return int
    if type_name.startswith("Array("):
        inner = _converter(type_name[len("Array(") : -1])
        return lambda v: [inner(x) for x in v]
    if type_name.startswith("Float"):
        return float
    return lambda v: v


# --- parameter rendering (chDB has no server-side parameters) -----------------------------------

_PARAM = re.compile(r"%\((\w+)\)s")


def render(sql: str, params: Mapping[str, Any] | None) -> str:
    """Inline ``%(name)s`` parameters as ClickHouse literals, escaped."""
    if not params:
        return sql
    return _PARAM.sub(lambda m: literal(params[m.group(1)]), sql)


def literal(value: Any) -> str:
    """One Python value as a ClickHouse SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in a query; every timestamp must carry a time zone")
        text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"toDateTime('{text}', 'UTC')"
    if isinstance(value, date):
        return f"toDate('{value.isoformat()}')"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return "(" + ", ".join(literal(v) for v in items) + ")"
    raise TypeError(f"cannot render {type(value).__name__} as a ClickHouse literal")
