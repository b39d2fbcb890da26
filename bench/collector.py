"""Benchmark: a collector run (spool written and fsynced, then drained to the broker, acks=all,
idempotent producer) against a bare kafka-python producer sending the same messages.

    .venv/bin/python bench/collector.py --events 200000

Prints events/s of each and the ratio; the collector's target is at least 30,000 events/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import devstack
from chargeback.kafka import Message, make_producer, send_all
from collectors.file import FileReport, read_events
from collectors.sending import Signer, deliver
from collectors.settings import CollectorSettings


def write_events(path: Path, n: int) -> None:
    with path.open("w") as handle:
        for i in range(n):
            handle.write(
                json.dumps(
                    {
                        "specversion": "1.0",
                        "id": f"2183-devices-PC{i:07d}-2026-10-05",
                        "source": "urn:bench",
                        "type": "chargeback.usage.v1",
                        "time": "2026-10-05T06:00:00Z",
                        "data": {
                            "municipality": "2183",
                            "cost_centre": "BUF",
                            "service": "pc-standard",
                            "subject": f"PC{i:07d}",
                            "quantity": "1",
                        },
                    }
                )
                + "\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--signed", action="store_true", help="sign every event (HMAC-SHA256)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.jsonl"
        write_events(events, args.events)
        with devstack.running(["kafka"], state_dir=Path(tmp) / "services") as found:
            assert found.kafka_bootstrap
            messages = [Message(b"2183", line.strip()) for line in events.read_bytes().splitlines()]
            producer = make_producer(found.kafka_bootstrap)
            t0 = time.perf_counter()
            send_all(producer, "bench-raw", messages)
            raw = len(messages) / (time.perf_counter() - t0)
            producer.close()
            settings = CollectorSettings(
                kafka_bootstrap=found.kafka_bootstrap,
                usage_topic="bench-collector",
                collector_spool_dir=Path(tmp) / "spool",
            )
            signer = Signer("bench", b"secret") if args.signed else None
            t0 = time.perf_counter()
            _, drained = deliver(read_events(events, FileReport()), settings, signer)
            run = drained.sent / (time.perf_counter() - t0)
    print(f"kafka-python producer alone         {raw:>10,.0f} events/s")
    print(f"collector run (spool + send{', signed' if args.signed else ''}) {run:>10,.0f} events/s")
    print(f"collector / producer = {run / raw:.2f}")


if __name__ == "__main__":
    main()
