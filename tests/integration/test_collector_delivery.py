"""Collectors against the real broker: nothing lost when the broker is away or the collector dies,
and signed events accepted only for the signer's own municipality."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

import devstack
from chargeback.clickhouse import ClickHouse, connect
from chargeback.kafka import Message, make_producer, send_all
from collectors.sources.storage import StorageSource
from warehouse.migrations import migrate

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml"


def write_events(path: Path, n: int, municipality: str = "2183") -> None:
    with path.open("w") as handle:
        for i in range(n):
            handle.write(
                json.dumps(
                    {
                        "specversion": "1.0",
                        "id": f"{municipality}-ev-{i}",
                        "source": "urn:test",
                        "type": "chargeback.usage.v1",
                        "time": "2026-10-05T06:00:00Z",
                        "data": {
                            "municipality": municipality,
                            "service": "ticket-incident",
                            "subject": f"T{i}",
                            "quantity": "1",
                        },
                    }
                )
                + "\n"
            )


def collect(env: dict[str, str], events: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chargeback_cli", "collect", "file", str(events)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def ids_on_topic(bootstrap: str, topic: str) -> list[str]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=3000, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return [json.loads(m.value)["id"] for m in consumer]
    finally:
        consumer.close()


def test_bulk_send_puts_each_key_where_the_producer_itself_would(
    kafka_bootstrap: str, topic_name: str
) -> None:
    keys = [b"2183", b"2184", b"2161", b"2183"]
    producer = make_producer(kafka_bootstrap)
    try:
        assert send_all(producer, topic_name, [Message(k, b"bulk-" + k) for k in keys]) == 4
        for k in keys:
            producer.send(topic_name, key=k, value=b"plain-" + k)
        producer.flush(timeout=30)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, consumer_timeout_ms=3000, enable_auto_commit=False
    )
    try:
        partitions = [TopicPartition(topic_name, p) for p in range(4)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        placed = sorted({(m.value, m.partition) for m in consumer})
    finally:
        consumer.close()
    assert placed == [
        (b"bulk-2161", 2),
        (b"bulk-2183", 2),
        (b"bulk-2184", 1),
        (b"plain-2161", 2),
        (b"plain-2183", 2),
        (b"plain-2184", 1),
    ]


def base_env(bootstrap: str, topic: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGEBACK_")}
    env.update(
        CHARGEBACK_KAFKA_BOOTSTRAP=bootstrap,
        CHARGEBACK_USAGE_TOPIC=topic,
        CHARGEBACK_COLLECTOR_SPOOL_DIR=str(tmp_path / "spool"),
    )
    return env


def test_broker_away_spools_and_the_next_run_delivers(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, 500)
    away = base_env(f"127.0.0.1:{devstack.free_port()}", topic_name, tmp_path)
    away["CHARGEBACK_COLLECTOR_CONNECT_TIMEOUT_S"] = "1"
    first = collect(away, events)
    assert first.returncode == 75, first.stderr
    assert first.stdout.strip() == "read 500, emitted 0, spooled 500, rejected 0, unmapped 0 (this run: 500)"
    write_events(events, 0)
    second = collect(base_env(kafka_bootstrap, topic_name, tmp_path), events)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "read 0, emitted 500, spooled 0, rejected 0, unmapped 0 (this run: 0)"
    ids = ids_on_topic(kafka_bootstrap, topic_name)
    assert sorted(ids) == sorted(f"2183-ev-{i}" for i in range(500))


def test_a_collector_killed_mid_run_loses_nothing_on_rerun(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, 60_000)
    env = base_env(kafka_bootstrap, topic_name, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "chargeback_cli", "collect", "file", str(events)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    spool = tmp_path / "spool"
    deadline = time.monotonic() + 60
    while not list(spool.glob("*.spool")) and time.monotonic() < deadline:  # killed while sending
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    write_events(events, 0)
    rerun = collect(env, events)
    assert rerun.returncode == 0, rerun.stderr
    ids = ids_on_topic(kafka_bootstrap, topic_name)
    assert set(ids) == {f"2183-ev-{i}" for i in range(60_000)}  # every event, perhaps some twice by id


def test_a_broker_stopped_mid_run_and_restarted_loses_nothing(tmp_path: Path) -> None:
    # A broker of its own, stopped (SIGSTOP) while the collector sends and continued (SIGCONT)
    # after the collector gave up: what was not confirmed stays in the spool, the next run sends
    # it, and every id is on the topic (a copy the stopped broker still took is the same id,
    # which the stream worker counts once).
    state = tmp_path / "broker"
    with devstack.running(("kafka",), state_dir=state) as found:
        assert found.kafka_bootstrap
        broker = devstack.status(("kafka",), state)["kafka"]["pid"]
        events = tmp_path / "events.jsonl"
        write_events(events, 200_000)
        env = base_env(found.kafka_bootstrap, "usage.stopped", tmp_path)
        env["CHARGEBACK_COLLECTOR_SEND_TIMEOUT_S"] = "5"
        proc = subprocess.Popen(
            [sys.executable, "-m", "chargeback_cli", "collect", "file", str(events)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        spool = tmp_path / "spool"
        deadline = time.monotonic() + 60
        while not list(spool.glob("*.spool")) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # the spool is written, the sending has begun
        os.kill(broker, signal.SIGSTOP)
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            os.kill(broker, signal.SIGCONT)
        assert proc.returncode == 75, (out, err)  # stopped mid-run: the rest waits in the spool
        assert "spooled 200000" in out
        write_events(events, 0)
        rerun = collect(env, events)
        assert rerun.returncode == 0, rerun.stderr
        assert rerun.stdout.strip() == (
            "read 0, emitted 200000, spooled 0, rejected 0, unmapped 0 (this run: 0)"
        )
        ids = ids_on_topic(found.kafka_bootstrap, "usage.stopped")
        assert set(ids) == {f"2183-ev-{i}" for i in range(200_000)}


def test_the_worker_accepts_events_signed_for_their_own_municipality_only(
    kafka_bootstrap: str,
    topic_name: str,
    tmp_path: Path,
    clickhouse_server_url: str,
    clickhouse_server_database: str,
) -> None:
    registry = tmp_path / "keys.yaml"
    registry.write_text(
        "keys:\n  bollnas-1: {municipality: '2183', secret_env: KEY_BOLLNAS}\n"
        "  hudik-1: {municipality: '2184', secret_env: KEY_HUDIK}\n"
    )
    env = base_env(kafka_bootstrap, topic_name, tmp_path)
    env.update(
        KEY_BOLLNAS="b-key",
        KEY_HUDIK="h-key",
        CHARGEBACK_COLLECTOR_KEY_ID="bollnas-1",
        CHARGEBACK_COLLECTOR_KEY_SECRET="b-key",
    )
    own, other = tmp_path / "own.jsonl", tmp_path / "other.jsonl"
    write_events(own, 3, "2183")
    write_events(other, 2, "2184")  # Bollnäs' collector trying to bill Hudiksvall
    assert collect(env, own).returncode == 0
    assert collect(env, other).returncode == 0
    ch: ClickHouse = connect(clickhouse_server_url, clickhouse_server_database)
    migrate(ch)
    env.update(
        CHARGEBACK_CLICKHOUSE_URL=clickhouse_server_url,
        CHARGEBACK_CLICKHOUSE_DATABASE=clickhouse_server_database,
        CHARGEBACK_CATALOGUE=str(CATALOGUE),
        CHARGEBACK_WORKER_KEY_REGISTRY=str(registry),
        CHARGEBACK_WORKER_APP_ID=f"w-{topic_name}",
        CHARGEBACK_DEAD_TOPIC=f"{topic_name}.dead",
    )
    worker = subprocess.run(
        [sys.executable, "-m", "chargeback_cli", "stream", "worker", "--exit-when-idle", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]
    assert ch.execute("SELECT event_id FROM usage_events ORDER BY event_id") == [
        ("2183-ev-0",),
        ("2183-ev-1",),
        ("2183-ev-2",),
    ]
    assert ch.execute("SELECT reason, count() FROM dead_letters GROUP BY reason") == [
        ("key bollnas-1 belongs to municipality 2183, not 2184", 2)
    ]
    ch.close()


# --- one bad thing never stops a collector -------------------------------------------------------


def test_bad_lines_are_named_and_every_good_line_is_delivered(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, 10)
    good = events.read_text().splitlines()
    deep, huge = "[" * 100_000 + "]" * 100_000, '{"data": {"municipality": "2183", "n": ' + "7" * 5000 + "}}"
    events.write_text(
        "\n".join([*good[:3], "{not json", *good[3:6], deep, *good[6:8], huge, *good[8:]]) + "\n"
    )
    result = collect(base_env(kafka_bootstrap, topic_name, tmp_path), events)
    assert result.returncode == 1  # a human must look at the bad lines; nothing good is held back
    assert result.stdout == "read 13, emitted 10, spooled 0, rejected 3, unmapped 0\n"
    assert result.stderr.splitlines() == [
        f"rejected {events}:4: not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        f"rejected {events}:8: nested deeper than 32 levels",
        f"rejected {events}:11: an integer of 5000 digits (at most 40)",
    ]
    assert sorted(ids_on_topic(kafka_bootstrap, topic_name)) == sorted(f"2183-ev-{i}" for i in range(10))
    assert list((tmp_path / "spool").iterdir()) == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs as the spool folder: a disk that really fills (needs mount rights)."""
    folder = tmp_path / "spool"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_spool_disk_is_one_sentence_and_the_next_small_run_delivers(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path, small_disk: Path
) -> None:
    env = base_env(kafka_bootstrap, topic_name, tmp_path)
    events = tmp_path / "events.jsonl"
    write_events(events, 2000)  # about 400 KB: more than the disk holds
    full = collect(env, events)
    assert full.returncode == 1
    assert full.stdout == "read 2000, emitted 0, spooled 0, rejected 0, unmapped 0\n"  # the whole file read
    assert full.stderr == (
        f"the spool folder {small_disk} cannot be written (No space left on device): "
        "this run's events were not kept and not sent\n"
    )
    assert list(small_disk.iterdir()) == []  # no partial segment left to fill the disk
    write_events(events, 10)
    later = collect(env, events)
    assert later.returncode == 0, later.stderr
    assert later.stdout == "read 10, emitted 10, spooled 0, rejected 0, unmapped 0\n"
    assert sorted(ids_on_topic(kafka_bootstrap, topic_name)) == sorted(f"2183-ev-{i}" for i in range(10))


def test_a_crashed_runs_partial_segment_on_a_full_disk_does_not_stop_the_next_run(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path, small_disk: Path
) -> None:
    # What a collector killed while its disk filled leaves behind: a temporary segment of a
    # process that is gone, holding every byte the disk had.
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    leftover = small_disk / f".{time.time_ns():020d}-{int(gone.stdout)}.spool.tmp"
    with leftover.open("wb", buffering=0) as handle, pytest.raises(OSError, match="No space left on device"):
        while True:
            handle.write(b"MjE4Mw== " + b"x" * 4087)
    events = tmp_path / "events.jsonl"
    write_events(events, 10)
    result = collect(base_env(kafka_bootstrap, topic_name, tmp_path), events)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "read 10, emitted 10, spooled 0, rejected 0, unmapped 0\n"
    assert result.stderr == ""
    assert not leftover.exists()
    assert sorted(ids_on_topic(kafka_bootstrap, topic_name)) == sorted(f"2183-ev-{i}" for i in range(10))


def test_a_collector_killed_while_writing_its_spool_leaves_nothing_the_next_run_trips_on(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, 200_000)
    env = base_env(kafka_bootstrap, topic_name, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "chargeback_cli", "collect", "file", str(events)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    spool = tmp_path / "spool"
    deadline = time.monotonic() + 60
    while not list(spool.glob(".*.spool.tmp")) and time.monotonic() < deadline:  # killed mid-write
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (leftover,) = spool.glob(".*.spool.tmp")
    assert list(spool.glob("*.spool")) == []  # nothing of the killed run was complete
    write_events(events, 10)
    rerun = collect(env, events)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout == "read 10, emitted 10, spooled 0, rejected 0, unmapped 0\n"
    assert not leftover.exists()
    assert sorted(ids_on_topic(kafka_bootstrap, topic_name)) == sorted(f"2183-ev-{i}" for i in range(10))


def test_a_read_only_spool_is_one_sentence_and_exit_code_1(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path, small_disk: Path
) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    events = tmp_path / "events.jsonl"
    write_events(events, 10)
    result = collect(base_env(kafka_bootstrap, topic_name, tmp_path), events)
    assert result.returncode == 1
    assert result.stdout == "read 10, emitted 0, spooled 0, rejected 0, unmapped 0\n"
    assert result.stderr == (
        f"the spool folder {small_disk} cannot be written (Read-only file system): "
        "this run's events were not kept and not sent\n"
    )
    assert ids_on_topic(kafka_bootstrap, topic_name) == []


def test_the_demo_runs_its_collectors_through_run_collector_and_adds_up_their_reports(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path
) -> None:
    from chargeback.period import Period
    from collectors.events import build_event
    from collectors.mapping import Mapper, load_mapping
    from collectors.settings import CollectorSettings
    from demo.sources import collector_runs, run_collectors, write_sources

    root = tmp_path / "sources"
    write_sources(root, [Period(2026, 10)], codes=["2132"])
    for day in sorted((root / "2132").glob("2026-10-*"))[2:]:  # two days are enough here
        shutil.rmtree(day)
    settings = CollectorSettings(
        kafka_bootstrap=kafka_bootstrap, usage_topic=topic_name, collector_spool_dir=tmp_path / "spool"
    )
    totals = run_collectors(root, settings)

    # What each run's own source observes, mapped as the run maps it: the same counts, the same ids.
    expected_ids: set[str] = set()
    read: Counter[str] = Counter()
    unmapped: Counter[str] = Counter()
    by_identifier: dict[str, Counter[str]] = {}
    for run in collector_runs(root, stable_share=False):
        mapper = Mapper(load_mapping(run.mapping))
        source = run.source()
        if run.kind == "storage":  # the demo measures the day's tree through <code>/share
            source = StorageSource(source.at, share=root / "2132" / "share")  # type: ignore[attr-defined]
            (root / "2132" / "share").unlink()
            (root / "2132" / "share").symlink_to(
                Path(run.day.isoformat()) / "share", target_is_directory=True
            )
        observed = source.observe(mapper)
        read[run.kind] += observed.read
        for r in observed.readings:
            found = build_event(source.kind, mapper, r.observation, r.service, r.quantity, observed.day)
            if found is not None:
                expected_ids.add(found.id)
        unmapped[run.kind] += sum(mapper.unmapped.values())
        by_identifier.setdefault(run.kind, Counter()).update(mapper.unmapped)
    assert {kind: t.runs for kind, t in totals.items()} == {
        "devices": 2,
        "pupil-devices": 2,
        "licences": 2,
        "tickets": 2,
        "storage": 2,
    }
    assert {kind: t.read for kind, t in totals.items()} == dict(read)
    assert {kind: t.unmapped for kind, t in totals.items()} == {k: unmapped[k] for k in totals}
    assert all(t.spooled == 0 and t.rejected == 0 for t in totals.values())
    assert sum(t.emitted for t in totals.values()) == len(expected_ids)
    assert set(ids_on_topic(kafka_bootstrap, topic_name)) == expected_ids
    assert {kind: t.unmapped_by_identifier for kind, t in totals.items()} == {
        kind: {repr(k): n for k, n in counts.items()} for kind, counts in by_identifier.items()
    }
    assert totals["devices"].unmapped > 0  # the demo's unknown förvaltning is there, and counted


def test_a_delivered_run_with_a_warning_for_finance_exits_3(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path
) -> None:
    sources = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
    done = subprocess.run(
        [sys.executable, "-m", "chargeback_cli", "collect", "devices",
         str(sources / "intune_devices_standard.csv"), "--mapping", str(sources / "mapping.yaml"),
         "--at", "2026-10-05T06:00:00+00:00"],
        env=base_env(kafka_bootstrap, topic_name, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    # An Intune export without its Device category column: both devices are delivered, to
    # UNALLOCATED, and the run says so and exits with 3.
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip() == "read 2, emitted 2, spooled 0, rejected 0, unmapped 0"
    assert done.stderr.splitlines() == [
        "warning: the export has no cost-centre column: 2 of 2 devices are billed to UNALLOCATED; "
        "export the column (or name it with --identifier-column)",
        "warning: 2 of 2 devices (100.0 %) go to UNALLOCATED, more than the 10.0 % allowed "
        "(CHARGEBACK_UNALLOCATED_WARNING_SHARE)",
    ]
    assert sorted(ids_on_topic(kafka_bootstrap, topic_name)) == [
        "2183-devices-BOL-VM0001-UNALLOCATED-2026-10-05",  # a serial of 0: the device name
        "2183-devices-PF3ABC42-UNALLOCATED-2026-10-05",
    ]
