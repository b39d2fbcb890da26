"""``chargeback catalogue ...``: check a catalogue and show the prices that apply to a month."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from chargeback.catalogue import (
    CatalogueError,
    Distributed,
    Flat,
    Package,
    PerUnit,
    Price,
    TieredGraduated,
    TieredVolume,
    load_catalogue,
)
from chargeback.period import Period


@click.group("catalogue")
def catalogue() -> None:
    """Validate the service catalogue and show effective prices."""


@catalogue.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def validate_cmd(file: Path) -> None:
    """Check a catalogue file; every mistake is listed at once, each at its own line (from 1)."""
    try:
        parsed = load_catalogue(file)
    except CatalogueError as exc:
        mistakes = str(exc).splitlines()
        for mistake in mistakes:
            click.echo(mistake, err=True)
        count = "1 mistake" if len(mistakes) == 1 else f"{len(mistakes)} mistakes"
        click.echo(f"{file}: not valid: {count}; correct them and validate again", err=True)
        raise SystemExit(1) from None
    click.echo(
        f"{file}: valid: {len(parsed.municipalities)} municipalities, {len(parsed.services)} services, "
        f"{len(parsed.price_lists)} price lists ({', '.join(p.version for p in parsed.price_lists)})"
    )


def describe(price: Price) -> str:
    """One line for a price, as finance reads it."""
    minimum = f", minimum {price.minimum}" if price.minimum is not None else ""
    match price:
        case PerUnit():
            text = f"{price.unit_price} per unit"
        case Package():
            text = f"{price.package_price} per started {price.package_size}"
        case TieredGraduated() | TieredVolume():
            kind = "graduated" if isinstance(price, TieredGraduated) else "volume"
            tiers = ", ".join(
                f"{'≤ ' + str(t.up_to) if t.up_to is not None else 'above'}: {t.unit_price}"
                for t in price.tiers
            )
            text = f"{kind} tiers ({tiers})"
        case Flat():
            text = f"{price.amount} per municipality and month"
        case Distributed():
            text = f"{price.annual_amount} a year split by {price.key}"
    return text + minimum


@catalogue.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--period", required=True, help="month, YYYY-MM")
@click.option("--json", "as_json", is_flag=True)
def show_cmd(file: Path, period: str, as_json: bool) -> None:
    """The prices that apply to a month, with indexing applied."""
    try:
        month = Period.parse(period)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from exc
    parsed = load_catalogue(file)
    resolved = parsed.price_list_for(month.first_day)
    if as_json:
        doc: dict[str, Any] = {
            "period": str(month),
            "price_list": resolved.version,
            "currency": parsed.currency,
            "prices": {sid: price.model_dump(mode="json") for sid, price in sorted(resolved.prices.items())},
            "retired": list(resolved.retired),
        }
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    click.echo(
        f"{month}: price list {resolved.version} (valid from {resolved.valid_from}), {parsed.currency}"
    )
    for sid, price in sorted(resolved.prices.items()):
        service = parsed.service(sid)
        click.echo(f"  {sid:<20} {service.meter:<15} {service.unit:<5} {describe(price)}")
    for sid in resolved.retired:
        click.echo(f"  {sid:<20} retired")
