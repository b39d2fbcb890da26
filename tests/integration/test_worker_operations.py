"""What an operator watches on a running worker: health, per-member metrics and freshness, clean logs.

A real worker process against the real broker and ClickHouse server: its readiness turns on once it
consumes and ClickHouse answers, and off when ClickHouse stops answering; the scrape carries events
and dead letters per member and the time each member's source last delivered; with JSON logs every
line of stderr is a JSON object, and no output carries terminal control codes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import devstack
from chargeback.clickhouse import ClickHouse, connect
from chargeback.kafka import Message, make_producer, send_all
from warehouse.migrations import migrate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml"


def event(i: int, municipality: str, source: str, service: str = "ticket-incident") -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"ops-{municipality}-{source.rsplit(':', 1)[1]}-{i}",
            "source": source,
            "type": "chargeback.usage.v1",
            "time": now.isoformat().replace("+00:00", "Z"),
            "data": {
                "municipality": municipality,
                "cost_centre": "BUF",
                "service": service,
                "subject": f"T{i}",
                "quantity": "1",
            },
        }
    ).encode()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def sample(metrics: str, name: str, **labels: str) -> float | None:
    for line in metrics.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if found == labels:
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def db(clickhouse_server_url: str, clickhouse_server_database: str) -> Iterator[ClickHouse]:
    ch = connect(clickhouse_server_url, clickhouse_server_database)
    migrate(ch)
    yield ch
    ch.close()


def test_health_metrics_freshness_and_logs_of_a_running_worker(
    kafka_bootstrap: str,
    topic_name: str,
    clickhouse_server_url: str,
    clickhouse_server_database: str,
    db: ClickHouse,
) -> None:
    bollnas_intune = "urn:chargeback:collector:2183:intune"
    bollnas_topdesk = "urn:chargeback:collector:2183:topdesk"
    hudik_intune = "urn:chargeback:collector:2184:intune"
    messages = [Message(b"2183", event(i, "2183", bollnas_intune)) for i in range(5)]
    messages += [Message(b"2183", event(i, "2183", bollnas_topdesk)) for i in range(3)]
    messages += [Message(b"2184", event(1, "2184", hudik_intune))]
    messages += [Message(b"2184", event(2, "2184", hudik_intune, service="no-such-service"))]  # dead
    messages += [Message(b"9999", b"not json at all")]  # dead, key no member has
    started = time.time()
    producer = make_producer(kafka_bootstrap)
    try:
        send_all(producer, topic_name, messages)
    finally:
        producer.close()

    port = devstack.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGEBACK_")}
    env.update(
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
        CHARGEBACK_KAFKA_BOOTSTRAP=kafka_bootstrap,
        CHARGEBACK_USAGE_TOPIC=topic_name,
        CHARGEBACK_DEAD_TOPIC=f"{topic_name}.dead",
        CHARGEBACK_WORKER_APP_ID=f"w-{topic_name}",
        CHARGEBACK_CLICKHOUSE_URL=clickhouse_server_url,
        CHARGEBACK_CLICKHOUSE_DATABASE=clickhouse_server_database,
        CHARGEBACK_CATALOGUE=str(CATALOGUE),
        CHARGEBACK_WORKER_BATCH_MAX_SECONDS="0.3",
        CHARGEBACK_WORKER_METRICS_PORT=str(port),
        CHARGEBACK_WORKER_LOG_LEVEL="info",
        CHARGEBACK_WORKER_LOG_FORMAT="json",
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "chargeback_cli", "stream", "worker", "--exit-when-idle", "300"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(f"{base}/health/live")[0] == 200, 60, "the health endpoint")
        wait_for(lambda: get(f"{base}/health/ready")[0] == 200, 90, "readiness")
        assert json.loads(get(f"{base}/health/ready")[1]) == {"status": "ready"}
        probe = subprocess.run(
            [sys.executable, "-m", "chargeback_cli", "stream", "health"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (probe.returncode, probe.stdout, probe.stderr) == (0, "ready\n", "")

        # Every message counted per member; freshness appears on the next query of ClickHouse.
        def scraped() -> bool:
            text = get(f"{base}/metrics")[1]
            return (
                sample(text, "chargeback_member_events_received_total", municipality="2183") == 8
                and sample(
                    text,
                    "chargeback_source_last_stored_timestamp_seconds",
                    municipality="2184",
                    source=hudik_intune,
                )
                is not None
            )

        wait_for(scraped, 60, "per-member counters and freshness")
        text = get(f"{base}/metrics")[1]
        assert sample(text, "chargeback_member_events_received_total", municipality="2184") == 2
        assert sample(text, "chargeback_member_events_received_total", municipality="unknown") == 1
        assert sample(text, "chargeback_member_dead_letters_total", municipality="2184") == 1
        assert sample(text, "chargeback_member_dead_letters_total", municipality="unknown") == 1
        assert sample(text, "chargeback_member_dead_letters_total", municipality="2183") is None
        assert sample(text, "chargeback_worker_ready") == 1
        for source in (bollnas_intune, bollnas_topdesk):
            stored_at = sample(
                text, "chargeback_source_last_stored_timestamp_seconds", municipality="2183", source=source
            )
            assert stored_at is not None and started - 2 <= stored_at <= time.time() + 1
        stored_rows = db.execute(
            "SELECT municipality, source, toUnixTimestamp(max(stored_at)) FROM usage_events "
            "GROUP BY municipality, source ORDER BY municipality, source"
        )
        assert [(m, s) for m, s, _ in stored_rows] == [
            ("2183", bollnas_intune),
            ("2183", bollnas_topdesk),
            ("2184", hudik_intune),
        ]
        for m, s, ts in stored_rows:
            assert sample(
                text, "chargeback_source_last_stored_timestamp_seconds", municipality=m, source=s
            ) == float(ts)

        # ClickHouse stops answering (the database is gone): not ready, with the reason.
        db.execute(f"DROP DATABASE {clickhouse_server_database}")
        wait_for(lambda: get(f"{base}/health/ready")[0] == 503, 40, "readiness to drop")
        body = json.loads(get(f"{base}/health/ready")[1])
        assert body["status"] == "not ready"
        assert body["problems"][0].startswith("ClickHouse does not answer: ")
        probe = subprocess.run(
            [sys.executable, "-m", "chargeback_cli", "stream", "health"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert probe.returncode == 1
        assert probe.stderr.startswith("error: worker not ready: ClickHouse does not answer: ")
        assert probe.stderr.count("\n") == 1
        db.execute(f"CREATE DATABASE {clickhouse_server_database}")  # for the fixture's cleanup
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=60)
    assert "\x1b" not in out + err, "terminal control codes in the worker's output"
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "the worker logged nothing at INFO"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["message"].startswith("batch: ") for r in records)
