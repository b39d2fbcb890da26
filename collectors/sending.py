"""Sending a run's events: sign them, spool them, drain the spool to the broker."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from chargeback.kafka import KafkaSecurity, Message, make_producer, send_all
from chargeback.signing import signed_json
from collectors.settings import CollectorSettings
from collectors.spool import Spool, SpoolError


@dataclass(frozen=True)
class Signer:
    """The collector's key."""

    key_id: str
    secret: bytes

    def apply(self, messages: Iterable[Message]) -> Iterator[Message]:
        """Each event signed; a message that is not a JSON object, or holds text that UTF-8 cannot
        carry (a lone surrogate escape), is passed on unsigned: the stream worker dead-letters it
        with its reason."""
        for m in messages:
            try:
                doc = json.loads(m.value)
                signed = signed_json(doc, self.key_id, self.secret) if isinstance(doc, dict) else None
            except (ValueError, RecursionError):  # bad JSON, or UnicodeEncodeError from the canonical form
                signed = None
            yield m if signed is None else Message(m.key, signed)


@dataclass(frozen=True)
class Delivery:
    """What sending a run's events did: how many this run spooled, how many the broker confirmed
    (this run's and earlier runs'), how many still wait, and why, if something went wrong."""

    written: int = 0
    sent: int = 0
    spooled: int = 0
    broker_error: str | None = None  # the broker could not be reached or did not confirm
    spool_error: str | None = None  # the spool could not be written or read: a human must look


def deliver(messages: Iterable[Message], settings: CollectorSettings, signer: Signer | None) -> Delivery:
    """Spool this run's messages, then drain the whole spool (also when this run's could not be
    spooled: what earlier runs kept is still sent)."""
    try:
        spool = Spool(settings.collector_spool_dir)
    except SpoolError as exc:
        deque(messages, maxlen=0)
        return Delivery(spool_error=str(exc))
    written, spool_error = 0, None
    try:
        _, written = spool.write(signer.apply(messages) if signer else messages)
    except SpoolError as exc:
        spool_error = str(exc)
        deque(messages, maxlen=0)  # read the rest all the same: the report counts and names all of it

    def send(batch: list[Message]) -> int:
        producer = make_producer(
            settings.kafka_bootstrap,
            client_id=settings.collector_client_id,
            connect_timeout_s=settings.collector_connect_timeout_s,
            security=KafkaSecurity.from_settings(settings),
        )
        try:
            return send_all(
                producer, settings.usage_topic, batch, timeout_s=settings.collector_send_timeout_s
            )
        finally:
            producer.close(timeout=settings.collector_send_timeout_s)

    try:
        drained = spool.drain(send)
    except SpoolError as exc:
        return Delivery(written, spool_error=spool_error or str(exc))
    return Delivery(written, drained.sent, drained.spooled, drained.error, spool_error)
