"""The bulk send path of chargeback.kafka, against a stand-in producer."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from kafka.partitioner.default import DefaultPartitioner

from chargeback.kafka import DeliveryError, Message, cyclic_gc_paused, key_partition, send_all


class _Future:
    def __init__(self, error: Exception | None) -> None:
        self.exception = error

    def succeeded(self) -> bool:
        return self.exception is None


class _Producer:
    """Records what send_all asks of a KafkaProducer; fails the values listed in ``fail``."""

    def __init__(self, partitions: set[int], fail: frozenset[bytes] = frozenset()) -> None:
        self.partitions = partitions
        self.fail = fail
        self.sent: list[tuple[str, bytes | None, bytes, int | None]] = []
        self.gc_during_send: set[bool] = set()
        self.flushes: list[float | None] = []
        self.partitions_asked = 0

    def partitions_for(self, topic: str) -> set[int]:
        self.partitions_asked += 1
        return self.partitions

    def send(self, topic: str, *, key: bytes | None, value: bytes, partition: int | None) -> _Future:
        self.sent.append((topic, key, value, partition))
        self.gc_during_send.add(gc.isenabled())
        return _Future(RuntimeError("NOT_LEADER") if value in self.fail else None)

    def flush(self, timeout: float | None = None) -> None:
        self.flushes.append(timeout)


class _Cluster:
    def __init__(self, partitions: set[int]) -> None:
        self.partitions = partitions

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions


@pytest.fixture
def gc_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        if not was:
            gc.disable()


@pytest.mark.parametrize(
    ("key", "expected"),
    [(b"2183", [0, 2, 6]), (b"2184", [0, 1, 9]), (b"2161", [0, 2, 10]), (b"", [0, 1, 9])],
)
def test_key_partition_is_the_default_partitioners_choice(key: bytes, expected: list[int]) -> None:
    counts = (1, 4, 12)
    assert [key_partition(key, list(range(n))) for n in counts] == expected
    assert [
        DefaultPartitioner().partition("t", key, key, None, None, _Cluster(set(range(n)))) for n in counts
    ] == expected


def test_key_partition_orders_partition_ids_first() -> None:
    assert key_partition(b"2183", [3, 1, 0, 2]) == 2


def test_send_all_sends_in_order_to_the_keys_partition_and_flushes_once(gc_enabled: None) -> None:
    producer = _Producer({0, 1, 2, 3})
    messages = [Message(b"2183", b"a"), Message(b"2184", b"b"), Message(None, b"c"), Message(b"2183", b"d")]
    assert send_all(producer, "usage", messages, timeout_s=7.0) == 4
    assert producer.sent == [
        ("usage", b"2183", b"a", 2),
        ("usage", b"2184", b"b", 1),
        ("usage", None, b"c", None),
        ("usage", b"2183", b"d", 2),
    ]
    assert producer.flushes == [7.0]
    assert producer.partitions_asked == 1
    assert producer.gc_during_send == {False}
    assert gc.isenabled()


def test_send_all_asks_for_no_partitions_when_nothing_is_keyed(gc_enabled: None) -> None:
    producer = _Producer({0, 1})
    assert send_all(producer, "usage", [Message(None, b"x")]) == 1
    assert send_all(producer, "usage", []) == 0
    assert (producer.partitions_asked, producer.flushes) == (0, [60.0, 60.0])


def test_send_all_reports_unconfirmed_messages_and_restores_the_collector(gc_enabled: None) -> None:
    producer = _Producer({0}, fail=frozenset({b"b", b"c"}))
    with pytest.raises(DeliveryError) as raised:
        send_all(producer, "usage", [Message(b"1", b"a"), Message(b"1", b"b"), Message(b"1", b"c")])
    assert str(raised.value) == "2 of 3 messages not confirmed by the broker: NOT_LEADER"
    assert gc.isenabled()


def test_a_failing_send_restores_the_collector(gc_enabled: None) -> None:
    class Broken(_Producer):
        def send(self, topic: str, **kwargs: Any) -> _Future:
            raise TimeoutError("metadata")

    with pytest.raises(TimeoutError):
        send_all(Broken({0}), "usage", [Message(None, b"a")])
    assert gc.isenabled()


def test_the_pause_leaves_a_collector_that_was_off_off() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()
