"""``chargeback db ...``: schema migrations."""

from __future__ import annotations

import click

from chargeback.clickhouse import connect
from chargeback.migrations import migrate
from chargeback.settings import ClickHouseSettings, load_settings


@click.group("db")
def db() -> None:
    """Manage the ClickHouse schema."""


@db.command("migrate")
def migrate_cmd() -> None:
    """Apply the numbered migrations in sql/ that are not applied yet."""
    settings = load_settings(ClickHouseSettings)
    ch = connect(
        settings.clickhouse_url,
        settings.clickhouse_database,
        password=settings.clickhouse_password_value(),
        create=True,
    )
    try:
        applied = migrate(ch)
    finally:
        ch.close()
    click.echo("applied: " + ", ".join(applied) if applied else "schema is up to date")
