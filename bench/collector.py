"""Benchmark: a collector run (spool written and fsynced, then drained to the broker, acks=all,
idempotent producer) against a bare kafka-python producer sending the same messages.

    .venv/bin/python bench/collector.py --events 200000 [--signed]

Three timings on one broker, each with a fresh producer built by ``make_producer`` (the same
settings for all three; building and connecting it is outside the first two timings, inside the
third, as in a real run):

1. the bare producer: the plain documented loop, ``send()`` per message, one ``flush()``, every
   future checked;
2. the collector's send path alone (``send_all``) on the same messages;
3. a whole collector run: read the file, sign (``--signed``), write and fsync the spool, drain it
   to the broker and delete it when confirmed.

Prints events/s of each and the ratios; the collector's target is at least 30,000 events/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import devstack
from chargeback.kafka import Message, make_producer, send_all
from collectors.sending import Signer, deliver
from collectors.settings import CollectorSettings
from collectors.sources.file import FileReport, read_events


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


def send_plainly(producer: Any, topic: str, messages: list[Message]) -> None:
    """What a plain kafka-python program does: send each message, flush once, check each future."""
    futures = [producer.send(topic, key=m.key, value=m.value) for m in messages]
    producer.flush(timeout=60)
    assert all(f.succeeded() for f in futures), "the broker did not confirm every message"


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
            send_plainly(producer, "bench-raw", messages)
            raw = len(messages) / (time.perf_counter() - t0)
            producer.close()
            producer = make_producer(found.kafka_bootstrap)
            t0 = time.perf_counter()
            send_all(producer, "bench-send-all", messages)
            path = len(messages) / (time.perf_counter() - t0)
            producer.close()
            del messages
            settings = CollectorSettings(
                kafka_bootstrap=found.kafka_bootstrap,
                usage_topic="bench-collector",
                collector_spool_dir=Path(tmp) / "spool",
            )
            signer = Signer("bench", b"secret") if args.signed else None
            t0 = time.perf_counter()
            delivered = deliver(read_events(events, FileReport()), settings, signer)
            run = delivered.sent / (time.perf_counter() - t0)
    what = "spool + send, signed" if args.signed else "spool + send"
    print(f"kafka-python producer alone (plain loop)    {raw:>10,.0f} events/s")
    print(f"collector send path alone (send_all)        {path:>10,.0f} events/s")
    print(f"collector run ({what + ')':<28} {run:>10,.0f} events/s")
    print(f"collector / producer = {run / raw:.2f}   collector / send path = {run / path:.2f}")


if __name__ == "__main__":
    main()
