"""The collector's spool: every event is on disk before it is sent, until the broker confirmed it.

A run first writes its events to a new segment (append-only, one message per line, fsynced,
renamed into place), then sends the segments oldest first and deletes each one only when the broker confirmed
every message in it. A crash at any point leaves every event delivered, in the spool, or both;
both means it is sent again on the next run under the same id, and the stream worker counts it
once. When the broker cannot be reached the segments stay and the next run drains them, in order.
"""

from __future__ import annotations

import os
import time
from base64 import b64decode, b64encode
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from chargeback.kafka import Message


@dataclass
class DrainResult:
    """What a drain delivered and what is still waiting."""

    sent: int = 0
    spooled: int = 0
    error: str | None = None


class Spool:
    """Segments of pending messages in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, messages: Iterable[Message]) -> tuple[Path | None, int]:
        """Write one segment durably; return it and how many messages it holds (None for none)."""
        name = f"{time.time_ns():020d}-{os.getpid()}.spool"
        tmp = self.folder / f".{name}.tmp"
        count = 0
        with tmp.open("wb") as handle:
            for m in messages:
                handle.write(_encode(m))
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        if count == 0:
            tmp.unlink()
            return None, 0
        target = self.folder / name
        tmp.replace(target)
        self._sync_folder()
        return target, count

    def segments(self) -> list[Path]:
        """Pending segments, oldest first."""
        return sorted(p for p in self.folder.glob("*.spool") if not p.name.startswith("."))

    @staticmethod
    def read(segment: Path) -> Iterator[Message]:
        """The messages of a segment, in order."""
        with segment.open("rb") as handle:
            for line in handle:
                yield _decode(line)

    def pending(self) -> int:
        """How many messages wait in the spool."""
        return sum(sum(1 for _ in segment.open("rb")) for segment in self.segments())

    def drain(self, send: Callable[[list[Message]], int]) -> DrainResult:
        """Send each segment, oldest first; stop at the first failure, keeping what was not confirmed."""
        result = DrainResult()
        for segment in self.segments():
            messages = list(self.read(segment))
            try:
                result.sent += send(messages)
            except Exception as exc:  # the broker's failure modes are many; all mean "keep it spooled"
                result.error = f"{type(exc).__name__}: {exc}"
                break
            segment.unlink()
            self._sync_folder()
        result.spooled = self.pending()
        return result

    def _sync_folder(self) -> None:  # make the rename or the removal itself durable
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# One message per line: "<key> <value>", the key in base64 ("-" for none); the value as it is when
# it has no line break (event JSON never has one), else "=" and the value in base64.
def _encode(message: Message) -> bytes:
    key = b64encode(message.key) if message.key is not None else b"-"
    value = (
        message.value
        if b"\n" not in message.value and not message.value.startswith(b"=")
        else (b"=" + b64encode(message.value))
    )
    return key + b" " + value + b"\n"


def _decode(line: bytes) -> Message:
    key, _, value = line.rstrip(b"\n").partition(b" ")
    return Message(
        None if key == b"-" else b64decode(key),
        b64decode(value[1:]) if value.startswith(b"=") else value,
    )
