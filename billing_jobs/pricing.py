"""Pricing (docs/contract.md, "From quantities to money"): pure functions over Decimal, one pricer per model.

The steps, in order, per municipality and service:

1. total billable quantity = sum of its cost centres' quantities (each rounded to 6 decimals);
2. amount of the model, rounded to öre half-up (``price_amount``);
3. the minimum, as its own step (``apply_minimum``);
4. the split between cost centres by quantity, largest remainder in öre (``split_largest_remainder``);
5. VAT per line, rounded to öre half-up.

``flat`` and ``distributed`` amounts, and minimums without usage, go to cost centre UNALLOCATED.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from decimal import ROUND_CEILING, Decimal
from fractions import Fraction
from typing import assert_never

from billing_jobs.model import Line, Usage, sort_lines
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
from chargeback.errors import UserError
from chargeback.events import DEFAULT_COST_CENTRE
from chargeback.money import round_money, round_quantity
from chargeback.period import Period

ZERO = Decimal(0)


class PricingError(UserError):
    """Usage that cannot be priced, named in one sentence."""

    code = "pricing.invalid"


def price_amount(price: Price, quantity: Decimal) -> Decimal:
    """The amount of a municipality's total quantity under a usage model, rounded to öre."""
    match price:
        case PerUnit():
            return round_money(quantity * price.unit_price)
        case Package():
            packages = (quantity / price.package_size).to_integral_value(rounding=ROUND_CEILING)
            return round_money(packages * price.package_price)
        case TieredGraduated():
            total, lower = ZERO, ZERO
            for tier in price.tiers:
                upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
                if upper > lower:
                    total += (upper - lower) * tier.unit_price
                lower = upper if tier.up_to is None else tier.up_to
                if quantity <= lower:
                    break
            return round_money(total)
        case TieredVolume():
            tier = next(t for t in price.tiers if t.up_to is None or quantity <= t.up_to)
            return round_money(quantity * tier.unit_price)
        case Flat():
            return round_money(price.amount)
        case Distributed():
            return monthly_amount(price)
        case _:
            assert_never(price)


def monthly_amount(price: Distributed) -> Decimal:
    """A distributed price's month: annual_amount / 12 rounded to öre."""
    return round_money(price.annual_amount / 12)


def apply_minimum(amount: Decimal, minimum: Decimal | None) -> Decimal:
    """The charge is at least ``minimum`` (already in öre)."""
    return amount if minimum is None else max(amount, round_money(minimum))


def split_largest_remainder(total: Decimal, weights: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Split ``total`` (öre) in proportion to ``weights``: floors, then the leftover öre one by one to
    the largest remainders, ties to the lower key. The parts add up exactly to ``total``."""
    if total < 0:
        raise ValueError("cannot split a negative amount")
    if total != round_money(total):
        raise ValueError(f"total {total} is not in whole öre")
    weight_sum = sum(weights.values(), ZERO)
    if not weights or weight_sum <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError("weights must be non-negative and not all zero")
    ore = int(total * 100)
    exact = {k: Fraction(ore) * Fraction(w) / Fraction(weight_sum) for k, w in weights.items()}
    parts = {k: int(v) for k, v in exact.items()}  # floor: all values are >= 0
    leftover = ore - sum(parts.values())
    for key in sorted(weights, key=lambda k: (-(exact[k] - parts[k]), k))[:leftover]:
        parts[key] += 1
    return {k: Decimal(v) / 100 for k, v in parts.items()}


def unbilled_usage(catalogue: Catalogue, period: Period, usage: Iterable[Usage]) -> list[str]:
    """Usage of ``period`` that no line bills, one sentence each for the run's summary: a
    municipality not in the catalogue (removed) or not a member that month, a service not in the
    catalogue or retired by the month's price list. It is never a reason to stop billing others."""
    price_list = catalogue.price_list_for(period.first_day)
    members = set(catalogue.members(period))
    found: dict[str, Decimal] = defaultdict(Decimal)
    for u in usage:
        if u.quantity <= 0:
            continue
        if u.municipality not in catalogue.municipality_codes:
            reason = f"municipality {u.municipality} is not in the catalogue"
        elif u.municipality not in members:
            m = catalogue.municipality(u.municipality)
            dates = ", ".join(
                f"{k} {v}" for k, v in (("joined", m.joined), ("left", m.left)) if v is not None
            )
            reason = f"municipality {u.municipality} was not a member in {period} ({dates})"
        elif u.service not in catalogue.service_ids:
            reason = f"service {u.service} is not in the catalogue"
        elif u.service in price_list.retired:
            reason = f"service {u.service} is retired in price list {price_list.version}"
        else:
            continue
        found[f"usage of {u.service} by {u.municipality} in {period} is not billed: {reason}"] += u.quantity
    return [f"{text} (quantity {round_quantity(q)})" for text, q in sorted(found.items())]


def key_weights(catalogue: Catalogue, period: Period, key: str) -> dict[str, Decimal]:
    """The distribution key of a month: each member of the month, weighted by its inhabitants in
    force on the month's first day (``inhabitants``), by 1 (``equal``), or by the value of the
    driver of that name in force on that day (``users``: ``drivers: {users: N}``)."""
    weights: dict[str, Decimal] = {}
    for code in catalogue.members(period):
        if key == "equal":
            weights[code] = Decimal(1)
            continue
        municipality = catalogue.municipality(code)
        if key == "inhabitants":
            value = municipality.inhabitants_on(period.first_day)
        else:
            value = municipality.driver_on(key, period.first_day)
        if value is None:
            raise PricingError(
                f"municipality {code} has no {key} in force on {period.first_day} (the key of "
                f"{period}); give it a value from that date in the catalogue"
            )
        weights[code] = Decimal(value)
    return weights


def price_period(
    catalogue: Catalogue,
    period: Period,
    usage: Iterable[Usage],
    municipalities: Collection[str] | None = None,
) -> list[Line]:
    """Every line of a period, sorted by municipality, cost centre and service.

    Only the members of the month (``Catalogue.members``) are billed and count in distribution
    keys; ``municipalities`` narrows that further. Usage that no line can bill (``unbilled_usage``)
    is left out, not an error."""
    price_list = catalogue.price_list_for(period.first_day)
    if municipalities is not None:
        unknown = sorted(set(municipalities) - set(catalogue.municipality_codes))
        if unknown:
            raise PricingError(f"municipality {unknown[0]} is not in the catalogue")
    members = set(catalogue.members(period))
    scope = members if municipalities is None else members & set(municipalities)

    quantities: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for u in usage:
        if u.municipality in scope and u.service in price_list.prices:
            quantities[(u.municipality, u.service)][u.cost_centre] += round_quantity(u.quantity)

    lines: list[Line] = []

    def emit(
        municipality: str, cost_centre: str, service_id: str, quantity: Decimal, amount: Decimal
    ) -> None:
        if quantity <= 0 and amount <= 0:
            return
        service = catalogue.service(service_id)
        lines.append(
            Line(
                municipality=municipality,
                cost_centre=cost_centre,
                service=service_id,
                quantity=quantity,
                unit=service.unit,
                unit_price=round_money(amount / quantity) if quantity > 0 else None,
                amount=amount,
                vat_rate=service.vat_rate,
                vat_amount=round_money(amount * service.vat_rate),
                currency=catalogue.currency,
                price_list=price_list.version,
            )
        )

    for service_id, price in sorted(price_list.prices.items()):
        match price:
            case Distributed():
                if not scope:
                    continue
                shares = split_largest_remainder(
                    monthly_amount(price), key_weights(catalogue, period, price.key)
                )
                for code in sorted(scope):
                    emit(
                        code,
                        DEFAULT_COST_CENTRE,
                        service_id,
                        Decimal(1),
                        apply_minimum(shares[code], price.minimum),
                    )
            case Flat():
                for code in sorted(scope):
                    emit(
                        code,
                        DEFAULT_COST_CENTRE,
                        service_id,
                        Decimal(1),
                        apply_minimum(price_amount(price, ZERO), price.minimum),
                    )
            case PerUnit() | Package() | TieredGraduated() | TieredVolume():
                for code in sorted(scope):
                    per_centre = {cc: q for cc, q in quantities.get((code, service_id), {}).items() if q > 0}
                    total = sum(per_centre.values(), ZERO)
                    amount = apply_minimum(price_amount(price, total), price.minimum)
                    if total == 0:
                        emit(code, DEFAULT_COST_CENTRE, service_id, ZERO, amount)
                        continue
                    for cc, part in split_largest_remainder(amount, per_centre).items():
                        emit(code, cc, service_id, per_centre[cc], part)
            case _:
                assert_never(price)
    return sort_lines(lines)
