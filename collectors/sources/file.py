"""A file of ready-made usage events (JSON Lines, one CloudEvent per line).

Each line that is JSON is forwarded as its bytes, unchanged: judging events is the stream
worker's job, which dead-letters a bad one with its reason, so nothing a member sends disappears
at the edge. A line that is not JSON at all, or that no parser on the way should be asked to
read (nested deeper than ``MAX_DEPTH``, an integer longer than ``MAX_INTEGER_DIGITS`` digits), is
rejected with its line number instead, and every other line still goes: one bad line never
stops a run.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from chargeback.kafka import Message

# A usage event is two levels deep (envelope, data) with plain attributes; quantities have at most
# 18 digits and attributes such as byte counts fit in 64 bits. These bounds leave room to spare.
MAX_DEPTH = 32
MAX_INTEGER_DIGITS = 40
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class _LongInteger(ValueError):
    pass


def _integer(text: str) -> int:
    # json's hook for every integer literal: refused before Python converts it.
    digits = len(text) - text.startswith("-")
    if digits > MAX_INTEGER_DIGITS:
        raise _LongInteger(f"an integer of {digits} digits (at most {MAX_INTEGER_DIGITS})")
    return int(text)


_DECODER = json.JSONDecoder(parse_int=_integer)  # built once: json.loads(..., parse_int=) builds one a call


@dataclass
class FileReport:
    """What a run did with a file: lines read, lines without a municipality to key them by, and
    rejected lines (``file:line: reason``)."""

    read: int = 0
    unkeyed: int = 0
    rejected: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EventFile:
    """The events of a JSON Lines file, for ``collect file``."""

    path: Path
    kind: str = "file"
    unit: str = "events"

    def events(self, report: FileReport) -> Iterator[Message]:
        """Each JSON line as a message keyed by its ``data.municipality`` (when it has one); a line
        that cannot be read is counted in ``report.rejected`` and left out."""
        return read_events(self.path, report)


def read_events(path: Path, report: FileReport) -> Iterator[Message]:
    """Each non-blank JSON line as a message; other lines rejected with their line number."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            value = line.strip()
            if number == 1:
                value = value.removeprefix(codecs.BOM_UTF8)  # Windows editors start files with one
            if not value:
                continue
            report.read += 1
            problem = f"nested deeper than {MAX_DEPTH} levels" if too_deep(value) else None
            if problem is None:
                try:
                    doc = _DECODER.decode(value.decode())
                except _LongInteger as exc:
                    problem = str(exc)
                except (ValueError, RecursionError) as exc:
                    problem = f"not valid JSON: {exc}"
            if problem is not None:
                report.rejected.append(f"{path}:{number}: {problem}")
                continue
            key = _municipality(doc)
            if key is None:
                report.unkeyed += 1
            yield Message(key=key, value=value)


def too_deep(value: bytes) -> bool:
    """Whether a line nests deeper than ``MAX_DEPTH``, told before any parser recurses into it.
    Cheap for the usual line: the exact count runs only when there are that many brackets."""
    if value.count(b"{") + value.count(b"[") <= MAX_DEPTH:
        return False
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b'""', value)):  # brackets in strings are text
        depth += 1 if bracket[0] in b"[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


def _municipality(doc: object) -> bytes | None:
    data = doc.get("data") if isinstance(doc, dict) else None
    municipality = data.get("municipality") if isinstance(data, dict) else None
    if not isinstance(municipality, str):
        return None
    try:
        return municipality.encode()
    except UnicodeEncodeError:  # a lone surrogate escape: no key; the worker dead-letters it
        return None
