"""Why a line costs what it does (docs/contract.md, "Explaining a charge"): pure functions from a
run's stored lines, the period's usage per subject and the catalogue to an explanation per line.

The explanation recomputes every line from its inputs with the same metering and pricing code a
run uses, writes out each step with its own numbers (subject-days ÷ days, tier slices, packages,
the volume tier, the minimum, the index, the key share, the split between cost centres, VAT) and
checks that it arrives at exactly the stored line. When the catalogue or the usage is the one the
run was priced with, a difference is an error (``ExplanationMismatch``); when either has changed
since, the explanation says so and shows the difference instead.

Numbers in the text are Swedish (``2 × 95,00 + 2 × 80,00``, ``26 500 of 132 000 inhabitants``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any, assert_never

from billing_jobs.metering import period_usage
from billing_jobs.model import LATE_USAGE, REPRICED, Line, PeriodTotals, Run, SubjectUsage
from billing_jobs.pricing import (
    apply_minimum,
    key_weights,
    monthly_amount,
    price_amount,
    price_period,
    split_largest_remainder,
)
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
from chargeback.errors import ChargebackError, UserError
from chargeback.money import money, quantity, round_money, round_quantity, swedish, swedish_money
from chargeback.period import Period

ZERO = Decimal(0)
# Subjects shown per line in the text; --json lists them all.
TOP_SUBJECTS = 10


class ExplanationMismatch(ChargebackError):
    """A line recomputed from the same usage and catalogue differs from the stored line."""

    code = "explain.mismatch"


class NothingToExplain(UserError):
    """The run has no line of the municipality, service or cost centre asked for."""

    code = "explain.no_line"


@dataclass(frozen=True)
class Explanation:
    """One line explained: the steps as text, the same as numbers (``facts``), its subjects."""

    line: Line
    steps: tuple[str, ...]
    facts: dict[str, Any]
    subjects: tuple[SubjectUsage, ...] = ()
    # The line as recomputed now; None when nothing recomputes it.
    recomputed: Line | None = None
    # False for a correction: a difference of two pricings, taken as stored.
    checked: bool = True

    @property
    def agrees(self) -> bool:
        """The recomputed line is the stored one (a correction is taken as stored)."""
        return not self.checked or (self.recomputed is not None and _same(self.line, self.recomputed))


@dataclass(frozen=True)
class RunExplanation:
    """A run's explained lines and what a reader must know first (a changed catalogue or usage)."""

    run: Run
    notes: tuple[str, ...]
    lines: tuple[Explanation, ...] = field(default_factory=tuple)


def totals_of(subjects: Iterable[SubjectUsage]) -> list[PeriodTotals]:
    """The period's sums per municipality, cost centre and service, from its subjects."""
    sums: dict[tuple[str, str, str], list[Any]] = defaultdict(lambda: [ZERO, 0, ZERO])
    for s in subjects:
        entry = sums[(s.municipality, s.cost_centre, s.service)]
        entry[0] += s.quantity_sum
        entry[1] += s.days
        entry[2] += s.max_sum
    return [PeriodTotals(m, cc, sv, es, sd, dm) for (m, cc, sv), (es, sd, dm) in sorted(sums.items())]


def explain_run(
    run: Run,
    lines: Sequence[Line],
    catalogue: Catalogue,
    subjects: Sequence[SubjectUsage],
    *,
    catalogue_changed: bool = False,
    usage_changed: bool = False,
    municipality: str | None = None,
    service: str | None = None,
    cost_centre: str | None = None,
) -> RunExplanation:
    """Explain the run's lines (those of ``municipality``, ``service`` and ``cost_centre`` when
    given), recomputed from ``subjects`` (the period's usage, of ``municipality`` at least) and
    ``catalogue``.

    Raises ``ExplanationMismatch`` when a line differs although neither the catalogue nor the usage
    changed since the run was priced."""
    period = Period.parse(run.period)
    notes = []
    if catalogue_changed:
        notes.append(
            f"the catalogue has changed since run {run.run_id} was priced: this explanation uses the "
            "current catalogue, and lines it prices differently say so"
        )
    if usage_changed:
        notes.append(
            f"usage of {run.period} has changed since run {run.run_id} was priced (late usage): this "
            "explanation uses the usage stored now, and lines it measures differently say so"
        )
    usage = period_usage(catalogue, totals_of(subjects), period)
    # Only the asked municipality's usage is needed: a key share depends on the catalogue alone.
    scope = [municipality] if municipality is not None else (run.municipalities or None)
    if scope is not None and run.municipalities:
        scope = [m for m in scope if m in run.municipalities]
    recomputed = {
        (x.municipality, x.cost_centre, x.service): x for x in price_period(catalogue, period, usage, scope)
    }
    per_centre: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(dict)
    for u in usage:
        per_centre[(u.municipality, u.service)][u.cost_centre] = (
            per_centre[(u.municipality, u.service)].get(u.cost_centre, ZERO) + u.quantity
        )
    by_line: dict[tuple[str, str, str], list[SubjectUsage]] = defaultdict(list)
    for s in subjects:
        by_line[(s.municipality, s.cost_centre, s.service)].append(s)

    chosen = [
        x
        for x in lines
        if (municipality is None or x.municipality == municipality)
        and (service is None or x.service == service)
        and (cost_centre is None or x.cost_centre == cost_centre)
    ]
    out = []
    for line in chosen:
        key = (line.municipality, line.cost_centre, line.service)
        if line.corrects_period is not None:
            out.append(_correction(line))
            continue
        again = recomputed.get(key)
        if line.service not in catalogue.price_list_for(period.first_day).prices:
            # The service is gone from the catalogue or retired by the month's list since the run.
            step = f"the catalogue has no price of {line.service} for {run.period} now: nothing to recompute"
            explanation = Explanation(line, (step,), {"agrees": False}, tuple(by_line.get(key, [])), again)
        else:
            explanation = _explain(
                line,
                again,
                catalogue,
                period,
                {cc: q for cc, q in per_centre.get((line.municipality, line.service), {}).items() if q > 0},
                by_line.get(key, []),
            )
        if not explanation.agrees and not (catalogue_changed or usage_changed):
            raise ExplanationMismatch(
                f"line {line.municipality} {line.cost_centre} {line.service} of run {run.run_id} does not "
                f"agree with its recomputation from the same usage and catalogue (stored "
                f"{money(line.amount)}, recomputed {money(again.amount) if again else 'no line'})"
            )
        out.append(explanation)
    return RunExplanation(run, tuple(notes), tuple(out))


def _same(a: Line, b: Line) -> bool:
    return (a.quantity, a.amount, a.vat_amount, a.unit_price, a.price_list) == (
        b.quantity,
        b.amount,
        b.vat_amount,
        b.unit_price,
        b.price_list,
    )


def _correction(line: Line) -> Explanation:
    reason = line.reason or LATE_USAGE
    if REPRICED not in reason:
        how = "the month priced again with the usage stored after it was finalised"
    elif LATE_USAGE in reason:
        how = (
            f"({reason}, asked for with --reprice-invoiced) the month priced again with the usage "
            "stored after it was finalised and the current catalogue"
        )
    else:
        how = (
            f"({reason}, asked for with --reprice-invoiced) the month priced again with the current catalogue"
        )
    step = (
        f"correction of {line.corrects_period}: {how}, less what its final run billed: "
        f"{swedish(line.quantity)} {line.unit}, {swedish_money(line.amount)} {line.currency}"
    )
    facts = {"corrects_period": line.corrects_period, "quantity": quantity(line.quantity), "reason": reason}
    return Explanation(line, (step,), facts, checked=False)


def _explain(
    line: Line,
    again: Line | None,
    catalogue: Catalogue,
    period: Period,
    per_centre: dict[str, Decimal],
    subjects: list[SubjectUsage],
) -> Explanation:
    price_list = catalogue.price_list_for(period.first_day)
    service = catalogue.service(line.service)
    price = price_list.prices[line.service]
    unit, days = line.unit, period.days
    steps: list[str] = []
    facts: dict[str, Any] = {
        "price_list": price_list.version,
        "meter": service.meter,
        "model": price.model,
        "days": days,
    }
    metered = isinstance(price, PerUnit | Package | TieredGraduated | TieredVolume)
    if metered:
        steps.append(_quantity_step(service.meter, subjects, days, unit, facts))
    else:
        what = "a flat fee" if isinstance(price, Flat) else "a share of a distributed cost"
        steps.append(f"quantity: 1 {unit} ({what} per municipality and month)")
    total = sum(per_centre.values(), ZERO)
    if metered and len(per_centre) > 1:
        parts = " + ".join(f"{cc} {swedish(q)}" for cc, q in sorted(per_centre.items()))
        steps.append(f"municipality total: {parts} = {swedish(total)} {unit}")
    facts["municipality_quantity"] = quantity(total) if metered else "1"

    before_minimum = _price_step(price, total, catalogue, period, line.municipality, steps, facts)
    amount = apply_minimum(before_minimum, price.minimum)
    if price.minimum is not None:
        minimum = round_money(price.minimum)
        facts["minimum"] = money(minimum)
        facts["minimum_applied"] = amount != before_minimum
        if amount != before_minimum:
            steps.append(
                f"minimum applied: {swedish_money(before_minimum)} is below the minimum "
                f"{swedish_money(minimum)} → {swedish_money(amount)}"
            )
        else:
            steps.append(f"minimum {swedish_money(minimum)} not applied: {swedish_money(amount)} is above it")
    facts["municipality_amount"] = money(amount)
    index = _index_step(catalogue, price_list.version, line.service, price)
    if index:
        steps.append(index[0])
        facts["index"] = index[1]

    if metered and len(per_centre) > 1:
        shares = split_largest_remainder(amount, per_centre)
        parts = "; ".join(
            f"{cc} {swedish(q)} of {swedish(total)} → {swedish_money(shares[cc])}"
            for cc, q in sorted(per_centre.items())
        )
        steps.append(f"split between cost centres by quantity (largest remainder in öre): {parts}")
        facts["split"] = {
            cc: {"quantity": quantity(q), "amount": money(shares[cc])} for cc, q in sorted(per_centre.items())
        }
    rate = line.vat_rate
    steps.append(
        f"VAT {swedish((rate * 100).normalize())} %: {swedish_money(line.amount)} × "
        f"{swedish(rate.normalize())} = {swedish_money(line.vat_amount)}"
    )
    unit_price = f", unit price {swedish_money(line.unit_price)}" if line.unit_price is not None else ""
    steps.append(
        f"line: {swedish(line.quantity)} {unit}, {swedish_money(line.amount)} {line.currency} "
        f"excl. VAT{unit_price}"
    )
    if again is None:
        steps.append("recomputed now: no such line")
    elif not _same(line, again):
        steps.append(
            f"recomputed now: {swedish(again.quantity)} {unit}, {swedish_money(again.amount)} "
            f"{again.currency} (differs from the stored line)"
        )
    facts.update(
        {
            "quantity": quantity(line.quantity),
            "amount": money(line.amount),
            "vat_rate": quantity(line.vat_rate),
            "vat_amount": money(line.vat_amount),
            "agrees": again is not None and _same(line, again),
        }
    )
    order = _subject_order(service.meter)
    return Explanation(line, tuple(steps), facts, tuple(sorted(subjects, key=order)), again)


def _quantity_step(
    meter: str, subjects: list[SubjectUsage], days: int, unit: str, facts: dict[str, Any]
) -> str:
    if meter == "daily_distinct":
        total: Decimal = Decimal(sum(s.days for s in subjects))
        facts["subject_days"] = int(total)
        what = "subject-days"
    elif meter == "daily_max":
        total = sum((s.max_sum for s in subjects), ZERO)
        facts["unit_days"] = quantity(total)  # GiB-days for storage
        what = f"{unit}-days"
    else:
        total = sum((s.quantity_sum for s in subjects), ZERO)
        facts["subjects"] = len(subjects)
        return f"quantity: Σ quantity of {swedish(Decimal(len(subjects)))} subjects = {swedish(total)} {unit}"
    exact = total / Decimal(days)
    rounded = round_quantity(exact)
    result = swedish(rounded) if rounded == exact else f"{swedish(rounded)} (rounded to 6 decimals)"
    return f"quantity: Σ {what} ÷ days = {swedish(total)} ÷ {days} = {result} {unit}"


def _price_step(
    price: Price,
    total: Decimal,
    catalogue: Catalogue,
    period: Period,
    municipality: str,
    steps: list[str],
    facts: dict[str, Any],
) -> Decimal:
    """Append the price model's step; return the municipality's amount before the minimum."""
    amount = price_amount(price, total)
    match price:
        case PerUnit():
            steps.append(
                f"per unit: {swedish(total)} × {swedish_money(price.unit_price)} = {swedish_money(amount)}"
            )
            facts["unit_price"] = money(price.unit_price)
        case Package():
            packages = (total / price.package_size).to_integral_value(rounding=ROUND_CEILING)
            steps.append(
                f"packages: ceil({swedish(total)} ÷ {swedish(price.package_size)}) = {packages}; "
                f"{packages} × {swedish_money(price.package_price)} = {swedish_money(amount)}"
            )
            facts.update(
                packages=int(packages),
                package_size=quantity(price.package_size),
                package_price=money(price.package_price),
            )
        case TieredGraduated():
            slices, lower = [], ZERO
            for tier in price.tiers:
                upper = total if tier.up_to is None else min(total, tier.up_to)
                if upper > lower:
                    slices.append((upper - lower, tier.unit_price))
                if tier.up_to is None or total <= tier.up_to:
                    break
                lower = tier.up_to
            text = " + ".join(f"{swedish(q)} × {swedish_money(p)}" for q, p in slices) or "0"
            steps.append(f"graduated tiers: {text} = {swedish_money(amount)}")
            facts["slices"] = [{"quantity": quantity(q), "unit_price": money(p)} for q, p in slices]
        case TieredVolume():
            position = next(i for i, t in enumerate(price.tiers) if t.up_to is None or total <= t.up_to)
            tier = price.tiers[position]
            below = price.tiers[position - 1].up_to if position else None
            if tier.up_to is None:
                where = "the only tier" if below is None else f"the tier over {swedish(below)}"
            elif below is None:
                where = f"the tier up to {swedish(tier.up_to)}"
            else:
                where = f"the tier over {swedish(below)} up to {swedish(tier.up_to)}"
            steps.append(
                f"volume: {swedish(total)} is in {where}: {swedish(total)} × "
                f"{swedish_money(tier.unit_price)} = {swedish_money(amount)}"
            )
            facts["volume_tier"] = {
                "tier": position + 1,
                "up_to": quantity(tier.up_to) if tier.up_to is not None else None,
                "unit_price": money(tier.unit_price),
            }
        case Flat():
            steps.append(f"flat: {swedish_money(amount)} per municipality and month")
            facts["flat_amount"] = money(amount)
        case Distributed():
            monthly = monthly_amount(price)
            weights = key_weights(catalogue, period, price.key)
            amount = split_largest_remainder(monthly, weights)[municipality]
            steps.append(
                f"distributed: {swedish_money(price.annual_amount)} a year ÷ 12 = "
                f"{swedish_money(monthly)} a month"
            )
            weight, all_weights = weights[municipality], sum(weights.values(), ZERO)
            if price.key == "equal":
                share = f"an equal share, 1 of {len(weights)} members"
            else:  # inhabitants, or a driver by its name (users)
                share = f"{swedish(weight)} of {swedish(all_weights)} {price.key}"
            steps.append(
                f"key {price.key}: {share} → {swedish_money(monthly)} × {swedish(weight)} ÷ "
                f"{swedish(all_weights)} = {swedish_money(amount)} (largest remainder in öre)"
            )
            facts["key"] = {
                "name": price.key,
                "weight": quantity(weight),
                "total": quantity(all_weights),
                "members": len(weights),
                "monthly_amount": money(monthly),
                "share": money(amount),
            }
        case _:
            assert_never(price)
    return amount


def _money_fields(price: Price) -> list[tuple[str, Decimal]]:
    fields: list[tuple[str, Decimal]] = []
    match price:
        case PerUnit():
            fields.append(("unit price", price.unit_price))
        case Package():
            fields.append(("package price", price.package_price))
        case TieredGraduated() | TieredVolume():
            fields.extend((f"tier {i} unit price", t.unit_price) for i, t in enumerate(price.tiers, 1))
        case Flat():
            fields.append(("amount", price.amount))
        case Distributed():
            fields.append(("annual amount", price.annual_amount))
        case _:
            assert_never(price)
    if price.minimum is not None:
        fields.append(("minimum", price.minimum))
    return fields


def _index_step(
    catalogue: Catalogue, version: str, service_id: str, price: Price
) -> tuple[str, dict[str, Any]] | None:
    """The index step when the price list's price of the service is its base list's indexed."""
    plist = next(p for p in catalogue.price_lists if p.version == version)
    if plist.index_from is None or plist.index is None or service_id in (plist.prices or {}):
        return None
    base = next(p for p in catalogue.price_lists if p.version == plist.index_from)
    base_price = catalogue.price_list_for(base.valid_from).prices.get(service_id)
    if base_price is None:
        return None
    pairs = [
        (name, before, after)
        for (name, before), (_, after) in zip(_money_fields(base_price), _money_fields(price), strict=True)
    ]
    parts = "; ".join(
        f"{name} {swedish_money(a)} × {swedish(plist.index)} = {swedish_money(b)}" for name, a, b in pairs
    )
    text = (
        f"index: price list {version} is list {base.version} × {swedish(plist.index)}, each price "
        f"rounded to öre: {parts}"
    )
    facts = {
        "base_price_list": base.version,
        "index": quantity(plist.index),
        "prices": [{"price": n, "base": money(a), "indexed": money(b)} for n, a, b in pairs],
    }
    return text, facts


def _subject_order(meter: str) -> Any:
    if meter == "daily_distinct":
        return lambda s: (-s.days, s.subject)
    if meter == "daily_max":
        return lambda s: (-s.max_sum, s.subject)
    return lambda s: (-s.quantity_sum, s.subject)


def render_text(explained: RunExplanation, catalogue: Catalogue, top: int = TOP_SUBJECTS) -> str:
    """The explanation as text for a terminal: notes first, then each line, its steps and its
    largest subjects."""
    out = [f"note: {n}" for n in explained.notes]
    for e in explained.lines:
        x = e.line
        name = (
            catalogue.municipality(x.municipality).name
            if x.municipality in catalogue.municipality_codes
            else ""
        )
        service_name = catalogue.service(x.service).name if x.service in catalogue.service_ids else ""
        out.append(
            f"{x.municipality} {name} · {x.cost_centre} · {x.service} ({service_name}) · "
            f"price list {x.price_list}"
        )
        out.extend(f"  {step}" for step in e.steps)
        if e.subjects:
            meter = catalogue.service(x.service).meter if x.service in catalogue.service_ids else "count"
            shown = e.subjects[:top]
            out.append(f"  subjects ({len(shown)} of {len(e.subjects)}):")
            for s in shown:
                out.append(f"    {_subject_text(meter, s, x.unit)}")
    return "\n".join(out) + "\n"


def _subject_text(meter: str, s: SubjectUsage, unit: str) -> str:
    if meter == "daily_distinct":
        measure = f"{s.days} days"
    elif meter == "daily_max":
        measure = f"{swedish(s.max_sum)} {unit}-days"
    else:
        measure = f"{swedish(s.quantity_sum)} {unit}"
    who = ", ".join(
        v for v in (s.detail("subject_name") or s.detail("device_name"), s.detail("subject_user")) if v
    )
    extra = ", ".join(f"{k} {s.detail(k)}" for k in ("channel", "closed") if s.detail(k))
    return "  ".join(p for p in (s.subject, measure, who, extra) if p)


def to_json(explained: RunExplanation) -> dict[str, Any]:
    """The explanation as a JSON-ready document: every line's facts, steps and all its subjects."""
    return {
        "run_id": explained.run.run_id,
        "period": explained.run.period,
        "notes": list(explained.notes),
        "lines": [
            {
                "municipality": e.line.municipality,
                "cost_centre": e.line.cost_centre,
                "service": e.line.service,
                "corrects_period": e.line.corrects_period,
                "steps": list(e.steps),
                **e.facts,
                "subjects": [
                    {
                        "subject": s.subject,
                        "days": s.days,
                        "quantity": quantity(s.quantity_sum),
                        "unit_days": quantity(s.max_sum),
                        **dict(s.details),
                    }
                    for s in e.subjects
                ],
            }
            for e in explained.lines
        ],
    }
