"""``chargeback billing ...``: finance's commands for billing runs and their exports."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from billing_jobs import service
from billing_jobs.destinations import ExportError, write_files
from billing_jobs.formats import FORMATS, ExportContext, Seller, with_manifest
from billing_jobs.formats.csv import DIALECTS
from billing_jobs.formats.json import run_document, run_header
from billing_jobs.formats.sie import SieError
from billing_jobs.lock import Holder, locked_store, unlock
from billing_jobs.model import FINAL, Alert, DataQuality, Line
from billing_jobs.parties import load_parties, seller_of
from billing_jobs.reports.alerts import alert_notes, month_alerts, thresholds_for
from billing_jobs.settings import BillingSettings
from billing_jobs.store import BillingStore, RunError, open_store
from chargeback import s3
from chargeback.catalogue import Catalogue, load_catalogue
from chargeback.money import money, quantity, signed_money
from chargeback.period import Period
from chargeback.settings import load_settings


@click.group("billing")
@click.option(
    "--catalogue", type=click.Path(path_type=Path), help="catalogue YAML (default: CHARGEBACK_CATALOGUE)"
)
@click.pass_context
def billing(ctx: click.Context, catalogue: Path | None) -> None:
    """Price a month's usage, review and finalise runs, export them."""
    ctx.obj = load_settings(BillingSettings, catalogue=catalogue)


def _catalogue(settings: BillingSettings) -> tuple[Catalogue, str]:
    catalogue = load_catalogue(settings.catalogue)
    return catalogue, hashlib.sha256(settings.catalogue.read_bytes()).hexdigest()


def _period(value: str) -> Period:
    try:
        return Period.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@billing.command("run")
@click.option("--period", required=True, help="calendar month, YYYY-MM")
@click.option("--municipality", "municipalities", multiple=True, help="only these municipality codes")
@click.option(
    "--reprice-invoiced",
    is_flag=True,
    help="bill finalised months' differences under the current catalogue as corrections (finance asks)",
)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_obj
def run_cmd(
    settings: BillingSettings,
    period: str,
    municipalities: tuple[str, ...],
    reprice_invoiced: bool,
    as_json: bool,
) -> None:
    """Price a month as a draft run and print its totals per municipality."""
    month = _period(period)
    catalogue, sha = _catalogue(settings)
    started = time.monotonic()

    def progress(step: str) -> None:  # on stderr: standard output stays the result
        click.echo(f"[{time.monotonic() - started:6.1f} s] {step}", err=True)

    only = sorted(set(municipalities))
    command = f"billing run --period {month}" + "".join(f" --municipality {m}" for m in only)
    refused = f"billing run of {month} for {service.scope_words(only)} refused"
    now = datetime.now(UTC)
    with locked_store(settings, command, refused=lambda _: refused, on_wait=_waiting) as store:
        priced = service.create_run(
            store,
            catalogue,
            sha,
            month,
            municipalities,
            now=now,
            catalogue_bytes=settings.catalogue.read_bytes(),
            reprice_invoiced=reprice_invoiced,
            progress=progress,
        )
        gaps = service.find_gaps(store, priced.run, catalogue, now=now)
        # The summary's usage alerts (``--json`` leaves them to ``report alerts --format json``:
        # its standard output is the run, its standard error the progress).
        today = now.astimezone(catalogue.tz).date()
        alerts = () if as_json else alert_notes(usage_alerts(store, catalogue, settings, month, today), only)
    if as_json:
        doc = run_document(priced.run, priced.lines, created=priced.created)
        doc["preview"] = priced.preview
        doc["repricing"] = priced.repricing
        doc["late_beyond_window"] = [
            {
                "municipality": x.municipality,
                "period": x.period,
                "service": x.service,
                "quantity": quantity(x.quantity),
                "events": x.events,
            }
            for x in priced.beyond_window
        ]
        doc["unbilled"] = list(priced.unbilled)
        doc["gaps"] = [{"municipality": g.municipality or None, "text": g.text} for g in gaps]
        click.echo(json.dumps(doc, indent=2))
        return
    state = "created" if priced.created else "unchanged since"
    click.echo(
        f"run {priced.run.run_id} ({priced.run.status}, {state} {priced.run.created_at:%Y-%m-%d %H:%M} UTC)"
    )
    if priced.preview:
        click.echo(f"preview: {priced.preview}")
    click.echo(summary_table(priced.lines, catalogue))
    for text in correction_summary(priced.lines, catalogue.currency):
        click.echo(text)
    click.echo("\n".join(gap_lines(gaps)))
    if priced.repricing:
        click.echo(f"not repriced: {priced.repricing}")
    for late in priced.beyond_window:
        click.echo(f"warning: {late}")
    for text in priced.unbilled:
        click.echo(f"warning: {text}")
    # What finance looks at before finalising the run, one line each on stderr.
    for alert in alerts:
        click.echo(f"alert: {alert.message}", err=True)


@billing.command("export")
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="csv", show_default=True)
@click.option("--to", "destination", required=True, help="a folder or s3://bucket/prefix")
@click.option(
    "--parties",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the seller (of Peppol, SIE and SAF-T) and the buyers (default: CHARGEBACK_PARTIES_FILE)",
)
@click.option(
    "--draft",
    is_flag=True,
    help="allow Peppol and SIE of a draft run: a preview, every file marked as a draft",
)
@click.option(
    "--dialect",
    type=click.Choice(DIALECTS),
    default="spec",
    show_default=True,
    help="--format csv: the spec's CSV, or excel-sv (semicolons, decimal commas, UTF-8 with BOM, CRLF)",
)
@click.option("--pdf", is_flag=True, help="--format report: also print each page to PDF (headless Chromium)")
@click.pass_obj
def export_cmd(
    settings: BillingSettings,
    run_id: str,
    fmt: str,
    destination: str,
    parties: Path | None,
    draft: bool,
    dialect: str,
    pdf: bool,
) -> None:
    """Export a run to a local folder or S3."""
    if dialect != "spec" and fmt != "csv":
        raise click.ClickException(f"--dialect {dialect} is for --format csv, not --format {fmt}")
    if pdf and fmt != "report":
        raise click.ClickException(f"--pdf is for --format report, not --format {fmt}")
    parties_file = parties or settings.parties_file
    catalogue, _ = _catalogue(settings)
    with open_store(settings) as store:
        run = store.get_run(run_id)
        lines = store.load_lines(run_id)
        previous = service.previous_run(store, run) if fmt == "report" else None
        corrected = corrected_invoices(store, lines) if fmt == "peppol" else {}
        subjects = store.subjects(Period.parse(run.period)) if fmt == "specification" else []
        corrected_months = sorted({x.corrects_period for x in lines if x.corrects_period})
        quality = store.data_quality(Period.parse(run.period), corrected_months) if fmt == "report" else None
        if quality is not None:
            # The month's usage alerts up to the day the run was made (or finalised), the day its
            # days without events are counted to.
            changed = run.changed_at
            as_of = (changed.astimezone(catalogue.tz) if changed.tzinfo else changed).date()
            alerts = usage_alerts(store, catalogue, settings, Period.parse(run.period), as_of)
            quality = replace(quality, alerts=alert_notes(alerts, run.municipalities))
    seller = seller_of(load_parties(parties_file)) if parties_file and fmt == "report" else Seller("")
    context = ExportContext(
        catalogue,
        seller,
        previous,
        parties_file,
        draft,
        corrected,
        subjects,
        quality=quality or DataQuality(),
        unallocated_warning_share=settings.unallocated_warning_share,
        dialect=dialect,
        saft_dir=settings.saft_dir,
    )
    try:
        made = FORMATS[fmt](run, lines, context)
    except SieError as exc:
        raise ExportError(f"run {run.run_id} ({run.period}) was not exported: {exc}") from exc
    if pdf:
        from billing_jobs.formats.pdf import print_pdfs

        made += print_pdfs(made, settings.chromium, run.created_at)
    files = with_manifest(run, made)

    def client() -> Any:
        return s3.make_client(
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=(
                settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
            ),
        )

    try:
        written = write_files(files, destination, s3_client=client, immutable=run.status == FINAL)
    except ExportError as exc:
        raise ExportError(
            f"run {run.run_id} ({run.period}) was not exported to {destination}: {exc}"
        ) from exc
    for where in written:
        click.echo(where)


def usage_alerts(
    store: BillingStore, catalogue: Catalogue, settings: BillingSettings, period: Period, today: date
) -> list[Alert]:
    """The month's usage alerts (``report alerts``), with the catalogue's or the settings'
    thresholds; none for a month that has not begun."""
    if period.first_day > today:
        return []
    thresholds = thresholds_for(catalogue, settings.alert_change, settings.alert_silent_working_days)
    return month_alerts(store, catalogue, period, today, thresholds)


def corrected_invoices(store: BillingStore, lines: Sequence[Line]) -> dict[tuple[str, str], str]:
    """(month, municipality) -> the id of the final invoice of that month, for every month the
    lines correct: what a correcting invoice or credit note references."""
    from billing_jobs.formats.peppol import document_id

    found: dict[tuple[str, str], str] = {}
    wanted = {(x.corrects_period, x.municipality) for x in lines if x.corrects_period}
    for month in sorted({m for m, _ in wanted}):
        final = [r for r in store.list_runs(Period.parse(month)) if r.status == FINAL]
        for _, code in sorted(k for k in wanted if k[0] == month):
            run = next((r for r in final if not r.municipalities or code in r.municipalities), None)
            if run is not None:
                found[(month, code)] = document_id(run.run_id, code)
    return found


@billing.command("explain")
@click.argument("run_id")
@click.option("--municipality", required=True, help="municipality code")
@click.option("--service", help="only this service")
@click.option("--cost-centre", help="only this cost centre")
@click.option("--top", default=10, show_default=True, help="subjects shown per line (--json lists all)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_obj
def explain_cmd(
    settings: BillingSettings,
    run_id: str,
    municipality: str,
    service: str | None,
    cost_centre: str | None,
    top: int,
    as_json: bool,
) -> None:
    """Why each line of a run costs what it does: the formula with its numbers, and its subjects, in
    the catalogue's language (Swedish, Norwegian bokmål for a NOK catalogue)."""
    from billing_jobs import explain
    from billing_jobs.service import usage_digest

    catalogue, sha = _catalogue(settings)
    with open_store(settings) as store:
        run = store.get_run(run_id)
        lines = store.load_lines(run_id)
        totals = store.period_totals(Period.parse(run.period))
        subjects = store.subjects(Period.parse(run.period), [municipality])
    usage_sha = usage_digest(totals, [x for x in lines if x.corrects_period])
    explained = explain.explain_run(
        run,
        lines,
        catalogue,
        subjects,
        catalogue_changed=sha != run.catalogue_sha256,
        usage_changed=usage_sha != run.usage_sha256,
        municipality=municipality,
        service=service,
        cost_centre=cost_centre,
    )
    if not explained.lines:
        wanted = " ".join(v for v in (municipality, cost_centre, service) if v)
        raise explain.NothingToExplain(f"run {run_id} has no line of {wanted}")
    if as_json:
        click.echo(json.dumps(explain.to_json(explained), indent=2, ensure_ascii=False))
        return
    click.echo(explain.render_text(explained, catalogue, top), nl=False)


@billing.command("list")
@click.option("--period", help="only runs of this month, YYYY-MM")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_cmd(settings: BillingSettings, period: str | None, as_json: bool) -> None:
    """List runs, newest first."""
    with open_store(settings) as store:
        found = store.list_runs(_period(period) if period else None)
    if as_json:
        click.echo(json.dumps([run_header(r) for r in found], indent=2))
        return
    for r in found:
        scope = ",".join(r.municipalities) or "all"
        click.echo(f"{r.run_id}  {r.period}  {r.status:<5}  {scope}  {r.created_at:%Y-%m-%d %H:%M} UTC")


@billing.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show_cmd(settings: BillingSettings, run_id: str, as_json: bool) -> None:
    """Show a run's lines and totals."""
    with open_store(settings) as store:
        run = store.get_run(run_id)
        lines = store.load_lines(run_id)
    if as_json:
        click.echo(json.dumps(run_document(run, lines), indent=2))
        return
    click.echo(f"run {run.run_id}  period {run.period}  {run.status}  price list {run.price_list}")
    for line in lines:
        click.echo(
            f"  {line.municipality}  {line.cost_centre:<12} {line.service:<18} {line.quantity:>14} "
            f"{line.unit:<4} {money(line.amount):>14} {line.currency}"
            + (
                f"  corrects {line.corrects_period} ({line.reason or 'late usage'})"
                if line.corrects_period
                else ""
            )
        )


@billing.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def diff_cmd(settings: BillingSettings, run_a: str, run_b: str, as_json: bool) -> None:
    """What changed from run A to run B, line by line."""
    from billing_jobs.diff import diff_lines

    with open_store(settings) as store:
        a, b = store.get_run(run_a), store.get_run(run_b)
        changes = diff_lines(store.load_lines(run_a), store.load_lines(run_b), a.period, b.period)
    total = sum((c.amount_change for c in changes), Decimal(0))
    if as_json:
        doc = {
            "run_a": run_a,
            "run_b": run_b,
            "amount_change": money(total),
            "lines": [
                {
                    "period": c.period,
                    "municipality": c.municipality,
                    "cost_centre": c.cost_centre,
                    "service": c.service,
                    "quantity_a": str(c.quantity_a),
                    "quantity_b": str(c.quantity_b),
                    "amount_a": money(c.amount_a),
                    "amount_b": money(c.amount_b),
                }
                for c in changes
            ],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    for c in changes:
        click.echo(
            f"{c.period}  {c.municipality}  {c.cost_centre:<12} {c.service:<18} "
            f"{c.quantity_a} -> {c.quantity_b}  {money(c.amount_a)} -> {money(c.amount_b)}"
        )
    click.echo(f"{len(changes)} lines differ; amount change {money(total)}")


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


@billing.command("finalize")
@click.argument("run_id")
@click.option("--yes", is_flag=True, help="finalise without asking (for scripts)")
@click.option("--accept-gaps", is_flag=True, help="finalise although the run has gaps (listed first)")
@click.pass_obj
def finalize_cmd(settings: BillingSettings, run_id: str, yes: bool, accept_gaps: bool) -> None:
    """Show a draft's totals per member and what may be missing, ask, and make it final: it can
    never change afterwards."""
    catalogue, _ = _catalogue(settings)
    # Read under the billing lock, asked without it (nobody waits for an answer on a terminal),
    # finalised under it again, every check made anew.
    with locked_store(
        settings, f"billing finalize {run_id}", refused=_refused("finalize", run_id), on_wait=_waiting
    ) as store:
        if store.get_run(run_id).status == FINAL:
            click.echo(f"run {run_id} is final")
            return
        now = datetime.now(UTC)
        ready = service.readiness(store, run_id, catalogue, now=now)
        period = Period.parse(ready.run.period)
        scope = set(ready.run.municipalities)
        alerts = alert_notes(
            usage_alerts(store, catalogue, settings, period, now.astimezone(catalogue.tz).date()), scope
        )
    click.echo(finalize_summary(ready))
    # The month's usage alerts: worth a look before the month is final, but no reason to refuse it.
    for alert in alerts:
        click.echo(f"alert: {alert.message}")
    if ready.gaps and not accept_gaps:
        n = len(ready.gaps)
        raise RunError(
            f"run {run_id} was not finalised: it has {n} gap{'s' if n != 1 else ''} (listed above); "
            "finalise with --accept-gaps to accept them"
        )
    if not yes:
        if not _stdin_is_terminal():
            raise RunError(
                f"run {run_id} was not finalised: there is no terminal to confirm on; "
                "pass --yes to finalise from a script"
            )
        if not click.confirm(f"Finalise run {run_id}? A final run never changes", default=False):
            raise RunError(f"run {run_id} was not finalised: not confirmed")
    with locked_store(
        settings, f"billing finalize {run_id}", refused=_refused("finalize", run_id), on_wait=_waiting
    ) as store:
        run = service.finalize_run(store, run_id, catalogue, now=datetime.now(UTC), accept_gaps=accept_gaps)
    click.echo(f"run {run.run_id} is {run.status}")


def finalize_summary(ready: service.Readiness) -> str:
    """Totals per member (excluding VAT, VAT, total) and the gaps, as ``billing finalize`` shows them."""
    run = ready.run
    rows = [("member", f"excl. VAT ({run.currency})", "VAT", "total")]
    rows += [(t.municipality, money(t.amount), money(t.vat), money(t.total)) for t in ready.totals]
    rows.append(
        (
            "total",
            money(sum((t.amount for t in ready.totals), Decimal(0))),
            money(sum((t.vat for t in ready.totals), Decimal(0))),
            money(sum((t.total for t in ready.totals), Decimal(0))),
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out = [f"run {run.run_id}  period {run.period}  {run.status}"]
    for r in rows:
        out.append(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}")
    out += gap_lines(ready.gaps)
    return "\n".join(out)


def correction_summary(lines: Sequence[Line], currency: str) -> list[str]:
    """One line per corrected month and reason: how many lines and their amount."""
    found: dict[tuple[str, str], list[Decimal]] = {}
    for x in lines:
        if x.corrects_period:
            entry = found.setdefault((x.corrects_period, x.reason), [Decimal(0), Decimal(0)])
            entry[0] += 1
            entry[1] += x.amount
    return [
        f"corrects {month} ({reason or 'late usage'}): {int(n)} line{'s' if n != 1 else ''}, "
        f"{signed_money(amount)} {currency} excl. VAT"
        for (month, reason), (n, amount) in sorted(found.items())
    ]


def gap_lines(gaps: Sequence[service.Gap]) -> list[str]:
    """What may be missing from a run, one line per gap under a heading (``gaps: none``)."""
    if not gaps:
        return ["gaps: none"]
    return [
        f"gaps ({len(gaps)}), what may be missing:",
        *(f"  {g.municipality or '(no member)'}: {g.text}" for g in gaps),
    ]


@billing.command("void")
@click.argument("run_id")
@click.pass_obj
def void_cmd(settings: BillingSettings, run_id: str) -> None:
    """Void a draft run."""
    with locked_store(
        settings, f"billing void {run_id}", refused=_refused("void", run_id), on_wait=_waiting
    ) as store:
        run = service.void_run(store, run_id, now=datetime.now(UTC))
    click.echo(f"run {run.run_id} is {run.status}")


def _waiting(holder: Holder) -> None:
    click.echo(f"waiting for the billing lock held by {holder.describe()}", err=True)


def _refused(verb: str, run_id: str) -> Callable[[BillingStore | None], str]:
    """How a refusal of ``billing VERB RUN_ID`` begins: the run, its month and municipalities."""

    def refused(store: BillingStore | None) -> str:
        run = store.find_run(run_id) if store else None
        if run is not None:
            return f"billing {verb} of {service.run_label(run)} refused"
        month = re.match(r"\d{4}-\d{2}(?=-)", run_id)  # a run id begins with its month
        return f"billing {verb} of run {run_id}{f' ({month.group()})' if month else ''} refused"

    return refused


@billing.command("unlock")
@click.option("--force", is_flag=True, help="release a lock that is not older than the timeout too")
@click.pass_obj
def unlock_cmd(settings: BillingSettings, force: bool) -> None:
    """Release the billing lock that a command which is no longer running left behind."""
    with open_store(settings) as store:
        holder = unlock(
            store.ch, timeout=timedelta(seconds=settings.billing_lock_timeout_seconds), force=force
        )
        if holder is None:
            click.echo(f"no billing command holds the lock on database {store.ch.database}")
            return
    click.echo(f"released the billing lock held by {holder.describe()}")


def summary_table(lines: Sequence[Line], catalogue: Catalogue, top: int = 3) -> str:
    """Per municipality: total excluding VAT, VAT, and its largest services."""
    amount: dict[str, Decimal] = defaultdict(Decimal)
    vat: dict[str, Decimal] = defaultdict(Decimal)
    per_service: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for line in lines:
        amount[line.municipality] += line.amount
        vat[line.municipality] += line.vat_amount
        per_service[line.municipality][line.service] += line.amount
    currency = catalogue.currency
    rows = [("municipality", f"excl. VAT ({currency})", "VAT", "top services")]
    for code in sorted(amount):
        name = catalogue.municipality(code).name if code in catalogue.municipality_codes else code
        best = sorted(per_service[code].items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        rows.append(
            (
                f"{code} {name}",
                money(amount[code]),
                money(vat[code]),
                ", ".join(f"{s} {money(a)}" for s, a in best),
            )
        )
    rows.append(("total", money(sum(amount.values(), Decimal(0))), money(sum(vat.values(), Decimal(0))), ""))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    out = []
    for i, r in enumerate(rows):
        out.append(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip())
        if i == 0 or i == len(rows) - 2:
            out.append("-" * (sum(widths) + 4 + max(len(r[3]) for r in rows) + 2))
    return "\n".join(out)


@billing.command("validate-einvoice")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def validate_einvoice_cmd(files: tuple[Path, ...]) -> None:
    """Check Peppol invoices and credit notes against the official rules (UBL 2.1 XSD, CEN EN 16931
    and PEPPOL BIS 3.0.19 Schematron in CHARGEBACK_EINVOICE_RULES_DIR); exit 1 on a fatal finding."""
    import sys

    from billing_jobs.einvoice.settings import EInvoiceSettings
    from billing_jobs.einvoice.validator import Validator

    validator = Validator(load_settings(EInvoiceSettings).einvoice_rules_dir)
    fatal = 0
    for path in files:
        validation = validator.validate(path.read_bytes(), str(path))
        for f in validation.findings:
            click.echo(f"{path}: {f.flag} {f.rule} ({f.source}) at {f.location}: {f.text}")
        if validation.schema_missing:
            missing = validation.schema_missing.name
            click.echo(f"{path}: not checked against an XSD: the rules folder has no {missing}")
        fatal += len(validation.fatal)
        warnings = len(validation.warnings)
        click.echo(f"{path}: {len(validation.fatal)} fatal, {warnings} warning{'' if warnings == 1 else 's'}")
    if fatal:
        sys.exit(1)
