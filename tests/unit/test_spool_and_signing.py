"""The collector's spool and event signing, without a broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chargeback.kafka import Message
from chargeback.signing import Key, canonical, sign, signed_json, verify
from collectors.sending import Signer
from collectors.spool import Spool

EVENT = {
    "specversion": "1.0",
    "id": "e1",
    "source": "urn:x",
    "type": "chargeback.usage.v1",
    "time": "2026-10-05T06:00:00Z",
    "data": {"municipality": "2183", "service": "pc", "subject": "PC1", "quantity": "1"},
}
KEYS = {"bollnas-1": Key("2183", b"s3cret"), "hudik-1": Key("2184", b"other")}


def test_spool_keeps_what_was_not_confirmed_and_sends_it_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.write([Message(b"2183", b"a"), Message(None, b"b")])
    spool.write([Message(b"2183", b"c")])
    assert spool.pending() == 3

    def down(batch: list[Message]) -> int:
        raise ConnectionError("broker down")

    failed = spool.drain(down)
    assert (failed.sent, failed.spooled, failed.error) == (0, 3, "ConnectionError: broker down")
    sent: list[Message] = []

    def up(batch: list[Message]) -> int:
        sent.extend(batch)
        return len(batch)

    ok = spool.drain(up)
    assert (ok.sent, ok.spooled, ok.error) == (3, 0, None)
    assert sent == [Message(b"2183", b"a"), Message(None, b"b"), Message(b"2183", b"c")]
    assert spool.segments() == []


def test_an_empty_run_writes_no_segment(tmp_path: Path) -> None:
    assert Spool(tmp_path).write([]) == (None, 0)
    assert list(tmp_path.iterdir()) == []


def test_signed_events_verify_for_their_municipality_only() -> None:
    signed = sign(EVENT, "bollnas-1", b"s3cret")
    raw = json.dumps(signed).encode()
    assert verify(raw, "2183", KEYS) is None
    assert verify(raw, "2184", KEYS) == "key bollnas-1 belongs to municipality 2183, not 2184"
    tampered = json.dumps({**signed, "data": {**EVENT["data"], "quantity": "100"}}).encode()  # type: ignore[dict-item]
    assert verify(tampered, "2183", KEYS) == "bad signature for key bollnas-1"
    assert (
        verify(json.dumps(EVENT).encode(), "2183", KEYS) == "unsigned event: keyid and signature are required"
    )
    assert (
        verify(json.dumps(sign(EVENT, "nobody", b"x")).encode(), "2183", KEYS) == "unknown signing key nobody"
    )


def test_signature_covers_the_canonical_form_whatever_the_key_order() -> None:
    signed = sign(EVENT, "bollnas-1", b"s3cret")
    reordered = json.dumps(dict(reversed(list(signed.items()))), indent=2).encode()
    assert verify(reordered, "2183", KEYS) is None
    assert canonical(signed).startswith(b'{"data":{"municipality":"2183"')


def test_signed_json_is_the_signed_event_with_the_same_signature() -> None:
    raw = signed_json(EVENT, "bollnas-1", b"s3cret")
    assert json.loads(raw) == sign(EVENT, "bollnas-1", b"s3cret")
    assert raw == canonical(sign(EVENT, "bollnas-1", b"s3cret"))[:-1] + (
        b',"signature":"' + sign(EVENT, "bollnas-1", b"s3cret")["signature"].encode() + b'"}'
    )
    assert verify(raw, "2183", KEYS) is None


def test_signed_json_replaces_an_old_signature_and_keeps_text_as_utf8() -> None:
    event = {**EVENT, "subject": "Bollnäs ✓", "keyid": "old", "signature": "forged"}
    raw = signed_json(event, "bollnas-1", b"s3cret")
    assert json.loads(raw) == sign(event, "bollnas-1", b"s3cret")
    assert "Bollnäs ✓".encode() in raw
    assert raw.count(b'"signature"') == 1
    assert verify(raw, "2183", KEYS) is None


def test_the_collector_signs_objects_and_passes_anything_else_on() -> None:
    signer = Signer("bollnas-1", b"s3cret")
    out = list(signer.apply([Message(b"2183", json.dumps(EVENT).encode()), Message(None, b"not json")]))
    assert verify(out[0].value, "2183", KEYS) is None
    assert out[0] == Message(b"2183", signed_json(EVENT, "bollnas-1", b"s3cret"))
    assert out[1] == Message(None, b"not json")


@pytest.mark.parametrize("value", [b"[1]", b"null", b'{"subject": "\\ud800"}'])
def test_non_objects_stay_unsigned(value: bytes) -> None:
    assert list(Signer("k", b"s").apply([Message(None, value)])) == [Message(None, value)]


def test_any_bytes_survive_the_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    odd = [
        Message(b"k y", b"line\nbreak"),
        Message(None, b"=starts with equals"),
        Message(b"\x00", b"\xff\xfe"),
    ]
    spool.write(odd)
    assert [m for segment in spool.segments() for m in spool.read(segment)] == odd
