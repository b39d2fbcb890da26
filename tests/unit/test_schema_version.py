"""The schema version the worker and billing require is the newest migration shipped."""

from __future__ import annotations

import re
from pathlib import Path

from chargeback.clickhouse import SCHEMA_VERSION

SQL = Path(__file__).resolve().parents[2] / "sql"


def test_the_required_schema_version_is_the_newest_migration() -> None:
    numbers = [int(m.group(1)) for p in SQL.glob("*.sql") if (m := re.match(r"^(\d{3})_", p.name))]
    assert max(numbers) == SCHEMA_VERSION, (
        "a new migration in sql/: raise chargeback.clickhouse.SCHEMA_VERSION"
    )
