"""Why a line costs what it does (docs/contract.md, "Explaining a charge"): pure functions from a
run's stored lines, the period's usage per subject and the catalogue to an explanation per line.

The explanation recomputes every line from its inputs with the same metering and pricing code a
run uses, writes out each step with its own numbers (subject-days ÷ days, tier slices, packages,
the volume tier, the minimum, the index, the key share, the split between cost centres, VAT) and
checks that it arrives at exactly the stored line. When the catalogue or the usage is the one the
run was priced with, a difference is an error (``ExplanationMismatch``); when either has changed
since, the explanation says so and shows the difference instead.

The text is in the catalogue's language (``Catalogue.report_locale``: Swedish, Norwegian bokmål for
a NOK catalogue), its phrases in ``PHRASES``; numbers are grouped by three with a space and have a
decimal comma in both (``2 × 95,00 + 2 × 80,00``, ``26 500 av 132 000 invånare``). ``--json`` keeps
its keys and facts; its ``steps`` are the same text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
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

# The explanation's phrases per language of the catalogue's locale (sv, nb).
PHRASES: Mapping[str, Mapping[str, str]] = {
    "sv": {
        "note": "obs: {note}",
        "catalogue_changed": "katalogen har ändrats sedan körning {run} prissattes: förklaringen använder "
        "den nuvarande katalogen, och rader som den prissätter annorlunda säger det",
        "usage_changed": "användningen för {period} har ändrats sedan körning {run} prissattes (sen "
        "användning): förklaringen använder användningen som är lagrad nu, och rader som den mäter "
        "annorlunda säger det",
        "no_price": "katalogen har inget pris för {service} för {period} nu: inget att räkna om",
        "how_late": "månaden prissatt på nytt med användningen som lagrats efter att den slutfördes",
        "how_late_repriced": "({reason}, begärt med --reprice-invoiced) månaden prissatt på nytt med "
        "användningen som lagrats efter att den slutfördes och den nuvarande katalogen",
        "how_repriced": "({reason}, begärt med --reprice-invoiced) månaden prissatt på nytt med den "
        "nuvarande katalogen",
        "correction": "rättelse av {period}: {how}, minus det som dess slutliga körning fakturerade: "
        "{quantity} {unit}, {amount} {currency}",
        "flat_what": "en fast avgift",
        "distributed_what": "en andel av en fördelad kostnad",
        "one": "antal: 1 {unit} ({what} per kommun och månad)",
        "municipality_total": "kommunens summa: {parts} = {total} {unit}",
        "minimum_applied": "minimiavgift tillämpad: {before} är under minimiavgiften {minimum} → {amount}",
        "minimum_not_applied": "minimiavgift {minimum} inte tillämpad: {amount} är över den",
        "split_part": "{cc} {quantity} av {total} → {amount}",
        "split": "fördelat på kostnadsställen efter antal (största rest i öre): {parts}",
        "vat": "moms {percent} %: {amount} × {rate} = {vat}",
        "unit_price": ", à-pris {price}",
        "line": "rad: {quantity} {unit}, {amount} {currency} exkl. moms{unit_price}",
        "recomputed_none": "omräknad nu: ingen sådan rad",
        "recomputed_differs": "omräknad nu: {quantity} {unit}, {amount} {currency} (skiljer sig från den "
        "lagrade raden)",
        "subject_days": "enhetsdagar",
        "unit_days": "{unit}-dagar",
        "count": "antal: Σ antal för {subjects} objekt = {total} {unit}",
        "per_day": "antal: Σ {what} ÷ dagar = {total} ÷ {days} = {result} {unit}",
        "rounded": "{quantity} (avrundat till 6 decimaler)",
        "per_unit": "per enhet: {quantity} × {price} = {amount}",
        "packages": "paket: ceil({quantity} ÷ {size}) = {packages}; {packages} × {price} = {amount}",
        "graduated": "trappa: {slices} = {amount}",
        "only_tier": "den enda nivån",
        "tier_over": "nivån över {below}",
        "tier_up_to": "nivån upp till {up_to}",
        "tier_between": "nivån över {below} upp till {up_to}",
        "volume": "volym: {quantity} ligger i {where}: {quantity} × {price} = {amount}",
        "flat": "fast avgift: {amount} per kommun och månad",
        "distributed": "fördelad kostnad: {annual} per år ÷ 12 = {monthly} per månad",
        "equal_share": "lika andel, 1 av {members} medlemmar",
        "key_share": "{weight} av {total} {key}",
        "key": "nyckel {key}: {share} → {monthly} × {weight} ÷ {total} = {amount} (största rest i öre)",
        "key_inhabitants": "invånare",
        "key_users": "användare",
        "price_unit price": "à-pris",
        "price_package price": "paketpris",
        "price_tier unit price": "à-pris nivå {tier}",
        "price_amount": "belopp",
        "price_annual amount": "årsbelopp",
        "price_minimum": "minimiavgift",
        "index_price": "{name} {base} × {index} = {indexed}",
        "index": "index: prislista {version} är prislista {base} × {index}, varje pris avrundat till öre: "
        "{parts}",
        "header": "{municipality} {name} · {cost_centre} · {service} ({service_name}) · prislista {version}",
        "subjects": "objekt ({shown} av {all}):",
        "days": "{days} dagar",
        "channel": "kanal",
        "closed": "stängt",
    },
    "nb": {
        "note": "merk: {note}",
        "catalogue_changed": "katalogen er endret siden kjøring {run} ble priset: forklaringen bruker den "
        "nåværende katalogen, og linjer den priser annerledes, sier det",
        "usage_changed": "bruken for {period} er endret siden kjøring {run} ble priset (sen bruk): "
        "forklaringen bruker bruken som er lagret nå, og linjer den måler annerledes, sier det",
        "no_price": "katalogen har ingen pris for {service} for {period} nå: ingenting å beregne på nytt",
        "how_late": "måneden priset på nytt med bruken som ble lagret etter at den ble avsluttet",
        "how_late_repriced": "({reason}, bedt om med --reprice-invoiced) måneden priset på nytt med bruken "
        "som ble lagret etter at den ble avsluttet, og den nåværende katalogen",
        "how_repriced": "({reason}, bedt om med --reprice-invoiced) måneden priset på nytt med den "
        "nåværende katalogen",
        "correction": "korrigering av {period}: {how}, minus det den endelige kjøringen fakturerte: "
        "{quantity} {unit}, {amount} {currency}",
        "flat_what": "en fast avgift",
        "distributed_what": "en andel av en fordelt kostnad",
        "one": "antall: 1 {unit} ({what} per kommune og måned)",
        "municipality_total": "kommunens sum: {parts} = {total} {unit}",
        "minimum_applied": "minimumsavgift brukt: {before} er under minimumsavgiften {minimum} → {amount}",
        "minimum_not_applied": "minimumsavgift {minimum} ikke brukt: {amount} er over den",
        "split_part": "{cc} {quantity} av {total} → {amount}",
        "split": "fordelt på koststeder etter antall (største rest i øre): {parts}",
        "vat": "mva. {percent} %: {amount} × {rate} = {vat}",
        "unit_price": ", enhetspris {price}",
        "line": "linje: {quantity} {unit}, {amount} {currency} ekskl. mva.{unit_price}",
        "recomputed_none": "beregnet på nytt nå: ingen slik linje",
        "recomputed_differs": "beregnet på nytt nå: {quantity} {unit}, {amount} {currency} (avviker fra den "
        "lagrede linjen)",
        "subject_days": "enhetsdager",
        "unit_days": "{unit}-dager",
        "count": "antall: Σ antall for {subjects} objekter = {total} {unit}",
        "per_day": "antall: Σ {what} ÷ dager = {total} ÷ {days} = {result} {unit}",
        "rounded": "{quantity} (avrundet til 6 desimaler)",
        "per_unit": "per enhet: {quantity} × {price} = {amount}",
        "packages": "pakker: ceil({quantity} ÷ {size}) = {packages}; {packages} × {price} = {amount}",
        "graduated": "trapp: {slices} = {amount}",
        "only_tier": "det eneste nivået",
        "tier_over": "nivået over {below}",
        "tier_up_to": "nivået opptil {up_to}",
        "tier_between": "nivået over {below} opptil {up_to}",
        "volume": "volum: {quantity} ligger i {where}: {quantity} × {price} = {amount}",
        "flat": "fast avgift: {amount} per kommune og måned",
        "distributed": "fordelt kostnad: {annual} per år ÷ 12 = {monthly} per måned",
        "equal_share": "lik andel, 1 av {members} medlemmer",
        "key_share": "{weight} av {total} {key}",
        "key": "nøkkel {key}: {share} → {monthly} × {weight} ÷ {total} = {amount} (største rest i øre)",
        "key_inhabitants": "innbyggere",
        "key_users": "brukere",
        "price_unit price": "enhetspris",
        "price_package price": "pakkepris",
        "price_tier unit price": "enhetspris nivå {tier}",
        "price_amount": "beløp",
        "price_annual amount": "årsbeløp",
        "price_minimum": "minimumsavgift",
        "index_price": "{name} {base} × {index} = {indexed}",
        "index": "indeks: prisliste {version} er prisliste {base} × {index}, hver pris avrundet til øre: "
        "{parts}",
        "header": "{municipality} {name} · {cost_centre} · {service} ({service_name}) · prisliste {version}",
        "subjects": "objekter ({shown} av {all}):",
        "days": "{days} dager",
        "channel": "kanal",
        "closed": "lukket",
    },
}


def phrases(catalogue: Catalogue) -> Mapping[str, str]:
    """The explanation's phrases in the language of the catalogue's locale (Swedish for a language
    without its own)."""
    return PHRASES.get(catalogue.report_locale.split("_")[0], PHRASES["sv"])


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
    w = phrases(catalogue)
    notes = []
    if catalogue_changed:
        notes.append(w["catalogue_changed"].format(run=run.run_id))
    if usage_changed:
        notes.append(w["usage_changed"].format(run=run.run_id, period=run.period))
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
            out.append(_correction(line, w))
            continue
        again = recomputed.get(key)
        if line.service not in catalogue.price_list_for(period.first_day).prices:
            # The service is gone from the catalogue or retired by the month's list since the run.
            step = w["no_price"].format(service=line.service, period=run.period)
            explanation = Explanation(line, (step,), {"agrees": False}, tuple(by_line.get(key, [])), again)
        else:
            explanation = _explain(
                line,
                again,
                catalogue,
                period,
                {cc: q for cc, q in per_centre.get((line.municipality, line.service), {}).items() if q > 0},
                by_line.get(key, []),
                w,
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


def _correction(line: Line, w: Mapping[str, str]) -> Explanation:
    reason = line.reason or LATE_USAGE
    if REPRICED not in reason:
        how = w["how_late"]
    elif LATE_USAGE in reason:
        how = w["how_late_repriced"].format(reason=reason)
    else:
        how = w["how_repriced"].format(reason=reason)
    step = w["correction"].format(
        period=line.corrects_period,
        how=how,
        quantity=swedish(line.quantity),
        unit=line.unit,
        amount=swedish_money(line.amount),
        currency=line.currency,
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
    w: Mapping[str, str],
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
        steps.append(_quantity_step(service.meter, subjects, days, unit, facts, w))
    else:
        what = w["flat_what"] if isinstance(price, Flat) else w["distributed_what"]
        steps.append(w["one"].format(unit=unit, what=what))
    total = sum(per_centre.values(), ZERO)
    if metered and len(per_centre) > 1:
        parts = " + ".join(f"{cc} {swedish(q)}" for cc, q in sorted(per_centre.items()))
        steps.append(w["municipality_total"].format(parts=parts, total=swedish(total), unit=unit))
    facts["municipality_quantity"] = quantity(total) if metered else "1"

    before_minimum = _price_step(price, total, catalogue, period, line.municipality, steps, facts, w)
    amount = apply_minimum(before_minimum, price.minimum)
    if price.minimum is not None:
        minimum = round_money(price.minimum)
        facts["minimum"] = money(minimum)
        facts["minimum_applied"] = amount != before_minimum
        if amount != before_minimum:
            steps.append(
                w["minimum_applied"].format(
                    before=swedish_money(before_minimum),
                    minimum=swedish_money(minimum),
                    amount=swedish_money(amount),
                )
            )
        else:
            steps.append(
                w["minimum_not_applied"].format(minimum=swedish_money(minimum), amount=swedish_money(amount))
            )
    facts["municipality_amount"] = money(amount)
    index = _index_step(catalogue, price_list.version, line.service, price, w)
    if index:
        steps.append(index[0])
        facts["index"] = index[1]

    if metered and len(per_centre) > 1:
        shares = split_largest_remainder(amount, per_centre)
        parts = "; ".join(
            w["split_part"].format(
                cc=cc, quantity=swedish(q), total=swedish(total), amount=swedish_money(shares[cc])
            )
            for cc, q in sorted(per_centre.items())
        )
        steps.append(w["split"].format(parts=parts))
        facts["split"] = {
            cc: {"quantity": quantity(q), "amount": money(shares[cc])} for cc, q in sorted(per_centre.items())
        }
    rate = line.vat_rate
    steps.append(
        w["vat"].format(
            percent=swedish((rate * 100).normalize()),
            amount=swedish_money(line.amount),
            rate=swedish(rate.normalize()),
            vat=swedish_money(line.vat_amount),
        )
    )
    unit_price = (
        w["unit_price"].format(price=swedish_money(line.unit_price)) if line.unit_price is not None else ""
    )
    steps.append(
        w["line"].format(
            quantity=swedish(line.quantity),
            unit=unit,
            amount=swedish_money(line.amount),
            currency=line.currency,
            unit_price=unit_price,
        )
    )
    if again is None:
        steps.append(w["recomputed_none"])
    elif not _same(line, again):
        steps.append(
            w["recomputed_differs"].format(
                quantity=swedish(again.quantity),
                unit=unit,
                amount=swedish_money(again.amount),
                currency=again.currency,
            )
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
    meter: str,
    subjects: list[SubjectUsage],
    days: int,
    unit: str,
    facts: dict[str, Any],
    w: Mapping[str, str],
) -> str:
    if meter == "daily_distinct":
        total: Decimal = Decimal(sum(s.days for s in subjects))
        facts["subject_days"] = int(total)
        what = w["subject_days"]
    elif meter == "daily_max":
        total = sum((s.max_sum for s in subjects), ZERO)
        facts["unit_days"] = quantity(total)  # GiB-days for storage
        what = w["unit_days"].format(unit=unit)
    else:
        total = sum((s.quantity_sum for s in subjects), ZERO)
        facts["subjects"] = len(subjects)
        return w["count"].format(subjects=swedish(Decimal(len(subjects))), total=swedish(total), unit=unit)
    exact = total / Decimal(days)
    rounded = round_quantity(exact)
    result = swedish(rounded) if rounded == exact else w["rounded"].format(quantity=swedish(rounded))
    return w["per_day"].format(what=what, total=swedish(total), days=days, result=result, unit=unit)


def _price_step(
    price: Price,
    total: Decimal,
    catalogue: Catalogue,
    period: Period,
    municipality: str,
    steps: list[str],
    facts: dict[str, Any],
    w: Mapping[str, str],
) -> Decimal:
    """Append the price model's step; return the municipality's amount before the minimum."""
    amount = price_amount(price, total)
    match price:
        case PerUnit():
            steps.append(
                w["per_unit"].format(
                    quantity=swedish(total),
                    price=swedish_money(price.unit_price),
                    amount=swedish_money(amount),
                )
            )
            facts["unit_price"] = money(price.unit_price)
        case Package():
            packages = (total / price.package_size).to_integral_value(rounding=ROUND_CEILING)
            steps.append(
                w["packages"].format(
                    quantity=swedish(total),
                    size=swedish(price.package_size),
                    packages=packages,
                    price=swedish_money(price.package_price),
                    amount=swedish_money(amount),
                )
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
            steps.append(w["graduated"].format(slices=text, amount=swedish_money(amount)))
            facts["slices"] = [{"quantity": quantity(q), "unit_price": money(p)} for q, p in slices]
        case TieredVolume():
            position = next(i for i, t in enumerate(price.tiers) if t.up_to is None or total <= t.up_to)
            tier = price.tiers[position]
            below = price.tiers[position - 1].up_to if position else None
            if tier.up_to is None:
                where = w["only_tier"] if below is None else w["tier_over"].format(below=swedish(below))
            elif below is None:
                where = w["tier_up_to"].format(up_to=swedish(tier.up_to))
            else:
                where = w["tier_between"].format(below=swedish(below), up_to=swedish(tier.up_to))
            steps.append(
                w["volume"].format(
                    quantity=swedish(total),
                    where=where,
                    price=swedish_money(tier.unit_price),
                    amount=swedish_money(amount),
                )
            )
            facts["volume_tier"] = {
                "tier": position + 1,
                "up_to": quantity(tier.up_to) if tier.up_to is not None else None,
                "unit_price": money(tier.unit_price),
            }
        case Flat():
            steps.append(w["flat"].format(amount=swedish_money(amount)))
            facts["flat_amount"] = money(amount)
        case Distributed():
            monthly = monthly_amount(price)
            weights = key_weights(catalogue, period, price.key)
            amount = split_largest_remainder(monthly, weights)[municipality]
            steps.append(
                w["distributed"].format(
                    annual=swedish_money(price.annual_amount), monthly=swedish_money(monthly)
                )
            )
            weight, all_weights = weights[municipality], sum(weights.values(), ZERO)
            if price.key == "equal":
                share = w["equal_share"].format(members=len(weights))
            else:  # inhabitants, or a driver by its name (users)
                share = w["key_share"].format(
                    weight=swedish(weight),
                    total=swedish(all_weights),
                    key=w.get(f"key_{price.key}", price.key),
                )
            steps.append(
                w["key"].format(
                    key=price.key,
                    share=share,
                    monthly=swedish_money(monthly),
                    weight=swedish(weight),
                    total=swedish(all_weights),
                    amount=swedish_money(amount),
                )
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
    catalogue: Catalogue, version: str, service_id: str, price: Price, w: Mapping[str, str]
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
        w["index_price"].format(
            name=_price_name(name, w),
            base=swedish_money(a),
            index=swedish(plist.index),
            indexed=swedish_money(b),
        )
        for name, a, b in pairs
    )
    text = w["index"].format(version=version, base=base.version, index=swedish(plist.index), parts=parts)
    facts = {
        "base_price_list": base.version,
        "index": quantity(plist.index),
        "prices": [{"price": n, "base": money(a), "indexed": money(b)} for n, a, b in pairs],
    }
    return text, facts


def _price_name(name: str, w: Mapping[str, str]) -> str:
    """A price's name (``tier 2 unit price``) in the explanation's language."""
    if name.startswith("tier "):
        return w["price_tier unit price"].format(tier=name.split(" ")[1])
    return w.get(f"price_{name}", name)


def _subject_order(meter: str) -> Any:
    if meter == "daily_distinct":
        return lambda s: (-s.days, s.subject)
    if meter == "daily_max":
        return lambda s: (-s.max_sum, s.subject)
    return lambda s: (-s.quantity_sum, s.subject)


def render_text(explained: RunExplanation, catalogue: Catalogue, top: int = TOP_SUBJECTS) -> str:
    """The explanation as text for a terminal: notes first, then each line, its steps and its
    largest subjects."""
    w = phrases(catalogue)
    out = [w["note"].format(note=n) for n in explained.notes]
    for e in explained.lines:
        x = e.line
        name = (
            catalogue.municipality(x.municipality).name
            if x.municipality in catalogue.municipality_codes
            else ""
        )
        service_name = catalogue.service(x.service).name if x.service in catalogue.service_ids else ""
        out.append(
            w["header"].format(
                municipality=x.municipality,
                name=name,
                cost_centre=x.cost_centre,
                service=x.service,
                service_name=service_name,
                version=x.price_list,
            )
        )
        out.extend(f"  {step}" for step in e.steps)
        if e.subjects:
            meter = catalogue.service(x.service).meter if x.service in catalogue.service_ids else "count"
            shown = e.subjects[:top]
            out.append("  " + w["subjects"].format(shown=len(shown), all=len(e.subjects)))
            for s in shown:
                out.append(f"    {_subject_text(meter, s, x.unit, w)}")
    return "\n".join(out) + "\n"


def _subject_text(meter: str, s: SubjectUsage, unit: str, w: Mapping[str, str]) -> str:
    if meter == "daily_distinct":
        measure = w["days"].format(days=s.days)
    elif meter == "daily_max":
        measure = f"{swedish(s.max_sum)} {w['unit_days'].format(unit=unit)}"
    else:
        measure = f"{swedish(s.quantity_sum)} {unit}"
    who = ", ".join(
        v for v in (s.detail("subject_name") or s.detail("device_name"), s.detail("subject_user")) if v
    )
    extra = ", ".join(f"{w[k]} {s.detail(k)}" for k in ("channel", "closed") if s.detail(k))
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
