"""``chargeback demo ...``: one whole month on local services, from collection to exports.

The demo drives the real commands as separate processes, in the order an operator would run
them: it starts a local broker and S3 server, sends a month of usage events, lets a stream worker
store them in embedded ClickHouse (chDB), prices the month and exports the run to ``out/`` and to
a bucket: CSV, and Peppol and SIE previews of the draft run, the Peppol files checked against the
official rules when their folder is there. chDB allows one process per data folder, which is one
more reason each stage runs as its own process, one after the other.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from chargeback.catalogue import Catalogue, load_catalogue
from chargeback.period import Period

DEMO_TZ = ZoneInfo("Europe/Stockholm")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Municipality code -> (name, inhabitants); the catalogue in demo/data holds the same six.
HALSINGLAND = {
    "2121": ("Ovanåker", 11300),
    "2132": ("Nordanstig", 9400),
    "2161": ("Ljusdal", 19000),
    "2182": ("Söderhamn", 25400),
    "2183": ("Bollnäs", 26500),
    "2184": ("Hudiksvall", 37800),
}
COST_CENTRES = ("BUF", "SOC", "KS", "SBF")  # school, social services, council office, planning
# The Vesterålen members: Statistics Norway's codes, approximate inhabitants (1 January 2024), as in
# demo/data/vesteralen/catalogue.yaml.
VESTERALEN = {
    "1866": ("Hadsel", 8060),
    "1867": ("Bø", 2520),
    "1868": ("Øksnes", 4560),
    "1870": ("Sortland", 10900),
    "1871": ("Andøy", 4530),
}


@dataclass(frozen=True)
class DemoRegion:
    """A reference deployment of the demo: its members, cost centres, time zone, data folder (the
    catalogue and the parties file) and the formats the demo exports a run in."""

    members: dict[str, tuple[str, int]]
    cost_centres: tuple[str, ...]
    tz: ZoneInfo
    folder: str  # under demo/data
    formats: tuple[str, ...]  # exported as drafts beside the CSV: e-invoices and accounting
    deleted_share: tuple[str, str]  # (municipality, cost centre) whose share goes half-way
    rerun: str  # the municipality whose collector is re-run


REGIONS = {
    "halsingland": DemoRegion(
        HALSINGLAND, COST_CENTRES, DEMO_TZ, "", ("peppol", "sie"), ("2132", "SBF"), "2121"
    ),
    # Norwegian: NOK, Europe/Oslo, EHF invoices and the SAF-T Financial audit file.
    "vesteralen": DemoRegion(
        VESTERALEN,
        ("OPPV", "HELSE", "ADM", "TEKN"),
        ZoneInfo("Europe/Oslo"),
        "vesteralen",
        ("peppol", "saft"),
        ("1867", "TEKN"),
        "1866",
    ),
}


def demo_catalogue(region: str = "halsingland") -> Path:
    """The region's demo catalogue shipped with the package."""
    return Path(str(resources.files("demo") / "data" / REGIONS[region].folder / "catalogue.yaml"))


def demo_parties(region: str = "halsingland") -> Path:
    """The region's demo parties file (seller, payment and buyers) shipped with the package."""
    return Path(str(resources.files("demo") / "data" / REGIONS[region].folder / "parties.yaml"))


_REGION = click.option(
    "--region",
    type=click.Choice(sorted(REGIONS)),
    default="halsingland",
    show_default=True,
    help="the reference deployment: the six Hälsingland municipalities (SEK) or the five in Vesterålen (NOK)",
)


def _event(eid: str, municipality: str, source: str, when: datetime, data: Mapping[str, object]) -> str:
    body = {
        "specversion": "1.0",
        "id": eid,
        "source": f"urn:chargeback:collector:{municipality}:{source}",
        "type": "chargeback.usage.v1",
        "time": _utc(when),
        "data": {"municipality": municipality, **data},
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _ticket(
    rng: random.Random, days: list[date], code: str, slug: str, period: Period, n: int, region: DemoRegion
) -> str:
    """A closed service-desk ticket with the times the service-level report reads: mostly opened
    in opening hours, phone calls answered within a minute or two, some solved at once."""
    day = days[rng.randrange(len(days))]
    opened = datetime.combine(
        day, time(8 + rng.randrange(9), rng.randrange(60), rng.randrange(60)), region.tz
    )
    channel = rng.choices(["phone", "e-mail", "portal"], weights=[5, 3, 2])[0]
    answer = (
        timedelta(seconds=rng.randrange(15, 150))
        if channel == "phone"
        else timedelta(minutes=rng.randrange(5, 240))
    )
    resolved = rng.random() < 0.68
    work = timedelta(minutes=rng.randrange(2, 25)) if resolved else timedelta(hours=rng.randrange(1, 60))
    first_response = opened + answer
    closed = first_response + work
    return _event(
        f"{slug}-topdesk-I{period.year}{period.month:02d}-{n:05d}",
        code,
        "topdesk",
        closed,
        {
            "cost_centre": region.cost_centres[rng.randrange(len(region.cost_centres))],
            "service": "ticket-incident",
            "subject": f"I{n:05d}",
            "quantity": "1",
            "channel": channel,
            "priority": rng.choices(["P1", "P2", "P3", "P4"], weights=[1, 4, 12, 3])[0],
            "opened": _utc(opened),
            "first_response": _utc(first_response),
            "closed": _utc(closed),
        },
    )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def generate_month(period: Period, *, seed: int = 2183, region: str = "halsingland") -> Iterator[str]:
    """A month of usage events for the region's municipalities, sized by inhabitants.

    About one computer per 25 inhabitants and one Microsoft 365 seat per 20, a ticket per four
    computers a month, a file share per cost centre. Real irregularities are in it: devices added
    mid-month, a share deleted half-way, a collector re-run that sends the same events again (same
    ids) and one malformed event that must end up in the dead-letter topic.
    """
    area = REGIONS[region]
    cost_centres, tz = area.cost_centres, area.tz
    # The Hälsingland demo's seed text is kept as it was, so its events stay the same.
    rng = random.Random(f"{seed}-{period}" if region == "halsingland" else f"{seed}-{region}-{period}")
    days = [period.first_day + timedelta(days=i) for i in range(period.days)]
    for code, (_name, inhabitants) in sorted(area.members.items()):
        pcs = inhabitants // 25
        seats = inhabitants // 20
        slug = f"m{code}"
        for n in range(pcs):
            cc = cost_centres[n % len(cost_centres)]
            start = days[rng.randrange(len(days))] if n % 40 == 0 else days[0]  # some arrive mid-month
            for day in days:
                if day < start:
                    continue
                when = datetime.combine(day, time(6, 0), tz)
                yield _event(
                    f"{slug}-intune-PC{n:05d}-{day}",
                    code,
                    "intune",
                    when,
                    {"cost_centre": cc, "service": "pc-standard", "subject": f"PC{n:05d}", "quantity": "1"},
                )
        for n in range(seats):
            cc = cost_centres[n % len(cost_centres)]
            for day in days:
                when = datetime.combine(day, time(5, 0), tz)
                yield _event(
                    f"{slug}-m365-u{n:05d}-SPE_E3-{day}",
                    code,
                    "m365",
                    when,
                    {"cost_centre": cc, "service": "m365-e3", "subject": f"u{n:05d}", "quantity": "1"},
                )
        for n in range(pcs // 4):
            yield _ticket(rng, days, code, slug, period, n, area)
        for cc in cost_centres:
            size = rng.randrange(80, 900)
            deleted = (code, cc) == area.deleted_share  # one share removed half-way through the month
            for i, day in enumerate(days):
                if deleted and i >= len(days) // 2:
                    break
                when = datetime.combine(day, time(2, 0), tz)
                yield _event(
                    f"{slug}-share-{cc}-{day}",
                    code,
                    "fileshare",
                    when,
                    {
                        "cost_centre": cc,
                        "service": "storage-file",
                        "subject": f"\\\\fs{code}\\{cc}",
                        "quantity": f"{size + i}.5",
                    },
                )
    # A collector re-run: the first day's device events of one municipality again, same ids.
    first = days[0]
    for n in range(area.members[area.rerun][1] // 25):
        when = datetime.combine(first, time(6, 0), tz)
        yield _event(
            f"m{area.rerun}-intune-PC{n:05d}-{first}",
            area.rerun,
            "intune",
            when,
            {
                "cost_centre": cost_centres[n % len(cost_centres)],
                "service": "pc-standard",
                "subject": f"PC{n:05d}",
                "quantity": "1",
            },
        )
    yield json.dumps(
        {"specversion": "1.0", "id": "broken-1", "type": "chargeback.usage.v1", "data": {"quantity": "-1"}}
    )


@click.group("demo")
def demo() -> None:
    """A whole demo month on local services."""


@demo.command("generate")
@click.option(
    "--months",
    required=True,
    help="YYYY-MM, several separated by commas, or a range YYYY-MM..YYYY-MM",
)
@click.option("--to", "to_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--seed", type=int, default=2183, show_default=True, help="the same seed, the same files")
@click.option(
    "--municipality",
    "codes",
    multiple=True,
    type=click.Choice(sorted([*HALSINGLAND, *VESTERALEN])),
    help="only these members of the region (default: all of them)",
)
@_REGION
def generate_cmd(months: str, to_dir: Path, seed: int, codes: tuple[str, ...], region: str) -> None:
    """Write the members' source exports for every day of the months, and their mapping files:
    DIR/<code>/<yyyy-mm-dd>/{intune|configmgr,jamf,m365-licensed-users,topdesk|servicenow|jira}.csv
    and share/ (sparse files), DIR/<code>/mapping.yaml and mapping-pupils.yaml."""
    from demo.sources import days_of, parse_months, write_sources

    try:
        periods = parse_months(months)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--months") from exc
    members_of_region = REGIONS[region].members
    if outside := [c for c in codes if c not in members_of_region]:
        raise click.BadParameter(
            f"{outside[0]} is not a member in {region}; its members are "
            + ", ".join(sorted(members_of_region)),
            param_hint="--municipality",
        )
    written = write_sources(to_dir, periods, seed=seed, codes=codes, region=region)
    rows = ", ".join(f"{kind} {count}" for kind, count in sorted(written.rows.items()))
    members = len(codes) or len(members_of_region)
    click.echo(
        f"wrote {written.files} files ({written.bytes_on_disk / 1e6:.1f} MB; shares "
        f"{written.apparent_share_bytes / 2**40:.1f} TiB as sparse files) for {members} "
        f"municipalities and {len(days_of(periods))} days to {to_dir}"
    )
    click.echo(f"rows: {rows}")


@demo.command("collect")
@click.argument("sources", type=click.Path(exists=True, file_okay=False, path_type=Path))
def collect_cmd(sources: Path) -> None:
    """Run the real collectors over generated source files, day by day, and sum up their reports."""
    from demo.sources import run_collectors

    totals = run_collectors(sources)
    for kind, total in totals.items():
        click.echo(total.line(kind))
    unmapped: dict[str, int] = {}
    for total in totals.values():
        for identifier, count in total.unmapped_by_identifier.items():
            unmapped[identifier] = unmapped.get(identifier, 0) + count
    if unmapped:
        click.echo("unmapped (not sent): " + ", ".join(f"{k} {v}" for k, v in sorted(unmapped.items())))
    if any(t.spooled or t.rejected for t in totals.values()):
        raise click.ClickException("some events were rejected or wait in the spool")


@demo.command("events")
@click.option("--period", default=None, help="month to generate, YYYY-MM (default: last month)")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@_REGION
def events_cmd(period: str | None, out_file: Path, region: str) -> None:
    """Write a month of ready-made demo usage events as JSON Lines (for ``collect file``)."""
    p = Period.parse(period) if period else _last_month()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with out_file.open("w", encoding="utf-8") as handle:
        count = sum(1 for line in generate_month(p, region=region) if handle.write(line + "\n"))
    click.echo(f"wrote {count} events for {p} to {out_file}")


@demo.command("run")
@click.option("--period", default=None, help="month to run, YYYY-MM (default: last month)")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("var/demo"))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out"))
@click.option(
    "--from",
    "origin",
    type=click.Choice(["sources", "events"]),
    default="sources",
    show_default=True,
    help="sources: generated exports read by the real collectors, day by day; "
    "events: ready-made usage events sent with collect file (faster)",
)
@click.option("--seed", type=int, default=2183, show_default=True)
@_REGION
def run_cmd(period: str | None, workdir: Path, out_dir: Path, origin: str, seed: int, region: str) -> None:
    """Collect, stream, bill and export one month; print the per-municipality totals. Vesterålen
    exports the SAF-T Financial file beside the CSV."""
    import devstack

    p = Period.parse(period) if period else _last_month()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    if origin == "sources":
        from demo.sources import write_sources

        sources = workdir / "sources"
        written = write_sources(sources, [p], seed=seed, region=region)
        click.echo(
            f"[1/6] generated {written.files} source files for {p}: "
            + ", ".join(f"{kind} {rows} rows" for kind, rows in sorted(written.rows.items()))
            + f" ({sources})"
        )
        collect_args = ["demo", "collect", str(sources)]
    else:
        events_file = workdir / f"events-{p}.jsonl"
        with events_file.open("w", encoding="utf-8") as handle:
            total = sum(
                1 for line in generate_month(p, seed=seed, region=region) if handle.write(line + "\n")
            )
        click.echo(f"[1/6] generated {total} usage events for {p} ({events_file})")
        collect_args = ["collect", "file", str(events_file)]

    with devstack.running(services=("kafka", "s3"), state_dir=workdir / "services") as endpoints:
        assert endpoints.kafka_bootstrap and endpoints.s3_endpoint_url
        bucket = "chargeback-demo"
        env = {
            **os.environ,
            "CHARGEBACK_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
            "CHARGEBACK_USAGE_TOPIC": f"demo-{stamp}.usage.events",
            "CHARGEBACK_DEAD_TOPIC": f"demo-{stamp}.usage.dead",
            "CHARGEBACK_WORKER_APP_ID": f"chargeback-demo-{stamp}",
            "CHARGEBACK_CLICKHOUSE_URL": f"chdb:{workdir / 'chdb'}",
            "CHARGEBACK_CLICKHOUSE_DATABASE": f"demo_{stamp}",
            "CHARGEBACK_CATALOGUE": str(demo_catalogue(region)),
            "CHARGEBACK_PARTIES_FILE": str(demo_parties(region)),
            "CHARGEBACK_COLLECTOR_SPOOL_DIR": str(workdir / "spool"),
            "CHARGEBACK_S3_ENDPOINT_URL": endpoints.s3_endpoint_url,
            "CHARGEBACK_S3_ACCESS_KEY_ID": "demo",
            "CHARGEBACK_S3_SECRET_ACCESS_KEY": "demo-secret",
        }
        _make_bucket(endpoints.s3_endpoint_url, bucket)
        _step(env, "[2/6] schema", ["db", "migrate"])
        _step(env, "[3/6] collect", collect_args, show=origin == "sources")
        _step(env, "[4/6] stream", ["stream", "worker", "--exit-when-idle", "5"])
        _step(env, "[5/6] billing", ["billing", "run", "--period", str(p)], show=True)
        _step(env, "      service level", ["report", "sla", "--period", str(p)], show=True)
        run_id = _run_id(env, p)
        _step(
            env,
            "[6/6] export",
            ["billing", "export", run_id, "--format", "csv", "--to", str(out_dir.resolve())],
        )
        _step(
            env,
            "      export",
            ["billing", "export", run_id, "--format", "csv", "--to", f"s3://{bucket}/{p}"],
        )
        # The run is a draft (a preview): its e-invoices (EHF in Vesterålen) and accounting files
        # (SIE; SAF-T Financial in Vesterålen) are marked as drafts.
        for fmt in REGIONS[region].formats:
            _step(
                env,
                f"      export {fmt}",
                ["billing", "export", run_id, "--format", fmt, "--draft", "--to", str(out_dir.resolve())],
            )
        einvoices = [x for x in out_dir.resolve().glob(f"{run_id}.*.xml") if not x.name.endswith(".saft.xml")]
        _check_einvoices(env, sorted(einvoices))
        _step(
            env,
            "      specification",
            ["billing", "export", run_id, "--format", "specification", "--to", str(out_dir.resolve())],
            quiet=True,
        )
        _step(
            env,
            "      report",
            ["billing", "export", run_id, "--format", "report", "--to", str(out_dir.resolve())],
            quiet=True,
        )
    click.echo(f"done: run {run_id}; exports in {out_dir}/ and s3://{bucket}/{p}/")
    # Each member's report and specification: every device, user, ticket and share behind its lines.
    for line in member_files(out_dir, run_id, load_catalogue(demo_catalogue(region))):
        click.echo(line)


def member_files(out_dir: Path, run_id: str, catalogue: Catalogue) -> list[str]:
    """Where each member's report and specification are, one line per member (files that exist).
    The demo's run is a draft: its specification is ``<run>.<municipality>.draft.specification.xlsx``
    and ``.csv`` (a final run's without ``.draft``)."""
    lines = []
    for m in sorted(catalogue.municipalities, key=lambda m: m.code):
        names = (
            f"{run_id}.{m.code}.html",
            *(
                f"{run_id}.{m.code}{mark}.specification.{ext}"
                for mark in (".draft", "")
                for ext in ("xlsx", "csv")
            ),
        )
        found = [str(out_dir / n) for n in names if (out_dir / n).exists()]
        if found:
            lines.append(f"{m.code} {m.name}: {', '.join(found)}")
    overview = out_dir / f"{run_id}.html"
    if overview.exists():
        lines.insert(0, f"overview: {overview}")
    return lines


def _check_einvoices(env: Mapping[str, str], files: list[Path]) -> None:
    """The Peppol files against the official rules, when their folder is there (it is data beside
    the repository, not part of the product)."""
    from billing_jobs.einvoice.settings import EInvoiceSettings

    rules = EInvoiceSettings().einvoice_rules_dir.resolve()
    if not rules.is_dir():
        click.echo(f"      official e-invoice rules: not checked ({rules} is not there)")
        return
    out = _step(
        env, "      official e-invoice rules", ["billing", "validate-einvoice", *map(str, files)], quiet=True
    )
    passed = sum(1 for row in out.splitlines() if row.endswith(": 0 fatal, 0 warnings"))
    click.echo(
        f"      official e-invoice rules: {passed} of {len(files)} Peppol files with 0 fatal, 0 warnings"
    )


def _step(
    env: Mapping[str, str], label: str, args: list[str], *, show: bool = False, quiet: bool = False
) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "chargeback_cli", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        click.echo(proc.stdout + proc.stderr, err=True)
        raise click.ClickException(f"{label.strip()} failed: chargeback {' '.join(args)}")
    # Faust writes terminal control sequences to stdout; keep the lines that say something.
    lines = [text for text in (_ANSI.sub("", line).strip() for line in proc.stdout.splitlines()) if text]
    if quiet:
        pass
    elif show:
        click.echo(label)
        click.echo(proc.stdout.rstrip())
    else:
        click.echo(f"{label}: {'; '.join(lines) if lines else 'ok'}")
    return proc.stdout


def _run_id(env: Mapping[str, str], period: Period) -> str:
    out = _step(env, "price", ["billing", "run", "--period", str(period), "--json"], quiet=True)
    return str(json.loads(out)["run_id"])


def _make_bucket(endpoint: str, bucket: str) -> None:
    from chargeback import s3

    client = s3.make_client(
        endpoint_url=endpoint, region="us-east-1", access_key_id="demo", secret_access_key="demo"
    )
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)


def _last_month(today: date | None = None) -> Period:
    today = today or datetime.now(DEMO_TZ).date()
    first = today.replace(day=1) - timedelta(days=1)
    return Period(first.year, first.month)
