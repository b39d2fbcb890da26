"""The ``chargeback`` command: the composition root of the command groups.

This is the one module that knows every deployable; each group lives with its deployable and is
imported only when it is called, so a collector host never imports the stream worker.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from chargeback.errors import ChargebackError

GROUPS = {
    "collect": ("collectors.cli", "collect"),
    "stream": ("streams.cli", "stream"),
    "billing": ("billing_jobs.cli", "billing"),
    "catalogue": ("billing_jobs.catalogue_cli", "catalogue"),
    "db": ("warehouse.cli", "db"),
    "demo": ("demo.cli", "demo"),
    "report": ("billing_jobs.reports.cli", "report"),
}

# Every deployable's settings module (declarations only, cheap to import): loaded before a command
# runs, so that a CHARGEBACK_* name of another deployable in a shared environment is known and only
# real typos are warned (chargeback.settings.warn_unknown). The same classes are the entry points
# of the "chargeback.settings" group in pyproject.toml, for processes that do not start here.
SETTINGS_MODULES = (
    "collectors.settings",
    "streams.settings",
    "billing_jobs.settings",
    "billing_jobs.einvoice.settings",
)


class LazyGroup(click.Group):
    """Imports a command group only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in GROUPS:
            return None
        module, attr = GROUPS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="chargeback")
def cli() -> None:
    """Usage metering and chargeback for shared public-sector IT."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point: user mistakes end with one clear sentence and exit code 1, not a traceback."""
    for module in SETTINGS_MODULES:
        importlib.import_module(module)
    try:
        return _run(argv)
    finally:
        from chargeback.clickhouse import close_all

        close_all()


def _run(argv: list[str] | None) -> Any:
    try:
        return cli.main(args=argv, prog_name="chargeback", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ChargebackError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
