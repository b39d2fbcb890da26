"""Migrations on both ClickHouse backends: applied once, recorded, a changed file refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chargeback.clickhouse import ClickHouse
from warehouse.migrations import SQL_DIR, MigrationError, discover, migrate

pytestmark = pytest.mark.integration


@pytest.fixture(params=["server", "chdb"])
def empty_db(request: pytest.FixtureRequest) -> ClickHouse:
    ch: ClickHouse = request.getfixturevalue(
        "server_database" if request.param == "server" else "chdb_database"
    )
    return ch


def test_applies_every_file_once_and_records_it(empty_db: ClickHouse) -> None:
    names = [m.name for m in discover()]
    assert migrate(empty_db) == names
    assert migrate(empty_db) == []
    recorded = empty_db.execute("SELECT version, name FROM schema_migrations ORDER BY version")
    assert recorded == [(i, name) for i, name in enumerate(names, start=1)]
    tables = {r[0] for r in empty_db.execute("SHOW TABLES")}
    assert {"usage_events", "dead_letters", "billing_runs", "billing_lines", "schema_migrations"} <= tables


def test_a_changed_applied_file_is_refused(empty_db: ClickHouse, tmp_path: Path) -> None:
    sql = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql)
    migrate(empty_db, sql)
    first = sorted(sql.glob("001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(
        MigrationError, match=rf"{first.name} changed after it was applied on .* add a new numbered file"
    ):
        migrate(empty_db, sql)


def test_a_new_file_is_applied_after_the_others(empty_db: ClickHouse, tmp_path: Path) -> None:
    sql = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql)
    migrate(empty_db, sql)
    number = len(discover(sql)) + 1
    (sql / f"{number:03d}_extra.sql").write_text(
        "CREATE TABLE IF NOT EXISTS extra (x UInt8) ENGINE = MergeTree() ORDER BY x;\n"
    )
    assert migrate(empty_db, sql) == [f"{number:03d}_extra.sql"]


def test_a_gap_in_numbers_is_refused(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("SELECT 1;")
    (tmp_path / "003_c.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"003_c\.sql: expected migration number 002"):
        discover(tmp_path)
