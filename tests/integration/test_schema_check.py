"""The stream worker and the billing commands refuse a database whose schema is not theirs.

After an upgrade, ``chargeback db migrate`` runs first; a worker or billing command started
before it (or an old version started after it) ends with one sentence and exit code 1 instead of
failing on a missing column half-way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chargeback.clickhouse import SCHEMA_VERSION, connect
from warehouse.migrations import migrate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "tests" / "fixtures" / "catalogue.yaml"


def chargeback(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chargeback_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_worker_and_billing_refuse_a_schema_that_is_behind_or_ahead(
    kafka_bootstrap: str, topic_name: str, clickhouse_server_url: str, clickhouse_server_database: str
) -> None:
    db = clickhouse_server_database
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGEBACK_")}
    env.update(
        PYTHONPATH=str(ROOT),
        CHARGEBACK_KAFKA_BOOTSTRAP=kafka_bootstrap,
        CHARGEBACK_USAGE_TOPIC=topic_name,
        CHARGEBACK_DEAD_TOPIC=f"{topic_name}.dead",
        CHARGEBACK_WORKER_APP_ID=f"w-{topic_name}",
        CHARGEBACK_CLICKHOUSE_URL=clickhouse_server_url,
        CHARGEBACK_CLICKHOUSE_DATABASE=db,
        CHARGEBACK_CATALOGUE=str(CATALOGUE),
    )
    # An empty database: no schema at all.
    worker = chargeback(env, "stream", "worker", "--exit-when-idle", "2")
    assert (worker.returncode, worker.stderr) == (
        1,
        f"error: database {db} has no chargeback schema: run chargeback db migrate\n",
    )
    billing = chargeback(env, "billing", "list")
    assert (billing.returncode, billing.stderr) == (
        1,
        f"error: database {db} has no chargeback schema: run chargeback db migrate\n",
    )

    ch = connect(clickhouse_server_url, db)
    try:
        migrate(ch)
        assert chargeback(env, "billing", "list").returncode == 0
        # The newest migration not applied yet (an upgrade before `db migrate`).
        recorded = ch.execute("SELECT version, name, checksum, applied_at FROM schema_migrations")
        ch.execute("TRUNCATE TABLE schema_migrations")
        ch.insert(
            "schema_migrations",
            ["version", "name", "checksum", "applied_at"],
            [row for row in recorded if row[0] < SCHEMA_VERSION],
        )
        behind = (
            f"error: the schema of database {db} is at version {SCHEMA_VERSION - 1}, this chargeback "
            f"needs {SCHEMA_VERSION}: run chargeback db migrate\n"
        )
        for args in (("billing", "list"), ("stream", "worker", "--exit-when-idle", "2")):
            done = chargeback(env, *args)
            assert (done.returncode, done.stderr) == (1, behind), args
        # A migration this version does not know (an older chargeback after an upgrade).
        ch.insert(
            "schema_migrations",
            ["version", "name", "checksum", "applied_at"],
            [row for row in recorded if row[0] == SCHEMA_VERSION]
            + [(SCHEMA_VERSION + 1, f"{SCHEMA_VERSION + 1:03d}_future.sql", "0" * 64, recorded[0][3])],
        )
        ahead = (
            f"error: the schema of database {db} is at version {SCHEMA_VERSION + 1}, newer than this "
            f"chargeback ({SCHEMA_VERSION}): upgrade chargeback\n"
        )
        done = chargeback(env, "billing", "list")
        assert (done.returncode, done.stderr) == (1, ahead)
    finally:
        ch.close()
