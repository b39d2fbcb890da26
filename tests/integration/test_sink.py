"""The usage sink on real ClickHouse (server and chDB): exactly once under replays and failures."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chargeback.clickhouse import ClickHouse, ClickHouseError
from chargeback.events import Known
from streams.dedup import fingerprints
from streams.sink import Record, UsageSink

pytestmark = pytest.mark.integration

KNOWN = Known(municipalities={"2183", "2184"}, services={"pc-standard", "ticket-incident"})
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def message(
    eid: str,
    offset: int,
    *,
    municipality: str = "2183",
    subject: str = "PC1",
    quantity: str = "1",
    partition: int = 0,
    when: str = "2026-10-05T06:00:00Z",
) -> Record:
    body = {
        "specversion": "1.0",
        "id": eid,
        "source": "urn:test",
        "type": "chargeback.usage.v1",
        "time": when,
        "data": {
            "municipality": municipality,
            "service": "pc-standard",
            "subject": subject,
            "quantity": quantity,
        },
    }
    return Record("usage", partition, offset, municipality.encode(), json.dumps(body).encode())


def make_sink(ch: ClickHouse, **kwargs: Any) -> UsageSink:
    return UsageSink(
        ch, known=KNOWN, tz=ZoneInfo("Europe/Stockholm"), clock=lambda: NOW, sleep=lambda s: None, **kwargs
    )


def stored(ch: ClickHouse) -> list[tuple[Any, ...]]:
    return ch.execute(
        "SELECT event_id, subject, quantity, day, kafka_offset FROM usage_events ORDER BY kafka_offset"
    )


def test_every_event_sent_three_times_counts_once(clickhouse: ClickHouse) -> None:
    sink = make_sink(clickhouse)
    records = [message(f"e{i % 4}", offset=i) for i in range(12)]  # e0..e3, each three times
    batch = sink.prepare(records)
    sink.store(batch)
    assert (len(batch.rows), batch.duplicates, len(batch.dead)) == (4, 8, 0)
    assert [r[0] for r in stored(clickhouse)] == ["e0", "e1", "e2", "e3"]


def test_first_occurrence_wins_whatever_the_other_fields(clickhouse: ClickHouse) -> None:
    sink = make_sink(clickhouse)
    sink.store(sink.prepare([message("e1", 0, subject="PC1", quantity="1")]))
    # The same id later, in another batch and after a restart, with other fields: dropped.
    restarted = make_sink(clickhouse)
    batch = restarted.prepare([message("e1", 1, subject="PC9", quantity="5")])
    restarted.store(batch)
    assert batch.duplicates == 1
    assert stored(clickhouse) == [("e1", "PC1", Decimal("1"), date(2026, 10, 5), 0)]


def test_ids_of_a_long_history_are_known_after_a_restart_and_a_shared_fingerprint_loses_nothing(
    clickhouse: ClickHouse,
) -> None:
    first = make_sink(clickhouse)
    first.store(first.prepare([message(f"h{i}", offset=i, subject=f"PC{i}") for i in range(25)]))
    restarted = make_sink(clickhouse)
    restarted.index_slice = 10  # 25 stored ids read back in three slices
    batch = restarted.prepare([message("h3", 25), message("h24", 26), message("n1", 27)])
    assert (batch.duplicates, [r[0] for r in batch.rows]) == (2, ["n1"])
    assert len(restarted._seen["2183"]) == 25
    restarted.store(batch)
    # An id whose fingerprint the index holds but ClickHouse does not (two ids sharing a
    # fingerprint) is looked up by name and stored: a match is only a candidate.
    restarted._seen["2183"].add(fingerprints(["n2"]))
    batch = restarted.prepare([message("n2", 28), message("n1", 29)])
    restarted.store(batch)
    assert (batch.duplicates, [r[0] for r in batch.rows]) == (1, ["n2"])
    assert clickhouse.execute("SELECT count(), uniqExact(event_id) FROM usage_events") == [(27, 27)]


def test_replay_after_crash_between_write_and_commit_writes_nothing_twice(clickhouse: ClickHouse) -> None:
    records = [message(f"e{i}", offset=i) for i in range(5)] + [message("bad", 5, quantity="-1")]
    first = make_sink(clickhouse)
    first.store(first.prepare(records))
    # The worker died before its offsets were committed: a new one reads the same messages again.
    second = make_sink(clickhouse)
    replay = second.prepare([*records, message("e5", offset=6)])
    second.store(replay)
    assert (replay.replayed, len(replay.rows), len(replay.dead)) == (6, 1, 0)
    assert [r[0] for r in stored(clickhouse)] == ["e0", "e1", "e2", "e3", "e4", "e5"]


class LandsThenFails:
    """Real ClickHouse whose first insert lands and then reports an error, as a dropped connection
    after the server committed does."""

    def __init__(self, ch: ClickHouse) -> None:
        self._ch = ch
        self.backend, self.database = ch.backend, ch.database
        self.failures = 1

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self._ch.execute(sql, params)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self._ch.insert(table, columns, rows)
        if self.failures:
            self.failures -= 1
            raise ClickHouseError("Connection reset by peer")

    def close(self) -> None:
        self._ch.close()


def test_an_insert_that_landed_but_reported_failure_is_not_repeated(clickhouse: ClickHouse) -> None:
    flaky = LandsThenFails(clickhouse)
    sink = make_sink(flaky)
    sink.store(sink.prepare([message(f"e{i}", offset=i) for i in range(3)]))
    assert sink.counters.insert_retries == 1
    assert [r[0] for r in stored(clickhouse)] == ["e0", "e1", "e2"]


def test_local_day_is_stored_in_the_catalogue_time_zone(clickhouse: ClickHouse) -> None:
    sink = make_sink(clickhouse)
    sink.store(sink.prepare([message("late", 0, when="2026-10-31T23:30:00Z")]))
    assert stored(clickhouse)[0][3] == date(2026, 11, 1)


def test_dead_letters_carry_reason_and_origin(clickhouse: ClickHouse) -> None:
    sink = make_sink(clickhouse)
    batch = sink.prepare([Record("usage", 3, 17, b"2183", b"not json", 1_790_000_000_000)])
    letter = json.loads(batch.dead[0].to_json())
    assert letter["reason"].startswith("bad JSON: ")
    assert {k: letter[k] for k in ("topic", "partition", "offset", "key", "value", "value_base64")} == {
        "topic": "usage",
        "partition": 3,
        "offset": 17,
        "key": "2183",
        "value": "not json",
        "value_base64": "bm90IGpzb24=",
    }
    assert letter["timestamp"] == "2026-09-21T14:13:20+00:00"
    assert letter["dead_at"] == "2026-11-02T12:00:00+00:00"


# -- poison among valid events (SPEC: a bad event never stops the pipeline) ----------------------

BIG = b'{"specversion": "1.0", "note": "' + b"x" * 900_000 + b'"}'


def poison() -> list[tuple[bytes | None, bytes, str]]:
    """Messages no worker may stop on: (key, value, the exact reason they are refused)."""
    good = json.loads(message("p", 0).value)
    deep = json.dumps(good).encode()[:-1] + b',"x":' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    huge_int = json.dumps(good).replace('"quantity": "1"', '"quantity": "1", "n": ' + "9" * 5000).encode()
    early = json.dumps({**good, "time": "1969-12-31T23:59:59Z"}).encode()
    keyless = json.dumps(good).encode()
    return [
        (b"2183", deep, "bad JSON: nested more than 16 levels deep"),
        (b"2183", huge_int, "bad JSON: a number with more than 40 digits"),
        (
            b"2183",
            BIG,
            "event too large: 900034 bytes, the limit is 65536 (the letter keeps the first 65536 of 900034"
            f" bytes; sha256 of the original: {hashlib.sha256(BIG).hexdigest()})",
        ),
        (b"2183", early, "time: Value error, time must be from 1970-01-01T00:00:00Z to 2100-12-31T23:59:59Z"),
        (None, keyless, "message has no key: it must be the event's municipality 2183"),
        (b"2184", keyless, "message key '2184' is not the event's municipality 2183"),
    ]


def test_poison_between_valid_events_is_dead_lettered_and_the_rest_stored(clickhouse: ClickHouse) -> None:
    records: list[Record] = []
    for i, (key, value, _) in enumerate(poison()):
        records.append(message(f"ok{i}", offset=2 * i, subject=f"PC{i}"))
        records.append(Record("usage", 0, 2 * i + 1, key, value, -5_000))  # and a broker time before 1970
    records.append(message("ok-last", offset=len(records)))
    sink = make_sink(clickhouse)
    batch = sink.prepare(records)
    sink.store(batch)
    assert [r[0] for r in stored(clickhouse)] == [*(f"ok{i}" for i in range(6)), "ok-last"]
    assert clickhouse.execute(
        "SELECT kafka_offset, reason, message_key, length(value), message_time FROM dead_letters"
        " ORDER BY kafka_offset"
    ) == [
        (2 * i + 1, reason, (key or b"").decode(), min(len(value), 65536), None)
        for i, (key, value, reason) in enumerate(poison())
    ]
    # Every letter fits the dead-letter topic (1 MB a message) and names the original's size and hash.
    letters = [json.loads(d.to_json()) for d in batch.dead]
    assert max(len(d.to_json()) for d in batch.dead) < 500_000
    big = letters[2]
    assert (big["value_size"], big["value_sha256"], big["value_truncated"]) == (
        900_034,
        hashlib.sha256(BIG).hexdigest(),
        True,
    )
    assert base64.b64decode(big["value_base64"]) == BIG[:65536]
    assert letters[0]["value_truncated"] is False
    # A restart reads the same messages again: nothing changes.
    again = make_sink(clickhouse)
    replay = again.prepare(records)
    again.store(replay)
    assert (len(replay.rows), len(replay.dead), replay.replayed) == (0, 0, 13)
    assert clickhouse.execute("SELECT count() FROM usage_events") == [(7,)]
    assert clickhouse.execute("SELECT count() FROM dead_letters") == [(6,)]


def test_a_day_before_1970_in_the_catalogue_zone_is_dead_lettered(clickhouse: ClickHouse) -> None:
    sink = UsageSink(clickhouse, known=KNOWN, tz=ZoneInfo("America/New_York"), clock=lambda: NOW)
    batch = sink.prepare(
        [message("ny", 0, when="1970-01-01T03:00:00Z"), message("ok", 1, when="1970-01-01T06:00:00Z")]
    )
    sink.store(batch)
    assert [d.reason for d in batch.dead] == ["time: its day in America/New_York is before 1970-01-01"]
    assert clickhouse.execute("SELECT event_id, event_time, day FROM usage_events") == [
        ("ok", datetime(1970, 1, 1, 6, tzinfo=UTC), date(1970, 1, 1))
    ]


def test_a_store_gives_up_at_its_timeout_and_a_second_store_resumes_without_doubling(
    clickhouse: ClickHouse,
) -> None:
    flaky = LandsThenFails(clickhouse)  # the dead letters' insert lands, then reports an error
    sink = UsageSink(flaky, known=KNOWN, tz=ZoneInfo("Europe/Stockholm"), clock=lambda: NOW)
    batch = sink.prepare([message("e0", 0), Record("usage", 0, 1, b"2183", b"broken"), message("e1", 2)])
    with pytest.raises(ClickHouseError, match="Connection reset by peer"):
        sink.store(batch, timeout_s=0.2)  # the first wait (0.5 s) would end past the timeout
    assert (sink.counters.insert_retries, batch.tried, batch.written) == (0, {"dead_letters"}, set())
    sink.store(batch, timeout_s=0.2)  # ClickHouse is back: what landed is asked first
    assert clickhouse.execute("SELECT kafka_offset FROM dead_letters") == [(1,)]
    assert [r[0] for r in stored(clickhouse)] == ["e0", "e1"]
    assert (batch.tried, batch.written) == (
        {"dead_letters", "usage_events"},
        {"dead_letters", "usage_events"},
    )
