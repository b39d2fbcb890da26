"""Refusals of billing commands, read back exactly: at most one final run per municipality and month
(on both backends), and export destinations that fail, each one sentence with exit code 1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from billing_jobs import service
from billing_jobs.store import BillingStore, RunError
from chargeback.clickhouse import ClickHouse, connect
from chargeback.period import Period
from tests.integration.test_billing_lock import (
    CATALOGUE,
    CATALOGUE_PATH,
    TICKETS,
    env_for,
    run_cli,
    store_tickets,
)
from tests.integration.test_invoice_guards import store_events, ticket
from warehouse.migrations import migrate

pytestmark = pytest.mark.integration
# After every month these tests bill has ended (in Europe/Stockholm).
LATER = datetime(2027, 3, 1, tzinfo=UTC)

OCT, NOV = Period(2026, 10), Period(2026, 11)
PARTIES = ("--parties", str(Path(__file__).resolve().parents[2] / "demo" / "data" / "parties.yaml"))


def test_at_most_one_final_run_per_municipality_and_month(clickhouse: ClickHouse) -> None:
    store = BillingStore(clickhouse)
    store_tickets(clickhouse, TICKETS)
    # A ticket of Hudiksvall's too: a month without usage is never finalised.
    store_events(clickhouse, [ticket("h1", "2026-10-07T08:00:00Z", "2184", "KS")], stored_at=LATER, offset=50)
    bollnas = service.create_run(store, CATALOGUE, "a" * 64, OCT, ["2183"], now=LATER).run
    every = service.create_run(store, CATALOGUE, "b" * 64, OCT, now=LATER).run
    hudiksvall = service.create_run(store, CATALOGUE, "c" * 64, OCT, ["2184"], now=LATER).run
    both = service.create_run(store, CATALOGUE, "d" * 64, OCT, ["2183", "2184"], now=LATER).run
    assert (
        service.finalize_run(store, bollnas.run_id, CATALOGUE, now=LATER, accept_gaps=True).status == "final"
    )
    with pytest.raises(RunError) as caught:
        service.finalize_run(store, every.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    assert str(caught.value) == (
        f"run {every.run_id} (2026-10, all municipalities) cannot be finalised: 2026-10 is already final for "
        f"municipality 2183 in run {bollnas.run_id}; void this draft with `chargeback billing void "
        f"{every.run_id}`, what changed since reaches 2026-10 as corrections in a later month's run"
    )
    # Another municipality of the same month is free.
    assert (
        service.finalize_run(store, hudiksvall.run_id, CATALOGUE, now=LATER, accept_gaps=True).status
        == "final"
    )
    with pytest.raises(RunError, match=rf"^run {both.run_id} \(2026-10, municipalities 2183, 2184\) cannot"):
        service.finalize_run(store, both.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    # Finalising the final run again changes nothing; the refused drafts stay drafts.
    assert service.finalize_run(store, bollnas.run_id, CATALOGUE, now=LATER, accept_gaps=True).revision == 2
    assert [(r.run_id, r.status) for r in sorted(store.list_runs(OCT), key=lambda r: r.run_id)] == sorted(
        [
            (bollnas.run_id, "final"),
            (every.run_id, "draft"),
            (hudiksvall.run_id, "final"),
            (both.run_id, "draft"),
        ]
    )
    lines = clickhouse.execute(
        "SELECT municipality, count() FROM v_charges_final WHERE period = '2026-10' GROUP BY municipality "
        "ORDER BY municipality"
    )
    assert lines == [("2183", 4), ("2184", 3)]  # base, SOC, two tickets; base, SOC, a ticket: each once


def test_a_final_run_of_all_municipalities_blocks_a_run_of_one(clickhouse: ClickHouse) -> None:
    store = BillingStore(clickhouse)
    store_events(clickhouse, [ticket("n1", "2026-11-04T08:00:00Z")], stored_at=LATER)  # November's usage
    every = service.create_run(store, CATALOGUE, "a" * 64, NOV, now=LATER).run
    ovanaker = service.create_run(store, CATALOGUE, "b" * 64, NOV, ["2121"], now=LATER).run
    service.finalize_run(store, every.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    with pytest.raises(RunError) as caught:
        service.finalize_run(store, ovanaker.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    assert str(caught.value) == (
        f"run {ovanaker.run_id} (2026-11, municipality 2121) cannot be finalised: 2026-11 is already final "
        f"for municipality 2121 in run {every.run_id}; void this draft with `chargeback billing void "
        f"{ovanaker.run_id}`, what changed since reaches 2026-11 as corrections in a later month's run"
    )
    with pytest.raises(RunError) as caught:
        service.void_run(store, every.run_id, now=LATER)
    assert str(caught.value) == (
        f"run {every.run_id} (2026-11, all municipalities) is final and cannot be voided; what changed since "
        "reaches 2026-11 as corrections in a later month's run"
    )


@pytest.fixture
def server_ch(clickhouse_server_url: str) -> Iterator[ClickHouse]:
    name = f"t_{uuid.uuid4().hex[:8]}"
    ch = connect(clickhouse_server_url, name, create=True)
    migrate(ch)
    store_tickets(ch, TICKETS)
    try:
        yield ch
    finally:
        ch.execute(f"DROP DATABASE IF EXISTS {name}")
        ch.close()


def test_export_destinations_that_fail_are_one_sentence(
    server_ch: ClickHouse, clickhouse_server_url: str, tmp_path: Path
) -> None:
    store = BillingStore(server_ch)
    run = service.finalize_run(
        store,
        service.create_run(store, CATALOGUE, "c" * 64, OCT, now=LATER).run.run_id,
        CATALOGUE,
        now=LATER,
        accept_gaps=True,
    )
    env = env_for(
        clickhouse_server_url,
        server_ch.database,
        CHARGEBACK_S3_ENDPOINT_URL="http://127.0.0.1:9",
        CHARGEBACK_S3_ACCESS_KEY_ID="a",
        CHARGEBACK_S3_SECRET_ACCESS_KEY="b",
    )
    a_file = tmp_path / "out.csv"
    a_file.write_text("kept\n")
    assert run_cli(env, "export", run.run_id, "--to", str(a_file)) == (
        1,
        "",
        f"error: run {run.run_id} (2026-10) was not exported to {a_file}: {a_file} is a file, not a folder; "
        "give --to a folder (it is made when missing)\n",
    )
    assert a_file.read_text() == "kept\n"
    assert run_cli(env, "export", run.run_id, "--to", "s3://exports/billing") == (
        1,
        "",
        f"error: run {run.run_id} (2026-10) was not exported to s3://exports/billing: cannot read "
        f"s3://exports/billing/{run.run_id}.csv: the S3 endpoint http://127.0.0.1:9 cannot be reached; "
        "check the S3 endpoint, bucket and credentials settings and export again\n",
    )
    assert run_cli(env, "export", "2026-10-nope", "--to", str(tmp_path / "x")) == (
        1,
        "",
        "error: no billing run 2026-10-nope; `chargeback billing list` shows the runs there are\n",
    )


def test_sie_of_a_vat_rate_it_cannot_post_is_one_sentence(
    server_ch: ClickHouse, clickhouse_server_url: str, tmp_path: Path
) -> None:
    text = CATALOGUE_PATH.read_text(encoding="utf-8")
    odd = text.replace(
        'meter: count, unit: st, vat_rate: "0.25", account: "3043"',
        'meter: count, unit: st, vat_rate: "0.15", account: "3043"',
    )
    assert odd != text
    catalogue_path = tmp_path / "catalogue.yaml"
    catalogue_path.write_text(odd, encoding="utf-8")
    env = {**env_for(clickhouse_server_url, server_ch.database), "CHARGEBACK_CATALOGUE": str(catalogue_path)}
    code, stdout, _ = run_cli(env, "run", "--period", "2026-10")
    assert code == 0
    run_id = stdout.split()[1]
    assert run_cli(
        env, "export", run_id, "--format", "sie", "--draft", *PARTIES, "--to", str(tmp_path / "sie")
    ) == (
        1,
        "",
        f"error: run {run_id} (2026-10) was not exported: SIE cannot post VAT at 15 % (service "
        "ticket-incident): its output VAT accounts are for 25, 12 and 6 %; correct the service's vat_rate in "
        "the catalogue or export another format\n",
    )
    assert not (tmp_path / "sie").exists()
