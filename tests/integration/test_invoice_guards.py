"""Invoice integrity on real ClickHouse (server and chDB): corrections priced with the catalogue a
month was billed with, repricing only on request, late usage beyond the correction window listed,
period guards and what may be missing before a run is finalised."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from billing_jobs import service
from billing_jobs.formats.json import run_document
from billing_jobs.model import Line
from billing_jobs.service import Gap, LateBeyondWindow, MemberTotal
from billing_jobs.store import BillingStore, RunError
from chargeback.catalogue import Catalogue, parse_catalogue
from chargeback.clickhouse import ClickHouse
from chargeback.events import Known
from chargeback.period import Period
from streams.sink import Record, UsageSink

pytestmark = pytest.mark.integration

D = Decimal
CATALOGUE_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml"
TEXT = CATALOGUE_PATH.read_text(encoding="utf-8")
# The same catalogue with two prices changed: a computer 310.00 -> 320.00, a ticket 95.00 -> 100.00.
NEW_TEXT = TEXT.replace('unit_price: "310.00"', 'unit_price: "320.00"').replace(
    'unit_price: "95.00"', 'unit_price: "100.00"'
)
LATER = datetime(2027, 3, 1, tzinfo=UTC)
OCT, NOV, DEC = Period(2026, 10), Period(2026, 11), Period(2026, 12)

# One event: id, municipality, cost centre, service, subject, quantity, time (UTC), source.
Event = tuple[str, str, str, str, str, str, str, str]


def catalogue_of(text: str) -> tuple[Catalogue, str, bytes]:
    body = text.encode()
    return parse_catalogue(text, "catalogue.yaml"), hashlib.sha256(body).hexdigest(), body


def store_events(
    ch: ClickHouse,
    events: Sequence[Event],
    *,
    stored_at: datetime,
    offset: int = 0,
    municipalities: Sequence[str] = ("2121", "2132", "2161", "2182", "2183", "2184"),
) -> None:
    """Events through the real sink, stored at ``stored_at``."""
    catalogue = parse_catalogue(TEXT, "c.yaml")
    sink = UsageSink(
        ch,
        known=Known(set(municipalities), set(catalogue.service_ids)),
        tz=ZoneInfo("Europe/Stockholm"),
        clock=lambda: stored_at,
    )
    records = []
    for i, (eid, municipality, cc, svc, subject, quantity, when, source) in enumerate(events):
        body = {
            "specversion": "1.0",
            "id": eid,
            "source": source,
            "type": "chargeback.usage.v1",
            "time": when,
            "data": {
                "municipality": municipality,
                "cost_centre": cc,
                "service": svc,
                "subject": subject,
                "quantity": quantity,
            },
        }
        records.append(Record("usage", 0, offset + i, municipality.encode(), json.dumps(body).encode()))
    sink.store(sink.prepare(records))


def ticket(eid: str, when: str, municipality: str = "2183", cc: str = "BUF") -> Event:
    return (eid, municipality, cc, "ticket-incident", eid, "1", when, "urn:tickets")


def computer_days(municipality: str, cc: str, subject: str, period: Period) -> list[Event]:
    """One computer seen every day of the month (8:00 UTC): a daily_distinct quantity of 1."""
    return [
        (
            f"{subject}-{period}-{day:02d}",
            municipality,
            cc,
            "pc-standard",
            subject,
            "1",
            f"{period}-{day:02d}T08:00:00Z",
            "urn:devices",
        )
        for day in range(1, period.days + 1)
    ]


def corrections(lines: Sequence[Line]) -> list[tuple[object, ...]]:
    return [
        (x.corrects_period, x.municipality, x.cost_centre, x.service, x.quantity, x.unit_price, x.amount,
         x.vat_amount, x.reason)
        for x in lines
        if x.corrects_period
    ]  # fmt: skip


def test_corrections_use_the_catalogue_a_month_was_billed_with_and_reprice_only_on_request(
    clickhouse: ClickHouse,
) -> None:
    store = BillingStore(clickhouse)
    old, old_sha, old_body = catalogue_of(TEXT)
    new, new_sha, new_body = catalogue_of(NEW_TEXT)
    stored = datetime(2026, 11, 1, 6, tzinfo=UTC)
    store_events(
        clickhouse,
        [*computer_days("2183", "BUF", "pc1", OCT), ticket("t1", "2026-10-05T08:00:00Z")],
        stored_at=stored,
    )
    october = service.create_run(store, old, old_sha, OCT, now=LATER, catalogue_bytes=old_body)
    service.finalize_run(store, october.run.run_id, old, now=LATER, accept_gaps=True)
    assert store.catalogue_text(old_sha) == TEXT

    # A late October ticket, and November's own usage.
    store_events(
        clickhouse,
        [ticket("t2", "2026-10-20T08:00:00Z"), ticket("n1", "2026-11-05T08:00:00Z")],
        stored_at=datetime(2026, 11, 20, tzinfo=UTC),
        offset=100,
    )
    # November with the new prices: October's late ticket is billed at the 95.00 October was billed
    # with, not at 100.00; October's computer (310.00) is not repriced to 320.00.
    plain = service.create_run(store, new, new_sha, NOV, now=LATER, catalogue_bytes=new_body)
    assert corrections(plain.lines) == [
        ("2026-10", "2183", "BUF", "ticket-incident", D(1), D("95.00"), D("95.00"), D("23.75"), "late usage"),
    ]
    # As billed (old prices) October is now 310.00 + 2 x 95.00; with the new ones 320.00 + 2 x 100.00:
    # two lines differ by +20.00 in all.
    assert plain.repricing == (
        "the current catalogue would bill finalised months differently from the catalogue they were "
        "billed with (2026-10 2 lines +20.00 SEK excl. VAT): they are not repriced; run with "
        "--reprice-invoiced to bill the differences as corrections"
    )

    # Finance asks: October is billed anew with the new catalogue, each line saying why.
    repriced = service.create_run(
        store, new, new_sha, NOV, now=LATER, catalogue_bytes=new_body, reprice_invoiced=True
    )
    assert repriced.run.run_id != plain.run.run_id
    assert repriced.repricing is None
    expected = [
        # the computer: 320.00 - 310.00, no quantity
        ("2026-10", "2183", "BUF", "pc-standard", D(0), None, D("10.00"), D("2.50"), "repriced"),
        # the tickets: 2 x 100.00 - 95.00 billed: the late one and the new price of both
        ("2026-10", "2183", "BUF", "ticket-incident", D(1), D("105.00"), D("105.00"), D("26.25"),
         "late usage, repriced"),
    ]  # fmt: skip
    assert corrections(repriced.lines) == expected
    assert corrections(store.load_lines(repriced.run.run_id)) == expected
    doc = run_document(repriced.run, repriced.lines)
    assert [(x["period"], x["service"], x["reason"]) for x in doc["lines"] if "reason" in x] == [
        ("2026-10", "pc-standard", "repriced"),
        ("2026-10", "ticket-incident", "late usage, repriced"),
    ]
    service.finalize_run(store, repriced.run.run_id, new, now=LATER, accept_gaps=True)

    # October is billed with the new catalogue since: December has nothing to correct or reprice.
    store_events(clickhouse, [ticket("d1", "2026-12-07T08:00:00Z")], stored_at=LATER, offset=200)
    december = service.create_run(store, new, new_sha, DEC, now=LATER, catalogue_bytes=new_body)
    assert (corrections(december.lines), december.repricing) == ([], None)
    # Going back to the old prices would change October and November: stated, not billed.
    back = service.create_run(store, old, old_sha, DEC, now=LATER, catalogue_bytes=old_body)
    assert corrections(back.lines) == []
    assert (
        back.repricing is not None and "(2026-10 2 lines -20.00; 2026-11 1 line -5.00 SEK" in back.repricing
    )


def test_late_usage_older_than_the_correction_window_is_listed_not_billed(clickhouse: ClickHouse) -> None:
    store = BillingStore(clickhouse)
    # A catalogue whose first price list starts in 2024.
    catalogue, sha, _ = catalogue_of(TEXT.replace("valid_from: 2026-01-01", "valid_from: 2024-01-01"))
    june = Period(2024, 6)
    store_events(
        clickhouse, [ticket("j0", "2024-06-03T08:00:00Z")], stored_at=datetime(2024, 7, 1, tzinfo=UTC)
    )
    first = service.create_run(store, catalogue, sha, june, now=datetime(2024, 7, 2, tzinfo=UTC))
    service.finalize_run(
        store, first.run.run_id, catalogue, now=datetime(2024, 7, 3, tzinfo=UTC), accept_gaps=True
    )
    # 50 tickets of June 2024 arrive in November 2026, and one for Ljusdal's social services.
    late = [ticket(f"j{i}", "2024-06-10T08:00:00Z") for i in range(1, 51)]
    late.append(ticket("j51", "2024-06-11T08:00:00Z", "2161", "SOC"))
    store_events(clickhouse, late, stored_at=datetime(2026, 11, 20, tzinfo=UTC), offset=10)

    # A run of 2026-07 corrects back to 2024-07 (24 months): June 2024 is listed, not billed.
    july = service.create_run(store, catalogue, sha, Period(2026, 7), now=LATER)
    assert corrections(july.lines) == []
    assert july.beyond_window == (
        LateBeyondWindow("2161", "2024-06", "ticket-incident", D(1), 1),
        LateBeyondWindow("2183", "2024-06", "ticket-incident", D(50), 50),
    )
    assert [str(x) for x in july.beyond_window] == [
        "late usage older than the 24-month correction window is not billed: 2161 2024-06 ticket-incident "
        "quantity 1.000000 (1 event)",
        "late usage older than the 24-month correction window is not billed: 2183 2024-06 ticket-incident "
        "quantity 50.000000 (50 events)",
    ]
    # A run of one municipality lists only its own.
    assert service.create_run(store, catalogue, sha, Period(2026, 7), ["2161"], now=LATER).beyond_window == (
        LateBeyondWindow("2161", "2024-06", "ticket-incident", D(1), 1),
    )
    # A run of 2026-06 still corrects June 2024: 50 x 95.00 and 1 x 95.00, nothing listed.
    june_2026 = service.create_run(store, catalogue, sha, Period(2026, 6), now=LATER)
    assert june_2026.beyond_window == ()
    assert corrections(june_2026.lines) == [
        ("2024-06", "2161", "SOC", "ticket-incident", D(1), D("95.00"), D("95.00"), D("23.75"), "late usage"),
        ("2024-06", "2183", "BUF", "ticket-incident", D(50), D("95.00"), D("4750.00"), D("1187.50"),
         "late usage"),
    ]  # fmt: skip


def test_period_guards_at_the_month_boundaries_in_the_catalogues_time_zone(clickhouse: ClickHouse) -> None:
    store = BillingStore(clickhouse)
    catalogue, sha, _ = catalogue_of(TEXT)
    store_events(
        clickhouse, [ticket("t1", "2026-10-05T08:00:00Z")], stored_at=datetime(2026, 10, 6, tzinfo=UTC)
    )
    # October begins at 2026-10-01 00:00 CEST = 2026-09-30 22:00 UTC.
    with pytest.raises(RunError) as refused:
        service.create_run(store, catalogue, sha, OCT, now=datetime(2026, 9, 30, 21, 59, 59, tzinfo=UTC))
    assert str(refused.value) == (
        "billing run of 2026-10 refused: 2026-10 has not begun in Europe/Stockholm (it begins 2026-10-01 "
        "00:00 CEST); a month can be run once it has begun"
    )
    assert store.list_runs(OCT) == []
    early = service.create_run(store, catalogue, sha, OCT, now=datetime(2026, 9, 30, 22, tzinfo=UTC))
    # It ends at 2026-11-01 00:00 CET (summer time ended on 25 October) = 2026-10-31 23:00 UTC.
    assert early.preview == (
        "2026-10 has not ended in Europe/Stockholm (it ends 2026-11-01 00:00 CET): this draft is a preview "
        "and cannot be finalised before then"
    )
    run_id = early.run.run_id
    # Gaps count only the days that have ended: no day at the first moment, 1 to 4 October (the
    # ticket system's only event is on the 5th) once the 5th has ended (22:00 UTC). The ticket was
    # stored on 6 October, after this draft was priced: a new run would bill it.
    late = Gap(
        "2183",
        "1 event of 2026-10 stored after the run was priced (quantity 1.000000): price the month again to "
        "bill them",
    )
    assert service.find_gaps(store, early.run, catalogue, now=datetime(2026, 9, 30, 22, tzinfo=UTC)) == [late]
    # The other five members have no events at all.
    silent = "no events from any source on 5 of 5 days: 2026-10-01 to 2026-10-05"
    assert service.find_gaps(store, early.run, catalogue, now=datetime(2026, 10, 5, 22, tzinfo=UTC)) == [
        Gap("2121", silent),
        Gap("2132", silent),
        Gap("2161", silent),
        Gap("2182", silent),
        Gap("2183", "source urn:tickets has no events on 4 of 5 days: 2026-10-01 to 2026-10-04"),
        late,
        Gap("2184", silent),
    ]
    with pytest.raises(RunError) as not_ended:
        service.finalize_run(
            store, run_id, catalogue, now=datetime(2026, 10, 31, 22, 59, 59, tzinfo=UTC), accept_gaps=True
        )
    assert str(not_ended.value) == (
        f"run {run_id} (2026-10, all municipalities) cannot be finalised before 2026-10 has ended in "
        "Europe/Stockholm (2026-11-01 00:00 CET); it stays a draft (a preview) until then"
    )
    assert store.get_run(run_id).status == "draft"
    again = service.create_run(store, catalogue, sha, OCT, now=datetime(2026, 10, 31, 23, tzinfo=UTC))
    assert (again.run.run_id, again.created, again.preview) == (run_id, False, None)
    final = service.finalize_run(
        store, run_id, catalogue, now=datetime(2026, 10, 31, 23, tzinfo=UTC), accept_gaps=True
    )
    assert final.status == "final"


def test_a_month_without_usage_is_not_finalised(clickhouse: ClickHouse) -> None:
    store = BillingStore(clickhouse)
    catalogue, sha, _ = catalogue_of(TEXT)
    # Usage of 2183 only: a run of 2121 alone has none.
    store_events(
        clickhouse, [ticket("t1", "2026-10-05T08:00:00Z")], stored_at=datetime(2026, 10, 6, tzinfo=UTC)
    )
    empty = service.create_run(store, catalogue, sha, OCT, ["2121"], now=LATER)
    assert [x.service for x in empty.lines] == ["base-offering", "soc-shared"]  # fees are priced
    with pytest.raises(RunError) as refused:
        service.finalize_run(store, empty.run.run_id, catalogue, now=LATER, accept_gaps=True)
    assert str(refused.value) == (
        f"run {empty.run.run_id} (2026-10, municipality 2121) cannot be finalised: 2026-10 has no usage at "
        "all; check that the collectors delivered it, then price the month again with `chargeback billing "
        "run --period 2026-10 --municipality 2121`"
    )


def dead_letter(ch: ClickHouse, offset: int, key: str, reason: str, value: str, dead_at: datetime) -> None:
    ch.insert(
        "dead_letters",
        ["kafka_topic", "kafka_partition", "kafka_offset", "message_key", "reason", "value", "value_base64",
         "message_time", "dead_at"],
        [("usage", 0, offset, key, reason, value, "", None, dead_at)],
    )  # fmt: skip


def test_before_finalising_a_run_states_per_member_what_may_be_missing(clickhouse: ClickHouse) -> None:
    store = BillingStore(clickhouse)
    catalogue, sha, _ = catalogue_of(TEXT)
    october_days = [f"2026-10-{day:02d}T08:00:00Z" for day in range(1, 32) if day not in (4, 5, 11)]
    events: list[Event] = [
        # Bollnäs's devices report every day but 4, 5 and 11 October (times in UTC, days in Stockholm).
        *[
            (f"d{i}", "2183", "BUF", "pc-standard", "pc1", "1", t, "urn:devices")
            for i, t in enumerate(october_days)
        ],
        # Its ticket system: one ticket in September and one on 2 October, then silent.
        ticket("t0", "2026-09-15T08:00:00Z"),
        ticket("t1", "2026-10-02T08:00:00Z"),
        # Hudiksvall's devices: every day of October.
        *computer_days("2184", "IT", "pcH", OCT),
    ]
    store_events(clickhouse, events, stored_at=datetime(2026, 11, 1, 1, tzinfo=UTC))
    run = service.create_run(
        store, catalogue, sha, OCT, ["2183", "2184"], now=datetime(2026, 11, 1, 2, tzinfo=UTC)
    )
    # After the run was priced: two more tickets for Bollnäs's October.
    store_events(
        clickhouse,
        [ticket("t2", "2026-10-20T08:00:00Z"), ticket("t3", "2026-10-21T08:00:00Z")],
        stored_at=datetime(2026, 11, 2, tzinfo=UTC),
        offset=100,
    )
    at = datetime(2026, 11, 3, tzinfo=UTC)
    event = '{"time":"2026-10-14T10:00:00Z","data":{}}'
    dead_letter(clickhouse, 1, "2183", "unknown service: pc-deluxe", event, at)
    dead_letter(clickhouse, 2, "2183", "unknown service: pc-deluxe", event, at)
    dead_letter(clickhouse, 3, "2183", "data.quantity: Value error, quantity must be >= 0", event, at)
    dead_letter(clickhouse, 4, "9999", "unknown municipality: 9999", event, at)
    dead_letter(clickhouse, 5, "2184", "bad JSON: Expecting value", "{", datetime(2026, 10, 9, tzinfo=UTC))
    dead_letter(clickhouse, 6, "2184", "bad JSON: Expecting value", "{", datetime(2026, 11, 9, tzinfo=UTC))
    dead_letter(clickhouse, 7, "2121", "unknown service: x", event, at)  # not a member of this run

    ready = service.readiness(store, run.run.run_id, catalogue, now=at)
    assert ready.totals == [
        # base 125,000.00 + SOC 100,000.00 x 26,500 / 129,400 (20,479.13) + 28/31 of a computer
        # (0.903226 x 310.00 = 280.00) + 1 ticket 95.00; VAT per line: 31,250.00 + 5,119.78 + 70.00 + 23.75
        MemberTotal("2183", D("145854.13"), D("36463.53")),
        # base 125,000.00 + SOC 100,000.00 x 37,800 / 129,400 (29,211.75) + 1 computer 310.00
        MemberTotal("2184", D("154521.75"), D("38630.44")),
    ]
    assert ready.gaps == [
        Gap("2183", "source urn:devices has no events on 3 of 31 days: 2026-10-04 to 2026-10-05, "
            "2026-10-11"),
        # tickets on 2, 20 and 21 October (the last two stored after the run was priced)
        Gap("2183", "source urn:tickets has no events on 28 of 31 days: 2026-10-01, 2026-10-03 to "
            "2026-10-19, 2026-10-22 to 2026-10-31"),
        Gap("2183", "1 other dead letter"),
        Gap("2183", "2 dead letters with an identifier the catalogue does not know"),
        Gap("2183", "2 events of 2026-10 stored after the run was priced (quantity 2.000000): price the "
            "month again to bill them"),
        Gap("2184", "1 other dead letter"),
        Gap("", "1 dead letter with an identifier the catalogue does not know (message key '9999', no "
            "member)"),
    ]  # fmt: skip
    with pytest.raises(RunError) as refused:
        service.finalize_run(store, run.run.run_id, catalogue, now=at)
    assert str(refused.value) == (
        f"run {run.run.run_id} (2026-10, municipalities 2183, 2184) has 7 gaps (what may be missing, listed "
        "by billing finalize): finalise with --accept-gaps to accept them"
    )
    assert service.finalize_run(store, run.run.run_id, catalogue, now=at, accept_gaps=True).status == "final"
