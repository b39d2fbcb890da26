"""Every example query of docs/analysts.md, run against both backends on a small scenario whose
results are worked out by hand."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from billing_jobs import service
from billing_jobs.store import BillingStore
from chargeback.catalogue import load_catalogue
from chargeback.clickhouse import ClickHouse
from chargeback.events import Known
from chargeback.period import Period
from streams.sink import Record, UsageSink
from warehouse.migrations import sync_catalogue

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "analysts.md"
CATALOGUE = load_catalogue(Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml")
D = Decimal


def documented_queries() -> dict[str, str]:
    text = DOC.read_text()
    found = re.findall(r"### (Q\d+)\..*?```sql\n(.*?)```", text, flags=re.S)
    return {name: sql.strip() for name, sql in found}


def event(eid: str, municipality: str, source: str, when: str, **data: str) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": eid,
            "source": f"urn:chargeback:collector:{municipality}:{source}",
            "type": "chargeback.usage.v1",
            "time": when,
            "data": {"municipality": municipality, **data},
        }
    ).encode()


def scenario(ch: ClickHouse) -> None:
    """October 2026 (31 days): 2183 has PC1 (BUF) all month and PC2 (SOC) on days 1-3, tickets t1
    (BUF, phone), t2 (BUF, portal), t3 (SOC, phone); 2184 has share S1 (KS) at 200 GiB all month;
    one negative quantity is dead-lettered. October is priced and finalised."""
    values = []
    for day in range(1, 32):
        values.append(
            (
                b"2183",
                event(
                    f"pc1-{day}",
                    "2183",
                    "intune",
                    f"2026-10-{day:02d}T06:00:00Z",
                    cost_centre="BUF",
                    service="pc-standard",
                    subject="PC1",
                    quantity="1",
                    device_name="BOL-PC1",
                    subject_user="anna.berg@bollnas.se",
                ),
            )
        )
        values.append(
            (
                b"2184",
                event(
                    f"s1-{day}",
                    "2184",
                    "fileshare",
                    f"2026-10-{day:02d}T02:00:00Z",
                    cost_centre="KS",
                    service="storage-file",
                    subject="S1",
                    quantity="200",
                ),
            )
        )
        if day <= 3:
            values.append(
                (
                    b"2183",
                    event(
                        f"pc2-{day}",
                        "2183",
                        "intune",
                        f"2026-10-{day:02d}T06:00:00Z",
                        cost_centre="SOC",
                        service="pc-standard",
                        subject="PC2",
                        quantity="1",
                    ),
                )
            )
    for eid, cc, channel in (("t1", "BUF", "phone"), ("t2", "BUF", "portal"), ("t3", "SOC", "phone")):
        values.append(
            (
                b"2183",
                event(
                    eid,
                    "2183",
                    "topdesk",
                    "2026-10-10T09:00:00Z",
                    cost_centre=cc,
                    service="ticket-incident",
                    subject=eid,
                    quantity="1",
                    channel=channel,
                ),
            )
        )
    values.append(
        (
            b"2183",
            event(
                "bad",
                "2183",
                "intune",
                "2026-10-10T09:00:00Z",
                service="pc-standard",
                subject="PC1",
                quantity="-1",
            ),
        )
    )
    sink = UsageSink(
        ch,
        known=Known(set(CATALOGUE.municipality_codes), set(CATALOGUE.service_ids)),
        tz=ZoneInfo("Europe/Stockholm"),
        clock=lambda: datetime(2026, 11, 3, tzinfo=UTC),
    )
    sink.store(sink.prepare([Record("usage", 0, i, k, v) for i, (k, v) in enumerate(values)]))
    sync_catalogue(ch, CATALOGUE)
    priced = service.create_run(
        BillingStore(ch),
        CATALOGUE,
        "c" * 64,
        Period(2026, 10),
        now=datetime(2026, 11, 3, tzinfo=UTC),
    )
    service.finalize_run(
        BillingStore(ch),
        priced.run.run_id,
        CATALOGUE,
        now=datetime(2026, 11, 4, tzinfo=UTC),
        accept_gaps=True,
    )
    # A ticket of October that arrives after October was invoiced.
    late = UsageSink(
        ch,
        known=Known(set(CATALOGUE.municipality_codes), set(CATALOGUE.service_ids)),
        tz=ZoneInfo("Europe/Stockholm"),
        clock=lambda: datetime(2026, 11, 20, tzinfo=UTC),
    )
    value = event(
        "t4",
        "2183",
        "topdesk",
        "2026-10-31T09:00:00Z",
        cost_centre="SOC",
        service="ticket-incident",
        subject="t4",
        quantity="1",
        channel="e-mail",
    )
    late.store(late.prepare([Record("usage", 0, len(values), b"2183", value)]))


# 2183 pc-standard: BUF 31/31 = 1, SOC 3/31 = 0.096774193548.. -> 1.096774 x 310 = 339.99994 ->
# 340.00; split 1 : 0.096774 in öre gives BUF 310.00, SOC 30.00. Tickets 3 x 95 = 285.00.
# 2184 storage: 200 GiB-months -> ceil(200/100) = 2 packages x 450 = 900.00.
# 2183 total: 125000.00 + 340.00 + 20479.13 + 285.00 = 146104.13; VAT 31250.00 + 85.00 + 5119.78
# + 71.25 = 36526.03.
EXPECTED: dict[str, list[tuple[object, ...]]] = {
    "Q1": [(date(2026, 10, d), cc, D(1)) for d in (1, 2, 3) for cc in ("BUF", "SOC")],
    "Q2": [("BUF", D(1)), ("SOC", D("0.096774193548"))],
    "Q3": [
        ("2183", "base-offering", D("125000.00")),
        ("2183", "pc-standard", D("340.00")),
        ("2183", "soc-shared", D("20479.13")),
        ("2183", "ticket-incident", D("285.00")),
        ("2184", "base-offering", D("125000.00")),
        ("2184", "soc-shared", D("29211.75")),
        ("2184", "storage-file", D("900.00")),
    ],
    "Q4": [(D("146104.13"), D("36526.03"), D("182630.16"))],
    "Q5": [("2026-10", "final")],
    "Q6": [("data.quantity: Value error, quantity must be >= 0", 1)],
    "Q7": [("e-mail", 1), ("phone", 2), ("portal", 1)],
    "Q8": [(date(2026, 10, 1), "BUF", D(1)), (date(2026, 10, 1), "SOC", D("0.096774193548"))],
    "Q9": [
        ("urn:chargeback:collector:2183:intune", 34),
        ("urn:chargeback:collector:2183:topdesk", 4),
        ("urn:chargeback:collector:2184:fileshare", 31),
    ],
    "Q10": [
        ("2184", "UNALLOCATED", "soc-shared", D("29211.75")),
        ("2183", "UNALLOCATED", "soc-shared", D("20479.13")),
        ("2182", "UNALLOCATED", "soc-shared", D("19629.06")),
    ],
    "Q11": [],
    "Q12": [
        (
            "t4",
            "SOC",
            "ticket-incident",
            date(2026, 10, 31),
            datetime(2026, 11, 20, tzinfo=UTC),
            datetime(2026, 11, 4, tzinfo=UTC),
        )
    ],
    # 2183: 146104.13 / 26500 = 5.513… ; 2184: 125000.00 + 29211.75 + 900.00 = 155111.75 / 37800 =
    # 4.103… ; the organisation: 6 x 125000.00 + 100000.00 + 340.00 + 285.00 + 900.00 = 851525.00
    # / 129400 inhabitants = 6.580…
    "Q13": [
        ("2183", "Bollnäs", D("146104.13"), 26500, D("5.51"), D("6.58")),
        ("2184", "Hudiksvall", D("155111.75"), 37800, D("4.10"), D("6.58")),
    ],
}


EXPECTED |= {
    "Q14": [
        ("2121", "Ovanåker", 11300),
        ("2132", "Nordanstig", 9400),
        ("2161", "Ljusdal", 19000),
        ("2182", "Söderhamn", 25400),
        ("2183", "Bollnäs", 26500),
        ("2184", "Hudiksvall", 37800),
    ],
    "Q15": [
        ("base-offering", "Basutbud", "flat", None, None, None, None),
        ("m365-e3", "Microsoft 365 E3", "tiered_volume", None, None, None, None),
        ("pc-standard", "Standarddator", "per_unit", D("310.00"), None, None, None),
        ("soc-shared", "Gemensam SOC", "distributed", None, None, None, D("1200000.00")),
        ("storage-file", "Fillagring", "package", None, D("100"), D("450.00"), None),
        ("ticket-incident", "Ärende incident", "tiered_graduated", None, None, None, None),
    ],
    # 31 and 3 device-days of 31; 1 + 0.096774 = 1.096774 x 310.00 = 340.00, split 310.00 : 30.00.
    "Q16": [
        ("BUF", 31, 31, D("1"), D("1.096774"), D("310.00"), D("340.00"), D("310.00")),
        ("SOC", 3, 31, D("0.096774"), D("1.096774"), D("310.00"), D("340.00"), D("30.00")),
    ],
    "Q17": [
        ("BUF", "PC1", 31, "BOL-PC1", "anna.berg@bollnas.se"),
        ("SOC", "PC2", 3, "", ""),
    ],
}


def test_the_document_has_at_least_ten_queries_and_each_is_checked() -> None:
    assert sorted(documented_queries()) == sorted(EXPECTED)
    assert len(EXPECTED) >= 10


def test_documented_queries_return_the_expected_rows(clickhouse: ClickHouse) -> None:
    scenario(clickhouse)
    for name, sql in documented_queries().items():
        rows = [tuple(int(v) if isinstance(v, int) else v for v in row) for row in clickhouse.execute(sql)]
        assert rows == EXPECTED[name], name


def test_budget_against_invoiced_months(clickhouse: ClickHouse) -> None:
    from billing_jobs.reports.budget import Budgets, budget_report
    from billing_jobs.store import BillingStore

    scenario(clickhouse)
    actual = BillingStore(clickhouse).actual_by_month(2026)
    budgets = Budgets(year=2026, budgets={"2183": {"pc-standard": D("4000.00")}})
    row = next(
        r for r in budget_report(budgets, actual) if (r.municipality, r.service) == ("2183", "pc-standard")
    )
    # October invoiced 340.00 (see the scenario); one invoiced month: 340.00 x 12 = 4080.00
    assert (row.months, row.actual, row.forecast, row.variance) == (
        {"2026-10": D("340.00")},
        D("340.00"),
        D("4080.00"),
        D("80.00"),
    )
