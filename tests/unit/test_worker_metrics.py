"""The worker's health rules, per-member counting and log formats, without services."""

from __future__ import annotations

import json
import logging
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

import devstack
from streams.logs import JsonFormatter, logging_config
from streams.metrics import Health, WorkerMetrics
from streams.settings import WorkerSettings
from streams.sink import Counters


def test_ready_needs_consuming_and_a_recent_clickhouse_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    health = Health(stale_after_s=60)
    assert health.problems() == [
        "not consuming yet (joining the consumer group)",
        "ClickHouse not checked yet",
    ]
    health.consuming = True
    health.clickhouse_answered()
    assert health.problems() == []
    health.clickhouse_failed("Code: 81. Database chargeback doesn't exist")
    assert health.problems() == ["ClickHouse does not answer: Code: 81. Database chargeback doesn't exist"]
    health.clickhouse_answered()
    now = health.clickhouse_ok_at
    assert now is not None
    monkeypatch.setattr("streams.metrics.time.monotonic", lambda: now + 61)
    assert health.problems() == ["ClickHouse has not answered for 60 s"]


def test_messages_and_dead_letters_are_counted_per_known_member() -> None:
    metrics = WorkerMetrics(Counters(), ["2183", "2184"])
    metrics.observe_members(
        [[b"2183", b"2183", b"2184"], [b"9999", None]], [(b"2184", b"{}"), (b"9999", b"{}")]
    )
    metrics.observe_members([[b"2183"]], [])
    assert metrics.member_totals() == ({"2183": 3, "2184": 1, "unknown": 2}, {"2184": 1, "unknown": 1})


def test_the_endpoint_serves_metrics_and_health() -> None:
    metrics = WorkerMetrics(Counters(), ["2183"])
    metrics.observe_freshness(
        [("2183", "urn:x", datetime(2027, 1, 4, 6, 0, tzinfo=UTC), datetime(2027, 1, 4, 5, 0, tzinfo=UTC))]
    )
    port = devstack.free_port()
    server = metrics.serve("127.0.0.1", port)
    try:
        base = f"http://127.0.0.1:{port}"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{base}/health/ready", timeout=5)
        assert info.value.code == 503
        assert json.loads(info.value.read()) == {
            "status": "not ready",
            "problems": ["not consuming yet (joining the consumer group)", "ClickHouse not checked yet"],
        }
        metrics.health.consuming = True
        metrics.health.clickhouse_answered()
        with urllib.request.urlopen(f"{base}/health/ready", timeout=5) as response:
            assert json.loads(response.read()) == {"status": "ready"}
        with urllib.request.urlopen(f"{base}/health/live", timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            text = response.read().decode()
        stored = 'chargeback_source_last_stored_timestamp_seconds{municipality="2183",source="urn:x"}'
        assert f"{stored} 1.7990424e+09" in text  # 2027-01-04 06:00 UTC
        assert "chargeback_worker_ready 1.0" in text
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{base}/other", timeout=5)
        assert info.value.code == 404
    finally:
        server.shutdown()


def test_json_logs_are_one_object_per_record() -> None:
    record = logging.LogRecord("streams.app", logging.INFO, "app.py", 1, "batch: %d read", (5,), None)
    record.created = 1_800_000_000.5
    doc = json.loads(JsonFormatter().format(record))
    assert doc == {
        "time": "2027-01-15T08:00:00.500+00:00",
        "level": "INFO",
        "logger": "streams.app",
        "message": "batch: 5 read",
        "process": record.process,
    }
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exception"]


def test_log_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHARGEBACK_WORKER_LOG_FORMAT", "JSON")
    monkeypatch.setenv("CHARGEBACK_WORKER_LOG_LEVEL", "info")
    settings = WorkerSettings()
    assert (settings.worker_log_format, settings.worker_log_level) == ("json", "INFO")
    config = logging_config(settings.worker_log_level, settings.worker_log_format)
    assert config["formatters"]["main"] == {"()": "streams.logs.JsonFormatter"}
    assert config["handlers"]["main"]["stream"] == "ext://sys.stderr"
    assert logging_config("WARNING", "text")["formatters"]["main"] == {
        "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"
    }


def test_a_source_that_leaves_the_query_window_keeps_its_last_time() -> None:
    metrics = WorkerMetrics(Counters(), ["2183"])
    t1 = datetime(2027, 1, 4, 6, 0, tzinfo=UTC)
    t2 = datetime(2027, 1, 5, 6, 0, tzinfo=UTC)
    metrics.observe_freshness([("2183", "urn:a", t1, t1), ("2183", "urn:b", t1, t1)])
    metrics.observe_freshness([("2183", "urn:a", t2, t2)])  # urn:b silent beyond the window
    samples = {
        (s.labels["source"], s.name): s.value
        for family in metrics.registry.collect()
        if family.name == "chargeback_source_last_stored_timestamp_seconds"
        for s in family.samples
    }
    assert samples == {
        ("urn:a", "chargeback_source_last_stored_timestamp_seconds"): t2.timestamp(),
        ("urn:b", "chargeback_source_last_stored_timestamp_seconds"): t1.timestamp(),
    }
