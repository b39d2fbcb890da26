"""Prometheus metrics of a stream worker, served on a loopback HTTP endpoint.

Counters are read from the sink's own running totals when scraped, so there is one set of books.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from streams.sink import Counters

log = logging.getLogger(__name__)


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


class WorkerMetrics:
    """The worker's metrics in a registry of their own."""

    def __init__(self, counters: Counters) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_SinkCounters(counters))
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

    def observe_batch(self, messages: int, seconds: float) -> None:
        """Record one stored batch."""
        self.flush_seconds.observe(seconds)
        self.batch_events.observe(messages)
        log.debug("flushed %d messages in %.3f s", messages, seconds)

    def observe_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        """Record the consumer lag per partition."""
        for (topic, partition), value in lag.items():
            self.lag.labels(topic=topic, partition=str(partition)).set(value)

    def serve(self, host: str, port: int) -> Any:
        """Serve ``/metrics`` on ``host:port`` (loopback by default) in a background thread."""
        return start_http_server(port, addr=host, registry=self.registry)
