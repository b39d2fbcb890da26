"""Benchmark: price and export a national-scale month in one process, no database in the way.

290 municipalities × 40 services × 20 cost centres (232,000 usage rows): the catalogue is
generated, the usage is priced with the spec's rules and rendered as the CSV export.

    .venv/bin/python bench/billing_run.py

Prints the time of each step; the target is under 10 s for the whole run on a 2-core machine.
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from billing_jobs.formats import FORMATS, ExportContext, Seller
from billing_jobs.formats.csv import render_csv
from billing_jobs.model import Run, Usage
from billing_jobs.pricing import price_period
from chargeback.catalogue import parse_catalogue
from chargeback.period import Period

MODELS = [
    '{model: per_unit, unit_price: "310.00"}',
    '{model: package, package_size: "100", package_price: "450.00"}',
    "{model: tiered_graduated, tiers: "
    '[{up_to: "200", unit_price: "95.00"}, {up_to: null, unit_price: "80.00"}]}',
    "{model: tiered_volume, tiers: "
    '[{up_to: "1000", unit_price: "260.00"}, {up_to: null, unit_price: "240.00"}]}',
]


def catalogue_text(municipalities: int, services: int) -> str:
    lines = ["currency: SEK", "timezone: Europe/Stockholm", "municipalities:"]
    lines += [
        f'  - {{code: "{1000 + i}", name: M{i}, inhabitants: {5000 + i * 97}}}' for i in range(municipalities)
    ]
    lines.append("services:")
    lines += [
        f'  - {{id: s{i:02d}, name: S{i}, meter: count, unit: st, vat_rate: "0.25", account: "30{i:02d}"}}'
        for i in range(services)
    ]
    lines += ["price_lists:", '  - version: "2026"', "    valid_from: 2026-01-01", "    prices:"]
    for i in range(services):
        model = (
            MODELS[i % len(MODELS)]
            if i < services - 2
            else (
                '{model: flat, amount: "1000.00"}'
                if i == services - 2
                else '{model: distributed, annual_amount: "12000000.00", key: inhabitants}'
            )
        )
        lines.append(f"      s{i:02d}: {model}")
    return "\n".join(lines) + "\n"


def main() -> None:
    t0 = time.perf_counter()
    catalogue = parse_catalogue(catalogue_text(290, 40), "national.yaml")
    rng = random.Random(1)
    usage = [
        Usage(m.code, f"CC{c:02d}", f"s{s:02d}", Decimal(rng.randrange(0, 5_000_000)) / 1000)
        for m in catalogue.municipalities
        for s in range(38)
        for c in range(20)
    ]
    t1 = time.perf_counter()
    lines = price_period(catalogue, Period(2026, 10), usage)
    t2 = time.perf_counter()
    run = Run(
        "2026-10-bench",
        "2026-10",
        (),
        "draft",
        "2026",
        "SEK",
        "",
        "",
        datetime.now(UTC),
        datetime.now(UTC),
        1,
    )
    body = render_csv(run, lines)
    t3 = time.perf_counter()
    print(f"catalogue + {len(usage):,} usage rows: {t1 - t0:.2f} s")
    print(f"pricing -> {len(lines):,} lines:       {t2 - t1:.2f} s")
    print(f"CSV export ({len(body) / 1e6:.1f} MB):         {t3 - t2:.2f} s")
    print(f"total (price + CSV):            {t3 - t0:.2f} s (target < 10 s)")
    with tempfile.TemporaryDirectory() as folder:
        parties = Path(folder) / "parties.yaml"
        parties.write_text(parties_text([m.code for m in catalogue.municipalities]))
        context = ExportContext(catalogue, Seller("Bench IT"), None, parties, draft=True)
        for fmt in ("sie", "peppol", "report"):
            start = time.perf_counter()
            files = FORMATS[fmt](run, lines, context)
            size = sum(len(f.body) for f in files) / 1e6
            print(f"{fmt} export ({len(files)} files, {size:.1f} MB): {time.perf_counter() - start:.2f} s")


def parties_text(codes: list[str]) -> str:
    """A parties file whose identifiers pass the checks (Luhn check digits, VAT of the seller's
    organisation number, a reference per buyer)."""
    from billing_jobs.parties import luhn_digit

    party = (
        '{{name: {name}, org_number: "{org}", endpoint: {{scheme: "0007", id: "{org}"}}, '
        "address: {{city: X, country: SE}}, {extra}}}"
    )

    def org(base: str) -> str:
        return base + luhn_digit(base)

    seller = org("222000000")
    lines = [
        f"seller: {party.format(name='Bench IT', org=seller, extra=f'vat_number: SE{seller}01')}",
        'payment: {account: "123-4566"}',
        "buyers:",
    ]
    for i, code in enumerate(codes):
        buyer = party.format(name=f"M{code}", org=org(str(212000000 + i)), extra="reference: R")
        lines.append(f'  "{code}": {buyer}')
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
