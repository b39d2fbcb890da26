"""``chargeback collect ...``: the collectors' commands.

Every run prints what it did: read / emitted / spooled / rejected / unmapped. Exit codes: 0 all
delivered; 75 (try again later) events wait in the spool because the broker was unreachable —
the next run sends them; 1 something needs a human (rejected or unmapped input).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click
from pydantic import SecretStr

from chargeback.kafka import Message
from chargeback.settings import load_settings
from chargeback.signing import read_secret
from collectors.file import FileReport, read_events
from collectors.sending import Signer, deliver
from collectors.settings import CollectorSettings

if TYPE_CHECKING:
    from collectors.events import Observation, Table
    from collectors.mapping import Mapper
    from collectors.sources.graph_api import Graph
    from collectors.sources.rest import Http

EXIT_SPOOLED = 75


@click.group("collect")
def collect() -> None:
    """Read usage at a member municipality and send it to the usage topic."""


def signer_from(settings: CollectorSettings) -> Signer | None:
    """The collector's signing key from its settings, if one is configured."""
    if settings.collector_key_id is None:
        return None
    if settings.collector_key_secret is not None:
        return Signer(settings.collector_key_id, settings.collector_key_secret.get_secret_value().encode())
    if settings.collector_key_file is None:
        raise click.ClickException(
            "CHARGEBACK_COLLECTOR_KEY_ID is set: also set CHARGEBACK_COLLECTOR_KEY_SECRET "
            "or CHARGEBACK_COLLECTOR_KEY_FILE"
        )
    key_id = settings.collector_key_id
    return Signer(key_id, read_secret(None, settings.collector_key_file, os.environ, f"key {key_id}"))


def finish(
    read: int,
    emitted_now: int,
    spooled_left: int,
    sent: int,
    error: str | None,
    rejected: int = 0,
    unmapped: int = 0,
) -> None:
    """Print the run's counts and exit with the code that tells the scheduler what happened."""
    click.echo(
        f"read {read}, emitted {sent}, spooled {spooled_left}, rejected {rejected}, unmapped {unmapped}"
        + (f" (this run: {emitted_now})" if emitted_now != sent else "")
    )
    if error:
        click.echo(f"broker not reachable, events kept in the spool: {error}", err=True)
    if rejected or unmapped:
        sys.exit(1)
    if spooled_left:
        sys.exit(EXIT_SPOOLED)


def send_and_report(
    settings: CollectorSettings,
    messages: list[Message],
    *,
    read: int,
    rejected: list[str],
    unmapped: Counter[str],
    what: str,
) -> None:
    """Say what needs a human, send the run's events through the spool, print counts, exit."""
    for problem in rejected:
        click.echo(f"rejected {problem}", err=True)
    for identifier, count in sorted(unmapped.items()):
        click.echo(f"unmapped {identifier!r}: {count} {what}", err=True)
    written, drained = deliver(messages, settings, signer_from(settings))
    finish(
        read,
        written,
        drained.spooled,
        drained.sent,
        drained.error,
        rejected=len(rejected),
        unmapped=sum(unmapped.values()),
    )


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


def _events(
    kind: str, mapper: Mapper, observed: Iterable[tuple[Observation, str, Decimal]], day: date | None
) -> list[Message]:
    """Messages for the mapped observations (service, quantity each); unmapped ones are counted."""
    from collectors.events import build_event, to_message

    messages = []
    for observation, service, quantity in observed:
        event = build_event(kind, mapper, observation, service, quantity, day)
        if event is not None:
            messages.append(to_message(event))
    return messages


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


def _secret(value: SecretStr | None, file: Path | None, name: str) -> SecretStr | None:
    """A secret from its setting, or else from the secrets file its ``_FILE`` setting names."""
    if value is not None or file is None:
        return value
    try:
        text = file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise click.ClickException(f"{name}_FILE: cannot read {file}: {reason}") from exc
    if not text:
        raise click.ClickException(f"{name}_FILE: {file} is empty")
    return SecretStr(text)


def _needs(option: str, missing: list[str]) -> None:
    if missing:
        wanted = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
        raise click.ClickException(f"{option} needs {wanted}")


def _http(settings: CollectorSettings) -> Http:
    from collectors.sources.rest import Http

    return Http(timeout_s=settings.api_timeout_s, retries=settings.api_retries)


def _graph(settings: CollectorSettings, tenant: str | None, client_id: str | None) -> Graph:
    """Microsoft Graph as the settings and options describe it; every missing piece named at once."""
    from collectors.sources.graph_api import Graph

    tenant, client_id = tenant or settings.graph_tenant, client_id or settings.graph_client_id
    secret = _secret(
        settings.graph_client_secret, settings.graph_client_secret_file, "CHARGEBACK_GRAPH_CLIENT_SECRET"
    )
    missing = [
        *([] if tenant else ["a tenant (--graph-tenant or CHARGEBACK_GRAPH_TENANT)"]),
        *([] if client_id else ["a client id (--graph-client-id or CHARGEBACK_GRAPH_CLIENT_ID)"]),
        *([] if secret else ["a client secret (CHARGEBACK_GRAPH_CLIENT_SECRET or its _FILE)"]),
    ]
    _needs("--graph", missing)
    assert tenant and client_id and secret
    return Graph(
        tenant,
        client_id,
        secret,
        graph_url=settings.graph_url,
        authority_url=settings.graph_authority_url,
        http=_http(settings),
    )


def _fetch(what: Callable[[], Table]) -> Table:
    """What an API adapter fetched; an API's refusal is one sentence and exit code 1."""
    from collectors.sources.rest import ApiError

    try:
        return what()
    except ApiError as exc:
        raise click.ClickException(str(exc)) from exc


def _mapper(mapping_file: Path) -> Mapper:
    from collectors.mapping import Mapper, load_mapping

    return Mapper(load_mapping(mapping_file))


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
    from collectors.sources.tickets import TicketReport, observe_tickets

    settings = load_settings(CollectorSettings)
    if export is None:
        topdesk_url = topdesk_url or settings.topdesk_url
    _one_source(export, topdesk_url is not None, "--topdesk-url")
    if export is not None and (topdesk_user or closed_days):
        raise click.ClickException("--topdesk-user and --closed-days go with --topdesk-url")
    mapper = _mapper(mapping_file)
    report = TicketReport()
    service = mapper.mapping.services.get("ticket", "ticket-incident")
    if export is not None:
        observed = observe_tickets(export, report, tz=ZoneInfo(zone))
    else:
        from collectors.sources.topdesk_api import LAYOUT, TopDesk

        assert topdesk_url is not None
        user = topdesk_user or settings.topdesk_user
        password = _secret(
            settings.topdesk_password, settings.topdesk_password_file, "CHARGEBACK_TOPDESK_PASSWORD"
        )
        _needs(
            "--topdesk-url",
            [
                *([] if user else ["an operator (--topdesk-user or CHARGEBACK_TOPDESK_USER)"]),
                *([] if password else ["an application password (CHARGEBACK_TOPDESK_PASSWORD or its _FILE)"]),
            ],
        )
        assert user and password
        topdesk = TopDesk(
            topdesk_url, user, password, page_size=settings.topdesk_page_size, http=_http(settings)
        )
        since = datetime.now(UTC) - timedelta(days=closed_days or 7)
        table = _fetch(lambda: topdesk.closed_incidents(since))
        observed = observe_tickets(table, report, tz=ZoneInfo(zone), layout=LAYOUT)
    messages = _events("tickets", mapper, ((o, service, Decimal(1)) for o in observed), None)
    send_and_report(
        settings,
        messages,
        read=report.read,
        rejected=report.rejected,
        unmapped=mapper.unmapped,
        what="tickets",
    )


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
    from collectors.sources.devices import DeviceReport, observe_devices

    _one_graph_source(export, graph, graph_tenant, graph_client_id)
    settings = load_settings(CollectorSettings)
    mapper = _mapper(mapping_file)
    tz, at = ZoneInfo(zone), _observation_time(at_text)
    source: Path | Table
    if export is not None:
        source = export
    else:
        client = _graph(settings, graph_tenant, graph_client_id)
        source = _fetch(lambda: client.devices((identifier_column,) if identifier_column else ()))
    report = DeviceReport()
    service = mapper.mapping.services.get("device", "pc-standard")
    try:
        observed = observe_devices(
            source, at, report, active_days=active_days, tz=tz, identifier_column=identifier_column
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    messages = _events(
        "devices", mapper, ((o, service, Decimal(1)) for o in observed), at.astimezone(tz).date()
    )
    if report.stale:
        click.echo(f"inactive (no check-in for {active_days} days): {report.stale}", err=True)
    if report.duplicates:
        click.echo(f"listed more than once (counted once): {report.duplicates}", err=True)
    send_and_report(
        settings,
        messages,
        read=report.read,
        rejected=report.rejected,
        unmapped=mapper.unmapped,
        what="devices",
    )


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
    from collectors.sources.licences import LicenceReport, observe_licences

    _one_graph_source(export, graph, graph_tenant, graph_client_id)
    settings = load_settings(CollectorSettings)
    mapper = _mapper(mapping_file)
    at = _observation_time(at_text)
    source: Path | Table
    if export is not None:
        source = export
    else:
        client = _graph(settings, graph_tenant, graph_client_id)
        source = _fetch(client.licences)
    report = LicenceReport()
    try:
        seats = observe_licences(source, mapper, at, report)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    day = at.astimezone(ZoneInfo(zone)).date()
    messages = _events("m365", mapper, ((s.observation, s.service, Decimal(1)) for s in seats), day)
    send_and_report(
        settings,
        messages,
        read=report.read,
        rejected=report.rejected,
        unmapped=mapper.unmapped,
        what="assignments",
    )


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
    from collectors.sources.storage import StorageReport, observe_s3, observe_share

    if (share is None) == (s3_url is None):
        raise click.ClickException("give either --share or --s3")
    settings = load_settings(CollectorSettings)
    mapper = _mapper(mapping_file)
    at = _observation_time(at_text)
    report = StorageReport()
    if share is not None:
        readings, kind = observe_share(share, at, report), "fileshare"
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
        readings, kind = observe_s3(client, location.bucket, list(prefixes), at), "s3"
    service = mapper.mapping.services.get("storage", "storage-file")
    day = at.astimezone(ZoneInfo(zone)).date()
    messages = _events(kind, mapper, ((r.observation, service, r.gib) for r in readings), day)
    send_and_report(
        settings,
        messages,
        read=len(readings),
        rejected=report.unreadable,
        unmapped=mapper.unmapped,
        what="folders",
    )


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
    """Send a JSON Lines file of usage events (one CloudEvent per line)."""
    settings = load_settings(
        CollectorSettings, kafka_bootstrap=bootstrap, usage_topic=topic, collector_spool_dir=spool_dir
    )
    report = FileReport()
    written, drained = deliver(read_events(events, report), settings, signer_from(settings))
    finish(report.read, written, drained.spooled, drained.sent, drained.error)
