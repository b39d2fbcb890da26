"""A Faust transport whose consumer hands the usage topic's messages on in bulk.

Faust delivers every message through its conductor with a per-message ``wait_first`` (two tasks
and several event-loop turns per message), which caps one worker at about 10,000 messages/s on a
small machine — far below what the ClickHouse sink takes. For the topics registered here, this
consumer hands each fetch round to one callback instead, one ``Chunk`` per partition holding the
client's records as they came (no per-message ``ConsumerMessage``), and keeps Faust's books per
chunk rather than per message: read offsets, gaps, pending work for a graceful stop, and
acknowledged offsets. Group membership, assignment, commits and rebalances stay Faust's own.

The callback owns acknowledgement: it calls ``consumer.ack_chunk(chunk)`` once the chunk's
messages are stored, and Faust commits acknowledged offsets as usual.

This module is the one place that reaches inside Faust and aiokafka (``PRIVATE_MEMBERS`` lists
what it touches, for exactly the versions in ``PINNED``); the rest of the worker uses only this
module's public methods. ``tests/unit/test_bulk_adapter.py`` fails on any other version, or when
the upstream code this consumer mirrors changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

# The versions this adapter was written against (pinned the same in pyproject.toml).
PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "mode-streaming": "0.7.1"}
# Private members of the dependencies this module uses: (module, class, member).
PRIVATE_MEMBERS = (
    ("faust.transport.consumer", "Consumer", "_acked"),
    ("faust.transport.consumer", "Consumer", "_acked_index"),
    ("faust.transport.consumer", "Consumer", "_add_gap"),
    ("faust.transport.consumer", "Consumer", "_buffered_partitions"),
    ("faust.transport.consumer", "Consumer", "_commit_every"),
    ("faust.transport.consumer", "Consumer", "_committed_offset"),
    ("faust.transport.consumer", "Consumer", "_drain_messages"),
    ("faust.transport.consumer", "Consumer", "_n_acked"),
    ("faust.transport.consumer", "Consumer", "_read_offset"),
    ("faust.transport.consumer", "Consumer", "_unacked_messages"),
    ("faust.transport.consumer", "Consumer", "_wait_next_records"),
    ("faust.transport.consumer", "Consumer", "_waiting_for_ack"),
    ("faust.transport.drivers.aiokafka", "Consumer", "_new_consumer_thread"),
    ("faust.transport.drivers.aiokafka", "Consumer", "_to_message"),
    ("faust.transport.drivers.aiokafka", "AIOKafkaConsumerThread", "_create_worker_consumer"),
    ("aiokafka.consumer.consumer", "AIOKafkaConsumer", "_fetch_max_wait_ms"),
    ("mode.services", "Service", "_stopped"),
)
# Upstream functions this consumer mirrors (its _drain_messages is Faust's loop taking records in
# bulk): a change in them must be looked at here. SHA-256 of their source text.
MIRRORED = {
    (
        "faust.transport.consumer",
        "Consumer",
        "_drain_messages",
    ): "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
    (
        "faust.transport.consumer",
        "Consumer",
        "getmany",
    ): "4b168d84882a70d6e3e2f9804430a63b92f8fd117d3187cbb4aeb54305bda34e",
}


@dataclass(eq=False)
class Chunk:
    """One partition's messages of one fetch round, in offset order.

    ``records`` are the Kafka client's records (``topic``, ``partition``, ``offset``, ``key``,
    ``value``, ``timestamp`` in ms). While a chunk is not acknowledged it stands in Faust's set of
    pending messages, so a stopping worker waits for it (``acked`` and ``refcount`` are what Faust
    reads there).
    """

    tp: Any
    records: list[Any]
    acked: bool = False
    refcount: int = 0

    @property
    def first_offset(self) -> int:
        """The offset of the chunk's first message."""
        return int(self.records[0].offset)

    @property
    def last_offset(self) -> int:
        """The offset of the chunk's last message."""
        return int(self.records[-1].offset)


BulkHandler = Callable[[Sequence[Chunk]], Awaitable[None]]


# How long the broker may hold a fetch for more data. Faust asks for 1.5 s; measured on the local
# broker, a worker then stood idle for about a second at a time in the middle of a backlog (a fetch
# held for its full wait), while a short wait kept the backlog flowing. A broker answers at once
# when it has data, so the short wait costs only a few empty fetches a second when the topic is idle.
FETCH_MAX_WAIT_MS = 100


class BulkConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, with the Kafka client asking for a short fetch wait."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the client starts its fetcher
        return consumer


class BulkConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, with one callback per fetch round for bulk topics."""

    def _new_consumer_thread(self) -> BulkConsumerThread:
        return BulkConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def ack_chunk(self, chunk: Chunk) -> int:
        """Mark every message of ``chunk`` acknowledged (``Consumer.ack``, once per chunk)."""
        with ack_lock:
            if chunk.acked:
                return 0
            chunk.acked = True
            self._unacked_messages.discard(chunk)  # type: ignore[arg-type]  # stands in for its messages
            tp = chunk.tp
            if not self.app.topics.acks_enabled_for(tp.topic):
                return 0
            committed = self._committed_offset[tp]
            floor = -1 if committed is None else committed
            acked_index = self._acked_index[tp]
            offsets = [r.offset for r in chunk.records if r.offset >= floor and r.offset not in acked_index]
            acked_index.update(offsets)
            self._acked[tp].extend(offsets)
            self._n_acked += len(offsets)
            notify(self._waiting_for_ack)
            return len(offsets)

    def read_offset(self, tp: Any) -> int | None:
        """The offset of the last message read from ``tp`` (None: nothing read yet)."""
        offset: int | None = self._read_offset.get(tp)
        return offset

    @property
    def suspended(self) -> bool:
        """Whether a rebalance has stopped the flow: messages in hand will be read again after it."""
        return not self.flow_active

    async def wait_suspended(self) -> None:
        """Return once a rebalance stops the flow (at once if it has)."""
        await self.suspend_flow.wait()

    def release_chunk(self, chunk: Chunk) -> None:
        """Give up ``chunk`` unacknowledged (a rebalance began): Faust's revoke, which waits for every
        message in hand, no longer waits for it, and its messages are read again from the committed
        offset by whoever owns the partition next (this worker included)."""
        with ack_lock:
            self._unacked_messages.discard(chunk)  # type: ignore[arg-type]

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised end to end
        # Faust's loop (faust/transport/consumer.py: _drain_messages and getmany), taking the
        # fetched record map directly: bulk topics go on as chunks, other topics message by message
        # as in Faust.
        handlers: dict[str, BulkHandler] = getattr(self.transport, "bulk_handlers", {})
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                await self.sleep(0)
                if self.should_stop:
                    break
                records, active = await self._wait_next_records(1.0)
                if not records or self.should_stop:
                    continue
                if not self.flow_active:
                    # A rebalance began while fetching: go back to the committed offsets, as
                    # Faust's getmany does (and, like it, carry on if the seek fails: the
                    # rebalance that follows seeks again).
                    try:
                        await self.perform_seek()
                    except Exception as exc:
                        self.log.warning(f"exception performing seek when flow not active {exc}")
                    continue
                generation = self.app.consumer_generation_id
                bulk: dict[str, list[Chunk]] = {}
                for tp, fetched in records.items():
                    if not fetched or (
                        active is not None and tp not in active and tp not in self._buffered_partitions
                    ):
                        continue
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    if tp.topic in handlers:
                        fresh = await self._advance(tp, fetched)
                        if fresh:
                            bulk.setdefault(tp.topic, []).append(Chunk(tp, fresh))
                    else:
                        await self._deliver_each(tp, fetched, generation)
                if self._commit_every is not None and self._n_acked >= self._commit_every:
                    self._n_acked = 0
                    await self.commit()
                if generation != self.app.consumer_generation_id:
                    continue  # reassigned meanwhile: whoever owns the partitions reads them again
                for topic, chunks in bulk.items():
                    for chunk in chunks:  # pending until acknowledged, like Faust's messages
                        self._unacked_messages.add(chunk)  # type: ignore[arg-type]
                    # A rebalance suspends the flow: abandon the hand-off, the messages are not
                    # acknowledged and are read again by whoever owns their partitions next (and
                    # no longer pending, or the revoke would wait for them).
                    handed = asyncio.ensure_future(handlers[topic](chunks))
                    await self.wait_first(handed, self.suspend_flow.wait())
                    if not handed.done() or handed.cancelled():
                        handed.cancel()
                        for chunk in chunks:
                            self.release_chunk(chunk)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _advance(self, tp: Any, fetched: list[Any]) -> list[Any]:
        """The records not read before, with the partition's read offset and gaps updated."""
        r_offset = self._read_offset[tp]
        if r_offset is not None and fetched[0].offset < r_offset:
            fetched = [r for r in fetched if r.offset >= r_offset]
            if not fetched:
                return fetched
        contiguous = fetched[-1].offset - fetched[0].offset + 1 == len(fetched)
        if self.app.topics.acks_enabled_for(tp.topic) and not (
            contiguous and (not r_offset or fetched[0].offset - r_offset <= 1)
        ):
            # Offsets that are not messages (compaction, transaction markers): Faust's bookkeeping.
            previous = r_offset
            for record in fetched:
                if previous and record.offset - previous > 1:
                    await self._add_gap(tp, previous + 1, record.offset)
                previous = record.offset
        self._read_offset[tp] = fetched[-1].offset
        return fetched

    async def _deliver_each(self, tp: Any, fetched: list[Any], generation: int) -> None:
        # Faust's own per-message path, for topics not registered as bulk.
        acks_enabled = self.app.topics.acks_enabled_for(tp.topic)
        for record in fetched:
            if not self.flow_active or generation != self.app.consumer_generation_id:
                break
            offset, r_offset = record.offset, self._read_offset[tp]
            if r_offset is not None and offset < r_offset:
                continue
            if acks_enabled and r_offset and offset - r_offset > 1:
                await self._add_gap(tp, r_offset + 1, offset)
            await self.wait_first(self.callback(self._to_message(tp, record)), self.suspend_flow.wait())
            self._read_offset[tp] = offset


class BulkTransport(faust_aiokafka.Transport):
    """The aiokafka transport with the bulk consumer; register handlers before the worker starts."""

    Consumer = BulkConsumer
    bulk_handlers: dict[str, BulkHandler]

    def register_bulk(self, topic: str, handler: BulkHandler) -> None:
        """Deliver ``topic``'s messages to ``handler`` in chunks instead of one by one."""
        if not hasattr(self, "bulk_handlers"):
            self.bulk_handlers = {}
        self.bulk_handlers[topic] = handler
