"""ClickHouse fixtures for integration tests: the server and embedded chDB behind one adapter.

chDB lets a process open one data folder only, so this test process uses one folder for the
whole session and gives every test its own database in it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chargeback.clickhouse import ClickHouse, connect
from warehouse.migrations import migrate


@pytest.fixture(scope="session")
def chdb_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def chdb_database(chdb_folder: Path) -> Iterator[ClickHouse]:
    name = f"t_{uuid.uuid4().hex[:8]}"
    ch = connect(f"chdb:{chdb_folder}", name, create=True)
    try:
        yield ch
    finally:
        ch.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def server_database(clickhouse_server_url: str, clickhouse_server_database: str) -> Iterator[ClickHouse]:
    ch = connect(clickhouse_server_url, clickhouse_server_database)
    try:
        yield ch
    finally:
        ch.close()


@pytest.fixture(params=["server", "chdb"])
def clickhouse(request: pytest.FixtureRequest) -> ClickHouse:
    """A fresh, migrated database on each backend in turn."""
    ch: ClickHouse = request.getfixturevalue(
        "server_database" if request.param == "server" else "chdb_database"
    )
    migrate(ch)
    return ch


@pytest.fixture
def clickhouse_url(clickhouse: ClickHouse, request: pytest.FixtureRequest) -> str:
    """The URL a command uses to reach the ``clickhouse`` fixture's database."""
    if clickhouse.backend == "server":
        url: str = request.getfixturevalue("clickhouse_server_url")
        return url
    return f"chdb:{request.getfixturevalue('chdb_folder')}"
