"""The id index: fingerprints as ClickHouse computes them, candidates never missed."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from streams.dedup import IdIndex, fingerprint, fingerprints


def test_fingerprint_is_clickhouse_halfmd5() -> None:
    # SELECT halfMD5('2183-devices-PC1-BUF-2026-10-05'), halfMD5(''), halfMD5('Å') on ClickHouse
    # (the 18.16 server and chDB gave these same numbers).
    assert fingerprint("2183-devices-PC1-BUF-2026-10-05") == 14812212136070623842
    assert fingerprint("") == 15284527576400310788
    assert fingerprint("Å") == 4512752973847022163


def test_runs_merge_and_every_stored_fingerprint_stays_a_candidate() -> None:
    index = IdIndex(fingerprints([f"old-{i}" for i in range(1000)]))
    for batch in range(20):
        index.add(fingerprints([f"new-{batch}-{i}" for i in range(100)]))
    assert len(index) == 3000
    assert index.nbytes == 3000 * 8
    assert len(index._runs) <= 4  # merged as they came, not one run a batch
    stored = [f"old-{i}" for i in range(0, 1000, 7)] + [f"new-{b}-{i}" for b in range(20) for i in (0, 99)]
    assert index.candidates(fingerprints(stored)).all()
    never = [f"never-{i}" for i in range(1000)]
    assert not index.candidates(fingerprints(never)).any()


def test_an_empty_index_has_no_candidates() -> None:
    assert IdIndex().candidates(fingerprints(["a", "b"])).tolist() == [False, False]
    assert IdIndex(np.array([], dtype=np.uint64)).candidates(fingerprints([])).tolist() == []


@given(
    st.lists(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=40), max_size=12),
    st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=40),
)
def test_candidates_are_exactly_the_fingerprints_added(batches: list[list[int]], asked: list[int]) -> None:
    index = IdIndex()
    for batch in batches:
        index.add(np.array(batch, dtype=np.uint64))
    added = {f for batch in batches for f in batch}
    wanted = np.array(asked, dtype=np.uint64)
    assert index.candidates(wanted).tolist() == [f in added for f in asked]
    assert len(index) <= sum(len(set(batch)) for batch in batches)  # once a run
