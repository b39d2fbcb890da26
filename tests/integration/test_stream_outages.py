"""The stream worker through outages of its services: rebalances while ClickHouse is down, and a
broker that crashes (SIGKILL) with its records in S3.

Each test ends on the same facts: every distinct event id the broker holds is stored once, and
none is missing (a broker crash can only lose what the test broker itself did not keep: see there).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest

import devstack
from chargeback.clickhouse import ClickHouse, connect
from tests.integration.test_stream_worker import produce, stored, usage_messages, worker_env
from warehouse.migrations import migrate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REBALANCE_TIMEOUT_S = 10.0
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"  # the time at the start of each log line


def stamp(text: str) -> datetime:
    # Local time, the same zone for both workers: only differences are used.
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)


def start_logged(env: dict[str, str], log: Path, idle: float) -> tuple[subprocess.Popen[str], IO[str]]:
    out = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "chargeback_cli", "stream", "worker", "--exit-when-idle", str(idle)],
        env={**env, "CHARGEBACK_WORKER_LOG_LEVEL": "INFO"},
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, out


def wait_for_line(log: Path, pattern: str, timeout: float, start: int = 0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    compiled = re.compile(pattern)
    while time.monotonic() < deadline:
        found = compiled.search(log.read_text(errors="replace")[start:])
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(
        f"no line matching {pattern!r} in {log.name} within {timeout} s:\n{log.read_text()[-3000:]}"
    )


def wait_stored(ch: ClickHouse, at_least: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while stored(ch)[0] < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored(ch)[0] >= at_least


def test_a_worker_leaving_while_clickhouse_is_down_rebalances_within_the_timeout(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path
) -> None:
    # Two workers share the partitions; ClickHouse stops, so each holds a batch it cannot store;
    # one worker is stopped (it leaves the group). It must hand its partitions over and exit, and
    # the other must be given them, within the rebalance timeout, although no batch can be stored.
    # (A worker cannot join while ClickHouse is down: it checks the schema version first.)
    state = tmp_path / "own-clickhouse"  # a server of its own: stopping it disturbs no other test
    with devstack.running(["clickhouse"], state_dir=state) as found:
        assert found.clickhouse_url
        ch = connect(found.clickhouse_url, "rebalance", create=True)
        migrate(ch)
        produce(kafka_bootstrap, topic_name, usage_messages(60_000))
        env = {
            **worker_env(kafka_bootstrap, topic_name, found.clickhouse_url, "rebalance"),
            "CHARGEBACK_WORKER_REBALANCE_TIMEOUT_S": str(REBALANCE_TIMEOUT_S),
        }
        first, first_out = start_logged(env, tmp_path / "first.log", idle=60)
        second: subprocess.Popen[str] | None = None
        try:
            wait_for_line(tmp_path / "first.log", r"partitions assigned: [1-9]", 60)
            second, second_out = start_logged(env, tmp_path / "second.log", idle=60)
            wait_for_line(tmp_path / "second.log", r"partitions assigned: [1-9]", 60)
            wait_stored(ch, 2000)
            ch.close()
            devstack.halt("clickhouse", state)  # neither worker can store its batch in flight
            time.sleep(3)
            seen = len((tmp_path / "first.log").read_text(errors="replace"))
            left = datetime.now()  # noqa: DTZ005 - compared with the workers' local log times
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=REBALANCE_TIMEOUT_S + 10)  # it leaves although its batch is stuck
            assigned = wait_for_line(
                tmp_path / "first.log", rf"(?m)^\[?({STAMP})\]?.*partitions assigned: [1-9]", 60, seen
            )
            took = (stamp(assigned.group(1)) - left.replace(tzinfo=UTC)).total_seconds()
            assert took <= REBALANCE_TIMEOUT_S, assigned.group(0)
            devstack.revive("clickhouse", state)
            first.wait(timeout=240)
            assert first.returncode == 0, (tmp_path / "first.log").read_text()[-3000:]
        finally:
            for running in [p for p in (first, second) if p is not None]:
                if running.poll() is None:
                    running.kill()
            first_out.close()
            if second is not None:
                second_out.close()
        ch = connect(found.clickhouse_url, "rebalance")
        assert stored(ch) == (60_000, 60_000)
        ch.close()


def write_events(path: Path, n: int) -> set[str]:
    ids = set()
    with path.open("w") as handle:
        for message in usage_messages(n, seed=3):
            event = json.loads(message.value)
            event["id"] = f"crash-{event['id']}"
            ids.add(event["id"])
            handle.write(json.dumps(event) + "\n")
    return ids


def topic_offsets(bootstrap: str, topic: str) -> dict[tuple[int, int], str]:
    """Every record of the topic: (partition, offset) -> event id."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=5000, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return {(m.partition, m.offset): json.loads(m.value)["id"] for m in consumer}
    finally:
        consumer.close()


def collect(env: dict[str, str], events: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "chargeback_cli", "collect", "file", str(events)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_broker_killed_mid_collection_and_mid_stream_doubles_nothing_and_loses_nothing_it_kept(
    tmp_path: Path, clickhouse_server_url: str, clickhouse_server_database: str
) -> None:
    # A broker of its own that keeps its records in S3 (a moto server): SIGKILLed twice, once
    # while a collector sends and the worker reads, once while the worker still has a backlog,
    # and started again on the same port and bucket each time.
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    state = tmp_path / "broker"
    topic = "usage.crash"
    ch = connect(clickhouse_server_url, clickhouse_server_database)
    migrate(ch)
    with devstack.running(("kafka",), state_dir=state, kafka_storage="s3") as found:
        bootstrap = found.kafka_bootstrap
        assert bootstrap
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
        admin.close()
        events = tmp_path / "events.jsonl"
        ids = write_events(events, 60_000)
        spool = tmp_path / "spool"
        env = {
            **worker_env(bootstrap, topic, clickhouse_server_url, clickhouse_server_database),
            "CHARGEBACK_COLLECTOR_SPOOL_DIR": str(spool),
            "CHARGEBACK_COLLECTOR_SEND_TIMEOUT_S": "10",
            "CHARGEBACK_COLLECTOR_CONNECT_TIMEOUT_S": "10",
        }
        worker, worker_out = start_logged(env, tmp_path / "worker.log", idle=30)
        try:
            # A worker starting while the broker is down exits at once (Faust cannot bootstrap):
            # it runs before the crash, as it would in production.
            wait_for_line(tmp_path / "worker.log", r"partitions assigned: [1-9]", 60)
            collector = collect(env, events)
            deadline = time.monotonic() + 60
            while not list(spool.glob("*.spool")) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.5)  # the spool is written and the sending has begun
            devstack.halt("kafka", state, kill=True)  # mid-collection, and mid-stream for the worker
            time.sleep(2)
            devstack.revive("kafka", state)
            out, err = collector.communicate(timeout=300)
            runs = [(collector.returncode, out.strip())]
            # A run the crash cut short exits 75 with the rest in the spool; the next run sends it.
            write_events(tmp_path / "none.jsonl", 0)
            while collector.returncode == 75 and len(runs) < 5:
                collector = collect(env, tmp_path / "none.jsonl")
                out, err = collector.communicate(timeout=300)
                runs.append((collector.returncode, out.strip()))
            assert collector.returncode == 0, (runs, err[-3000:])
            assert sorted(p.name for p in spool.iterdir() if p.is_file()) == []  # the spool is empty

            # What the broker holds once the collection is over: records at rest survive a SIGKILL.
            held = topic_offsets(bootstrap, topic)
            wait_stored(ch, 1)
            devstack.halt("kafka", state, kill=True)  # again, while the worker still reads
            time.sleep(2)
            devstack.revive("kafka", state)
            assert topic_offsets(bootstrap, topic) == held
            worker.wait(timeout=300)
            assert worker.returncode == 0, (tmp_path / "worker.log").read_text()[-3000:]
        finally:
            if worker.poll() is None:
                worker.kill()
            worker_out.close()
    # Every id the broker holds is stored exactly once, and nothing is dead-lettered.
    on_topic = set(held.values())
    assert len(on_topic) == len(held)
    assert stored(ch) == (len(held), len(held))
    assert {r[0] for r in ch.execute("SELECT event_id FROM usage_events")} == on_topic
    assert ch.execute("SELECT count() FROM dead_letters") == [(0,)]
    # What the broker lost is the broker's: the collector had every id confirmed (exit 0, empty
    # spool), yet Tansu 0.6.0 with S3 storage can acknowledge a produce in flight at a SIGKILL and
    # not keep it (seen: 336 to 982 records a run, as a hole in a partition's offsets or with the
    # offsets given out again). Kafka keeps an acknowledged record, so on it ``held`` is every id.
    assert on_topic <= ids
    ch.close()
