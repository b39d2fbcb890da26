"""Dead letters for operators: list them from ClickHouse, send fixed ones back to the usage topic.

A replayed letter goes back as a new message with the (possibly corrected) value; the stream
worker validates it like any other. Because the event id is the idempotency key, replaying a letter
whose event was meanwhile stored some other way counts nothing twice.
"""

from __future__ import annotations

import json
from base64 import b64decode
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chargeback.clickhouse import ClickHouse
from chargeback.errors import UserError
from chargeback.kafka import Message

LIST_SQL = """
SELECT kafka_topic, kafka_partition, kafka_offset, message_key, reason, value, value_base64,
       message_time, dead_at
FROM dead_letters
WHERE dead_at >= %(since)s {reason_filter}
ORDER BY dead_at, kafka_topic, kafka_partition, kafka_offset
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class StoredLetter:
    """A dead letter as kept in ClickHouse."""

    topic: str
    partition: int
    offset: int
    key: str
    reason: str
    value: str
    value_base64: str
    message_time: datetime | None
    dead_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The letter as JSON-ready dict; ``value`` is what ``replay`` sends back."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
            "reason": self.reason,
            "value": self.value,
            "value_base64": self.value_base64,
            "message_time": self.message_time.isoformat() if self.message_time else None,
            "dead_at": self.dead_at.isoformat(),
        }


def list_letters(
    ch: ClickHouse, *, since: datetime, reason: str | None = None, limit: int = 1000
) -> list[StoredLetter]:
    """Dead letters since a time, oldest first, optionally those whose reason contains a text."""
    sql = LIST_SQL.format(reason_filter="AND position(reason, %(reason)s) > 0" if reason else "")
    rows = ch.execute(sql, {"since": since, "reason": reason or "", "limit": limit})
    return [StoredLetter(t, int(p), int(o), k, r, v, vb, mt, da) for t, p, o, k, r, v, vb, mt, da in rows]


def letters_to_replay(lines: Iterable[str]) -> Iterator[Message]:
    """Messages from JSON Lines of letters (as ``dead list --json`` writes them, perhaps edited).

    ``value`` wins over ``value_base64`` when present, so an operator fixes a letter by editing
    its ``value``; ``key`` is the municipality code the message is keyed by.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            value = doc["value"].encode() if doc.get("value") is not None else b64decode(doc["value_base64"])
            key = doc.get("key") or None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"line {number}: not a dead letter ({exc})") from exc
        yield Message(key=key.encode() if key else None, value=value)
