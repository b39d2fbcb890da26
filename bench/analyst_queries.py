"""Benchmark: the analysts' two key questions on a national-scale year of raw usage.

Generates ``--events`` raw usage events (default 100 million) for 290 municipalities, 20 cost
centres and 4 usage services over 2026 straight into ``usage_events`` of embedded ClickHouse
(chDB), a final billing run a month, and times the
documented queries of docs/analysts.md, each run three times:

- Q3 "cost per municipality and service for a month" (``v_charges_final`` over a year of final
  runs of 232,000 lines each);
- Q8 "usage trend per cost centre over a year" (``v_usage_monthly`` over the raw events).

    .venv/bin/python bench/analyst_queries.py [--events 100000000]

The target is under 1 s for each on a 2-core machine.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from chargeback.catalogue import parse_catalogue
from chargeback.clickhouse import close_all, connect
from warehouse.migrations import migrate, sync_catalogue

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("pc-standard", "m365-e3", "storage-file", "ticket-incident")


def catalogue_text(municipalities: int) -> str:
    lines = ["currency: SEK", "timezone: Europe/Stockholm", "municipalities:"]
    lines += [f'  - {{code: "{1000 + i}", name: M{i}, inhabitants: 10000}}' for i in range(municipalities)]
    lines += [
        "services:",
        '  - {id: pc-standard, name: PC, meter: daily_distinct, unit: st, vat_rate: "0.25", account: "3041"}',
        '  - {id: m365-e3, name: E3, meter: daily_distinct, unit: st, vat_rate: "0.25", account: "3044"}',
        '  - {id: storage-file, name: Files, meter: daily_max, unit: GiB, vat_rate: "0.25", account: "3042"}',
        '  - {id: ticket-incident, name: Ticket, meter: count, unit: st, vat_rate: "0.25", account: "3043"}',
        "price_lists:",
        '  - version: "2026"',
        "    valid_from: 2026-01-01",
        '    prices: {pc-standard: {model: per_unit, unit_price: "310.00"}}',
    ]
    return "\n".join(lines) + "\n"


def documented(name: str) -> str:
    text = (ROOT / "docs" / "analysts.md").read_text()
    match = re.search(rf"### {name}\..*?```sql\n(.*?)```", text, flags=re.S)
    assert match, name
    return match.group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000_000)
    args = parser.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory() as folder:
        ch = connect(f"chdb:{folder}", "bench", create=True)
        migrate(ch)
        catalogue = parse_catalogue(catalogue_text(290), "national.yaml")
        sync_catalogue(ch, catalogue)
        started = time.perf_counter()
        # One event per (subject, day) spread over the year: 290 municipalities x 20 cost centres,
        # the service by subject, so each subject keeps its cost centre and service all year.
        ch.execute(
            "INSERT INTO usage_events (event_id, source, municipality, cost_centre, service, subject, "
            "quantity, event_time, day, attributes, kafka_topic, kafka_partition, kafka_offset, stored_at) "
            "SELECT toString(number), 'bench', toString(1000 + number % 290), "
            "concat('CC', toString(intDiv(number, 290) % 20)), "
            f"arrayElement({list(SERVICES)}, 1 + intDiv(number, 5800) % 4), "
            f"concat('S', toString(number % {n // 365 + 1})), toDecimal64(1, 6), "
            f"toDateTime('2026-01-01 06:00:00', 'UTC') + intDiv(number, {n // 365 + 1}) * 86400, "
            f"toDate('2026-01-01') + intDiv(number, {n // 365 + 1}), '', 'bench', 0, number, now() "
            f"FROM numbers({n})"
        )
        generated = time.perf_counter() - started
        # A final run a month: 290 municipalities x 20 cost centres x 40 services = 232,000 lines.
        period = "concat('2026-', leftPad(toString(1 + intDiv(number, 232000)), 2, '0'))"
        ch.execute(
            "INSERT INTO billing_lines (run_id, period, municipality, cost_centre, service, quantity, unit, "
            "unit_price, amount, vat_rate, vat_amount, currency, price_list) "
            f"SELECT concat('run-', {period}), {period}, toString(1000 + number % 290), "
            "concat('CC', toString(intDiv(number, 290) % 20)), "
            "concat('s', toString(intDiv(number, 5800) % 40)), "
            "toDecimal64(10, 6), 'st', toDecimal64(310, 2), toDecimal64(3100, 2), toDecimal32(0.25, 4), "
            "toDecimal64(775, 2), 'SEK', '2026' FROM numbers(2784000)"
        )
        ch.execute(
            "INSERT INTO billing_runs (run_id, period, municipalities, status, price_list, currency, "
            "catalogue_sha256, usage_sha256, created_at, changed_at, revision) "
            "SELECT concat('run-2026-', leftPad(toString(number + 1), 2, '0')), "
            "concat('2026-', leftPad(toString(number + 1), 2, '0')), [], 'final', '2026', 'SEK', '', '', "
            "now(), now(), 2 FROM numbers(12)"
        )
        print(f"generated {n:,} raw events for 2026 in {generated:.1f} s")
        for name, municipality in (("Q3", "1000"), ("Q8", "1000")):
            sql = documented(name).replace("'2183'", f"'{municipality}'").replace("'2184'", "'1001'")
            times = []
            for _ in range(3):
                t = time.perf_counter()
                rows = ch.execute(sql)
                times.append(time.perf_counter() - t)
            print(f"{name}: {len(rows)} rows, runs {', '.join(f'{x:.2f}' for x in times)} s (target < 1 s)")
        close_all()


if __name__ == "__main__":
    main()
