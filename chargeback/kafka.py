"""The one door to Kafka for plain clients (collectors, dead-letter tools): kafka-python.

The stream worker consumes through Faust (aiokafka); everything else produces and reads here.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chargeback.errors import ChargebackError


@dataclass(frozen=True)
class Message:
    """One event ready to send: key = municipality code, value = the event's JSON bytes."""

    key: bytes | None
    value: bytes


class DeliveryError(ChargebackError, RuntimeError):
    """The broker did not confirm some messages; they must be sent again."""

    code = "kafka.undelivered"


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


def key_partition(key: bytes, partitions: list[int]) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, as in the Java client)."""
    from kafka.partitioner.default import murmur2

    ordered = sorted(partitions)
    index: int = (murmur2(key) & 0x7FFFFFFF) % len(ordered)
    return ordered[index]


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector for a bulk send, restoring its state afterwards.

    A send keeps one future per message alive until the broker answers; every few hundred new
    objects the collector would walk them all again, which costs more than the send itself.
    Nothing is lost by waiting: cycles made meanwhile are collected once the collector is back.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def send_all(producer: Any, topic: str, messages: Iterable[Message], *, timeout_s: float = 60.0) -> int:
    """Send every message and wait until the broker confirmed each; return how many were sent.

    A keyed message goes to the partition the default partitioner would pick, computed once per
    key rather than once per message; unkeyed ones are left to the producer.
    """
    partitions: list[int] | None = None
    by_key: dict[bytes, int] = {}
    futures = []
    with cyclic_gc_paused():
        send = producer.send
        for m in messages:
            partition = None
            if m.key is not None:
                partition = by_key.get(m.key)
                if partition is None:
                    if partitions is None:
                        partitions = sorted(producer.partitions_for(topic))
                    partition = by_key[m.key] = key_partition(m.key, partitions)
            futures.append(send(topic, key=m.key, value=m.value, partition=partition))
        producer.flush(timeout=timeout_s)
        failed = [f.exception for f in futures if not f.succeeded()]
    if failed:
        raise DeliveryError(
            f"{len(failed)} of {len(futures)} messages not confirmed by the broker: {failed[0]}"
        )
    return len(futures)
