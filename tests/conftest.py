"""Fixtures for the real services: started once per test session by devstack, lazily per service.

Set CHARGEBACK_TEST_KAFKA_BOOTSTRAP, CHARGEBACK_TEST_CLICKHOUSE_URL or CHARGEBACK_TEST_S3_ENDPOINT_URL
to use services that already run instead. Every test gets its own topic, database and bucket.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

import devstack
from billing_jobs.einvoice.validator import Validator
from tests.einvoice_rules import official_rules_dir, official_validator

# Property tests check values, not speed: on a shared two-core machine one example can take half a
# second, which hypothesis would otherwise report as a flaky failure.
settings.register_profile("chargeback", deadline=None)
settings.load_profile("chargeback")


def _service(
    name: str, env_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[devstack.Endpoints]:
    given = os.environ.get(env_name)
    if given:
        if name == "kafka":
            yield devstack.Endpoints(kafka_bootstrap=given)
        elif name == "s3":
            yield devstack.Endpoints(s3_endpoint_url=given)
        else:
            host, _, port = given.removeprefix("clickhouse://").rpartition(":")
            yield devstack.Endpoints(clickhouse_host=host, clickhouse_port=int(port))
        return
    state = Path(tmp_path_factory.mktemp(f"devstack-{name}"))
    with devstack.running([name], state_dir=state) as found:
        yield found


@pytest.fixture(scope="session")
def kafka_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.Endpoints]:
    yield from _service("kafka", "CHARGEBACK_TEST_KAFKA_BOOTSTRAP", tmp_path_factory)


@pytest.fixture(scope="session")
def clickhouse_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.Endpoints]:
    yield from _service("clickhouse", "CHARGEBACK_TEST_CLICKHOUSE_URL", tmp_path_factory)


@pytest.fixture(scope="session")
def s3_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.Endpoints]:
    yield from _service("s3", "CHARGEBACK_TEST_S3_ENDPOINT_URL", tmp_path_factory)


@pytest.fixture
def kafka_bootstrap(kafka_service: devstack.Endpoints) -> str:
    assert kafka_service.kafka_bootstrap
    return kafka_service.kafka_bootstrap


@pytest.fixture
def topic_name(kafka_bootstrap: str) -> Iterator[str]:
    """A fresh topic with 4 partitions, deleted after the test."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    name = f"t-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=4, replication_factor=1)])
        yield name
    finally:
        try:
            existing = set(admin.list_topics())
            admin.delete_topics([t for t in existing if t == name or t.startswith(f"{name}.")])
        except Exception:  # cleanup of a memory-only broker; a failure here must not hide the test's
            pass
        admin.close()


@pytest.fixture
def clickhouse_server_url(clickhouse_service: devstack.Endpoints) -> str:
    assert clickhouse_service.clickhouse_url
    return clickhouse_service.clickhouse_url


@pytest.fixture
def clickhouse_server_database(clickhouse_server_url: str) -> Iterator[str]:
    """A fresh database on the ClickHouse server, dropped after the test."""
    from chargeback.clickhouse import connect

    name = f"t_{uuid.uuid4().hex[:8]}"
    admin = connect(clickhouse_server_url, "default")
    try:
        admin.execute(f"CREATE DATABASE {name}")
        yield name
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


@pytest.fixture
def s3_endpoint_url(s3_service: devstack.Endpoints) -> str:
    assert s3_service.s3_endpoint_url
    return s3_service.s3_endpoint_url


@pytest.fixture
def s3_client(s3_endpoint_url: str) -> Any:
    from chargeback import s3

    return s3.make_client(
        endpoint_url=s3_endpoint_url,
        region="us-east-1",
        access_key_id="test",
        secret_access_key="test-secret",
    )


@pytest.fixture
def s3_bucket(s3_client: Any) -> Iterator[str]:
    """A fresh bucket, emptied and deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    s3_client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                s3_client.delete_objects(Bucket=name, Delete={"Objects": keys})
        s3_client.delete_bucket(Bucket=name)


@pytest.fixture(scope="session")
def einvoice_rules_dir() -> Path:
    """The official e-invoice rules (CHARGEBACK_EINVOICE_RULES_DIR, default ../shared/einvoice-rules);
    a missing folder fails the test, never skips it."""
    return official_rules_dir()


@pytest.fixture(scope="session")
def einvoice_validator() -> Validator:
    """The official rules' validator, compiled once per test session."""
    return official_validator()
