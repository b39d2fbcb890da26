"""Prometheus metrics and health of a stream worker, served over HTTP for scraping and probes.

Counters are read from the sink's own running totals when scraped, so there is one set of books.
The endpoint (``CHARGEBACK_WORKER_METRICS_HOST``:``CHARGEBACK_WORKER_METRICS_PORT``) answers:

- ``/metrics``: the Prometheus text format;
- ``/health/live``: 200 while the process runs;
- ``/health/ready``: 200 once the worker consumes (it joined its consumer group) and ClickHouse
  answers (the last freshness query succeeded, at most ``STALE_AFTER_S`` ago); 503 and the reason
  otherwise.

Per member (the message key is the municipality code; keys the catalogue does not know are counted
as ``unknown``, so a flood of bad keys cannot explode the label set):

- ``chargeback_member_events_received_total{municipality}``: messages read;
- ``chargeback_member_dead_letters_total{municipality}``: messages refused to the dead-letter topic;
- ``chargeback_source_last_stored_timestamp_seconds{municipality, source}``: when the last event of a
  member's source was stored, and ``..._last_event_timestamp_seconds`` its observation time (read
  from ClickHouse every ``FRESHNESS_INTERVAL_S``, so every worker reports the whole platform).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from chargeback.clickhouse import ClickHouse
from streams.sink import Counters

log = logging.getLogger(__name__)

FRESHNESS_INTERVAL_S = 15.0
STALE_AFTER_S = 60.0
FRESHNESS_DAYS = 62  # look back two months: a source silent longer than that has long been alerted
UNKNOWN = "unknown"

FRESHNESS_SQL = """
SELECT municipality, source, max(stored_at) AS last_stored, max(event_time) AS last_event
FROM usage_events
WHERE day >= today() - %(days)s
GROUP BY municipality, source
"""


def read_freshness(ch: ClickHouse) -> list[tuple[str, str, datetime, datetime]]:
    """Per municipality and event source: when its last event was stored, and observed."""
    rows = ch.execute(FRESHNESS_SQL, {"days": FRESHNESS_DAYS})
    return [(str(m), str(s), stored, observed) for m, s, stored, observed in rows]


class _SinkCounters(Collector):
    def __init__(self, counters: Counters) -> None:
        self._counters = counters

    def collect(self) -> Iterator[CounterMetricFamily]:
        c = self._counters
        for name, value, text in (
            ("chargeback_events_received", c.received, "Messages read from the usage topic"),
            ("chargeback_events_stored", c.stored, "Distinct valid events written to ClickHouse"),
            ("chargeback_events_duplicate", c.duplicates, "Events dropped because their id was seen"),
            ("chargeback_events_dead", c.dead, "Messages sent to the dead-letter topic"),
            ("chargeback_events_replayed", c.replayed, "Messages skipped because already stored"),
            ("chargeback_sink_insert_retries", c.insert_retries, "Failed ClickHouse inserts retried"),
        ):
            yield CounterMetricFamily(name, text, value=value)


class _Freshness(Collector):
    # Kept per (municipality, source) for the life of the process: a source that falls out of the
    # query's window keeps its last time, so a long silence stays visible instead of vanishing.
    def __init__(self) -> None:
        self.latest: dict[tuple[str, str], tuple[datetime, datetime]] = {}

    def update(self, rows: Iterable[tuple[str, str, datetime, datetime]]) -> None:
        for municipality, source, last_stored, last_event in rows:
            self.latest[(municipality, source)] = (last_stored, last_event)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stored = GaugeMetricFamily(
            "chargeback_source_last_stored_timestamp_seconds",
            "When the last event of a member's source was stored (Unix time)",
            labels=["municipality", "source"],
        )
        observed = GaugeMetricFamily(
            "chargeback_source_last_event_timestamp_seconds",
            "Observation time of the last stored event of a member's source (Unix time)",
            labels=["municipality", "source"],
        )
        for (municipality, source), (last_stored, last_event) in sorted(self.latest.items()):
            stored.add_metric([municipality, source], last_stored.timestamp())
            observed.add_metric([municipality, source], last_event.timestamp())
        yield stored
        yield observed


class Health:
    """What readiness is made of: the worker consumes, and ClickHouse answered lately."""

    def __init__(self, *, stale_after_s: float = STALE_AFTER_S) -> None:
        self.consuming = False
        self.clickhouse_ok_at: float | None = None
        self.clickhouse_error: str | None = None
        self.stale_after_s = stale_after_s

    def clickhouse_answered(self) -> None:
        """ClickHouse answered a query just now."""
        self.clickhouse_ok_at = time.monotonic()
        self.clickhouse_error = None

    def clickhouse_failed(self, reason: str) -> None:
        """ClickHouse did not answer."""
        self.clickhouse_ok_at = None
        self.clickhouse_error = reason

    def problems(self) -> list[str]:
        """Why the worker is not ready; empty when it is."""
        out = []
        if not self.consuming:
            out.append("not consuming yet (joining the consumer group)")
        if self.clickhouse_error is not None:
            out.append(f"ClickHouse does not answer: {self.clickhouse_error}")
        elif self.clickhouse_ok_at is None:
            out.append("ClickHouse not checked yet")
        elif time.monotonic() - self.clickhouse_ok_at > self.stale_after_s:
            out.append(f"ClickHouse has not answered for {self.stale_after_s:.0f} s")
        return out


class WorkerMetrics:
    """The worker's metrics in a registry of their own, and its health."""

    def __init__(self, counters: Counters, municipalities: Collection[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_SinkCounters(counters))
        self._freshness = _Freshness()
        self.registry.register(self._freshness)
        self.health = Health()
        self._members = {m.encode(): m for m in municipalities}
        self.flush_seconds = Histogram(
            "chargeback_sink_flush_seconds",
            "Time to validate, deduplicate and store one batch",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.batch_events = Histogram(
            "chargeback_sink_batch_events",
            "Messages per stored batch",
            buckets=(10, 100, 1000, 5000, 20000, 50000, 100000),
            registry=self.registry,
        )
        self.lag = Gauge(
            "chargeback_consumer_lag",
            "Messages behind the partition's end (approximate)",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "chargeback_worker_ready",
            "1 when the worker consumes and ClickHouse answers",
            registry=self.registry,
        )
        self.ready.set_function(lambda: 0.0 if self.health.problems() else 1.0)
        self._received: Counter[str] = Counter()
        self._dead: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.registry.register(_MemberCounters(self))

    def member(self, key: bytes | None) -> str:
        """The municipality label of a message key: a known code, or ``unknown``."""
        return self._members.get(key, UNKNOWN) if key is not None else UNKNOWN

    def observe_batch(self, messages: int, seconds: float) -> None:
        """Record one stored batch."""
        self.flush_seconds.observe(seconds)
        self.batch_events.observe(messages)
        log.debug("flushed %d messages in %.3f s", messages, seconds)

    def observe_members(
        self, keys: Iterable[Sequence[bytes | None]], dead: Iterable[tuple[bytes | None, Any]]
    ) -> None:
        """Count a stored batch's messages (by partition chunk of keys) and dead letters per member."""
        received: Counter[bytes | None] = Counter()
        for chunk in keys:
            received.update(chunk)
        refused = Counter(key for key, _ in dead)
        with self._lock:
            for key, n in received.items():
                self._received[self.member(key)] += n
            for key, n in refused.items():
                self._dead[self.member(key)] += n

    def member_totals(self) -> tuple[dict[str, int], dict[str, int]]:
        """Messages received and dead letters so far, per municipality label."""
        with self._lock:
            return dict(self._received), dict(self._dead)

    def observe_freshness(self, rows: list[tuple[str, str, datetime, datetime]]) -> None:
        """Record the latest freshness read from ClickHouse."""
        self._freshness.update(rows)

    def observe_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        """Record the consumer lag per partition."""
        for (topic, partition), value in lag.items():
            self.lag.labels(topic=topic, partition=str(partition)).set(value)

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        """Serve ``/metrics`` and ``/health/*`` on ``host:port`` in a background thread."""
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
                elif path == "/health/live":
                    self._send(200, b'{"status": "live"}\n', "application/json")
                elif path == "/health/ready":
                    problems = metrics.health.problems()
                    body = {"status": "not ready", "problems": problems} if problems else {"status": "ready"}
                    self._send(
                        503 if problems else 200, (json.dumps(body) + "\n").encode(), "application/json"
                    )
                else:
                    self._send(404, b"not found: /metrics, /health/live, /health/ready\n", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: quiet
                return

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="chargeback-metrics", daemon=True).start()
        return server


class _MemberCounters(Collector):
    def __init__(self, metrics: WorkerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily]:
        received, dead = self._metrics.member_totals()
        for name, totals, text in (
            ("chargeback_member_events_received", received, "Messages read, per member"),
            ("chargeback_member_dead_letters", dead, "Messages sent to the dead-letter topic, per member"),
        ):
            family = CounterMetricFamily(name, text, labels=["municipality"])
            for municipality, value in sorted(totals.items()):
                family.add_metric([municipality], value)
            yield family
