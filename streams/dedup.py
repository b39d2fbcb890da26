"""Which event ids a municipality already has: exact, with 8 bytes of memory an id.

Deduplication has no time window (docs/contract.md: an id seen before is dropped, however old), so the worker
must answer "stored before?" for every id of a municipality's history. Holding the ids themselves
costs about 100 bytes each — a gigabyte for ten million events, growing for as long as the service
runs. Here the worker keeps only a 64-bit fingerprint of each stored id, in sorted arrays, and a
fingerprint match is a *candidate* only: the candidates' ids are then looked up by name in
ClickHouse, which decides. Two ids that share a fingerprint therefore cost one extra lookup and
never an event.

The fingerprint is ClickHouse's ``halfMD5`` (the first 8 bytes of the id's MD5, big-endian), so a
worker that starts reads fingerprints, not ids, from ClickHouse.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Fingerprints = npt.NDArray[np.uint64]

# SQL for the fingerprint of ``event_id``: the same number as ``fingerprint`` computes.
FINGERPRINT_SQL = "halfMD5(event_id)"


def fingerprint(event_id: str) -> int:
    """The 64-bit fingerprint of an id (ClickHouse ``halfMD5``)."""
    return int.from_bytes(hashlib.md5(event_id.encode(), usedforsecurity=False).digest()[:8], "big")


def fingerprints(event_ids: Sequence[str]) -> Fingerprints:
    """Fingerprints of ``event_ids``, in order (``fingerprint`` of each, computed in bulk)."""
    md5 = hashlib.md5
    head = b"".join([md5(i.encode(), usedforsecurity=False).digest()[:8] for i in event_ids])
    return np.frombuffer(head, dtype=">u8").astype(np.uint64)


class IdIndex:
    """Fingerprints of one municipality's stored ids, in a few sorted runs.

    New fingerprints arrive a batch at a time as a run of their own; a run is merged into the one
    before it while that one is not much larger, so there are about log(n) runs and every
    fingerprint is copied about log(n) times over its life.
    """

    def __init__(self, stored: Fingerprints | None = None) -> None:
        self._runs: list[Fingerprints] = []
        if stored is not None and stored.size:
            self._runs.append(np.unique(stored))

    def __len__(self) -> int:
        return sum(int(run.size) for run in self._runs)

    @property
    def nbytes(self) -> int:
        """Memory held by the fingerprints."""
        return sum(int(run.nbytes) for run in self._runs)

    def candidates(self, wanted: Fingerprints) -> npt.NDArray[np.bool_]:
        """For each fingerprint in ``wanted``: may its id be stored already? (False is certain.)"""
        found = np.zeros(wanted.size, dtype=bool)
        for run in self._runs:
            at = np.searchsorted(run, wanted)
            inside = at < run.size
            found[inside] |= run[at[inside]] == wanted[inside]
        return found

    def add(self, stored: Fingerprints) -> None:
        """Remember fingerprints of ids just stored."""
        if not stored.size:
            return
        self._runs.append(np.unique(stored))
        while len(self._runs) > 1 and self._runs[-2].size <= 4 * self._runs[-1].size:
            newer = self._runs.pop()
            older = self._runs.pop()
            self._runs.append(np.unique(np.concatenate((older, newer))))
