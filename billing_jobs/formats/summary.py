"""A line's explanation in one sentence, for member reports: how its quantity was counted and how
its amount was priced, with its own numbers in the report's locale, e.g.
``448,32 st = 13 898 enhetsdagar ÷ 31 dagar × 310,00 kr``.

Everything is read from the run's lines and the catalogue (the price list the run used), never
from the warehouse, so the sentence explains exactly what was billed: a ``daily_distinct``
quantity times the month's days is its subject-days (exact: quantities keep six decimals), a
``daily_max`` quantity times the days is its GiB-days, to the öre-like two decimals shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from billing_jobs.formats.local import Local
from billing_jobs.model import Line
from chargeback.catalogue import (
    Catalogue,
    Distributed,
    Flat,
    Package,
    PerUnit,
    Price,
    TieredGraduated,
    TieredVolume,
)
from chargeback.period import Period

ZERO = Decimal(0)


def _raw_amount(price: Price, total: Decimal) -> Decimal | None:
    """The amount of the municipality's total before the minimum (None for flat and distributed)."""
    match price:
        case PerUnit():
            return (total * price.unit_price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        case Package():
            packages = (total / price.package_size).to_integral_value(rounding=ROUND_CEILING)
            return packages * price.package_price
        case TieredGraduated():
            amount, lower = ZERO, ZERO
            for tier in price.tiers:
                upper = total if tier.up_to is None else min(total, tier.up_to)
                if upper > lower:
                    amount += (upper - lower) * tier.unit_price
                lower = upper if tier.up_to is None else tier.up_to
                if total <= lower:
                    break
            return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        case TieredVolume():
            tier = next(t for t in price.tiers if t.up_to is None or total <= t.up_to)
            return (total * tier.unit_price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        case _:
            return None


def _quantity_part(line: Line, meter: str, period: Period, local: Local) -> str:
    w = local.words
    shown = f"{local.number(line.quantity)} {line.unit}"
    if meter == "daily_distinct":
        subject_days = (line.quantity * period.days).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return f"{shown} = {local.whole(subject_days)} {w['subject_days']} ÷ {period.days} {w['days']}"
    if meter == "daily_max":
        unit_days = w["unit_days"].format(unit=line.unit)
        return (
            f"{shown} = {local.number(line.quantity * period.days)} {unit_days} ÷ {period.days} {w['days']}"
        )
    return f"{local.whole(line.quantity)} {line.unit} ({w['counted']})"


def _price_part(price: Price, total: Decimal, unit: str, local: Local) -> str:
    w = local.words
    match price:
        case PerUnit():
            return f" × {local.price(price.unit_price)}"
        case Package():
            packages = (total / price.package_size).to_integral_value(rounding=ROUND_CEILING)
            return (
                f"; ⌈{local.whole(total)} ÷ {local.whole(price.package_size)}⌉ = {local.whole(packages)} "
                f"{w['packages']} × {local.price(price.package_price)}"
            )
        case TieredGraduated():
            slices, lower = [], ZERO
            for tier in price.tiers:
                upper = total if tier.up_to is None else min(total, tier.up_to)
                if upper > lower:
                    slices.append(f"{local.whole(upper - lower)} × {local.price(tier.unit_price)}")
                lower = upper if tier.up_to is None else tier.up_to
                if total <= lower:
                    break
            return f"; {w['tiers']} {local.whole(total)} {unit}: " + " + ".join(slices)
        case TieredVolume():
            index = next(i for i, t in enumerate(price.tiers) if t.up_to is None or total <= t.up_to)
            tier = price.tiers[index]
            if tier.up_to is not None:
                reach = f"{w['up_to']} {local.whole(tier.up_to)}"
            else:
                below = price.tiers[index - 1].up_to if index else ZERO
                reach = f"{w['above']} {local.whole(below or ZERO)}"
            reached = local.whole(total) if total == total.to_integral_value() else local.number(total)
            return f"; {w['volume_tier']} {reach} {unit} ({reached} {unit}) × {local.price(tier.unit_price)}"
        case _:
            return ""


def line_summary(
    line: Line, month_lines: Sequence[Line], catalogue: Catalogue, period: Period, local: Local
) -> str:
    """The sentence for one of a month's own lines; ``month_lines`` are that municipality's lines of
    the same service in the same run (the cost centres it was split between)."""
    w = local.words
    service = catalogue.service(line.service) if line.service in catalogue.service_ids else None
    plist = next((p for p in catalogue.price_lists if p.version == line.price_list), None)
    try:
        price = catalogue.price_list_for(period.first_day).prices.get(line.service)
    except ValueError:
        price = None
    if service is None or price is None:
        return ""
    month_amount = sum((x.amount for x in month_lines), ZERO)
    parts: list[str] = []
    match price:
        case Flat():
            parts.append(f"{w['flat']} {local.money(price.amount)} {w['per_month']}")
        case Distributed():
            monthly = (price.annual_amount / 12).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            members = catalogue.members(period)
            if price.key == "equal":
                share = f"1 / {len(members)} {w['members_equal']}"
            else:
                # inhabitants, or a driver of the catalogue's (drivers: {users: N}) by its name
                weights = {
                    c: (
                        catalogue.municipality(c).inhabitants_on(period.first_day)
                        if price.key == "inhabitants"
                        else catalogue.municipality(c).driver_on(price.key, period.first_day)
                    )
                    or 0
                    for c in members
                }
                own, whole = weights.get(line.municipality, 0), sum(weights.values())
                share = f"{local.whole(own)} / {local.whole(whole)} {w.get(price.key, price.key)}"
            parts.append(f"{share} × {local.money(monthly)} {w['per_month']}")
        case _:
            total = sum((x.quantity for x in month_lines), ZERO)
            parts.append(
                _quantity_part(line, service.meter, period, local)
                + _price_part(price, total, line.unit, local)
            )
            raw = _raw_amount(price, total)
            if price.minimum is not None and raw is not None and raw < price.minimum == month_amount:
                parts.append(w["minimum"].format(amount=local.money(price.minimum)))
            used = [x for x in month_lines if x.quantity > 0]
            if len(used) > 1:
                parts.append(w["split"].format(part=local.number(line.quantity), whole=local.number(total)))
    if plist is not None and plist.index_from and plist.index and line.service not in (plist.prices or {}):
        parts.append(w["index"].format(base=plist.index_from, index=local.whole(plist.index)))
    return "; ".join(parts)


__all__ = ["line_summary"]
