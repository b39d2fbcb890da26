"""``chargeback collect ...``: the collectors' commands.

Every run prints what it did: read / emitted / spooled / rejected / unmapped. Exit codes: 0 all
delivered; 75 (try again later) events wait in the spool because the broker was unreachable —
the next run sends them; 1 something needs a human (rejected or unmapped input).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import click

from chargeback.kafka import Message
from chargeback.settings import load_settings
from chargeback.signing import read_secret
from collectors.file import FileReport, read_events
from collectors.sending import Signer, deliver
from collectors.settings import CollectorSettings

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
        raise click.UsageError(
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


@collect.command("tickets")
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mapping", "mapping_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--timezone", "zone", default="Europe/Stockholm", show_default=True, help="the desk's time zone"
)
def collect_tickets(export: Path, mapping_file: Path, zone: str) -> None:
    """One event per closed ticket (TOPdesk, ServiceNow or Jira CSV), service-level times attached."""
    from zoneinfo import ZoneInfo

    from collectors.events import event_id, usage_message
    from collectors.mapping import load_mapping
    from collectors.sources.tickets import TicketReport, read_tickets

    settings = load_settings(CollectorSettings)
    mapping = load_mapping(mapping_file)
    report, unmapped = TicketReport(), Counter[str]()
    service = mapping.services.get("ticket", "ticket-incident")
    messages = []
    for ticket in read_tickets(export, ZoneInfo(zone), report):
        cost_centre = mapping.cost_centre(ticket.department, unmapped)
        if cost_centre is None:
            continue
        messages.append(
            usage_message(
                eid=event_id(mapping.municipality, "tickets", ticket.number),
                municipality=mapping.municipality,
                kind="tickets",
                when=ticket.closed,
                cost_centre=cost_centre,
                service=service,
                subject=ticket.number,
                quantity=Decimal(1),
                attributes=ticket.attributes,
            )
        )
    send_and_report(
        settings, messages, read=report.read, rejected=report.rejected, unmapped=unmapped, what="tickets"
    )


@collect.command("devices")
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mapping", "mapping_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--active-days", type=int, default=30, show_default=True, help="devices not seen for longer are inactive"
)
@click.option(
    "--timezone", "zone", default="Europe/Stockholm", show_default=True, help="for times without one"
)
@click.option("--at", "at_text", help="observation time, ISO 8601 with zone (default: now)")
def collect_devices(
    export: Path, mapping_file: Path, active_days: int, zone: str, at_text: str | None
) -> None:
    """One observation per active device (Intune or Jamf CSV, Graph JSON) per run."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from collectors.events import event_id, usage_message
    from collectors.mapping import load_mapping
    from collectors.sources.devices import DeviceReport, active, observed_at, read_inventory

    settings = load_settings(CollectorSettings)
    mapping = load_mapping(mapping_file)
    tz = ZoneInfo(zone)
    at = observed_at(datetime.fromisoformat(at_text) if at_text else None)
    if at.tzinfo is None:
        raise click.BadParameter("needs a time zone, e.g. 2026-10-05T06:00:00+02:00", param_hint="--at")
    day = at.astimezone(tz).date().isoformat()
    report, unmapped = DeviceReport(), Counter[str]()
    service = mapping.services.get("device", "pc-standard")
    messages = []
    for device in active(read_inventory(export, tz, report), at, active_days, report):
        cost_centre = mapping.cost_centre(device.identifier, unmapped)
        if cost_centre is None:
            continue
        eid = event_id(mapping.municipality, "devices", device.serial, day)
        messages.append(
            usage_message(
                eid=eid,
                municipality=mapping.municipality,
                kind="devices",
                when=at,
                cost_centre=cost_centre,
                service=service,
                subject=device.serial,
                quantity=Decimal(1),
                attributes={"device_name": device.name} if device.name else None,
            )
        )
    if report.stale:
        click.echo(f"inactive (no check-in for {active_days} days): {report.stale}", err=True)
    send_and_report(
        settings, messages, read=report.read, rejected=report.rejected, unmapped=unmapped, what="devices"
    )


@collect.command("licences")
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mapping", "mapping_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--timezone", "zone", default="Europe/Stockholm", show_default=True)
@click.option("--at", "at_text", help="observation time, ISO 8601 with zone (default: now)")
def collect_licences(export: Path, mapping_file: Path, zone: str, at_text: str | None) -> None:
    """One observation per user and mapped SKU (Microsoft 365 licensed-users CSV or Graph JSON)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from collectors.events import event_id, usage_message
    from collectors.mapping import load_mapping
    from collectors.sources.devices import observed_at
    from collectors.sources.licences import LicenceReport, read_assignments

    settings = load_settings(CollectorSettings)
    mapping = load_mapping(mapping_file)
    at = observed_at(datetime.fromisoformat(at_text) if at_text else None)
    day = at.astimezone(ZoneInfo(zone)).date().isoformat()
    report, unmapped = LicenceReport(), Counter[str]()
    messages = []
    for assignment in read_assignments(export, report):
        service = mapping.skus.get(assignment.sku)
        if service is None:
            unmapped[f"SKU {assignment.sku}"] += 1
            continue
        cost_centre = mapping.cost_centre(assignment.department, unmapped)
        if cost_centre is None:
            continue
        eid = event_id(mapping.municipality, "m365", assignment.user, assignment.sku, day)
        messages.append(
            usage_message(
                eid=eid,
                municipality=mapping.municipality,
                kind="m365",
                when=at,
                cost_centre=cost_centre,
                service=service,
                subject=assignment.user,
                quantity=Decimal(1),
                attributes={"sku": assignment.sku},
            )
        )
    send_and_report(
        settings, messages, read=report.read, rejected=report.rejected, unmapped=unmapped, what="assignments"
    )


@collect.command("storage")
@click.option(
    "--mapping", "mapping_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
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
@click.option("--at", "at_text", help="observation time, ISO 8601 with zone (default: now)")
def collect_storage(
    mapping_file: Path,
    share: Path | None,
    s3_url: str | None,
    prefixes: tuple[str, ...],
    zone: str,
    at_text: str | None,
) -> None:
    """Storage in GiB per folder of a file share or per prefix of an S3 bucket."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from chargeback import s3
    from collectors.events import event_id, usage_message
    from collectors.mapping import load_mapping
    from collectors.sources.devices import observed_at
    from collectors.sources.storage import StorageReport, gib, measure_s3, measure_share

    if (share is None) == (s3_url is None):
        raise click.UsageError("give either --share or --s3")
    settings = load_settings(CollectorSettings)
    mapping = load_mapping(mapping_file)
    at = observed_at(datetime.fromisoformat(at_text) if at_text else None)
    day = at.astimezone(ZoneInfo(zone)).date().isoformat()
    report, unmapped = StorageReport(), Counter[str]()
    if share is not None:
        sizes, kind, where = measure_share(share, report), "fileshare", str(share)
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
        sizes, kind, where = (
            measure_s3(client, location.bucket, list(prefixes)),
            "s3",
            f"s3://{location.bucket}",
        )
    service = mapping.services.get("storage", "storage-file")
    messages = []
    for identifier, size in sizes.items():
        cost_centre = mapping.cost_centre(identifier, unmapped)
        if cost_centre is None:
            continue
        subject = f"{where}/{identifier}"
        messages.append(
            usage_message(
                eid=event_id(mapping.municipality, kind, subject, day),
                municipality=mapping.municipality,
                kind=kind,
                when=at,
                cost_centre=cost_centre,
                service=service,
                subject=subject,
                quantity=gib(size),
                attributes={"bytes": size},
            )
        )
    send_and_report(
        settings, messages, read=len(sizes), rejected=report.unreadable, unmapped=unmapped, what="folders"
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
