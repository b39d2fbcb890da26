"""The collector's spool: every event is on disk before it is sent, until the broker confirmed it.

A run first writes its events to a new segment (append-only, one message per line, fsynced,
renamed into place), then sends the segments oldest first and deletes each one only when the broker confirmed
every message in it. A crash at any point leaves every event delivered, in the spool, or both;
both means it is sent again on the next run under the same id, and the stream worker counts it
once. When the broker cannot be reached the segments stay and the next run drains them, in order.

A segment that cannot be written (disk full, no permission) is removed again and reported as
``SpoolError``, one sentence; a temporary segment a crashed run left behind (``.<name>.tmp``, its
process gone) is deleted by the next write, so it neither fills the disk nor is ever sent.
"""

from __future__ import annotations

import contextlib
import os
import time
from base64 import b64decode, b64encode
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from chargeback.errors import UserError
from chargeback.kafka import Message


class SpoolError(UserError):
    """The spool folder cannot be written or read: this run's events were not kept."""

    code = "collector.spool"


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


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
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"the spool folder {folder} cannot be created: {_why(exc)}") from exc

    def write(self, messages: Iterable[Message]) -> tuple[Path | None, int]:
        """Write one segment durably; return it and how many messages it holds (None for none).

        Raises ``SpoolError`` when the segment cannot be written; nothing of it is left behind.
        """
        self.remove_leftovers()
        name = f"{time.time_ns():020d}-{os.getpid()}.spool"
        tmp = self.folder / f".{name}.tmp"
        count = 0
        try:
            with self._create(tmp) as handle:
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
        except OSError as exc:
            _discard(tmp)
            raise SpoolError(
                f"the spool folder {self.folder} cannot be written ({_why(exc)}): "
                "this run's events were not kept and not sent"
            ) from exc
        except BaseException:  # the messages' own source failed: keep no half segment either
            _discard(tmp)
            raise
        return target, count

    def remove_leftovers(self) -> list[Path]:
        """Delete the temporary segments of runs that died while writing (their process is gone);
        return them. Another live run's temporary segment is left alone."""
        removed = []
        try:
            for tmp in self.folder.glob(".*.spool.tmp"):
                if not _writer_alive(tmp):
                    tmp.unlink(missing_ok=True)
                    removed.append(tmp)
        except OSError:  # an unreadable folder is reported by the write that follows
            pass
        return removed

    def segments(self) -> list[Path]:
        """Pending segments, oldest first."""
        try:
            return sorted(p for p in self.folder.glob("*.spool") if not p.name.startswith("."))
        except OSError as exc:
            raise SpoolError(f"the spool folder {self.folder} cannot be read: {_why(exc)}") from exc

    @staticmethod
    def read(segment: Path) -> Iterator[Message]:
        """The messages of a segment, in order."""
        with segment.open("rb") as handle:
            for line in handle:
                yield _decode(line)

    def pending(self) -> int:
        """How many messages wait in the spool."""
        total = 0
        for segment in self.segments():
            try:
                with segment.open("rb") as handle:
                    total += sum(1 for _ in handle)
            except FileNotFoundError:  # another run just sent it
                continue
            except OSError as exc:
                raise SpoolError(f"{segment}: cannot read the spooled events: {_why(exc)}") from exc
        return total

    def drain(self, send: Callable[[list[Message]], int]) -> DrainResult:
        """Send each segment, oldest first; stop at the first failure, keeping what was not confirmed.

        Raises ``SpoolError`` when the spool itself cannot be read or a sent segment removed.
        """
        result = DrainResult()
        for segment in self.segments():
            try:
                messages = list(self.read(segment))
            except FileNotFoundError:  # a run beside this one sent it meanwhile
                continue
            except OSError as exc:
                raise SpoolError(f"{segment}: cannot read the spooled events: {_why(exc)}") from exc
            try:
                result.sent += send(messages)
            except Exception as exc:  # the broker's failure modes are many; all mean "keep it spooled"
                result.error = f"{type(exc).__name__}: {exc}"
                break
            try:
                segment.unlink(missing_ok=True)
                self._sync_folder()
            except OSError as exc:  # sent, but it would be sent again next time (same ids)
                raise SpoolError(f"{segment}: sent, but cannot be removed: {_why(exc)}") from exc
        result.spooled = self.pending()
        return result

    def _create(self, tmp: Path) -> BinaryIO:
        """A new temporary segment (the one place a segment's bytes are opened for writing)."""
        return tmp.open("xb")

    def _sync_folder(self) -> None:  # make the rename or the removal itself durable
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):  # then the next run's write removes it
        tmp.unlink(missing_ok=True)


def _writer_alive(tmp: Path) -> bool:
    # ".<ns>-<pid>.spool.tmp": is the process that writes it still running?
    try:
        pid = int(tmp.name.removeprefix(".").removesuffix(".spool.tmp").rpartition("-")[2])
    except ValueError:
        return False
    if pid == os.getpid():
        return False  # this process writes one segment at a time: one left is from a failed write
    if os.name == "nt":  # no signal 0 on Windows: a day-old temporary segment is a dead run's
        try:
            return time.time() - tmp.stat().st_mtime < 86_400
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


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
