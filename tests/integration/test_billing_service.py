"""Billing runs on real ClickHouse (server and chDB) and a real S3 server: lifecycle, corrections,
byte-identical re-runs, immutable exports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing_jobs import service
from billing_jobs.destinations import ExportError, write_files
from billing_jobs.formats import ExportFile, with_manifest
from billing_jobs.formats.csv import render_csv
from billing_jobs.store import BillingStore, RunError
from chargeback.catalogue import load_catalogue
from chargeback.clickhouse import ClickHouse, ClickHouseError
from chargeback.events import Known
from chargeback.period import Period
from streams.sink import Record, UsageSink

pytestmark = pytest.mark.integration
# After every month these tests bill has ended (in Europe/Stockholm).
LATER = datetime(2027, 3, 1, tzinfo=UTC)

CATALOGUE_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml"
CATALOGUE = load_catalogue(CATALOGUE_PATH)
SHA = "c" * 64
OCT, NOV = Period(2026, 10), Period(2026, 11)


def store_tickets(
    ch: ClickHouse,
    tickets: list[tuple[str, str, str]],
    offset: int = 0,
    municipality: str = "2183",
    stored_at: datetime = datetime(2026, 12, 15, tzinfo=UTC),
) -> None:
    """(id, cost centre, time) tickets of Bollnäs (or ``municipality``), through the real sink,
    stored at ``stored_at``."""
    sink = UsageSink(
        ch,
        known=Known(set(CATALOGUE.municipality_codes), set(CATALOGUE.service_ids)),
        tz=ZoneInfo("Europe/Stockholm"),
        clock=lambda: stored_at,
    )
    records = []
    for i, (eid, cc, when) in enumerate(tickets):
        body = {
            "specversion": "1.0",
            "id": eid,
            "source": "urn:t",
            "type": "chargeback.usage.v1",
            "time": when,
            "data": {
                "municipality": municipality,
                "cost_centre": cc,
                "service": "ticket-incident",
                "subject": eid,
                "quantity": "1",
            },
        }
        records.append(Record("usage", 0, offset + i, municipality.encode(), json.dumps(body).encode()))
    sink.store(sink.prepare(records))


def ticket_lines(lines: list[Any]) -> list[tuple[object, ...]]:
    return [
        (x.corrects_period, x.cost_centre, x.quantity, x.amount, x.vat_amount)
        for x in lines
        if x.service == "ticket-incident"
    ]


def test_finalised_month_is_corrected_in_the_next_run(clickhouse: ClickHouse) -> None:
    store = BillingStore(clickhouse)
    store_tickets(clickhouse, [("t1", "BUF", "2026-10-05T08:00:00Z"), ("t2", "SOC", "2026-10-06T08:00:00Z")])
    october = service.create_run(store, CATALOGUE, SHA, OCT, now=LATER)
    assert ticket_lines(october.lines) == [
        (None, "BUF", Decimal("1"), Decimal("95.00"), Decimal("23.75")),
        (None, "SOC", Decimal("1"), Decimal("95.00"), Decimal("23.75")),
    ]
    service.finalize_run(store, october.run.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    # Late usage for October, and November's own.
    store_tickets(
        clickhouse, [("t3", "BUF", "2026-10-30T08:00:00Z"), ("t4", "BUF", "2026-11-02T08:00:00Z")], 10
    )
    with pytest.raises(RunError) as refused:
        service.create_run(store, CATALOGUE, SHA, OCT, now=LATER)
    assert str(refused.value) == (
        f"billing run of 2026-10 refused: 2026-10 is finalised for 2121 (run {october.run.run_id}); usage "
        "that arrives later is billed as corrections in the next month's run"
    )
    november = service.create_run(store, CATALOGUE, SHA, NOV, now=LATER)
    # One correction line for October: 3 tickets now (285.00) against 2 billed (190.00) in October's
    # run, all of it on BUF: BUF 2 tickets = 190.00 now vs 95.00 billed -> +1, +95.00, VAT +23.75.
    assert ticket_lines(november.lines) == [
        (None, "BUF", Decimal("1"), Decimal("95.00"), Decimal("23.75")),
        ("2026-10", "BUF", Decimal("1"), Decimal("95.00"), Decimal("23.75")),
    ]
    csv_rows = render_csv(november.run, november.lines).decode().splitlines()
    assert (
        f"{november.run.run_id},2026-10,2183,BUF,ticket-incident,1,st,95.00,95.00,0.25,23.75,SEK,2026"
        in csv_rows
    )
    # The finalised October run did not change.
    assert store.load_lines(october.run.run_id) == october.lines
    assert store.get_run(october.run.run_id).status == "final"
    # Pricing November again finds the same run: same id, same bytes.
    again = service.create_run(store, CATALOGUE, SHA, NOV, now=LATER)
    assert (again.run.run_id, again.created) == (november.run.run_id, False)
    assert render_csv(again.run, again.lines) == render_csv(november.run, november.lines)
    # Once November is final, December has nothing more to correct for October.
    service.finalize_run(store, november.run.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    december = service.create_run(store, CATALOGUE, SHA, Period(2026, 12), now=LATER)
    assert [x for x in december.lines if x.corrects_period] == []


def test_a_draft_priced_before_another_correction_cannot_be_finalised(clickhouse: ClickHouse) -> None:
    store = BillingStore(clickhouse)
    store_tickets(clickhouse, [("t1", "BUF", "2026-10-05T08:00:00Z")])
    service.finalize_run(
        store,
        service.create_run(store, CATALOGUE, SHA, OCT, now=LATER).run.run_id,
        CATALOGUE,
        now=LATER,
        accept_gaps=True,
    )
    store_tickets(clickhouse, [("late", "BUF", "2026-10-29T08:00:00Z")], 5)
    # November and December have usage of their own.
    store_tickets(
        clickhouse, [("n1", "BUF", "2026-11-05T08:00:00Z"), ("d1", "BUF", "2026-12-07T08:00:00Z")], 6
    )
    november = service.create_run(store, CATALOGUE, SHA, NOV, now=LATER)
    december = service.create_run(store, CATALOGUE, SHA, Period(2026, 12), now=LATER)  # also corrects October
    service.finalize_run(store, november.run.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    with pytest.raises(RunError) as refused:
        service.finalize_run(store, december.run.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    assert str(refused.value) == (
        f"run {december.run.run_id} (2026-12, all municipalities) is out of date (its corrections changed "
        "since it was priced): price the month again with `chargeback billing run --period 2026-12` and "
        "finalise the new run"
    )
    with pytest.raises(RunError) as refused:
        service.create_run(store, CATALOGUE, SHA, NOV, ["2183", "9999"], now=LATER)
    assert str(refused.value) == (
        "billing run of 2026-11 refused: municipality 9999 is not in the catalogue; add it to the "
        "catalogue's municipalities, or leave out --municipality 9999"
    )


def test_void_and_final_states(clickhouse: ClickHouse) -> None:
    store = BillingStore(clickhouse)
    store_tickets(clickhouse, [("t1", "BUF", "2026-10-05T08:00:00Z")])
    run = service.create_run(store, CATALOGUE, SHA, OCT, ["2183"], now=LATER).run
    assert [r.run_id for r in store.list_runs(OCT)] == [run.run_id]
    assert service.void_run(store, run.run_id, now=LATER).status == "void"
    with pytest.raises(RunError, match="is void and cannot be finalised"):
        service.finalize_run(store, run.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    # A void is for good: the same inputs make a new run (the next generation), the old one stays void.
    again = service.create_run(store, CATALOGUE, SHA, OCT, ["2183"], now=LATER)
    generation_1 = service.run_id_for(OCT, ("2183",), SHA, run.usage_sha256, 1)
    assert (again.run.run_id, again.run.status, again.created) == (generation_1, "draft", True)
    assert store.get_run(run.run_id).status == "void"
    final = service.finalize_run(store, again.run.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    with pytest.raises(RunError, match="is final and cannot be voided"):
        service.void_run(store, final.run_id, now=LATER)
    with pytest.raises(RunError, match="no billing run nope"):
        store.get_run("nope")


def test_final_exports_are_never_overwritten_on_s3(
    clickhouse: ClickHouse, s3_bucket: str, s3_client: Any
) -> None:
    store = BillingStore(clickhouse)
    store_tickets(clickhouse, [("t1", "BUF", "2026-10-05T08:00:00Z")])
    priced = service.create_run(store, CATALOGUE, SHA, OCT, ["2183"], now=LATER)
    final = service.finalize_run(store, priced.run.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    files = with_manifest(
        final, [ExportFile(f"{final.run_id}.csv", render_csv(final, priced.lines), "text/csv")]
    )
    target = f"s3://{s3_bucket}/exports"
    first = write_files(files, target, s3_client=lambda: s3_client, immutable=True)
    assert first == [f"{target}/{final.run_id}.csv", f"{target}/{final.run_id}.csv.manifest.json"]
    manifest = json.loads(
        s3_client.get_object(Bucket=s3_bucket, Key=f"exports/{final.run_id}.csv.manifest.json")["Body"].read()
    )
    assert manifest["files"][0]["bytes"] == len(files[0].body)
    again = write_files(files, target, s3_client=lambda: s3_client, immutable=True)
    assert again == [f"{w} (unchanged)" for w in first]
    changed = [ExportFile(files[0].name, files[0].body + b"x", "text/csv")]
    with pytest.raises(
        ExportError, match="exists with other content; exports of a final run are never overwritten"
    ):
        write_files(changed, target, s3_client=lambda: s3_client, immutable=True)
    body = s3_client.get_object(Bucket=s3_bucket, Key=f"exports/{final.run_id}.csv")["Body"].read()
    assert body == files[0].body


class HeaderFailsOnce:
    """Real ClickHouse whose first write of a run header fails, after the run's lines landed."""

    def __init__(self, ch: ClickHouse) -> None:
        self._ch = ch
        self.backend, self.database = ch.backend, ch.database
        self.failed = False

    def execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self._ch.execute(sql, params)

    def insert(self, table: str, columns: Any, rows: Any) -> None:
        if table == "billing_runs" and not self.failed:
            self.failed = True
            raise ClickHouseError("Connection reset by peer")
        self._ch.insert(table, columns, rows)

    def close(self) -> None:
        self._ch.close()


def test_a_run_retried_after_its_header_failed_has_each_line_once(clickhouse: ClickHouse) -> None:
    store = BillingStore(clickhouse)
    store_tickets(clickhouse, [("t1", "BUF", "2026-10-05T08:00:00Z"), ("t2", "SOC", "2026-10-06T08:00:00Z")])
    flaky = HeaderFailsOnce(clickhouse)
    with pytest.raises(ClickHouseError):
        service.create_run(BillingStore(flaky), CATALOGUE, SHA, OCT, now=LATER)
    assert store.list_runs(OCT) == []  # lines without a header: no run to see
    retried = service.create_run(BillingStore(flaky), CATALOGUE, SHA, OCT, now=LATER)
    assert retried.created
    stored = store.load_lines(retried.run.run_id)
    assert stored == retried.lines
    assert ticket_lines(stored) == [
        (None, "BUF", Decimal("1"), Decimal("95.00"), Decimal("23.75")),
        (None, "SOC", Decimal("1"), Decimal("95.00"), Decimal("23.75")),
    ]
    assert clickhouse.execute(
        "SELECT count(), uniqExact(municipality, cost_centre, service, period) FROM billing_lines"
    ) == [(len(retried.lines), len(retried.lines))]


def test_a_new_member_is_billed_from_the_month_it_joined_and_a_leaver_blocks_nobody(
    clickhouse: ClickHouse,
) -> None:
    from chargeback.catalogue import parse_catalogue

    store = BillingStore(clickhouse)
    store_tickets(clickhouse, [("t1", "BUF", "2026-10-05T08:00:00Z")])
    october = service.create_run(store, CATALOGUE, SHA, OCT, now=LATER)
    service.finalize_run(store, october.run.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    # Ockelbo (2101) joins on 1 November; Nordanstig (2132) leaves on 31 October.
    text = (
        CATALOGUE_PATH.read_text(encoding="utf-8")
        .replace(
            "municipalities:\n",
            'municipalities:\n  - {code: "2101", name: Ockelbo, inhabitants: 5900, joined: 2026-11-01}\n',
        )
        .replace("inhabitants: 9400}", "inhabitants: 9400, left: 2026-10-31}")
    )
    seven = parse_catalogue(text, "c.yaml")
    # Nordanstig's late October ticket, and one of November after it left.
    store_tickets(
        clickhouse,
        [("n1", "KS", "2026-10-20T08:00:00Z"), ("n2", "KS", "2026-11-03T08:00:00Z")],
        10,
        municipality="2132",
    )
    november = service.create_run(store, seven, "d" * 64, NOV, now=LATER)
    corrections = [(x.municipality, x.service, x.amount) for x in november.lines if x.corrects_period]
    # October is corrected only by 2132's late ticket (95.00): 2101 gets no fees for October and
    # nobody's October SOC share moves.
    assert corrections == [("2132", "ticket-incident", Decimal("95.00"))]
    assert [(x.service, x.amount) for x in november.lines if x.municipality == "2101"] == [
        ("base-offering", Decimal("125000.00")),
        # 10,000,000 öre x 5,900 / 125,900 (129,400 - 9,400 + 5,900) = 468,625.89 -> 468,626 (the
        # remainder .894 is the largest of the six, so it takes one of the 3 öre left)
        ("soc-shared", Decimal("4686.26")),
    ]
    assert [x for x in november.lines if x.municipality == "2132" and not x.corrects_period] == []
    assert november.unbilled == (
        "usage of ticket-incident by 2132 in 2026-11 is not billed: municipality 2132 was not a member in "
        "2026-11 (left 2026-10-31) (quantity 1.000000)",
    )
