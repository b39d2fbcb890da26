"""Kafka connection security: settings, and the options every client is given.

SASL cannot be proven against the local broker (Tansu 0.6.0 refuses every mechanism), so here the
SASL login is checked exactly as kafka-python and aiokafka (under Faust) receive it. TLS is proven
end to end in tests/integration/test_kafka_tls.py.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from chargeback.kafka import KafkaSecurity
from chargeback.settings import KafkaSettings, SettingsError, load_settings
from streams.app import broker_credentials

EXISTING = "a file that exists (its content is the TLS library's business)\n"


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    settings = KafkaSettings()
    assert KafkaSecurity.from_settings(settings) == KafkaSecurity()
    assert KafkaSecurity().kafka_python() == {"security_protocol": "PLAINTEXT"}
    assert broker_credentials(KafkaSecurity()) is None


def test_sasl_ssl_with_the_password_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("member-secret\n", encoding="utf-8")
    monkeypatch.setenv("CHARGEBACK_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("CHARGEBACK_KAFKA_SASL_MECHANISM", "scram-sha-256")
    monkeypatch.setenv("CHARGEBACK_KAFKA_SASL_USERNAME", "collector-2183")
    monkeypatch.setenv("CHARGEBACK_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "pw"))
    security = KafkaSecurity.from_settings(load_settings(KafkaSettings))
    assert security == KafkaSecurity(
        protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        username="collector-2183",
        password="member-secret",
    )
    assert "member-secret" not in repr(security)
    options = security.kafka_python()
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert options == {
        "security_protocol": "SASL_SSL",
        "ssl_check_hostname": True,
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "collector-2183",
        "sasl_plain_password": "member-secret",
    }


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_the_worker_hands_faust_the_same_login(mechanism: str) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    security = KafkaSecurity(protocol="SASL_SSL", sasl_mechanism=mechanism, username="worker", password="pw")
    auth = dict(credentials_to_aiokafka_auth(broker_credentials(security)))
    context = auth.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert auth == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "worker",
        "sasl_plain_password": "pw",
    }
    tls_only = dict(credentials_to_aiokafka_auth(broker_credentials(KafkaSecurity(protocol="SSL"))))
    assert tls_only["security_protocol"] == "SSL" and isinstance(tls_only["ssl_context"], ssl.SSLContext)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CHARGEBACK_KAFKA_SASL_USERNAME": "x"},
            "invalid settings: Kafka TLS or SASL settings are given but CHARGEBACK_KAFKA_SECURITY_PROTOCOL "
            "is PLAINTEXT: set it to SSL or SASL_SSL",
        ),
        (
            {"CHARGEBACK_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "CHARGEBACK_KAFKA_SASL_USERNAME": "x"},
            "invalid settings: SASL_SSL needs CHARGEBACK_KAFKA_SASL_USERNAME and "
            "CHARGEBACK_KAFKA_SASL_PASSWORD (or CHARGEBACK_KAFKA_SASL_PASSWORD_FILE)",
        ),
        (
            {"CHARGEBACK_KAFKA_SECURITY_PROTOCOL": "SSL", "CHARGEBACK_KAFKA_SSL_CERTFILE": "{tmp}/ca.pem"},
            "invalid settings: a client certificate needs both CHARGEBACK_KAFKA_SSL_CERTFILE and _KEYFILE",
        ),
        (
            {"CHARGEBACK_KAFKA_SECURITY_PROTOCOL": "SSL", "CHARGEBACK_KAFKA_SSL_CAFILE": "{tmp}/missing.pem"},
            "invalid settings: CHARGEBACK_KAFKA_SSL_CAFILE: {tmp}/missing.pem is not a readable file",
        ),
        (
            {"CHARGEBACK_KAFKA_SECURITY_PROTOCOL": "TLS"},
            "invalid setting CHARGEBACK_KAFKA_SECURITY_PROTOCOL: "
            "Input should be 'PLAINTEXT', 'SSL' or 'SASL_SSL'",
        ),
        (
            {
                "CHARGEBACK_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "CHARGEBACK_KAFKA_SASL_MECHANISM": "GSSAPI",
                "CHARGEBACK_KAFKA_SASL_USERNAME": "x",
                "CHARGEBACK_KAFKA_SASL_PASSWORD": "y",
            },
            "invalid setting CHARGEBACK_KAFKA_SASL_MECHANISM: "
            "Input should be 'SCRAM-SHA-512', 'SCRAM-SHA-256' or 'PLAIN'",
        ),
    ],
)
def test_inconsistent_security_is_one_sentence(
    env: dict[str, str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ca.pem").write_text(EXISTING, encoding="utf-8")
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    with pytest.raises(SettingsError) as info:
        load_settings(KafkaSettings)
    assert str(info.value) == message.format(tmp=tmp_path)


def test_an_unreachable_broker_is_one_sentence() -> None:
    import devstack
    from chargeback.kafka import BrokerUnreachable, make_producer

    address = f"127.0.0.1:{devstack.free_port()}"  # nothing listens there
    with pytest.raises(BrokerUnreachable) as info:
        make_producer(address, connect_timeout_s=0.5)
    assert str(info.value) == (
        f"no Kafka broker answers at {address} within 0.5 s "
        "(KafkaTimeoutError; check the address, the firewall and the TLS settings)"
    )
    assert info.value.code == "kafka.unreachable"
