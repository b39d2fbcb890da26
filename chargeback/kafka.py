"""The one door to Kafka for plain clients (collectors, dead-letter tools): kafka-python.

The stream worker consumes through Faust (aiokafka); everything else produces and reads here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Message:
    """One event ready to send: key = municipality code, value = the event's JSON bytes."""

    key: bytes | None
    value: bytes


class DeliveryError(RuntimeError):
    """The broker did not confirm some messages; they must be sent again."""


def make_producer(
    bootstrap: str, *, client_id: str = "chargeback-collector", connect_timeout_s: float = 10.0
) -> Any:
    """A producer that waits for all in-sync replicas and never reorders or duplicates on retry."""
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=[h.strip() for h in bootstrap.split(",") if h.strip()],
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        retries=5,
        linger_ms=5,
        batch_size=256 * 1024,
        compression_type="lz4",
        max_in_flight_requests_per_connection=5,
        request_timeout_ms=15_000,
        max_block_ms=15_000,
        bootstrap_timeout_ms=int(connect_timeout_s * 1000),
    )


def send_all(producer: Any, topic: str, messages: Iterable[Message], *, timeout_s: float = 60.0) -> int:
    """Send every message and wait until the broker confirmed each; return how many were sent."""
    futures = [producer.send(topic, key=m.key, value=m.value) for m in messages]
    producer.flush(timeout=timeout_s)
    failed = [f.exception for f in futures if not f.succeeded()]
    if failed:
        raise DeliveryError(
            f"{len(failed)} of {len(futures)} messages not confirmed by the broker: {failed[0]}"
        )
    return len(futures)
