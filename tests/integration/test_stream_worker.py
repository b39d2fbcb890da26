"""The stream worker through the real broker into a real ClickHouse server, under failures.

Every test checks the same two facts at the end: each distinct event id is stored exactly once
(``count() == uniqExact(event_id)``), and nothing valid is missing.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import devstack
from chargeback.clickhouse import ClickHouse, connect
from chargeback.kafka import Message, make_producer, send_all
from warehouse.migrations import migrate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml"
MUNICIPALITIES = ["2121", "2132", "2161", "2182", "2183", "2184"]


def usage_messages(n: int, *, seed: int = 1) -> list[Message]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        municipality = MUNICIPALITIES[i % 6]
        body = {
            "specversion": "1.0",
            "id": f"ev-{i}",
            "source": "urn:test",
            "type": "chargeback.usage.v1",
            "time": f"2026-10-{1 + i % 28:02d}T06:00:00Z",
            "data": {
                "municipality": municipality,
                "cost_centre": rng.choice(["BUF", "SOC"]),
                "service": "ticket-incident",
                "subject": f"T{i}",
                "quantity": "1",
            },
        }
        out.append(Message(municipality.encode(), json.dumps(body).encode()))
    return out


def produce(bootstrap: str, topic: str, messages: list[Message]) -> None:
    producer = make_producer(bootstrap)
    try:
        send_all(producer, topic, messages)
    finally:
        producer.close()


def worker_env(bootstrap: str, topic: str, ch_url: str, database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGEBACK_")}
    env.update(
        CHARGEBACK_KAFKA_BOOTSTRAP=bootstrap,
        CHARGEBACK_USAGE_TOPIC=topic,
        CHARGEBACK_DEAD_TOPIC=f"{topic}.dead",
        CHARGEBACK_WORKER_APP_ID=f"w-{topic}",
        CHARGEBACK_CLICKHOUSE_URL=ch_url,
        CHARGEBACK_CLICKHOUSE_DATABASE=database,
        CHARGEBACK_CATALOGUE=str(CATALOGUE),
        CHARGEBACK_WORKER_BATCH_MAX_EVENTS="2000",
        CHARGEBACK_WORKER_BATCH_MAX_SECONDS="0.3",
    )
    return env


def start_worker(env: dict[str, str], idle: float = 4.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "chargeback_cli", "stream", "worker", "--exit-when-idle", str(idle)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


def stored(ch: ClickHouse) -> tuple[int, int]:
    count, distinct = ch.execute("SELECT count(), uniqExact(event_id) FROM usage_events")[0]
    return int(count), int(distinct)


@pytest.fixture
def db(clickhouse_server_url: str, clickhouse_server_database: str) -> Iterator[ClickHouse]:
    ch = connect(clickhouse_server_url, clickhouse_server_database)
    migrate(ch)
    yield ch
    ch.close()


def test_every_event_sent_three_times_counts_once(
    kafka_bootstrap: str,
    topic_name: str,
    clickhouse_server_url: str,
    clickhouse_server_database: str,
    db: ClickHouse,
) -> None:
    messages = usage_messages(3000)
    produce(kafka_bootstrap, topic_name, messages * 3)
    out = finish(
        start_worker(
            worker_env(kafka_bootstrap, topic_name, clickhouse_server_url, clickhouse_server_database)
        )
    )
    assert "received 9000, stored 3000, duplicates 6000, dead letters 0" in out
    assert stored(db) == (3000, 3000)


def test_a_worker_killed_mid_stream_and_restarted_loses_and_doubles_nothing(
    kafka_bootstrap: str,
    topic_name: str,
    clickhouse_server_url: str,
    clickhouse_server_database: str,
    db: ClickHouse,
) -> None:
    produce(kafka_bootstrap, topic_name, usage_messages(40_000))
    env = worker_env(kafka_bootstrap, topic_name, clickhouse_server_url, clickhouse_server_database)
    first = start_worker(env)
    deadline = time.monotonic() + 120
    while stored(db)[0] < 4000 and time.monotonic() < deadline:  # killed after some batches landed
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    partly = stored(db)[0]
    assert 0 < partly < 40_000
    out = finish(start_worker(env))
    assert stored(db) == (40_000, 40_000)
    # The restart stored exactly what was missing: anything the killed worker had stored but not
    # committed was read again and skipped ("already stored").
    stored_now = int(out.split("stored ")[1].split(",")[0])
    assert stored_now == 40_000 - partly


def test_clickhouse_down_for_a_while_loses_and_doubles_nothing(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path
) -> None:
    state = tmp_path / "own-clickhouse"
    with devstack.running(["clickhouse"], state_dir=state) as found:
        assert found.clickhouse_url
        ch = connect(found.clickhouse_url, "outage", create=True)
        migrate(ch)
        produce(kafka_bootstrap, topic_name, usage_messages(20_000))
        worker = start_worker(worker_env(kafka_bootstrap, topic_name, found.clickhouse_url, "outage"), idle=8)
        deadline = time.monotonic() + 120
        while stored(ch)[0] < 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
        ch.close()
        devstack.restart_clickhouse(state, down_for_s=3.0)
        finish(worker)
        ch = connect(found.clickhouse_url, "outage")
        assert stored(ch) == (20_000, 20_000)
        ch.close()


def fuzzed_bad_events(n: int, seed: int = 7) -> list[Message]:
    rng = random.Random(seed)
    good = json.loads(usage_messages(1)[0].value)
    out = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            value = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
        elif kind == 1:
            text = json.dumps(good)
            value = text[: rng.randrange(len(text))].encode()
        else:
            doc = json.loads(json.dumps(good))
            doc["id"] = f"bad-{i}"
            field = rng.choice(["quantity", "service", "municipality", "time", "subject"])
            if kind == 2:
                doc["data"].pop(field, None) if field != "time" else doc.pop("time")
            elif kind == 3:
                doc["data"]["quantity"] = rng.choice(["-1", "abc", "1e999", "", "-0.000001"])
            else:
                doc["data"]["service"] = f"unknown-{rng.randrange(99)}"
            value = json.dumps(doc).encode()
        out.append(Message(rng.choice([b"2183", None]), value))
    return out


def test_ten_thousand_bad_events_all_land_in_the_dead_letters(
    kafka_bootstrap: str,
    topic_name: str,
    clickhouse_server_url: str,
    clickhouse_server_database: str,
    db: ClickHouse,
) -> None:
    produce(kafka_bootstrap, topic_name, [*fuzzed_bad_events(10_000), *usage_messages(10)])
    out = finish(
        start_worker(
            worker_env(kafka_bootstrap, topic_name, clickhouse_server_url, clickhouse_server_database)
        )
    )
    assert "received 10010, stored 10, duplicates 0, dead letters 10000" in out
    assert db.execute("SELECT count(), uniqExact(kafka_partition, kafka_offset) FROM dead_letters")[0] == (
        10000,
        10000,
    )
    assert stored(db) == (10, 10)


def test_two_workers_give_the_same_totals_as_one(
    kafka_bootstrap: str,
    topic_name: str,
    clickhouse_server_url: str,
    clickhouse_server_database: str,
    db: ClickHouse,
) -> None:
    produce(kafka_bootstrap, topic_name, usage_messages(30_000) * 2)
    env = worker_env(kafka_bootstrap, topic_name, clickhouse_server_url, clickhouse_server_database)
    workers = [start_worker(env, idle=6), start_worker(env, idle=6)]
    outputs = [finish(w) for w in workers]
    assert stored(db) == (30_000, 30_000)
    per_municipality = db.execute(
        "SELECT municipality, count() FROM usage_events GROUP BY municipality ORDER BY municipality"
    )
    assert per_municipality == [(m, 5000) for m in MUNICIPALITIES]
    received = [int(o.split("received ")[1].split(",")[0]) for o in outputs]
    assert sum(received) >= 60_000
