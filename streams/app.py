"""The Faust application of the stream worker: consume usage events, hand batches to the sink.

Faust owns the consumer group, partition assignment and offset commits; the sink owns exactness.
Batches come from ``noack_take``: nothing is acknowledged, and so nothing committed, until the sink
has stored the batch and its dead letters are on the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Sequence
from typing import Any

import faust

from chargeback.clickhouse import ClickHouseError, connect
from chargeback.events import Known
from streams.settings import WorkerSettings
from streams.sink import Record, UsageSink

log = logging.getLogger(__name__)


def broker_url(bootstrap: str) -> str:
    """Faust's broker URL for a comma-separated bootstrap list."""
    return ";".join(f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip())


def build_app(settings: WorkerSettings, sink: UsageSink, *, exit_when_idle: float | None = None) -> Any:
    """The worker's Faust app, its agent wired to ``sink``."""
    app = faust.App(
        settings.worker_app_id,
        broker=broker_url(settings.kafka_bootstrap),
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=settings.worker_heartbeat_interval_s,
        broker_rebalance_timeout=settings.worker_rebalance_timeout_s,
        stream_buffer_maxsize=max(4096, settings.worker_batch_max_events),
        producer_acks=-1,
    )
    events_topic = app.topic(settings.usage_topic, key_type=bytes, value_type=bytes)
    dead_topic = app.topic(settings.dead_topic, key_type=bytes, value_type=bytes)
    activity = {"last": time.monotonic(), "batches": 0}

    @app.agent(events_topic, concurrency=1)
    async def meter(stream: Any) -> None:
        async for events in stream.noack_take(
            settings.worker_batch_max_events, within=settings.worker_batch_max_seconds
        ):
            records = [_record(e.message) for e in events]
            batch = await _until_ok(lambda records=records: sink.prepare(records))
            # Dead letters first: if the worker dies after them, the replay sends them again
            # (at-least-once, each naming its origin) and the rows are still written once.
            pending = [await dead_topic.send(key=d.record.key, value=d.to_json()) for d in batch.dead]
            for fut in pending:
                await fut
            await asyncio.to_thread(sink.store, batch)
            for event in events:
                await stream.ack(event)
            activity["last"] = time.monotonic()
            activity["batches"] += 1
            log.info(
                "batch: %d read, %d stored, %d duplicate, %d dead, %d replayed",
                len(records),
                len(batch.rows),
                batch.duplicates,
                len(batch.dead),
                batch.replayed,
            )

    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", ())
        sink.forget((tp.topic, tp.partition) for tp in revoked)

    app.on_partitions_revoked.connect(on_revoked)

    if exit_when_idle is not None:

        @app.timer(interval=0.5)  # type: ignore[untyped-decorator]
        async def stop_when_idle() -> None:
            # Before the first batch, allow for joining the group (a rebalance takes seconds).
            idle_limit = exit_when_idle if activity["batches"] else max(exit_when_idle, 60.0)
            if time.monotonic() - activity["last"] >= idle_limit:
                log.warning("no events for %.1f s: stopping", exit_when_idle)
                os.kill(os.getpid(), signal.SIGTERM)

    return app


def _record(message: Any) -> Record:
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
    )


async def _until_ok(step: Any, delays: Sequence[float] = (0.5, 1, 2, 5, 10, 30)) -> Any:
    attempt = 0
    while True:
        try:
            return await asyncio.to_thread(step)
        except ClickHouseError as exc:
            delay = delays[min(attempt, len(delays) - 1)]
            attempt += 1
            log.warning("ClickHouse unavailable (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)


def run_worker(settings: WorkerSettings, *, exit_when_idle: float | None = None) -> UsageSink:
    """Run a worker until it is stopped (SIGTERM/SIGINT) or, with ``exit_when_idle``, idle."""
    from chargeback.catalogue import load_catalogue

    catalogue = load_catalogue(settings.catalogue)
    ch = connect(
        settings.clickhouse_url, settings.clickhouse_database, password=settings.clickhouse_password_value()
    )
    sink = UsageSink(
        ch,
        known=Known(municipalities=set(catalogue.municipality_codes), services=set(catalogue.service_ids)),
        tz=catalogue.tz,
    )
    app = build_app(settings, sink, exit_when_idle=exit_when_idle)
    worker = faust.Worker(app, loglevel=settings.worker_log_level, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    finally:
        ch.close()
    return sink
