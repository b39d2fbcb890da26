"""Benchmark: the stream worker against a plain per-event Faust baseline and a raw consume.

All three read the same topic on the same local broker in one run, so the ratios hold on a noisy
machine where absolute figures do not:

- raw:      aiokafka consuming the topic, doing nothing else (the ceiling of the client library);
- baseline: a Faust agent iterating the stream per event and updating a tumbling table per event
            (the usual way to aggregate with Faust);
- worker:   ``chargeback stream worker``, from the topic to rows in ClickHouse, exactly once.

    .venv/bin/python bench/stream_worker.py --events 300000 [--clickhouse server] [--no-baseline]

Prints events/s for each, the ratios, and the resident memory of the worker and its sink process
at a tenth, half and the end of the replay (flat memory: the same figures at half and at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import devstack

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "demo" / "data" / "catalogue.yaml"
MUNICIPALITIES = ["2121", "2132", "2161", "2182", "2183", "2184"]


async def produce(bootstrap: str, topic: str, n: int, distinct: int | None = None) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        pending = []
        for i in range(n):
            municipality = MUNICIPALITIES[i % 6]
            body = {
                "specversion": "1.0",
                "id": f"b-{i % distinct if distinct else i}",
                "source": "urn:bench",
                "type": "chargeback.usage.v1",
                "time": f"2026-10-{1 + (i // 1000) % 28:02d}T06:00:00Z",
                "data": {
                    "municipality": municipality,
                    "cost_centre": ("BUF", "SOC", "KS")[i % 3],
                    "service": "pc-standard",
                    "subject": f"PC{i % 50000}",
                    "quantity": "1",
                },
            }
            pending.append(await producer.send(topic, json.dumps(body).encode(), key=municipality.encode()))
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, topic: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        seen, started = 0, 0.0
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10000)
            if batch and not started:
                started = time.perf_counter()
            seen += sum(len(v) for v in batch.values())
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


BASELINE = textwrap.dedent(
    """
    import os, signal, sys, time, faust
    bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = faust.App(f"bench-baseline-{topic}", broker=f"kafka://{bootstrap}", value_serializer="json",
                    store="memory://", web_enabled=False, autodiscover=False,
                    consumer_auto_offset_reset="earliest",
                    broker_session_timeout=6, broker_heartbeat_interval=1.5, broker_rebalance_timeout=10,
                    topic_partitions=4)
    usage = app.topic(topic)
    totals = app.Table("totals", default=int).tumbling(86400, expires=86400 * 60)
    state = {"n": 0, "t0": 0.0}

    @app.agent(usage)
    async def count(stream):
        async for event in stream:
            if not state["t0"]:
                state["t0"] = time.perf_counter()
            data = event["data"]
            totals[(data["municipality"], data["service"])] += 1
            state["n"] += 1
            if state["n"] >= n:
                print("RATE", n / (time.perf_counter() - state["t0"]), flush=True)
                os.kill(os.getpid(), signal.SIGTERM)

    faust.Worker(app, loglevel="ERROR", quiet=True, redirect_stdouts=False).execute_from_commandline()
    """
)


def baseline(bootstrap: str, topic: str, n: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
        script.write(BASELINE)
    proc = subprocess.run(
        [sys.executable, script.name, bootstrap, topic, str(n)],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    os.unlink(script.name)
    rates = [line.split("RATE ")[1] for line in proc.stdout.splitlines() if "RATE " in line]
    if not rates:
        raise RuntimeError(f"baseline failed:\n{proc.stderr[-2000:]}")
    return float(rates[-1].split()[0])


def worker(
    bootstrap: str, topic: str, n: int, ch_url: str, database: str
) -> tuple[float, list[tuple[int, int, int]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGEBACK_")}
    env.update(
        CHARGEBACK_KAFKA_BOOTSTRAP=bootstrap,
        CHARGEBACK_USAGE_TOPIC=topic,
        CHARGEBACK_DEAD_TOPIC=f"{topic}.dead",
        CHARGEBACK_WORKER_APP_ID=f"bench-{topic}",
        CHARGEBACK_CLICKHOUSE_URL=ch_url,
        CHARGEBACK_CLICKHOUSE_DATABASE=database,
        CHARGEBACK_CATALOGUE=str(CATALOGUE),
        CHARGEBACK_WORKER_LOG_LEVEL="INFO",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "chargeback_cli", "stream", "worker", "--exit-when-idle", "3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = last = 0.0
    read = 0
    memory: list[tuple[int, int, int]] = []  # (messages read, worker RSS KiB, sink RSS KiB)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "batch:" in line:
            now = time.perf_counter()
            first = first or now
            last = now
            read += int(line.split("batch:")[1].split()[0])
            memory.append((read, *rss_kib(proc.pid)))
    proc.wait()
    # From the end of the first batch to the end of the last: the first batch's events are not counted.
    first_batch = min(n, 20000)
    return (n - first_batch) / (last - first), memory


def rss_kib(pid: int) -> tuple[int, int]:
    """Resident memory of the worker process and of its sink process (its child), in KiB."""

    def rss(p: int) -> int:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except FileNotFoundError:
            pass
        return 0

    children = [
        int(c)
        for task in Path(f"/proc/{pid}/task").glob("*")
        for c in (task / "children").read_text().split()
    ]
    return rss(pid), sum(rss(c) for c in children)


def memory_report(memory: list[tuple[int, int, int]], n: int) -> str:
    """RSS of the worker and its sink at a tenth, half and the end of the replay."""
    marks = []
    for share in (0.1, 0.5, 1.0):
        read, main_kib, sink_kib = next(m for m in memory if m[0] >= share * n)
        marks.append(f"{read:>11,} read: worker {main_kib / 1024:,.0f} MiB + sink {sink_kib / 1024:,.0f} MiB")
    return "\n".join(marks)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--clickhouse", choices=("chdb", "server"), default="chdb")
    parser.add_argument(
        "--distinct",
        type=int,
        default=None,
        help="cycle through this many event ids (the rest arrive as duplicates); default: all distinct",
    )
    parser.add_argument(
        "--worker-only", action="store_true", help="skip the raw and baseline runs (no ratios)"
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the per-event Faust baseline (slow on a busy machine): raw and worker only",
    )
    args = parser.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory() as tmp:
        services = ("kafka", "clickhouse") if args.clickhouse == "server" else ("kafka",)
        with devstack.running(services, state_dir=Path(tmp) / "services") as found:
            assert found.kafka_bootstrap
            bootstrap = found.kafka_bootstrap
            topic = f"bench-{int(time.time())}"
            ch_url = found.clickhouse_url if args.clickhouse == "server" else f"chdb:{Path(tmp) / 'chdb'}"
            assert ch_url
            # The schema is made by another process: this one must not hold the chDB folder.
            subprocess.run(
                [sys.executable, "-m", "chargeback_cli", "db", "migrate"],
                check=True,
                capture_output=True,
                env={
                    **os.environ,
                    "CHARGEBACK_CLICKHOUSE_URL": ch_url,
                    "CHARGEBACK_CLICKHOUSE_DATABASE": "bench",
                },
            )
            t0 = time.perf_counter()
            asyncio.run(produce(bootstrap, topic, n, args.distinct))
            print(f"produced {n} events in {time.perf_counter() - t0:.1f} s")
            raw = base = 0.0
            if not args.worker_only:
                raw = asyncio.run(raw_consume(bootstrap, topic, n))
                print(f"raw aiokafka consume      {raw:>10,.0f} events/s")
                if not args.no_baseline:
                    base = baseline(bootstrap, topic, n)
                    print(f"Faust per-event + table   {base:>10,.0f} events/s")
            rate, memory = worker(bootstrap, topic, n, ch_url, "bench")
            print(f"chargeback worker ({args.clickhouse:<6}) {rate:>10,.0f} events/s")
            print(memory_report(memory, n))
            if not args.worker_only:
                # Raw again after the worker: on a shared machine the ceiling drifts, so the ratio
                # is to the mean of the two raw runs around the worker.
                raw_after = asyncio.run(raw_consume(bootstrap, topic, n))
                print(f"raw aiokafka consume again {raw_after:>9,.0f} events/s")
                mean = (raw + raw_after) / 2
                ratios = f"worker / raw = {rate / mean:.2f}"
                if base:
                    ratios = f"worker / baseline = {rate / base:.1f}x   " + ratios
                print(ratios)


if __name__ == "__main__":
    main()
