"""Deterministic event ids: the same observation always gets the same id.

The contract is docs/contract.md, "The usage event".

The id is the stream worker's idempotency key, so it is built only from what identifies the
observation (municipality, source kind, entity, and the day or key), never from a clock, a
counter or the order of rows. ``2183-devices-PF3ABC42-BUF-2026-10-05``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import date

MAX_ID = 200
_UNSAFE = re.compile(r"[^0-9A-Za-z_.:-]+")
_DIGEST = 16  # hex digits of sha256 kept after a shortened id: 64 bits, collisions out of reach


def slug(part: str) -> str:
    """A part of an id: surrounding blanks dropped, each run of other characters as ``_``."""
    return _UNSAFE.sub("_", part.strip())


def join_id(parts: Sequence[str]) -> str:
    """Slugged parts joined by ``-``; beyond ``MAX_ID`` characters, a readable prefix and a hash.

    The hash is over the whole slugged id, so ids that share a long prefix stay distinct.
    """
    slugged = [slug(p) for p in parts]
    if not parts or any(not s for s in slugged):
        raise ValueError(f"an event id needs non-empty parts, got {list(parts)!r}")
    text = "-".join(slugged)
    if len(text) <= MAX_ID:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:_DIGEST]
    return f"{text[: MAX_ID - _DIGEST - 1]}-{digest}"


def event_id(source_kind: str, municipality: str, entity: str, *day_or_key: str | date) -> str:
    """The id of an observation: ``<municipality>-<kind>-<entity>[-<key>...][-<day>]``.

    Per-run readings (devices, licence seats, storage) pass the observation day, so one reading a
    day counts; one-off observations (a closed ticket) pass nothing more, or their own key.
    """
    keys = [k.isoformat() if isinstance(k, date) else k for k in day_or_key]
    return join_id([municipality, source_kind, entity, *keys])
