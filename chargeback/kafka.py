"""The one door to Kafka for plain clients (collectors, dead-letter tools): kafka-python.

The stream worker consumes through Faust (aiokafka); everything else produces and reads here.
Both take the connection's security from one ``KafkaSecurity`` (``CHARGEBACK_KAFKA_SECURITY_*``,
``CHARGEBACK_KAFKA_SSL_*``, ``CHARGEBACK_KAFKA_SASL_*``): plaintext inside a trusted network, TLS
with the broker's certificate checked against a CA file (and, optionally, a client certificate),
or TLS with a SASL login (SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN) per member.
"""

from __future__ import annotations

import gc
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chargeback.errors import ChargebackError
from chargeback.settings import KafkaSettings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client connects: protocol, TLS files, SASL login (the password never in ``repr``)."""

    protocol: str = "PLAINTEXT"
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: KafkaSettings) -> KafkaSecurity:
        """The connection security the settings give (``CHARGEBACK_KAFKA_SECURITY_PROTOCOL`` ...)."""
        password = settings.kafka_sasl_password
        return cls(
            protocol=settings.kafka_security_protocol,
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
        )

    @property
    def tls(self) -> bool:
        """Whether the connection is encrypted."""
        return self.protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context (system CAs, or ``cafile``), with the client certificate if any."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.certfile is not None:
            context.load_cert_chain(str(self.certfile), str(self.keyfile) if self.keyfile else None)
        return context

    def kafka_python(self) -> dict[str, Any]:
        """The options of kafka-python's clients (producer, consumer, admin) for this security."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            options["ssl_context"] = self.ssl_context()
            options["ssl_check_hostname"] = True
        if self.protocol == "SASL_SSL":
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.username
            options["sasl_plain_password"] = self.password
        return options


@dataclass(frozen=True)
class Message:
    """One event ready to send: key = municipality code, value = the event's JSON bytes."""

    key: bytes | None
    value: bytes


class DeliveryError(ChargebackError, RuntimeError):
    """The broker did not confirm some messages; they must be sent again."""

    code = "kafka.undelivered"


class BrokerUnreachable(ChargebackError, RuntimeError):
    """No broker of the bootstrap list answered (down, a firewall, or TLS that does not agree)."""

    code = "kafka.unreachable"


def make_producer(
    bootstrap: str,
    *,
    client_id: str = "chargeback-collector",
    connect_timeout_s: float = 10.0,
    security: KafkaSecurity | None = None,
) -> Any:
    """A producer that waits for all in-sync replicas and never reorders or duplicates on retry."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        return KafkaProducer(
            **_producer_options(bootstrap, client_id, connect_timeout_s, security or KafkaSecurity())
        )
    except KafkaError as exc:
        raise BrokerUnreachable(
            f"no Kafka broker answers at {bootstrap} within {connect_timeout_s:g} s "
            f"({type(exc).__name__}; check the address, the firewall and the TLS settings)"
        ) from None


def _producer_options(
    bootstrap: str, client_id: str, connect_timeout_s: float, security: KafkaSecurity
) -> dict[str, Any]:
    return dict(
        **security.kafka_python(),
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
