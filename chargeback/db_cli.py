"""``chargeback db ...``: schema migrations."""

from __future__ import annotations

from pathlib import Path

import click

from chargeback.catalogue import load_catalogue
from chargeback.clickhouse import connect, connected
from chargeback.migrations import migrate, sync_catalogue
from chargeback.settings import CatalogueSettings, ClickHouseSettings, load_settings


class DbSettings(ClickHouseSettings, CatalogueSettings):
    """Settings of the schema commands."""


@click.group("db")
def db() -> None:
    """Manage the ClickHouse schema."""


@db.command("sync-catalogue")
@click.option(
    "--catalogue", type=click.Path(path_type=Path), help="catalogue YAML (default: CHARGEBACK_CATALOGUE)"
)
def sync_catalogue_cmd(catalogue: Path | None) -> None:
    """Write the catalogue's services and municipalities to ClickHouse (for the analysts' views)."""
    settings = load_settings(DbSettings, catalogue=catalogue)
    parsed = load_catalogue(settings.catalogue)
    with connected(
        settings.clickhouse_url, settings.clickhouse_database, password=settings.clickhouse_password_value()
    ) as ch:
        services, municipalities = sync_catalogue(ch, parsed)
    click.echo(f"synced {services} services and {municipalities} municipalities")


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
