"""No single message stops the stream worker: poison among valid events, on both ClickHouse backends.

A real worker process reads a real broker: every valid event around the poison is stored once, each
poison message is one dead letter with its exact reason (in ClickHouse and on the dead-letter
topic, where every letter fits a 1 MB message), the worker keeps running to its idle exit, and a
worker that reads everything again (a new consumer group: no committed offsets) changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chargeback.clickhouse import connect
from chargeback.kafka import Message
from tests.integration.test_stream_worker import (
    MUNICIPALITIES,
    finish,
    produce,
    start_worker,
    usage_messages,
    worker_env,
)
from warehouse.migrations import migrate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIG = b'{"specversion": "1.0", "note": "' + b"x" * 900_000 + b'"}'  # an invalid event of 900 kB
RANGE = "1970-01-01T00:00:00Z to 2100-12-31T23:59:59Z"


def poison() -> list[tuple[Message, str]]:
    """Each message that stopped a worker before, with the exact reason it is refused now."""
    good = json.loads(usage_messages(1)[0].value)  # municipality 2121
    text = json.dumps({**good, "id": "poison"})
    body = text.encode()
    deep_100k = body[:-1] + b',"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    deep = body[:-1] + b',"x":' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    huge_int = text.replace('"quantity": "1"', '"quantity": "1", "n": ' + "9" * 5000).encode()
    huge_quantity = text.replace('"quantity": "1"', '"quantity": ' + "9" * 5000).encode()
    early = json.dumps({**good, "id": "early", "time": "1969-12-31T23:59:59Z"}).encode()
    late = json.dumps({**good, "id": "late", "time": "2101-01-01T00:00:00Z"}).encode()
    weird = [
        (q, json.dumps({**good, "id": f"q{i}", "data": {**good["data"], "quantity": q}}).encode())
        for i, q in enumerate(["1_000", "١٢", "NaN", "Infinity", "1e3"])
    ]
    key = b"2121"
    sha = hashlib.sha256(BIG).hexdigest()
    return [
        (
            Message(key, deep_100k),
            f"event too large: {len(deep_100k)} bytes, the limit is 65536 "
            f"(the letter keeps the first 65536 of {len(deep_100k)} bytes; sha256 of the original: "
            f"{hashlib.sha256(deep_100k).hexdigest()})",
        ),
        (Message(key, deep), "bad JSON: nested more than 16 levels deep"),
        (Message(key, huge_int), "bad JSON: a number with more than 40 digits"),
        (Message(key, huge_quantity), "bad JSON: a number with more than 40 digits"),
        (
            Message(key, BIG),
            f"event too large: {len(BIG)} bytes, the limit is 65536 (the letter keeps "
            f"the first 65536 of {len(BIG)} bytes; sha256 of the original: {sha})",
        ),
        (Message(key, early), f"time: Value error, time must be from {RANGE}"),
        (Message(key, late), f"time: Value error, time must be from {RANGE}"),
        (Message(None, body), "message has no key: it must be the event's municipality 2121"),
        (Message(b"2183", body), "message key '2183' is not the event's municipality 2121"),
        *(
            (
                Message(key, w),
                "data.quantity: Value error, quantity must be plain decimal text such as"
                f' "12.5" (digits 0-9), not {q!r}',
            )
            for q, w in weird
        ),
    ]


@dataclass
class Backend:
    """Where the worker writes, and how the test reads it back."""

    url: str
    database: str
    query: Callable[[str], list[list[Any]]]


@pytest.fixture(params=["server", "chdb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "server":
        url: str = request.getfixturevalue("clickhouse_server_url")
        database: str = request.getfixturevalue("clickhouse_server_database")
        ch = connect(url, database)
        migrate(ch)
        try:
            yield Backend(url, database, lambda sql: [list(r) for r in ch.execute(sql)])
        finally:
            ch.close()
        return
    # chDB lets one process open a folder: the worker and the reads below take turns, each in a
    # process of its own (this test process never opens the folder).
    url = f"chdb:{tmp_path / 'chdb'}"

    def query(sql: str) -> list[list[Any]]:
        return chdb_query(url, "poison", sql)

    chdb_query(url, "poison", "SELECT 1", migrate_first=True)
    yield Backend(url, "poison", query)


def chdb_query(url: str, database: str, sql: str, *, migrate_first: bool = False) -> list[list[Any]]:
    code = (
        "import json, sys\n"
        "from chargeback.clickhouse import connect\n"
        "from warehouse.migrations import migrate\n"
        "ch = connect(sys.argv[1], sys.argv[2], create=True)\n"
        "if sys.argv[4] == '1':\n"
        "    migrate(ch)\n"
        "print(json.dumps([list(r) for r in ch.execute(sys.argv[3])], default=str))\n"
        "ch.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, url, database, sql, "1" if migrate_first else "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows: list[list[Any]] = json.loads(done.stdout.splitlines()[-1])
    return rows


def dead_topic_letters(bootstrap: str, topic: str) -> list[bytes]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
        enable_auto_commit=False,
        fetch_max_bytes=8 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        return [m.value for m in consumer]
    finally:
        consumer.close()


def test_poison_among_valid_events_is_dead_lettered_and_every_valid_event_stored(
    kafka_bootstrap: str, topic_name: str, backend: Backend
) -> None:
    valid = usage_messages(1200)
    cases = poison()
    messages: list[Message] = []
    for i, (bad, _) in enumerate(cases):  # poison in the middle of each municipality's stream
        messages.extend(valid[i * 60 : (i + 1) * 60])
        messages.append(bad)
    messages.extend(valid[len(cases) * 60 :])
    produce(kafka_bootstrap, topic_name, messages)
    env = worker_env(kafka_bootstrap, topic_name, backend.url, backend.database)

    out = finish(start_worker(env))
    # The worker ran to its idle exit: nothing stopped it, every valid event is stored once.
    assert f"received {len(messages)}, stored 1200, duplicates 0, dead letters {len(cases)}" in out
    assert backend.query("SELECT count(), uniqExact(event_id) FROM usage_events") == [[1200, 1200]]
    reasons = backend.query("SELECT reason FROM dead_letters ORDER BY reason")
    assert [r[0] for r in reasons] == sorted(reason for _, reason in cases)
    letters = dead_topic_letters(kafka_bootstrap, f"{topic_name}.dead")
    assert sorted(json.loads(v)["reason"] for v in letters) == sorted(reason for _, reason in cases)
    assert max(len(v) for v in letters) < 1_000_000
    big = next(json.loads(v) for v in letters if json.loads(v)["value_size"] == len(BIG))
    assert (big["value_sha256"], big["value_truncated"]) == (hashlib.sha256(BIG).hexdigest(), True)

    # A worker of a new group has no committed offsets and reads everything again: nothing changes.
    again = finish(start_worker({**env, "CHARGEBACK_WORKER_APP_ID": f"again-{topic_name}"}))
    assert f"received {len(messages)}, stored 0, duplicates 0, dead letters 0" in again
    assert backend.query("SELECT count(), uniqExact(event_id) FROM usage_events") == [[1200, 1200]]
    assert backend.query("SELECT count() FROM dead_letters") == [[len(cases)]]


def test_keyless_events_are_dead_letters_so_two_workers_count_nothing_twice(
    kafka_bootstrap: str, topic_name: str, clickhouse_server_url: str, clickhouse_server_database: str
) -> None:
    # Keyless messages are spread over every partition, so two workers could each see one id
    # once: they are refused instead (SPEC), while keyed events still count once.
    keyed = usage_messages(3000)
    keyless = [Message(None, m.value.replace(b'"ev-', b'"nokey-')) for m in usage_messages(3000, seed=2)]
    produce(kafka_bootstrap, topic_name, (keyed + keyless) * 2)
    ch = connect(clickhouse_server_url, clickhouse_server_database)
    migrate(ch)
    env = worker_env(kafka_bootstrap, topic_name, clickhouse_server_url, clickhouse_server_database)
    workers = [start_worker(env, idle=6), start_worker(env, idle=6)]
    for w in workers:
        finish(w)
    assert ch.execute("SELECT count(), uniqExact(event_id) FROM usage_events") == [(3000, 3000)]
    assert ch.execute("SELECT countIf(event_id LIKE 'nokey-%') FROM usage_events") == [(0,)]
    assert ch.execute("SELECT count(), uniqExact(kafka_partition, kafka_offset) FROM dead_letters") == [
        (6000, 6000)
    ]
    assert ch.execute("SELECT reason, count() FROM dead_letters GROUP BY reason ORDER BY reason") == [
        (f"message has no key: it must be the event's municipality {m}", 1000) for m in sorted(MUNICIPALITIES)
    ]
    ch.close()
