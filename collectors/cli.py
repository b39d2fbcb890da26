"""``chargeback collect ...``: the collectors' commands."""

from __future__ import annotations

from pathlib import Path

import click

from chargeback.kafka import make_producer, send_all
from chargeback.settings import load_settings
from collectors.file import FileReport, read_events
from collectors.settings import CollectorSettings


@click.group("collect")
def collect() -> None:
    """Read usage at a member municipality and send it to the usage topic."""


@collect.command("file")
@click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bootstrap", help="Kafka bootstrap servers (default: CHARGEBACK_KAFKA_BOOTSTRAP)")
@click.option("--topic", help="usage topic (default: CHARGEBACK_USAGE_TOPIC)")
def collect_file(events: Path, bootstrap: str | None, topic: str | None) -> None:
    """Send a JSON Lines file of usage events (one CloudEvent per line), each line unchanged."""
    settings = load_settings(CollectorSettings, kafka_bootstrap=bootstrap, usage_topic=topic)
    report = FileReport()
    producer = make_producer(settings.kafka_bootstrap, client_id=settings.collector_client_id)
    try:
        report.emitted = send_all(producer, settings.usage_topic, read_events(events, report))
    finally:
        producer.close()
    click.echo(f"read {report.read}, emitted {report.emitted}, without municipality key {report.unkeyed}")
