"""Every Kafka client over real TLS: a test CA made here, Debian's stunnel4 as the broker's TLS
endpoint in front of the Tansu broker (which advertises only the TLS address, so no client can
reach it any other way), loopback only.

Proven here: the collector (``collect file``), the stream worker (its Faust consumer, producer of
dead letters and admin calls), the dead-letter replay and plain kafka-python admin and consumer
clients connect with ``CHARGEBACK_KAFKA_SECURITY_PROTOCOL=SSL``, verify the broker's certificate
against ``CHARGEBACK_KAFKA_SSL_CAFILE`` (a certificate from another CA is refused), and present a
client certificate when the endpoint requires one (mutual TLS; without it the connection fails).
SASL is not proven against a broker: Tansu 0.6.0 refuses every SASL mechanism ("NoSharedMechanism"),
so the SASL options are checked as the clients receive them (tests/unit/test_kafka_security.py).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import devstack
from chargeback.clickhouse import connect
from chargeback.kafka import KafkaSecurity
from warehouse.migrations import migrate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "tests" / "fixtures" / "catalogue.yaml"


# --- a test CA ----------------------------------------------------------------------------------


def _key() -> object:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: object, path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _certificate(
    subject: str, key: object, issuer: tuple[str, object] | None, *, ca: bool, ip: bool
) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = (issuer[0], issuer[1]) if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if ip else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    cert = builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key, other_key, server_key, client_key = _key(), _key(), _key(), _key()
    (folder / "ca.pem").write_bytes(_certificate("chargeback test CA", ca_key, None, ca=True, ip=False))
    (folder / "other-ca.pem").write_bytes(_certificate("another CA", other_key, None, ca=True, ip=False))
    (folder / "server.pem").write_bytes(
        _certificate("broker", server_key, ("chargeback test CA", ca_key), ca=False, ip=True)
    )
    (folder / "client.pem").write_bytes(
        _certificate("collector-2183", client_key, ("chargeback test CA", ca_key), ca=False, ip=False)
    )
    _write_key(server_key, folder / "server.key")
    _write_key(client_key, folder / "client.key")
    return Pki(
        folder / "ca.pem",
        folder / "other-ca.pem",
        folder / "server.pem",
        folder / "server.key",
        folder / "client.pem",
        folder / "client.key",
    )


# --- a broker reachable only over TLS ---------------------------------------------------------


def _stunnel() -> str:
    for name in ("stunnel4", "stunnel"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("stunnel4 is missing: scripts/bootstrap --clickhouse-server installs it")


@pytest.fixture(scope="module")
def tls_broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two brokers behind TLS: ``server`` checks nothing of the client, ``mutual`` needs its certificate."""
    folder = tmp_path_factory.mktemp("tls-broker")
    procs: list[subprocess.Popen[bytes]] = []
    addresses = {}
    try:
        for name in ("server", "mutual"):
            plain, tls = devstack.free_port(), devstack.free_port()
            log = (folder / f"tansu-{name}.log").open("ab")
            procs.append(
                subprocess.Popen(
                    [
                        str(devstack.tansu_binary()),
                        "broker",
                        "--listener-url",
                        f"tcp://127.0.0.1:{plain}",
                        "--advertised-listener-url",
                        f"tcp://127.0.0.1:{tls}",
                        "--storage-engine",
                        "memory://tansu/",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            config = folder / f"stunnel-{name}.conf"
            lines = [
                "foreground = yes",
                "pid =",
                f"output = {folder / f'stunnel-{name}.log'}",
                "debug = 5",
                "[kafka]",
                f"accept = 127.0.0.1:{tls}",
                f"connect = 127.0.0.1:{plain}",
                f"cert = {pki.server_cert}",
                f"key = {pki.server_key}",
            ]
            if name == "mutual":
                lines += [f"CAfile = {pki.ca}", "verifyChain = yes", "requireCert = yes"]
            config.write_text("\n".join(lines) + "\n", encoding="utf-8")
            procs.append(
                subprocess.Popen(
                    [_stunnel(), str(config)],
                    stdout=(folder / f"stunnel-{name}.out").open("ab"),
                    stderr=subprocess.STDOUT,
                )
            )
            addresses[name] = f"127.0.0.1:{tls}"
        security = KafkaSecurity(
            protocol="SSL", cafile=pki.ca, certfile=pki.client_cert, keyfile=pki.client_key
        )
        for address in addresses.values():
            _wait_for_broker(address, security)
        yield addresses
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for_broker(address: str, security: KafkaSecurity) -> None:
    from kafka import KafkaAdminClient

    deadline = time.monotonic() + 30
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=address, request_timeout_ms=3000, **security.kafka_python()
            )
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except Exception as exc:  # not up yet
            last = exc
            time.sleep(0.2)
    pytest.fail(f"the TLS broker at {address} did not answer: {last}")


def _create_topics(address: str, security: KafkaSecurity, *names: str) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=address, **security.kafka_python())
    try:
        admin.create_topics([NewTopic(n, num_partitions=2, replication_factor=1) for n in names])
    finally:
        admin.close()


def _read_all(address: str, security: KafkaSecurity, topic: str, expected: int) -> list[bytes]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=address,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
        group_id=None,
        **security.kafka_python(),
    )
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while len(values) < expected and time.monotonic() < deadline:
            for message in consumer:
                values.append(message.value)
    finally:
        consumer.close()
    return values


def _event(i: int, municipality: str = "2183", service: str = "ticket-incident") -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": f"tls-{municipality}-{i}",
        "source": f"urn:chargeback:collector:{municipality}:tls-test",
        "type": "chargeback.usage.v1",
        "time": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "data": {
            "municipality": municipality,
            "cost_centre": "BUF",
            "service": service,
            "subject": f"T{i}",
            "quantity": "1",
        },
    }


def _env(address: str, topic: str, spool: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGEBACK_")}
    env.update(
        PYTHONPATH=str(ROOT),
        CHARGEBACK_KAFKA_BOOTSTRAP=address,
        CHARGEBACK_USAGE_TOPIC=topic,
        CHARGEBACK_DEAD_TOPIC=f"{topic}.dead",
        CHARGEBACK_COLLECTOR_SPOOL_DIR=str(spool),
        CHARGEBACK_COLLECTOR_CONNECT_TIMEOUT_S="4",
        CHARGEBACK_COLLECTOR_SEND_TIMEOUT_S="10",
    )
    env.update(settings)
    return env


def _chargeback(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chargeback_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_collector_worker_and_replay_over_tls_with_the_broker_certificate_checked(
    pki: Pki,
    tls_broker: dict[str, str],
    tmp_path: Path,
    clickhouse_server_url: str,
    clickhouse_server_database: str,
) -> None:
    address = tls_broker["server"]
    tls = {"CHARGEBACK_KAFKA_SECURITY_PROTOCOL": "SSL", "CHARGEBACK_KAFKA_SSL_CAFILE": str(pki.ca)}
    security = KafkaSecurity(protocol="SSL", cafile=pki.ca)
    topic = f"tls-{uuid.uuid4().hex[:8]}"
    _create_topics(address, security, topic, f"{topic}.dead")
    events = tmp_path / "events.jsonl"
    lines = [_event(i) for i in range(5)] + [_event(99, service="no-such-service")]
    events.write_text("".join(json.dumps(e) + "\n" for e in lines), encoding="utf-8")

    # Without TLS, or trusting another CA, the collector cannot deliver: its events wait in the spool.
    plain = _chargeback(_env(address, topic, tmp_path / "spool-plain"), "collect", "file", str(events))
    assert plain.returncode == 75, plain.stderr
    wrong_ca = _chargeback(
        _env(
            address,
            topic,
            tmp_path / "spool-wrong",
            **{**tls, "CHARGEBACK_KAFKA_SSL_CAFILE": str(pki.other_ca)},
        ),
        "collect",
        "file",
        str(events),
    )
    assert wrong_ca.returncode == 75, wrong_ca.stderr
    assert "Traceback" not in plain.stderr + wrong_ca.stderr

    # Over TLS with the right CA: delivered.
    sent = _chargeback(_env(address, topic, tmp_path / "spool", **tls), "collect", "file", str(events))
    assert sent.returncode == 0, sent.stderr
    assert "emitted 6" in sent.stdout + sent.stderr
    assert len(_read_all(address, security, topic, 6)) == 6

    # The worker reads, produces the dead letter and stores, all over TLS.
    ch = connect(clickhouse_server_url, clickhouse_server_database)
    try:
        migrate(ch)
        env = _env(
            address,
            topic,
            tmp_path / "unused",
            **tls,
            CHARGEBACK_WORKER_APP_ID=f"w-{topic}",
            CHARGEBACK_CLICKHOUSE_URL=clickhouse_server_url,
            CHARGEBACK_CLICKHOUSE_DATABASE=clickhouse_server_database,
            CHARGEBACK_CATALOGUE=str(CATALOGUE),
            CHARGEBACK_WORKER_BATCH_MAX_SECONDS="0.3",
        )
        worker = _chargeback(env, "stream", "worker", "--exit-when-idle", "4")
        assert worker.returncode == 0, worker.stderr[-3000:]
        assert "received 6, stored 5, duplicates 0, dead letters 1" in worker.stdout
        assert ch.execute("SELECT count() FROM usage_events")[0][0] == 5
        (letter,) = _read_all(address, security, f"{topic}.dead", 1)
        assert b"no-such-service" in letter

        # The dead letter, fixed, goes back over TLS.
        listed = _chargeback(env, "stream", "dead", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        fixed = tmp_path / "fixed.jsonl"
        fixed.write_text(listed.stdout.replace("no-such-service", "ticket-incident"), encoding="utf-8")
        # Trusting another CA, the replay cannot connect: one sentence, nothing sent.
        refused = _chargeback(
            {**env, "CHARGEBACK_KAFKA_SSL_CAFILE": str(pki.other_ca)}, "stream", "dead", "replay", str(fixed)
        )
        assert refused.returncode == 1
        assert refused.stderr == (
            f"error: no Kafka broker answers at {address} within 10 s "
            "(KafkaTimeoutError; check the address, the firewall and the TLS settings)\n"
        )
        replay = _chargeback(env, "stream", "dead", "replay", str(fixed))
        assert (replay.returncode, replay.stdout) == (0, f"sent 1 letters back to {topic}\n"), replay.stderr
        assert len(_read_all(address, security, topic, 7)) == 7
    finally:
        ch.close()


def test_mutual_tls_needs_the_client_certificate(
    pki: Pki, tls_broker: dict[str, str], tmp_path: Path
) -> None:
    address = tls_broker["mutual"]
    topic = f"mtls-{uuid.uuid4().hex[:8]}"
    with_cert = {
        "CHARGEBACK_KAFKA_SECURITY_PROTOCOL": "SSL",
        "CHARGEBACK_KAFKA_SSL_CAFILE": str(pki.ca),
        "CHARGEBACK_KAFKA_SSL_CERTFILE": str(pki.client_cert),
        "CHARGEBACK_KAFKA_SSL_KEYFILE": str(pki.client_key),
    }
    _create_topics(
        address,
        KafkaSecurity(protocol="SSL", cafile=pki.ca, certfile=pki.client_cert, keyfile=pki.client_key),
        topic,
    )
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(_event(1)) + "\n", encoding="utf-8")
    without = {k: v for k, v in with_cert.items() if "CERTFILE" not in k and "KEYFILE" not in k}
    refused = _chargeback(
        _env(address, topic, tmp_path / "spool-a", **without), "collect", "file", str(events)
    )
    assert refused.returncode == 75, refused.stderr
    assert "Traceback" not in refused.stderr
    sent = _chargeback(
        _env(address, topic, tmp_path / "spool-b", **with_cert), "collect", "file", str(events)
    )
    assert sent.returncode == 0, sent.stderr
