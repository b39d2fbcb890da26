"""A Faust transport whose consumer hands the usage topic's messages on in bulk.

Faust delivers every message through its conductor with a per-message ``wait_first`` (two tasks
and several event-loop turns per message), which caps one worker at about 10,000 messages/s on a
small machine — far below what the ClickHouse sink takes. For the topics registered here, this
consumer hands each fetched round of messages to one callback instead; everything else (group
membership, assignment, offset tracking and commits, rebalances, gaps) stays Faust's own.

The callback owns acknowledgement: it calls ``consumer.ack(message)`` for each message once it is
stored, and Faust commits acknowledged offsets as usual.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka

BulkHandler = Callable[[Sequence[Any]], Awaitable[None]]


class BulkConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, with one callback per fetch round for bulk topics."""

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised end to end
        # Faust's own loop (faust/transport/consumer.py), with messages of bulk topics collected per
        # fetch round and handed on together; the bookkeeping per message (read offsets, gaps,
        # periodic commits) is unchanged.
        handlers: dict[str, BulkHandler] = getattr(self.transport, "bulk_handlers", {})
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        acks_enabled_for = self.app.topics.acks_enabled_for
        commit_every = self._commit_every
        unacked = self._unacked_messages
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                await self.sleep(0)
                if self.should_stop:
                    break
                bulk: dict[str, list[Any]] = {}
                async for tp, message in cast(Any, getmany(timeout=1.0)):
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is not None and offset < r_offset:
                        continue
                    gap = offset - (r_offset or 0)
                    if gap > 1 and r_offset and acks_enabled_for(message.topic):
                        await self._add_gap(tp, r_offset + 1, offset)
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    if message.topic in handlers:
                        # Pending until acknowledged (Faust waits for these on shutdown); the
                        # per-message sensor calls of track_message are left out on this path.
                        unacked.add(message)
                        bulk.setdefault(message.topic, []).append(message)
                    else:
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                    set_read_offset(tp, offset)
                for topic, messages in bulk.items():
                    # A rebalance suspends the flow: abandon the hand-off, the messages are not
                    # acknowledged and are read again by whoever owns their partitions next.
                    await self.wait_first(handlers[topic](messages), self.suspend_flow.wait())
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


class BulkTransport(faust_aiokafka.Transport):
    """The aiokafka transport with the bulk consumer; register handlers before the worker starts."""

    Consumer = BulkConsumer
    bulk_handlers: dict[str, BulkHandler]

    def register_bulk(self, topic: str, handler: BulkHandler) -> None:
        """Deliver ``topic``'s messages to ``handler`` in lists instead of one by one."""
        if not hasattr(self, "bulk_handlers"):
            self.bulk_handlers = {}
        self.bulk_handlers[topic] = handler
