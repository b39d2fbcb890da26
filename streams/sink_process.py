"""The worker's sink contract, and the usage sink behind it in a process of its own.

The contract (after Quix Streams' sinks): ``write(chunks)`` buffers a batch (validated and
deduplicated; the dead letters to produce come back), ``flush(timeout_s)`` writes the buffer and
is called before the batch's offsets are committed, ``abandon()`` drops a buffer that will not be
committed (its partitions were revoked), ``forget(partitions)`` after a rebalance. When ClickHouse
cannot take the batch, ``write`` and ``flush`` raise ``SinkBackpressure`` carrying ``retry_after``
(the one retry policy's next wait) instead of blocking: the caller stops consuming, waits, and
calls the same method again; ``flush`` resumes where it stopped and never writes a row twice.

Behind the contract the sink (``sink.py``) runs in a child process, so that reading Kafka and
storing events use a core each (in one process both share one interpreter lock): the worker
starts it before Faust and talks to it over a pipe, one request at a time. The order of the
exactly-once protocol is the worker's and unchanged: dead letters are produced before ``flush``,
offsets acknowledged after it. The child dies with its parent (Linux: a parent-death signal), so
a killed worker never leaves a sink behind that could still write.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import threading
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from chargeback.clickhouse import ClickHouse, ClickHouseError
from streams.sink import CLICKHOUSE_RETRY, Batch, Counters, Record, UsageSink

log = logging.getLogger(__name__)

# One partition's messages: topic, partition, then offsets, keys, values and timestamps (ms).
Columns = tuple[str, int, list[int], list[bytes | None], list[bytes | None], list[int | None]]


@dataclass(frozen=True)
class SinkConfig:
    """What the child needs to build its sink (picklable; the password never leaves memory)."""

    clickhouse_url: str
    clickhouse_database: str
    clickhouse_password: str | None
    catalogue: Path
    key_registry: Path | None


class SinkBackpressure(ClickHouseError):
    """ClickHouse cannot take the batch now: call again after ``retry_after`` seconds (nothing lost)."""

    code = "clickhouse.backpressure"

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Prepared:
    """What the main process needs of a prepared batch."""

    dead: list[tuple[bytes | None, bytes]]  # (message key, dead letter JSON) to produce
    rows: int
    duplicates: int
    replayed: int


def columns_of(topic: str, partition: int, records: Sequence[Any]) -> Columns:
    """A chunk of Kafka records as columns: cheaper to send than one object per message."""
    return (
        topic,
        partition,
        [r.offset for r in records],
        [r.key for r in records],
        [r.value for r in records],
        [r.timestamp for r in records],
    )


class SinkProcess:
    """The client side: a ``UsageSink`` in a child process, called like the sink itself."""

    def __init__(self, config: SinkConfig) -> None:
        self.counters = Counters()
        self._lock = threading.Lock()  # one request at a time on the pipe, whichever thread asks
        context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=serve, args=(child_conn, config, os.getpid()), name="chargeback-sink", daemon=True
        )
        self._process.start()
        child_conn.close()
        try:
            self._call("ready")
        except BaseException:
            self.close()
            raise

    def write(self, chunks: Sequence[Columns]) -> Prepared:
        """Validate and deduplicate a batch into the buffer; nothing is written to ClickHouse yet."""
        prepared: Prepared = self._call("write", chunks)
        return prepared

    def flush(self, timeout_s: float | None = None) -> None:
        """Write the buffer; returns once ClickHouse has every row, or raises ``SinkBackpressure``
        after about ``timeout_s`` (call ``flush`` again: it resumes)."""
        self._call("flush", timeout_s)

    def abandon(self) -> None:
        """Drop the buffer, unwritten, and the child's caches of its partitions."""
        self._call("abandon")

    def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop what the child caches for partitions this worker no longer owns."""
        self._call("forget", list(partitions))

    def require_schema(self) -> None:
        """Raise unless the database's schema is the one this code needs (``clickhouse.require_schema``)."""
        self._call("schema")

    def freshness(self) -> list[tuple[str, str, Any, Any]]:
        """Per member and source, when the last event was stored (``metrics.read_freshness``)."""
        rows: list[tuple[str, str, Any, Any]] = self._call("freshness")
        return rows

    def close(self) -> None:
        """Stop the child: it closes its ClickHouse connection and exits."""
        if self._process.is_alive():
            with contextlib.suppress(ClickHouseError, RuntimeError):
                self._call("close")
            self._process.join(30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()

    def _call(self, op: str, payload: Any = None) -> Any:
        try:
            with self._lock:
                self._conn.send((op, payload))
                status, result, counters = self._conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            self._process.join(1)
            raise RuntimeError(
                f"the sink process ended unexpectedly (exit code {self._process.exitcode})"
            ) from exc
        if counters is not None:
            (
                self.counters.received,
                self.counters.stored,
                self.counters.duplicates,
                self.counters.dead,
                self.counters.replayed,
                self.counters.insert_retries,
            ) = counters
        if status == "backpressure":
            message, retry_after = result
            raise SinkBackpressure(message, retry_after)
        if status == "error":
            raise RuntimeError(f"the sink process failed:\n{result}")
        return result


def serve(conn: Connection, config: SinkConfig, parent: int) -> None:  # pragma: no cover - a child process
    """The child: build the sink, then answer requests until told to close or the parent is gone."""
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    from chargeback.clickhouse import close_all

    sink: UsageSink | None = None
    pending: Batch | None = None
    ch: ClickHouse | None = None
    backoff = CLICKHOUSE_RETRY.delays()  # the next retry-after while ClickHouse keeps failing
    try:
        while True:
            try:
                op, payload = conn.recv()
            except EOFError:
                return
            try:
                reply: Any = None
                if op == "close":  # also when building the sink failed: the worker is ending
                    conn.send(("ok", None, _counters(sink)))
                    return
                if op == "ready":
                    sink, ch = _build_sink(config)
                    _tune_collector()
                elif sink is None:
                    raise RuntimeError("the sink was not built")
                elif op == "write":
                    pending = sink.prepare(_records(payload))
                    reply = Prepared(
                        dead=[(d.key, d.to_json()) for d in pending.dead],
                        rows=len(pending.rows),
                        duplicates=pending.duplicates,
                        replayed=pending.replayed,
                    )
                elif op == "flush":
                    if pending is None:
                        raise RuntimeError("flush without a written batch")
                    sink.store(pending, timeout_s=payload)
                    pending = None
                elif op == "abandon":
                    # Part of it may have landed while this worker's caches did not learn it: the
                    # partitions' caches are read again from ClickHouse when next needed.
                    if pending is not None:
                        sink.forget(pending.partitions)
                    pending = None
                elif op == "forget":
                    sink.forget(tuple(tp) for tp in payload)
                elif op == "schema":
                    from chargeback.clickhouse import require_schema

                    assert ch is not None  # built with the sink
                    require_schema(ch)
                elif op == "freshness":
                    from streams.metrics import read_freshness

                    assert ch is not None  # built with the sink
                    reply = read_freshness(ch)
                else:
                    raise RuntimeError(f"unknown request {op!r}")
                backoff = CLICKHOUSE_RETRY.delays()
                conn.send(("ok", reply, _counters(sink)))
            except ClickHouseError as exc:
                conn.send(("backpressure", (str(exc), next(backoff)), _counters(sink)))
            except Exception:
                conn.send(("error", traceback.format_exc(), _counters(sink)))
    finally:
        if ch is not None:
            ch.close()
        close_all()


def _build_sink(config: SinkConfig) -> tuple[UsageSink, ClickHouse]:
    from chargeback.catalogue import load_catalogue
    from chargeback.clickhouse import connect
    from chargeback.events import Known
    from chargeback.signing import load_registry

    catalogue = load_catalogue(config.catalogue)
    keys = load_registry(config.key_registry, os.environ) if config.key_registry else None
    ch = connect(config.clickhouse_url, config.clickhouse_database, password=config.clickhouse_password)
    sink = UsageSink(
        ch,
        known=Known(municipalities=set(catalogue.municipality_codes), services=set(catalogue.service_ids)),
        tz=catalogue.tz,
        keys=keys,
    )
    return sink, ch


def _records(chunks: Sequence[Columns]) -> list[Record]:
    return [
        Record(topic, partition, offset, key, value, timestamp)  # type: ignore[arg-type]
        for topic, partition, offsets, keys, values, timestamps in chunks
        for offset, key, value, timestamp in zip(offsets, keys, values, timestamps, strict=True)
    ]


def _tune_collector() -> None:
    # A batch allocates tens of thousands of short-lived tuples that hold no cycles, and the cyclic
    # garbage collector scanned them (and everything imported) again and again: measured, it took
    # about a third of ``prepare``. What is loaded by now is set aside for good, and a collection
    # waits for 50,000 new objects instead of 700.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _counters(sink: UsageSink | None) -> tuple[int, ...] | None:
    return astuple(sink.counters) if sink is not None else None


def _die_with(parent: int) -> None:
    # A sink that outlived a killed worker could still write a batch the worker's successor is
    # writing again: the child asks the kernel to kill it when its parent dies.
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        log.warning("cannot tie the sink process to its worker on this system")
    if os.getppid() != parent:  # the parent died before the signal was set up
        os._exit(1)
