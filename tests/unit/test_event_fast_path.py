"""The stream worker's fast check and the full pydantic validation reach the same verdicts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chargeback.events import Accepted, Known, Rejection, _check_fast, check_event, validate_event

KNOWN = Known(municipalities={"2183", "2184"}, services={"pc-standard", "storage-file"})
NOW = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)

texts = st.one_of(
    st.sampled_from(["2183", "2184", "9999", "", "BUF", "pc-standard", "storage-file", "x" * 70, "a b", "Ö"]),
    st.text(max_size=8),
)
quantities = st.one_of(
    st.sampled_from(["1", "0", "0.5", "-1", "1.0000001", "999999999999.999999", "1e3", " 1", "NaN", "01"]),
    st.integers(min_value=-5, max_value=10**13),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.none(),
)
times = st.one_of(
    st.sampled_from(
        [
            "2026-10-05T06:00:00Z",
            "2026-10-05T06:00:00.123456+02:00",
            "2026-10-05T06:00:00",
            "2026-10-21T12:00:01Z",
            "2026-10-21T12:00:00Z",
            "2026-13-05T06:00:00Z",
            "2026-10-05T24:00:00Z",
            "2026-10-05 06:00:00Z",
            "yesterday",
        ]
    ),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
)


@st.composite
def events(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    data: dict[str, Any] = {
        "municipality": draw(st.sampled_from(["2183", "2184"]) | texts | st.lists(st.integers(), max_size=1)),
        "service": draw(
            st.sampled_from(["pc-standard", "storage-file"])
            | texts
            | st.dictionaries(texts, texts, max_size=1)
        ),
        "subject": draw(st.sampled_from(["PC1", "S1"]) | texts),
        "quantity": draw(quantities),
    }
    if draw(st.booleans()):
        data["cost_centre"] = draw(st.sampled_from(["BUF", "SOC"]) | texts | st.none())
    if draw(st.booleans()):
        data[draw(st.sampled_from(["channel", "priority"]))] = draw(
            st.one_of(texts, st.integers(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=2))
        )
    doc: dict[str, Any] = {
        "specversion": draw(st.sampled_from(["1.0", "1.0", "0.3"])),
        "id": draw(st.sampled_from(["e-1", "x" * 300]) | texts | st.integers()),
        "source": draw(st.sampled_from(["urn:chargeback:collector:2183:intune"]) | texts),
        "type": draw(st.sampled_from(["chargeback.usage.v1", "chargeback.usage.v1", "other"])),
        "time": draw(times),
        "data": data,
    }
    for field in draw(st.lists(st.sampled_from(["id", "source", "time", "type", "data"]), max_size=1)):
        doc.pop(field)
    if draw(st.booleans()):
        doc[draw(st.sampled_from(["signature", "keyid", "Weird-Key"]))] = draw(texts)
    key = draw(st.sampled_from([b"2183", b"2184", None]))
    return json.dumps(doc).encode(), key


@settings(max_examples=1500)
@given(events())
def test_fast_and_full_validation_agree(message: tuple[bytes, bytes | None]) -> None:
    raw, key = message
    full = validate_event(raw, known=KNOWN, now=NOW, key=key)
    fast = _check_fast(raw, KNOWN, NOW, key)
    if fast is not None:  # the fast path only ever accepts, and only what the full path accepts
        assert not isinstance(full, Rejection), (raw, full)
        assert isinstance(fast, Accepted)
        data = full.data
        assert fast == Accepted(
            full.id,
            full.source,
            full.time,
            data.municipality,
            data.cost_centre,
            data.service,
            data.subject,
            data.quantity,
            data.attributes,
        )
    verdict = check_event(raw, known=KNOWN, now=NOW, key=key)
    assert isinstance(verdict, Rejection) == isinstance(full, Rejection)
    if isinstance(full, Rejection):
        assert verdict == full


def test_the_canonical_collector_event_takes_the_fast_path() -> None:
    raw = json.dumps(
        {
            "specversion": "1.0",
            "id": "e-1",
            "source": "urn:x",
            "type": "chargeback.usage.v1",
            "time": "2026-10-05T06:00:00Z",
            "signature": "abc",
            "data": {
                "municipality": "2183",
                "cost_centre": "BUF",
                "service": "pc-standard",
                "subject": "PC1",
                "quantity": "1.5",
                "channel": "phone",
            },
        }
    ).encode()
    fast = _check_fast(raw, KNOWN, NOW, b"2183")
    assert fast is not None
    assert (fast.id, fast.quantity, fast.attributes) == (
        "e-1",
        __import__("decimal").Decimal("1.5"),
        {"channel": "phone"},
    )


@settings(max_examples=500)
@given(
    st.binary(max_size=400)
    | events().map(lambda m: m[0])
    | st.recursive(
        st.none() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    ).map(lambda doc: json.dumps(doc).encode()),
    st.sampled_from([b"2183", None, b"\xff"]),
)
def test_no_message_raises_every_one_gets_a_verdict(raw: bytes, key: bytes | None) -> None:
    verdict = check_event(raw, known=KNOWN, now=NOW, key=key)
    assert isinstance(verdict, Accepted | Rejection)
