"""devstack starts real services, is idempotent, and leaves nothing running after stop."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import devstack
from devstack.__main__ import main as devstack_main

pytestmark = pytest.mark.integration


def test_start_is_idempotent_and_stop_leaves_nothing(tmp_path: Path) -> None:
    found, started = devstack.start(["kafka", "s3"], tmp_path)
    try:
        assert started == ["kafka", "s3"]
        again, started_again = devstack.start(["kafka", "s3"], tmp_path)
        assert (again, started_again) == (found, [])
        report = devstack.status(["kafka", "s3", "clickhouse"], tmp_path)
        assert [report[s]["healthy"] for s in ("kafka", "s3", "clickhouse")] == [True, True, False]
        assert devstack_main(["status", "--services", "kafka,s3", "--state-dir", str(tmp_path)]) == 0
        assert devstack_main(["status", "--state-dir", str(tmp_path)]) == 1
        pids = [report[s]["pid"] for s in ("kafka", "s3")]
    finally:
        assert sorted(devstack.stop(["kafka", "s3"], tmp_path)) == ["kafka", "s3"]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_clickhouse_server_answers_on_its_own_port(clickhouse_server_url: str) -> None:
    from chargeback.clickhouse import connect

    ch = connect(clickhouse_server_url, "default")
    try:
        (version,) = ch.execute("SELECT version()")[0]
    finally:
        ch.close()
    major = int(str(version).split(".")[0])
    assert major >= 18


def test_unknown_service_is_refused(tmp_path: Path) -> None:
    with pytest.raises(devstack.DevstackError, match="unknown service 'redis'; known: kafka, clickhouse, s3"):
        devstack.start(["redis"], tmp_path)


def test_unknown_kafka_storage_is_refused(tmp_path: Path) -> None:
    with pytest.raises(devstack.DevstackError, match="unknown kafka storage 'disk'; known: memory, s3"):
        devstack.start(["kafka"], tmp_path, kafka_storage="disk")
