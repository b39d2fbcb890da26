"""Collector for a file of ready-made usage events (JSON Lines, one CloudEvent per line).

It forwards each line's bytes unchanged: judging events is the stream worker's job, which
dead-letters a bad one with its reason, so nothing a member sends disappears at the edge.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chargeback.kafka import Message


@dataclass
class FileReport:
    """What a run did with a file."""

    read: int = 0
    emitted: int = 0
    unkeyed: int = 0


def read_events(path: Path, report: FileReport) -> Iterator[Message]:
    """Each non-blank line as a message keyed by its ``data.municipality`` (when it has one)."""
    with path.open("rb") as handle:
        for line in handle:
            value = line.strip()
            if not value:
                continue
            report.read += 1
            key = _municipality(value)
            if key is None:
                report.unkeyed += 1
            yield Message(key=key, value=value)


def _municipality(value: bytes) -> bytes | None:
    try:
        doc = json.loads(value)
        municipality = doc["data"]["municipality"]
    except (ValueError, KeyError, TypeError):
        return None
    return municipality.encode() if isinstance(municipality, str) else None
