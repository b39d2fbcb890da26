"""The sink in its own process, on the real ClickHouse server: same verdicts, same rows, same books."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chargeback.clickhouse import ClickHouse, ClickHouseError
from streams.sink import Record
from streams.sink_process import SinkBackpressure, SinkConfig, SinkProcess, columns_of
from tests.integration.test_sink import message
from warehouse.migrations import migrate

pytestmark = pytest.mark.integration

CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml"


def config(url: str, database: str) -> SinkConfig:
    return SinkConfig(
        clickhouse_url=url,
        clickhouse_database=database,
        clickhouse_password=None,
        catalogue=CATALOGUE,
        key_registry=None,
    )


def test_columns_of_a_chunk_keep_every_field() -> None:
    records = [Record("usage", 3, 7, b"2183", b"a", 1000), Record("usage", 3, 8, None, b"b", None)]
    expected = ("usage", 3, [7, 8], [b"2183", None], [b"a", b"b"], [1000, None])
    assert columns_of("usage", 3, records) == expected


def test_write_and_flush_in_the_child(
    server_database: ClickHouse, clickhouse_server_url: str, clickhouse_server_database: str
) -> None:
    migrate(server_database)
    sink = SinkProcess(config(clickhouse_server_url, clickhouse_server_database))
    try:
        p0 = [message(f"e{i}", i, subject=f"PC{i}") for i in range(3)]
        p1 = [
            message("e0", 0, municipality="2184", partition=1),
            message("e0", 1, municipality="2184", partition=1),  # the same id again
            Record("usage", 1, 2, b"2184", b"not json", 1_790_000_000_000),
        ]
        prepared = sink.write([columns_of("usage", 0, p0), columns_of("usage", 1, p1)])
        assert (prepared.rows, prepared.duplicates, prepared.replayed) == (4, 1, 0)
        assert [key for key, _ in prepared.dead] == [b"2184"]
        letter = json.loads(prepared.dead[0][1])
        assert (letter["partition"], letter["offset"], letter["value"]) == (1, 2, "not json")
        assert letter["reason"].startswith("bad JSON")
        # Nothing is written before flush.
        assert server_database.execute("SELECT count() FROM usage_events") == [(0,)]
        sink.flush()
        assert server_database.execute(
            "SELECT municipality, event_id, kafka_partition, kafka_offset FROM usage_events "
            "ORDER BY kafka_partition, kafka_offset"
        ) == [
            ("2183", "e0", 0, 0),
            ("2183", "e1", 0, 1),
            ("2183", "e2", 0, 2),
            ("2184", "e0", 1, 0),
        ]
        assert server_database.execute("SELECT kafka_partition, kafka_offset FROM dead_letters") == [(1, 2)]
        c = sink.counters
        assert (c.received, c.stored, c.duplicates, c.dead, c.replayed) == (6, 4, 1, 1, 0)

        # The same messages again (a replay after a crash): every stored position is skipped, and
        # the duplicate, which left no row, is a duplicate again.
        again = sink.write([columns_of("usage", 0, p0), columns_of("usage", 1, p1)])
        assert (again.rows, again.duplicates, again.replayed, again.dead) == (0, 1, 5, [])
        sink.flush()
        # A partition handed to another worker is forgotten; what ClickHouse holds still counts.
        sink.forget([("usage", 0)])
        late = sink.write([columns_of("usage", 0, [*p0, message("e0", 3)])])
        assert (late.rows, late.duplicates, late.replayed) == (0, 1, 3)
    finally:
        sink.close()
    assert server_database.execute("SELECT count() FROM usage_events") == [(4,)]


def test_a_clickhouse_error_in_the_child_is_the_servers_reason(clickhouse_server_url: str) -> None:
    sink = SinkProcess(config(clickhouse_server_url, "does_not_exist"))
    try:
        records = [message("e0", 0)]
        with pytest.raises(ClickHouseError, match="Database does_not_exist doesn't exist"):
            sink.write([columns_of("usage", 0, records)])
        # A back-pressure error, never a block: each carries the one retry policy's next wait.
        waits = []
        for _ in range(3):
            with pytest.raises(SinkBackpressure) as raised:
                sink.write([columns_of("usage", 0, records)])
            waits.append(raised.value.retry_after)
        assert waits == [1.0, 2.0, 4.0]  # 0.5 s went with the first refusal above
    finally:
        sink.close()


def alive(pid: int) -> bool:
    # A dead child may linger as a zombie until someone reaps it: that is not alive.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_child_dies_with_its_worker(clickhouse_server_url: str, clickhouse_server_database: str) -> None:
    # A worker that starts a sink and is then killed: the sink must not outlive it.
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from streams.sink_process import SinkConfig, SinkProcess
        sink = SinkProcess(SinkConfig({clickhouse_server_url!r}, {clickhouse_server_database!r}, None,
                                      Path({str(CATALOGUE)!r}), None))
        print(sink._process.pid, flush=True)
        time.sleep(600)
        """
    )
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        child = int(worker.stdout.readline())
        assert alive(child)  # while its worker is
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not alive(child):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"sink process {child} outlived its killed worker")
    finally:
        worker.kill()
