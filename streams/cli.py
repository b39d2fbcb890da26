"""``chargeback stream ...``: the central stream worker and its dead letters."""

from __future__ import annotations

import json
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from chargeback.clickhouse import from_settings
from chargeback.errors import UserError
from chargeback.settings import load_settings
from streams.settings import WorkerSettings


@click.group("stream")
def stream() -> None:
    """Validate, deduplicate and store usage events from the broker."""


@stream.command("worker")
@click.option("--catalogue", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--exit-when-idle",
    type=float,
    default=None,
    help="stop after this many seconds without events (for backfills and the demo)",
)
def worker(catalogue: Path | None, exit_when_idle: float | None) -> None:
    """Run a stream worker until stopped (SIGTERM or Ctrl-C)."""
    from streams.app import run_worker

    settings = load_settings(WorkerSettings, catalogue=catalogue)
    sink = run_worker(settings, exit_when_idle=exit_when_idle)
    c = sink.counters
    click.echo(
        f"received {c.received}, stored {c.stored}, duplicates {c.duplicates}, dead letters {c.dead}, "
        f"already stored {c.replayed}"
    )


@stream.command("health")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="seconds to wait for an answer")
def health(timeout: float) -> None:
    """Ask the local worker's health endpoint whether it is ready (exit code 0) or not (1).

    For container health checks: the worker must serve its endpoint (CHARGEBACK_WORKER_METRICS_PORT).
    """
    import urllib.error
    import urllib.request

    settings = load_settings(WorkerSettings)
    if settings.worker_metrics_port is None:
        raise UserError("the worker serves no health endpoint: set CHARGEBACK_WORKER_METRICS_PORT")
    host = settings.worker_metrics_host
    host = "127.0.0.1" if host in ("", "0.0.0.0") else ("[::1]" if host == "::" else host)
    url = f"http://{host}:{settings.worker_metrics_port}/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        raise UserError(f"worker not ready: {'; '.join(body.get('problems', [])) or exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"no worker answers at {url}: {reason}") from None
    click.echo(body.get("status", "ready"))


@stream.group("dead")
def dead() -> None:
    """Inspect dead letters and send fixed ones back."""


@dead.command("list")
@click.option("--days", type=int, default=7, show_default=True, help="letters of the last N days")
@click.option("--reason", help="only letters whose reason contains this text")
@click.option("--limit", type=int, default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, the input of 'dead replay'")
def dead_list(days: int, reason: str | None, limit: int, as_json: bool) -> None:
    """List dead letters, oldest first."""
    from streams.deadletters import list_letters

    settings = load_settings(WorkerSettings)
    since = datetime.now(UTC) - timedelta(days=days)
    with closing(from_settings(settings)) as ch:
        letters = list_letters(ch, since=since, reason=reason, limit=limit)
    for letter in letters:
        if as_json:
            click.echo(json.dumps(letter.to_dict(), ensure_ascii=False))
        else:
            click.echo(
                f"{letter.dead_at:%Y-%m-%d %H:%M:%S}  {letter.topic}/{letter.partition}@{letter.offset}  "
                f"key={letter.key}  {letter.reason}"
            )


@dead.command("replay")
@click.argument("letters", type=click.File("r"))
def dead_replay(letters: click.utils.LazyFile) -> None:
    """Send letters (JSON Lines from 'dead list --json', edited) back to the usage topic."""
    from chargeback.kafka import KafkaSecurity, make_producer, send_all
    from streams.deadletters import letters_to_replay

    settings = load_settings(WorkerSettings)
    messages = list(letters_to_replay(letters))
    producer = make_producer(
        settings.kafka_bootstrap,
        client_id="chargeback-dead-replay",
        security=KafkaSecurity.from_settings(settings),
    )
    try:
        sent = send_all(producer, settings.usage_topic, messages)
    finally:
        producer.close()
    click.echo(f"sent {sent} letters back to {settings.usage_topic}")
