"""The Faust application of the stream worker: consume usage events, hand batches to the sink.

Faust owns the consumer group, partition assignment, offset tracking and commits; the sink owns
exactness. The usage topic is read through the bulk transport (``bulk.py``): each fetch round
reaches the worker as one chunk per partition, so per-message framework overhead does not cap
throughput. The worker's task takes those chunks from a small queue, flushes by size or time, and
acknowledges a chunk only after the sink has stored it and its dead letters (if any) are on the
dead-letter topic.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import tempfile
import time
from collections.abc import Sequence
from typing import Any, cast

import faust

from chargeback.clickhouse import ClickHouseError
from chargeback.kafka import KafkaSecurity
from chargeback.signing import load_registry
from streams.bulk import BulkConsumer, BulkTransport, Chunk
from streams.logs import logging_config
from streams.metrics import FRESHNESS_INTERVAL_S, WorkerMetrics
from streams.settings import WorkerSettings
from streams.sink_process import Prepared, SinkBackpressure, SinkConfig, SinkProcess, columns_of

log = logging.getLogger(__name__)


def broker_url(bootstrap: str) -> str:
    """Faust's broker URL for a comma-separated bootstrap list."""
    return ";".join(f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip())


def broker_credentials(security: KafkaSecurity) -> Any:
    """Faust's credentials for the worker's consumer, producer and admin calls (None: plaintext)."""
    if security.protocol == "SSL":
        return faust.SSLCredentials(security.ssl_context())
    if security.protocol == "SASL_SSL":
        return faust.SASLCredentials(
            username=security.username,
            password=security.password,
            ssl_context=security.ssl_context(),
            mechanism=security.sasl_mechanism,
        )
    return None


_SCRATCH: list[tempfile.TemporaryDirectory[str]] = []


def build_app(
    settings: WorkerSettings,
    sink: SinkProcess,
    *,
    metrics: WorkerMetrics | None = None,
    exit_when_idle: float | None = None,
) -> Any:
    """The worker's Faust app, wired to ``sink``."""
    # Faust keeps table files in its data folder (by default ``<app id>-data`` in the working
    # directory). Tables live in memory here and the stored events in ClickHouse, so the folder is
    # a temporary one, removed with the process, instead of a stray folder where the worker started.
    scratch = tempfile.TemporaryDirectory(prefix="chargeback-worker-")
    app = faust.App(
        settings.worker_app_id,
        datadir=scratch.name,
        broker=broker_url(settings.kafka_bootstrap),
        broker_credentials=broker_credentials(KafkaSecurity.from_settings(settings)),
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=settings.worker_heartbeat_interval_s,
        broker_rebalance_timeout=settings.worker_rebalance_timeout_s,
        broker_max_poll_records=5000,
        producer_acks=-1,
    )
    transport = BulkTransport(app.conf.broker_consumer, app, loop=app.loop)
    app.transport = transport
    events_topic = app.topic(settings.usage_topic, key_type=bytes, value_type=bytes)
    app.topics.add(events_topic)  # subscribed by Faust, delivered in bulk below
    dead_topic = app.topic(settings.dead_topic, key_type=bytes, value_type=bytes)
    # A few fetch rounds ahead at most: a full queue blocks the consumer (back-pressure).
    rounds: asyncio.Queue[Sequence[Chunk]] = asyncio.Queue(maxsize=8)
    owner = asyncio.Lock()  # a batch is stored, or partitions are revoked: never both at once
    activity = {"last": time.monotonic(), "batches": 0}

    async def hand_off(chunks: Sequence[Chunk]) -> None:
        await rounds.put(chunks)

    transport.register_bulk(settings.usage_topic, hand_off)

    async def next_batch() -> list[Chunk]:
        # Up to batch_max_events messages, or what arrived within batch_max_seconds of the first.
        chunks = list(await rounds.get())
        size = sum(len(c.records) for c in chunks)
        deadline = time.monotonic() + settings.worker_batch_max_seconds
        while size < settings.worker_batch_max_events:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                more = await asyncio.wait_for(rounds.get(), remaining)
            except TimeoutError:
                break
            chunks.extend(more)
            size += sum(len(c.records) for c in more)
        return chunks

    # A rebalance (Faust's revoke) first stops the flow and waits for every message in hand to be
    # acknowledged, then signals ``on_revoked``. A batch holds ``owner`` for one attempt at a time,
    # each bounded by half the rebalance timeout; while ClickHouse is down it waits between attempts
    # with ``owner`` released, and once a rebalance begins after a failed attempt it gives up: its
    # messages and those queued are released unacknowledged and read again from the committed
    # offsets by the partitions' next owner, and positions and ids make that exact.
    attempt_timeout = settings.worker_rebalance_timeout_s / 2
    revocations = [0]

    def give_up(fetched: list[Chunk], consumer: BulkConsumer) -> None:
        for chunk in fetched:
            consumer.release_chunk(chunk)
        if consumer.suspended:
            # A rebalance is under way: the rounds queued were fetched before it, and Faust reads
            # every partition again from its committed offset once it is over.
            release_queued(consumer)

    async def pause(delay: float, consumer: BulkConsumer) -> None:
        # The retry wait, cut short when a rebalance stops the flow.
        waits = [
            asyncio.ensure_future(asyncio.sleep(delay)),
            asyncio.ensure_future(consumer.wait_suspended()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def store_batch(fetched: list[Chunk]) -> tuple[int, Prepared, list[list[bytes | None]]] | None:
        consumer = cast(BulkConsumer, app.consumer)
        epoch = revocations[0]
        prepared: Prepared | None = None
        failed = False
        while True:
            async with owner:
                assigned = consumer.assignment()
                chunks = [c for c in fetched if c.tp in assigned]
                # The first attempt goes ahead even while a rebalance waits (it is bounded, and
                # then the revoke hands over stored work); after a failure, a rebalance or a stop
                # wins.
                rebalanced = revocations[0] != epoch or consumer.suspended or app.should_stop
                if not chunks or (failed and rebalanced):
                    if prepared is not None:
                        await asyncio.to_thread(sink.abandon)
                        log.warning(
                            "a rebalance began while ClickHouse was unavailable: batch left to be read again"
                        )
                    give_up(fetched, consumer)
                    return None
                try:
                    if prepared is None:
                        columns = [columns_of(c.tp.topic, c.tp.partition, c.records) for c in chunks]
                        prepared = await asyncio.to_thread(sink.write, columns)
                        # Dead letters first: if the worker dies after them, the replay sends them
                        # again (at-least-once, each naming its origin) and the rows are still
                        # written once.
                        pending = [
                            await dead_topic.send(key=key, value=letter) for key, letter in prepared.dead
                        ]
                        for fut in pending:
                            await fut
                    await asyncio.to_thread(sink.flush, attempt_timeout)
                except SinkBackpressure as exc:
                    failed = True
                    delay = exc.retry_after
                    log.warning("ClickHouse unavailable (%s); retrying the batch in %.1f s", exc, delay)
                else:
                    for chunk in chunks:
                        consumer.ack_chunk(chunk)
                    keys = [[r.key for r in c.records] for c in chunks]  # per member metrics
                    return sum(len(c.records) for c in chunks), prepared, keys
            await pause(delay, consumer)  # ``owner`` released meanwhile

    def release_queued(consumer: BulkConsumer) -> None:
        while not rounds.empty():
            for chunk in rounds.get_nowait():
                consumer.release_chunk(chunk)

    @app.task  # type: ignore[untyped-decorator]
    async def meter() -> None:
        try:
            while not app.should_stop:
                fetched = await next_batch()
                started = time.monotonic()
                done = await store_batch(fetched)
                if done is None:
                    continue
                read, batch, keys = done
                activity["last"] = time.monotonic()
                activity["batches"] += 1
                if metrics is not None:
                    metrics.observe_batch(read, time.monotonic() - started)
                    metrics.observe_members(keys, batch.dead)
                log.info(
                    "batch: %d read, %d stored, %d duplicate, %d dead, %d replayed",
                    read,
                    batch.rows,
                    batch.duplicates,
                    len(batch.dead),
                    batch.replayed,
                )
        finally:
            # Stopping: rounds still queued will not be stored by this worker. Released, they are
            # no longer waited for by Faust's stop (which would otherwise wait for ever), and, not
            # acknowledged, they are read again after a restart.
            release_queued(cast(BulkConsumer, app.consumer))

    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", ())
        began = time.monotonic()
        revocations[0] += 1  # a batch waiting to retry gives up instead
        async with owner:  # a batch's attempt in flight ends (bounded) before another worker takes over
            await asyncio.to_thread(sink.forget, [(tp.topic, tp.partition) for tp in revoked])
        log.info("partitions revoked: %d, handed over in %.1f s", len(revoked), time.monotonic() - began)

    async def log_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned = args[0] if args else kwargs.get("assigned", ())
        log.info("partitions assigned: %d", len(assigned))

    app.on_partitions_revoked.connect(on_revoked)
    app.on_partitions_assigned.connect(log_assigned)

    if exit_when_idle is not None:

        @app.timer(interval=0.5)  # type: ignore[untyped-decorator]
        async def stop_when_idle() -> None:
            # Before the first batch, allow for joining the group (a rebalance takes seconds).
            idle_limit = exit_when_idle if activity["batches"] else max(exit_when_idle, 60.0)
            if time.monotonic() - activity["last"] >= idle_limit:
                log.warning("no events for %.1f s: stopping", idle_limit)
                os.kill(os.getpid(), signal.SIGTERM)

    if metrics is not None:

        @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
        async def report_lag() -> None:
            metrics.observe_lag(await _lag(app))

        async def on_assigned(sender: Any, /, *args: Any, **kwargs: Any) -> None:
            metrics.health.consuming = True  # joined the group (an idle spare worker has no partitions)

        app.on_partitions_assigned.connect(on_assigned)

    if metrics is not None and settings.worker_metrics_port is not None:
        # Freshness (and readiness) queries only when someone can read them: each takes the sink's
        # connection for a moment, between batches.

        @app.timer(interval=FRESHNESS_INTERVAL_S)  # type: ignore[untyped-decorator]
        async def check_clickhouse() -> None:
            await _check_clickhouse(sink, metrics)

        @app.task  # type: ignore[untyped-decorator]
        async def first_check() -> None:
            await _check_clickhouse(sink, metrics)  # ready without waiting for the first interval

    _SCRATCH.append(scratch)  # kept for the process's life; removed when it ends
    return app


async def _check_clickhouse(sink: SinkProcess, metrics: WorkerMetrics) -> None:
    # The freshness query is the readiness probe too: it goes through the sink's own connection.
    try:
        rows = await asyncio.to_thread(sink.freshness)
    except (ClickHouseError, RuntimeError) as exc:
        metrics.health.clickhouse_failed(str(exc))
        log.warning("ClickHouse does not answer the freshness query: %s", exc)
        return
    metrics.health.clickhouse_answered()
    metrics.observe_freshness(rows)


async def _lag(app: Any) -> dict[tuple[str, int], int]:
    # Approximate by design: some brokers' "latest" offsets are off for batched records.
    consumer = cast(BulkConsumer, app.consumer)
    assigned = consumer.assignment()
    if not assigned:
        return {}
    highwater = {tp: consumer.highwater(tp) for tp in assigned}
    return {
        (tp.topic, tp.partition): max(0, (hw or 0) - (consumer.read_offset(tp) or -1) - 1)
        for tp, hw in highwater.items()
    }


def run_worker(settings: WorkerSettings, *, exit_when_idle: float | None = None) -> SinkProcess:
    """Run a worker until it is stopped (SIGTERM/SIGINT) or, with ``exit_when_idle``, idle.

    The sink runs in a child process (``sink_process.py``) so that reading Kafka and storing
    events use a core each; the catalogue and key registry are checked here first, so a mistake
    in them is reported before anything starts.
    """
    from chargeback.catalogue import load_catalogue

    catalogue = load_catalogue(settings.catalogue)
    if settings.worker_key_registry:
        load_registry(settings.worker_key_registry, os.environ)
    sink = SinkProcess(
        SinkConfig(
            clickhouse_url=settings.clickhouse_url,
            clickhouse_database=settings.clickhouse_database,
            clickhouse_password=settings.clickhouse_password_value(),
            catalogue=settings.catalogue,
            key_registry=settings.worker_key_registry,
        )
    )
    try:
        sink.require_schema()  # after an upgrade, never before `chargeback db migrate`
        metrics = WorkerMetrics(sink.counters, catalogue.municipality_codes)
        if settings.worker_metrics_port is not None:
            metrics.serve(settings.worker_metrics_host, settings.worker_metrics_port)
        app = build_app(settings, sink, metrics=metrics, exit_when_idle=exit_when_idle)
        worker = faust.Worker(
            app,
            loglevel=settings.worker_log_level,
            logging_config=logging_config(settings.worker_log_level, settings.worker_log_format),
            quiet=True,
            redirect_stdouts=False,
        )
        worker.spinner = None  # Faust's progress spinner writes terminal codes even into pipes
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
    finally:
        sink.close()
    return sink
