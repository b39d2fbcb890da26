"""The stream worker through outages of its services: rebalances while ClickHouse is down, and a
broker that crashes (SIGKILL) with its records in S3.

Each test ends on the same two facts: every distinct event id is stored once, none is missing.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest

import devstack
from chargeback.clickhouse import ClickHouse, connect
from chargeback.migrations import migrate
from tests.integration.test_stream_worker import produce, stored, usage_messages, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REBALANCE_TIMEOUT_S = 10.0
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"  # the time at the start of each log line


def stamp(text: str) -> datetime:
    # Local time, the same zone for both workers: only differences are used.
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)


def start_logged(env: dict[str, str], log: Path, idle: float) -> tuple[subprocess.Popen[str], IO[str]]:
    out = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "chargeback", "stream", "worker", "--exit-when-idle", str(idle)],
        env={**env, "CHARGEBACK_WORKER_LOG_LEVEL": "INFO"},
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, out


def wait_for_line(log: Path, pattern: str, timeout: float, start: int = 0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    compiled = re.compile(pattern)
    while time.monotonic() < deadline:
        found = compiled.search(log.read_text(errors="replace")[start:])
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(
        f"no line matching {pattern!r} in {log.name} within {timeout} s:\n{log.read_text()[-3000:]}"
    )


def wait_stored(ch: ClickHouse, at_least: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while stored(ch)[0] < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored(ch)[0] >= at_least


def test_a_second_worker_joining_while_clickhouse_is_down_rebalances_within_the_timeout(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path
) -> None:
    state = tmp_path / "own-clickhouse"  # a server of its own: stopping it disturbs no other test
    with devstack.running(["clickhouse"], state_dir=state) as found:
        assert found.clickhouse_url
        ch = connect(found.clickhouse_url, "rebalance", create=True)
        migrate(ch)
        produce(kafka_bootstrap, topic_name, usage_messages(20_000))
        env = {
            **worker_env(kafka_bootstrap, topic_name, found.clickhouse_url, "rebalance"),
            "CHARGEBACK_WORKER_REBALANCE_TIMEOUT_S": str(REBALANCE_TIMEOUT_S),
        }
        first, first_out = start_logged(env, tmp_path / "first.log", idle=25)
        second: subprocess.Popen[str] | None = None
        try:
            wait_stored(ch, 2000)
            ch.close()
            devstack.halt("clickhouse", state)  # the first worker's batch in flight cannot be stored
            time.sleep(3)
            seen = len((tmp_path / "first.log").read_text(errors="replace"))
            second, second_out = start_logged(env, tmp_path / "second.log", idle=25)
            # The rebalance begins on the first worker (Kafka's client revokes) while its batch
            # cannot be stored; it hands its partitions over, and the second worker is given its
            # share, all within the rebalance timeout (log times: both processes share one clock).
            began = wait_for_line(
                tmp_path / "first.log",
                rf"\[({STAMP})\].*Revoking previously assigned partitions (?!set\(\))",
                60,
                seen,
            )
            handed = wait_for_line(
                tmp_path / "first.log", r"partitions revoked: [1-9]\d*, handed over", 60, seen
            )
            assigned = wait_for_line(
                tmp_path / "second.log", rf"\[({STAMP})\].*partitions assigned: [1-9]", 60
            )
            took = (stamp(assigned.group(1)) - stamp(began.group(1))).total_seconds()
            assert 0 < took <= REBALANCE_TIMEOUT_S, (began.group(0), handed.group(0), assigned.group(0))
            devstack.revive("clickhouse", state)
            for proc, name in ((first, "first.log"), (second, "second.log")):
                proc.wait(timeout=240)
                assert proc.returncode == 0, (tmp_path / name).read_text()[-3000:]
        finally:
            for running in [p for p in (first, second) if p is not None]:
                if running.poll() is None:
                    running.kill()
            first_out.close()
            if second is not None:
                second_out.close()
        ch = connect(found.clickhouse_url, "rebalance")
        assert stored(ch) == (20_000, 20_000)
        ch.close()
