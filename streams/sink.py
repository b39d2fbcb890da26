"""The usage sink: validate, deduplicate and store a batch of consumed messages exactly once.

Exactness without broker transactions rests on three rules:

1. Every stored row (usage event or dead letter) carries the Kafka position it was read from
   (topic, partition, offset). What ClickHouse holds is therefore the truth about what was already
   written: after a crash, a restart or a failed insert, positions already in ClickHouse are
   skipped, never written again. Positions are checked one by one, not against a high-water mark,
   because one insert may land partly (one part per month partition).
2. Offsets are acknowledged (and so committed) only after the rows are in ClickHouse, and dead
   letters are produced to their topic before the rows are written: a crash at any point replays
   the batch, and rule 1 makes the replay harmless (the topic may then hold a letter twice, both
   naming the same origin; the ``dead_letters`` table holds it once).
3. Deduplication by event id is per municipality (the message key), so one partition owns all of a
   municipality's ids; the ids already stored are loaded from ClickHouse the first time a
   municipality is seen, so the seen-set survives restarts and rebalances.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from base64 import b64encode
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from chargeback.clickhouse import ClickHouse, ClickHouseError
from chargeback.events import MAX_EVENT_BYTES, Accepted, Known, Rejection, check_event
from chargeback.retry import RetryPolicy, deadline_in
from chargeback.signing import Key, verify
from streams.dedup import FINGERPRINT_SQL, Fingerprints, IdIndex, fingerprints

log = logging.getLogger(__name__)

# A dead letter must always fit the dead-letter topic (1 MB a message by default) and a row: it
# keeps at most this much of the original value and key (an oversized original is truncated, its
# size and SHA-256 kept in the reason), and a reason of at most this many characters. Escaped as
# JSON (at worst 6 characters a byte) plus base64, a letter stays under half a megabyte.
LETTER_VALUE_BYTES = MAX_EVENT_BYTES
LETTER_KEY_BYTES = 256
LETTER_REASON_CHARS = 2000
# How long to wait before trying ClickHouse again: 0.5 s doubling up to 30 s (the worker's one policy).
CLICKHOUSE_RETRY = RetryPolicy(retry_on=(ClickHouseError,))
# Moments a DateTime('UTC') column holds exactly on every backend (UInt32 seconds).
_DATETIME_MIN_MS = 0
_DATETIME_END_MS = 2**32 * 1000
# An event before this may fall on a local day before 1970-01-01, which a Date cannot hold.
_EARLIEST_SAFE = datetime(1970, 1, 2, tzinfo=UTC)
_FIRST_DAY = date(1970, 1, 1)

DEAD_COLUMNS = (
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "message_key",
    "reason",
    "value",
    "value_base64",
    "message_time",
    "dead_at",
)
USAGE_COLUMNS = (
    "event_id",
    "source",
    "municipality",
    "cost_centre",
    "service",
    "subject",
    "quantity",
    "event_time",
    "day",
    "attributes",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "stored_at",
)


class Message(Protocol):
    """A consumed Kafka message as the sink reads it (the Kafka client's records have this shape)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> int | None:
        """Broker timestamp in milliseconds since the epoch."""


class Record(NamedTuple):
    """One consumed Kafka message, made by hand (tests, replays)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A message refused by validation, with its reason and origin.

    What it carries of the original is bounded (``LETTER_VALUE_BYTES``, ``LETTER_KEY_BYTES``): a
    letter of a huge message still fits the dead-letter topic and its table.
    """

    record: Message
    reason: str
    dead_at: datetime

    @property
    def key(self) -> bytes | None:
        """The message key the letter is produced with: the original's, cut to its first bytes."""
        key = self.record.key
        return key if key is None else key[:LETTER_KEY_BYTES]

    @property
    def value(self) -> bytes:
        """The original value, cut to its first ``LETTER_VALUE_BYTES``."""
        return (self.record.value or b"")[:LETTER_VALUE_BYTES]

    @property
    def full_reason(self) -> str:
        """The reason, bounded, naming the original's size and SHA-256 when the value was cut."""
        reason = (
            self.reason
            if len(self.reason) <= LETTER_REASON_CHARS
            else self.reason[:LETTER_REASON_CHARS] + "…"
        )
        original = self.record.value or b""
        if len(original) > LETTER_VALUE_BYTES:
            digest = hashlib.sha256(original).hexdigest()
            reason += (
                f" (the letter keeps the first {LETTER_VALUE_BYTES} of {len(original)} bytes;"
                f" sha256 of the original: {digest})"
            )
        return reason

    @property
    def message_time(self) -> datetime | None:
        """The broker timestamp, when it is one a DateTime column holds exactly."""
        ms = self.record.timestamp
        if ms is None or not _DATETIME_MIN_MS < ms < _DATETIME_END_MS:
            return None
        return datetime.fromtimestamp(ms / 1000, UTC)

    def row(self) -> tuple[Any, ...]:
        """The dead letter as a row of ``dead_letters``."""
        r = self.record
        value, key, moment = self.value, self.key, self.message_time
        return (
            r.topic,
            r.partition,
            r.offset,
            key.decode("utf-8", "replace") if key is not None else "",
            self.full_reason,
            value.decode("utf-8", "replace"),
            b64encode(value).decode(),
            moment.replace(microsecond=0) if moment is not None else None,
            self.dead_at.replace(microsecond=0),
        )

    def to_json(self) -> bytes:
        """The dead letter as it is written to the dead-letter topic."""
        r = self.record
        value, key, moment = self.value, self.key, self.message_time
        original = r.value or b""
        doc: dict[str, Any] = {
            "reason": self.full_reason,
            "topic": r.topic,
            "partition": r.partition,
            "offset": r.offset,
            "key": key.decode("utf-8", "replace") if key is not None else None,
            "timestamp": moment.isoformat() if moment is not None else None,
            "dead_at": self.dead_at.isoformat(),
            "value_base64": b64encode(value).decode(),
            "value_size": len(original),
            "value_sha256": hashlib.sha256(original).hexdigest(),
            "value_truncated": len(original) > len(value),
        }
        try:
            doc["value"] = value.decode("utf-8")
        except UnicodeDecodeError:
            doc["value"] = None
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Batch:
    """The outcome of preparing a batch: rows to store and letters to dead-letter."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    new_fingerprints: dict[str, Fingerprints] = field(default_factory=dict)  # of the rows, per municipality
    dead: list[DeadLetter] = field(default_factory=list)
    duplicates: int = 0
    replayed: int = 0
    high_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    tried: set[str] = field(default_factory=set)  # tables an insert of this batch was tried in
    written: set[str] = field(default_factory=set)  # tables that hold all of this batch's rows

    @property
    def partitions(self) -> list[tuple[str, int]]:
        """The partitions the batch's messages came from."""
        return list(self.high_offsets)


@dataclass
class Counters:
    """Running totals since the sink started."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead: int = 0
    replayed: int = 0
    insert_retries: int = 0


class UsageSink:
    """Turns consumed messages into exactly-once rows of ``usage_events``."""

    index_slice = 1_000_000  # ids read from ClickHouse at a time when a municipality's index is built

    def __init__(
        self,
        ch: ClickHouse,
        *,
        known: Known,
        tz: ZoneInfo,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry: RetryPolicy = CLICKHOUSE_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        keys: Mapping[str, Key] | None = None,
    ) -> None:
        self._ch = ch
        self._known = known
        self._tz = tz
        self._clock = clock
        self._retry = retry
        self._sleep = sleep
        self._keys = keys
        self._stored_high: dict[tuple[str, int], int] = {}
        self._seen: dict[str, IdIndex] = {}
        self._owner: dict[str, tuple[str, int]] = {}
        self._moments: dict[datetime, tuple[datetime, date]] = {}
        self.counters = Counters()

    # -- rebalances ----------------------------------------------------------------------------

    def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop what is cached for partitions this worker no longer owns (another may write them)."""
        gone = set(partitions)
        for tp in gone:
            self._stored_high.pop(tp, None)
        for municipality in [m for m, tp in self._owner.items() if tp in gone]:
            self._seen.pop(municipality, None)
            self._owner.pop(municipality, None)

    # -- the batch -----------------------------------------------------------------------------

    def prepare(self, records: Sequence[Message]) -> Batch:
        """Validate and deduplicate; nothing is written yet."""
        now = self._clock()
        batch = Batch()
        stored_at = now.replace(microsecond=0)
        # Positions already in ClickHouse (after a restart) or met earlier in this batch (a partition
        # read again after a rebalance) are skipped: each position is handled once.
        handled = self._already_stored(records)
        known, keys = self._known, self._keys
        high = batch.high_offsets
        dead = batch.dead
        accepted: list[tuple[Message, Accepted, int]] = []  # and the id's place in by_municipality
        by_municipality: dict[str, tuple[tuple[str, int], list[str]]] = {}  # partition, ids
        for record in records:
            tp = (record.topic, record.partition)
            offset = record.offset
            if offset > high.get(tp, -1):
                high[tp] = offset
            position = (record.topic, record.partition, offset)
            if position in handled:
                batch.replayed += 1
                continue
            handled.add(position)
            value = record.value or b""  # a message without a value (a tombstone) is refused
            result = check_event(value, known=known, now=now, key=record.key)
            if type(result) is Rejection:
                dead.append(DeadLetter(record, result.reason, now))
                continue
            assert isinstance(result, Accepted)
            if result.time < _EARLIEST_SAFE and self._place(result.time)[1] < _FIRST_DAY:
                dead.append(DeadLetter(record, f"time: its day in {self._tz.key} is before 1970-01-01", now))
                continue
            if keys is not None:
                try:
                    refused = verify(value, result.municipality, keys)
                except (ValueError, RecursionError) as exc:  # validated already: never expected
                    refused = f"signature not checkable: {exc}"
                if refused is not None:
                    dead.append(DeadLetter(record, refused, now))
                    continue
            ids = by_municipality.get(result.municipality)
            if ids is None:
                ids = by_municipality[result.municipality] = ((record.topic, record.partition), [])
            accepted.append((record, result, len(ids[1])))
            ids[1].append(result.id)

        stored_before, prints = self._stored_before(by_municipality)
        moments, rows = self._moments, batch.rows
        fresh: dict[str, set[str]] = {}
        kept: dict[str, list[int]] = {}  # places of the rows' ids in by_municipality
        for record, result, place in accepted:
            municipality, event_id = result.municipality, result.id
            seen = fresh.get(municipality)
            if seen is None:
                seen = fresh[municipality] = set()
                kept[municipality] = []
            if event_id in seen or event_id in stored_before:
                batch.duplicates += 1
                continue
            seen.add(event_id)
            kept[municipality].append(place)
            moment = result.time
            placed = moments.get(moment)
            if placed is None:
                placed = self._place(moment)
            attributes = result.attributes
            rows.append(
                (
                    event_id,
                    result.source,
                    municipality,
                    result.cost_centre,
                    result.service,
                    result.subject,
                    result.quantity,
                    placed[0],
                    placed[1],
                    json.dumps(attributes, default=str, sort_keys=True, separators=(",", ":"))
                    if attributes
                    else "",
                    record.topic,
                    record.partition,
                    record.offset,
                    stored_at,
                )
            )
        batch.new_fingerprints = {m: prints[m][places] for m, places in kept.items() if places}
        self.counters.received += len(records)
        self.counters.duplicates += batch.duplicates
        self.counters.dead += len(dead)
        self.counters.replayed += batch.replayed
        return batch

    def _stored_before(
        self, by_municipality: Mapping[str, tuple[tuple[str, int], list[str]]]
    ) -> tuple[set[str], dict[str, Fingerprints]]:
        """Of the ids (per municipality, with the partition they came from), those ClickHouse
        already holds for their municipality; and the ids' fingerprints, in the same order.

        The fingerprint index rules most ids out at once; the few it cannot (ids stored before,
        or the rare id sharing a fingerprint with one) are looked up by name.
        """
        found: set[str] = set()
        prints: dict[str, Fingerprints] = {}
        for municipality, (tp, ids) in by_municipality.items():
            index = self._id_index(municipality, tp)
            prints[municipality] = fingerprints(ids)
            maybe = index.candidates(prints[municipality])
            if maybe.any():
                found |= self._stored_ids(municipality, {ids[i] for i in np.flatnonzero(maybe)})
        return found, prints

    def _place(self, moment: datetime) -> tuple[datetime, date]:
        # The UTC time and the local day of an event time; collectors stamp many events with the
        # same time, so the conversions are kept for the times met (bounded).
        if len(self._moments) >= 100_000:
            self._moments.clear()
        placed = self._moments[moment] = (moment.astimezone(UTC), moment.astimezone(self._tz).date())
        return placed

    def store(self, batch: Batch, *, timeout_s: float | None = None) -> None:
        """Write the batch's dead letters and rows, each exactly once.

        Retries while ClickHouse is down (the retry policy), so the caller does not consume
        meanwhile: the back-pressure that keeps memory flat and loses nothing. With ``timeout_s``
        it gives up after about that long, raising ``ClickHouseError``; calling ``store`` again
        with the same batch resumes it (what landed is asked first, never written twice), and a
        batch given up for good is simply not acknowledged: its messages are read again.
        """
        deadline = deadline_in(timeout_s)
        for table, columns, rows in (
            ("dead_letters", DEAD_COLUMNS, [d.row() for d in batch.dead]),
            ("usage_events", USAGE_COLUMNS, batch.rows),
        ):
            if table in batch.written:
                continue
            resume = table in batch.tried
            batch.tried.add(table)
            self._insert_exactly_once(table, columns, rows, resume=resume, deadline=deadline)
            batch.written.add(table)
        self.counters.stored += len(batch.rows)
        for municipality, prints in batch.new_fingerprints.items():
            index = self._seen.get(municipality)
            if index is not None:  # else read from ClickHouse, this batch included, when next needed
                index.add(prints)
        for tp, offset in batch.high_offsets.items():
            self._stored_high[tp] = max(self._stored_high.get(tp, -1), offset)

    def _insert_exactly_once(
        self,
        table: str,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
        *,
        resume: bool,
        deadline: float | None,
    ) -> None:
        # After a failure (or when resuming one), first ask ClickHouse which positions did land (an
        # insert may land partly, or land and still report an error), and write only the rest.
        position = [columns.index(c) for c in ("kafka_topic", "kafka_partition", "kafka_offset")]
        check_first = [resume]

        def attempt() -> None:
            pending = rows
            if check_first[0]:
                places = [(r[position[0]], r[position[1]], r[position[2]]) for r in rows]
                landed = self._stored_positions(table, places)
                pending = [r for r, p in zip(rows, places, strict=True) if p not in landed]
            check_first[0] = True
            if pending:
                self._ch.insert(table, columns, pending)

        def retrying(exc: BaseException, delay: float) -> None:
            self.counters.insert_retries += 1
            log.warning(
                "insert of %d rows into %s failed (%s); retrying in %.1f s", len(rows), table, exc, delay
            )

        if rows:
            self._retry.run(attempt, deadline=deadline, sleep=self._sleep, on_retry=retrying)

    # -- what ClickHouse already holds ---------------------------------------------------------

    def _already_stored(self, records: Sequence[Message]) -> set[tuple[str, int, int]]:
        """Positions of ``records`` that ClickHouse already holds (only asked after a restart)."""
        candidates = [
            (r.topic, r.partition, r.offset)
            for r in records
            if r.offset <= self._high((r.topic, r.partition))
        ]
        if not candidates:
            return set()
        return self._stored_positions("usage_events", candidates) | self._stored_positions(
            "dead_letters", candidates
        )

    def _stored_positions(
        self, table: str, positions: Sequence[tuple[str, int, int]]
    ) -> set[tuple[str, int, int]]:
        wanted = set(positions)
        found: set[tuple[str, int, int]] = set()
        for topic, partition in {(t, p) for t, p, _ in wanted}:
            offsets = [o for t, p, o in wanted if (t, p) == (topic, partition)]
            rows = self._ch.execute(
                f"SELECT kafka_offset FROM {table} WHERE kafka_topic = %(topic)s AND kafka_partition = %(p)s "
                "AND kafka_offset >= %(lo)s AND kafka_offset <= %(hi)s",
                {"topic": topic, "p": partition, "lo": min(offsets), "hi": max(offsets)},
            )
            found.update((topic, partition, int(o)) for (o,) in rows)
        return found & wanted

    def _high(self, tp: tuple[str, int]) -> int:
        """The highest position of ``tp`` in ClickHouse when this worker first saw the partition."""
        if tp not in self._stored_high:
            rows = self._ch.execute(
                "SELECT max(o), sum(n) FROM ("
                " SELECT max(kafka_offset) AS o, count() AS n FROM usage_events"
                " WHERE kafka_topic = %(topic)s AND kafka_partition = %(p)s"
                " UNION ALL"
                " SELECT max(kafka_offset) AS o, count() AS n FROM dead_letters"
                " WHERE kafka_topic = %(topic)s AND kafka_partition = %(p)s) AS highs",
                {"topic": tp[0], "p": tp[1]},
            )
            high, count = rows[0]
            self._stored_high[tp] = int(high) if count else -1
        return self._stored_high[tp]

    def _id_index(self, municipality: str, tp: tuple[str, int]) -> IdIndex:
        """The fingerprints of the municipality's stored ids, read from ClickHouse the first time."""
        if municipality not in self._seen:
            (count,) = self._ch.execute(
                "SELECT count() FROM usage_events WHERE municipality = %(m)s", {"m": municipality}
            )[0]
            # In slices, so a long history never arrives as one huge result.
            slices = max(1, -(-int(count) // self.index_slice))
            parts = [
                np.array(
                    [
                        int(f)
                        for (f,) in self._ch.execute(
                            f"SELECT {FINGERPRINT_SQL} AS f FROM usage_events WHERE municipality = %(m)s"
                            " AND f % %(n)s = %(k)s",
                            {"m": municipality, "n": slices, "k": k},
                        )
                    ],
                    dtype=np.uint64,
                )
                for k in range(slices)
            ]
            self._seen[municipality] = IdIndex(np.concatenate(parts))
            self._owner[municipality] = tp
        return self._seen[municipality]

    def _stored_ids(self, municipality: str, ids: set[str]) -> set[str]:
        """Which of ``ids`` ClickHouse holds for the municipality, asked by name (a few thousand at a
        time, to keep each query small)."""
        wanted = sorted(ids)
        found: set[str] = set()
        for start in range(0, len(wanted), 2000):
            rows = self._ch.execute(
                "SELECT DISTINCT event_id FROM usage_events"
                " WHERE municipality = %(m)s AND event_id IN %(ids)s",
                {"m": municipality, "ids": tuple(wanted[start : start + 2000])},
            )
            found.update(r[0] for r in rows)
        return found
