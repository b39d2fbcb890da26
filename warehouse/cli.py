"""``chargeback db ...``: schema migrations, the catalogue for analysts, and logins."""

from __future__ import annotations

import os
import re
from contextlib import closing
from pathlib import Path

import click

from chargeback.catalogue import load_catalogue
from chargeback.clickhouse import ClickHouseError, from_settings
from chargeback.settings import CatalogueSettings, ClickHouseSettings, load_settings
from warehouse.migrations import migrate, sync_catalogue


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
    with closing(from_settings(settings)) as ch:
        services, municipalities = sync_catalogue(ch, parsed)
    click.echo(f"synced {services} services and {municipalities} municipalities")


@db.command("users")
@click.option(
    "--config",
    "config_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="access YAML: analysts and members, each with password_env or password_file",
)
@click.option(
    "--users-xml",
    type=click.Path(dir_okay=False, path_type=Path),
    help="for a server configured by files (such as ClickHouse 18.16): build each member's own "
    "database, then write this users.d file, instead of running CREATE USER and row policies",
)
def users_cmd(config_file: Path, users_xml: Path | None) -> None:
    """Create read-only logins: analysts read everything, members only their municipality's rows.

    \b
    Without --users-xml (ClickHouse 20.5 and later): CREATE USER, GRANT SELECT
    on the database and a row policy per member and table.
    With --users-xml (servers configured by files, which allow only whole
    databases): each member gets its own database (default <database>_m<code>)
    with copies of its rows, fed as rows arrive, and the analysts' views; the
    users file allows each member only that database, the analysts the main one.
    Run it when no billing run or catalogue sync is writing (docs/analysts.md).

    Passwords come from the environment or secrets files and are never printed.
    Safe to re-run.
    """
    from chargeback.clickhouse import parse_url
    from warehouse.access import AccessError, load_access, sql_statements, write_users_xml
    from warehouse.member_databases import build_member_databases

    settings = load_settings(ClickHouseSettings)
    config = load_access(config_file)
    count = len(config.analysts) + len(config.members)
    if parse_url(settings.clickhouse_url).backend != "server":
        raise AccessError(
            "embedded chDB has no logins; point CHARGEBACK_CLICKHOUSE_URL at the server the logins are for"
        )
    with closing(from_settings(settings)) as ch:
        if users_xml is not None:
            members = config.member_databases(settings.clickhouse_database)
            build_member_databases(
                ch,
                lambda name: from_settings(settings, database=name, create=True),
                members,
            )
            write_users_xml(config, settings.clickhouse_database, users_xml)
            built = ", ".join(m.name for m in members) or "none"
            click.echo(
                f"member databases up to date: {built}; wrote {count} users to {users_xml}; "
                "the server loads it within seconds"
            )
            return
        for statement in sql_statements(config, settings.clickhouse_database, os.environ):
            try:
                ch.execute(statement)
            except ClickHouseError as exc:  # the server's message quotes the statement: no hash in it
                reason = re.sub(r"BY '[^']*'", "BY '***'", str(exc))
                raise AccessError(
                    "the server refused the logins (it needs SQL access control, or use --users-xml): "
                    f"{reason}"
                ) from None
    click.echo(f"created or kept {count} users with their grants and row policies")


@db.command("migrate")
def migrate_cmd() -> None:
    """Apply the numbered migrations in sql/ that are not applied yet."""
    settings = load_settings(ClickHouseSettings)
    ch = from_settings(settings, create=True)
    try:
        applied = migrate(ch)
    finally:
        ch.close()
    click.echo("applied: " + ", ".join(applied) if applied else "schema is up to date")
