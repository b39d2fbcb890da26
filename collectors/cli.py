"""``chargeback collect ...``: the collectors' commands.

Each command parses its options, builds its source (``collectors.sources``) and calls
``collectors.run.run_collector``; it prints the report (the counts on stdout, what a human should
read on stderr) and exits with the report's status: 0 all delivered; 75 (try again later) events
wait in the spool because the broker was unreachable — the next run sends them; 1 something needs
a human (rejected or unmapped input, or a spool that cannot be written); 3 delivered with a warning
for finance (an export without its cost-centre column, or more than
CHARGEBACK_UNALLOCATED_WARNING_SHARE of the run billed to UNALLOCATED: ``collectors.allocation``).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

import click

from chargeback.settings import load_settings
from collectors.settings import CollectorSettings, SettingsProblem
from collectors.source import Fetch, SourceError

if TYPE_CHECKING:
    from collections.abc import Callable

    from collectors.mapping import Mapping
    from collectors.run import CollectorReport
    from collectors.source import Input, Source
    from collectors.sources.file import EventFile


T = TypeVar("T")


@click.group("collect")
def collect() -> None:
    """Read usage at a member municipality and send it to the usage topic."""


def run(source: Source | EventFile, mapping: Mapping | None, settings: CollectorSettings) -> int:
    """Run the source and print its report; return the exit code. A source or a setting that
    cannot be used is one sentence (``click.ClickException``, exit code 1)."""
    from collectors.run import run_collector

    try:
        report = run_collector(source, mapping, settings)
    except (SourceError, SettingsProblem) as exc:
        raise click.ClickException(str(exc)) from exc
    show(report)
    return int(report.status)


def show(report: CollectorReport) -> None:
    """The report as a run prints it: warnings on stderr, the counts on stdout."""
    warnings = report.warnings
    broker = warnings.pop() if report.broker_error else None
    for line in warnings:
        click.echo(line, err=True)
    click.echo(report.summary)
    if broker:
        click.echo(broker, err=True)


def _observation_time(at_text: str | None) -> datetime:
    """The run's observation time: ``--at`` (ISO 8601 with a zone) or now."""
    from collectors.sources.devices import observed_at

    if at_text is None:
        return observed_at()
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError as exc:
        raise click.BadParameter(f"{at_text!r} is not an ISO 8601 time", param_hint="--at") from exc
    if at.utcoffset() is None:
        raise click.BadParameter("needs a time zone, e.g. 2026-10-05T06:00:00+02:00", param_hint="--at")
    return observed_at(at)


def _one_source(export: Path | None, api: bool, option: str) -> None:
    """Exactly one of an export file and an API per run."""
    if export is not None and api:
        raise click.ClickException(f"give either an export file or {option}, not both")
    if export is None and not api:
        raise click.ClickException(f"give an export file or {option}")


def _one_graph_source(export: Path | None, graph: bool, tenant: str | None, client_id: str | None) -> None:
    _one_source(export, graph, "--graph")
    if not graph and (tenant or client_id):
        raise click.ClickException("--graph-tenant and --graph-client-id go with --graph")


def _client(build: Callable[[], T]) -> T:
    """An API client from the settings; a missing or unreadable setting is one sentence."""
    try:
        return build()
    except SettingsProblem as exc:
        raise click.ClickException(str(exc)) from exc


def _mapping(mapping_file: Path) -> Mapping:
    from collectors.mapping import load_mapping

    return load_mapping(mapping_file)


_MAPPING = click.option(
    "--mapping", "mapping_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
_EXPORT = click.argument(
    "export", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
_AT = click.option("--at", "at_text", help="observation time, ISO 8601 with zone (default: now)")
_GRAPH = click.option("--graph", is_flag=True, help="fetch from Microsoft Graph instead of an export")
_GRAPH_TENANT = click.option(
    "--graph-tenant", help="tenant id or domain (default: CHARGEBACK_GRAPH_TENANT)", metavar="TENANT"
)
_GRAPH_CLIENT_ID = click.option(
    "--graph-client-id", help="the app registration's id (default: CHARGEBACK_GRAPH_CLIENT_ID)", metavar="ID"
)


@collect.command("tickets")
@_EXPORT
@_MAPPING
@click.option(
    "--timezone", "zone", default="Europe/Stockholm", show_default=True, help="the desk's time zone"
)
@click.option(
    "--topdesk-url",
    help="fetch closed incidents from TOPdesk's REST API at this address (default: CHARGEBACK_TOPDESK_URL)",
    metavar="URL",
)
@click.option(
    "--topdesk-user", help="the operator's login name (default: CHARGEBACK_TOPDESK_USER)", metavar="NAME"
)
@click.option(
    "--closed-days",
    type=click.IntRange(min=1),
    help="with TOPdesk: incidents closed in this many days before now  [default: 7]",
)
def collect_tickets(
    export: Path | None,
    mapping_file: Path,
    zone: str,
    topdesk_url: str | None,
    topdesk_user: str | None,
    closed_days: int | None,
) -> None:
    """One event per closed ticket (TOPdesk, ServiceNow or Jira CSV, or TOPdesk's REST API),
    service-level times attached."""
    from collectors.sources.tickets import TicketSource

    settings = load_settings(CollectorSettings)
    if export is None:
        topdesk_url = topdesk_url or settings.topdesk_url
    _one_source(export, topdesk_url is not None, "--topdesk-url")
    if export is not None and (topdesk_user or closed_days):
        raise click.ClickException("--topdesk-user and --closed-days go with --topdesk-url")
    mapping = _mapping(mapping_file)
    if export is not None:
        source = TicketSource(export, tz=ZoneInfo(zone))
    else:
        from collectors.sources.clients import topdesk_client
        from collectors.sources.topdesk_api import LAYOUT

        assert topdesk_url is not None
        url = topdesk_url
        topdesk = _client(lambda: topdesk_client(settings, url, topdesk_user))
        since = datetime.now(UTC) - timedelta(days=closed_days or 7)
        fetch = Fetch(lambda: topdesk.closed_incidents(since))
        source = TicketSource(fetch, tz=ZoneInfo(zone), layout=LAYOUT)
    sys.exit(run(source, mapping, settings))


@collect.command("devices")
@_EXPORT
@_MAPPING
@_GRAPH
@_GRAPH_TENANT
@_GRAPH_CLIENT_ID
@click.option(
    "--active-days", type=int, default=30, show_default=True, help="devices not seen for longer are inactive"
)
@click.option(
    "--timezone", "zone", default="Europe/Stockholm", show_default=True, help="for times without one"
)
@click.option("--identifier-column", help="the column the cost centre comes from (default: per export)")
@_AT
def collect_devices(
    export: Path | None,
    mapping_file: Path,
    graph: bool,
    graph_tenant: str | None,
    graph_client_id: str | None,
    active_days: int,
    zone: str,
    identifier_column: str | None,
    at_text: str | None,
) -> None:
    """One observation per active device (Intune, Configuration Manager, Jamf, Graph export, or
    Intune's managed devices from Microsoft Graph) per run."""
    from collectors.sources.clients import graph_client
    from collectors.sources.devices import DeviceSource

    _one_graph_source(export, graph, graph_tenant, graph_client_id)
    settings = load_settings(CollectorSettings)
    mapping = _mapping(mapping_file)
    at = _observation_time(at_text)
    reads: Input
    if export is not None:
        reads = export
    else:
        client = _client(lambda: graph_client(settings, graph_tenant, graph_client_id))
        fields = (identifier_column,) if identifier_column else ()
        reads = Fetch(lambda: client.devices(fields))
    source = DeviceSource(
        reads, at, active_days=active_days, tz=ZoneInfo(zone), identifier_column=identifier_column
    )
    sys.exit(run(source, mapping, settings))


@collect.command("licences")
@_EXPORT
@_MAPPING
@_GRAPH
@_GRAPH_TENANT
@_GRAPH_CLIENT_ID
@click.option("--timezone", "zone", default="Europe/Stockholm", show_default=True)
@_AT
def collect_licences(
    export: Path | None,
    mapping_file: Path,
    graph: bool,
    graph_tenant: str | None,
    graph_client_id: str | None,
    zone: str,
    at_text: str | None,
) -> None:
    """One observation per user and mapped SKU (Microsoft 365 licensed-users CSV, Graph JSON, or
    users and subscriptions from Microsoft Graph)."""
    from collectors.sources.clients import graph_client
    from collectors.sources.licences import LicenceSource

    _one_graph_source(export, graph, graph_tenant, graph_client_id)
    settings = load_settings(CollectorSettings)
    mapping = _mapping(mapping_file)
    at = _observation_time(at_text)
    reads: Input
    if export is not None:
        reads = export
    else:
        client = _client(lambda: graph_client(settings, graph_tenant, graph_client_id))
        reads = Fetch(client.licences)
    sys.exit(run(LicenceSource(reads, at, tz=ZoneInfo(zone)), mapping, settings))


@collect.command("storage")
@_MAPPING
@click.option(
    "--share",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="a file share: one observation per top-level folder (folder name = mapping identifier)",
)
@click.option(
    "--s3", "s3_url", help="s3://bucket with --prefix: one observation per prefix (prefix = identifier)"
)
@click.option("--prefix", "prefixes", multiple=True)
@click.option("--timezone", "zone", default="Europe/Stockholm", show_default=True)
@_AT
def collect_storage(
    mapping_file: Path,
    share: Path | None,
    s3_url: str | None,
    prefixes: tuple[str, ...],
    zone: str,
    at_text: str | None,
) -> None:
    """Storage in GiB per folder of a file share or per prefix of an S3 bucket."""
    from chargeback import s3
    from collectors.sources.storage import StorageSource

    if (share is None) == (s3_url is None):
        raise click.ClickException("give either --share or --s3")
    settings = load_settings(CollectorSettings)
    mapping = _mapping(mapping_file)
    at = _observation_time(at_text)
    if share is not None:
        source = StorageSource(at, tz=ZoneInfo(zone), share=share)
    else:
        assert s3_url is not None
        location = s3.parse_s3_url(s3_url)
        client = s3.make_client(
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key.get_secret_value()
            if settings.s3_secret_access_key
            else None,
        )
        source = StorageSource(
            at, tz=ZoneInfo(zone), client=client, bucket=location.bucket, prefixes=prefixes
        )
    sys.exit(run(source, mapping, settings))


@collect.command("file")
@click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bootstrap", help="Kafka bootstrap servers (default: CHARGEBACK_KAFKA_BOOTSTRAP)")
@click.option("--topic", help="usage topic (default: CHARGEBACK_USAGE_TOPIC)")
@click.option(
    "--spool-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="default: CHARGEBACK_COLLECTOR_SPOOL_DIR",
)
def collect_file(events: Path, bootstrap: str | None, topic: str | None, spool_dir: Path | None) -> None:
    """Send a JSON Lines file of usage events (one CloudEvent per line); a line that is not JSON is
    rejected with its line number, and every other line is sent."""
    from collectors.sources.file import EventFile

    settings = load_settings(
        CollectorSettings, kafka_bootstrap=bootstrap, usage_topic=topic, collector_spool_dir=spool_dir
    )
    sys.exit(run(EventFile(events), None, settings))
