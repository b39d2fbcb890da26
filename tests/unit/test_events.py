"""The usage event contract: what is valid, and the exact reason when it is not."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from chargeback.events import Known, Rejection, UsageEvent, format_quantity, validate_event

KNOWN = Known(municipalities={"2183", "2184"}, services={"pc-standard", "ticket-incident"})
NOW = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def event(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "specversion": "1.0",
        "id": "bollnas-intune-PC0042-2026-10-05",
        "source": "urn:chargeback:collector:2183:intune",
        "type": "chargeback.usage.v1",
        "time": "2026-10-05T06:00:00Z",
        "data": {
            "municipality": "2183",
            "cost_centre": "BUF",
            "service": "pc-standard",
            "subject": "PC0042",
            "quantity": "1",
        },
    }
    data = dict(body["data"])  # type: ignore[call-overload]
    for key, value in changes.items():
        if key.startswith("data_"):
            name = key[len("data_") :]
            if value is None:
                data.pop(name, None)
            else:
                data[name] = value
        elif value is None:
            body.pop(key, None)
        else:
            body[key] = value
    body["data"] = data
    return body


def check(body: object, key: bytes | None = b"2183", now: datetime = NOW) -> UsageEvent | Rejection:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return validate_event(raw, known=KNOWN, now=now, key=key)


def test_the_spec_example_is_valid() -> None:
    result = check(event())
    assert isinstance(result, UsageEvent)
    assert result.data.quantity == Decimal("1")
    assert result.time == datetime(2026, 10, 5, 6, 0, tzinfo=UTC)


def test_missing_cost_centre_means_unallocated() -> None:
    result = check(event(data_cost_centre=None))
    assert isinstance(result, UsageEvent)
    assert result.data.cost_centre == "UNALLOCATED"


def test_quantity_as_json_number_is_exact() -> None:
    raw = json.dumps(event(data_quantity=0)).replace('"quantity": 0', '"quantity": 0.1').encode()
    result = check(raw)
    assert isinstance(result, UsageEvent)
    assert result.data.quantity == Decimal("0.1")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"data_quantity": "-1"}, "data.quantity: Value error, quantity must be >= 0"),
        ({"data_quantity": "1.0000001"}, "data.quantity: Value error, quantity has more than 6 decimals"),
        (
            {"data_quantity": "1_000"},
            'data.quantity: Value error, quantity must be plain decimal text such as "12.5" (digits 0-9), '
            "not '1_000'",
        ),
        (
            {"data_quantity": "١٠٠"},
            'data.quantity: Value error, quantity must be plain decimal text such as "12.5" (digits 0-9), '
            "not '١٠٠'",
        ),
        (
            {"data_quantity": "NaN"},
            'data.quantity: Value error, quantity must be plain decimal text such as "12.5" (digits 0-9), '
            "not 'NaN'",
        ),
        ({"data_service": "coffee"}, "unknown service: coffee"),
        ({"data_municipality": "9999"}, "unknown municipality: 9999"),
        ({"time": "2026-10-05T06:00:00"}, "time: Input should have timezone info"),
        ({"id": None}, "missing field: id"),
        ({"data_subject": None}, "missing field: data.subject"),
        ({"type": "other.v1"}, "type: Input should be 'chargeback.usage.v1'"),
        (
            {"time": "2026-10-21T12:00:01Z"},
            "time is more than 1 day in the future: 2026-10-21T12:00:01+00:00",
        ),
    ],
)
def test_invalid_events_name_the_reason(changes: dict[str, object], reason: str) -> None:
    result = check(event(**changes))
    assert result == Rejection(reason)


def test_exactly_one_day_ahead_is_still_valid() -> None:
    assert isinstance(check(event(time="2026-10-21T12:00:00Z")), UsageEvent)


def test_bad_json_is_rejected_with_reason() -> None:
    result = check(b'{"specversion": "1.0", ')
    assert isinstance(result, Rejection)
    assert result.reason.startswith("bad JSON: ")


def test_not_an_object_is_rejected() -> None:
    assert check(b"[1, 2]") == Rejection("bad JSON: the event must be a JSON object")


def test_key_must_be_the_municipality() -> None:
    assert check(event(), key=b"2184") == Rejection("message key '2184' is not the event's municipality 2183")


def test_a_message_without_a_key_is_refused() -> None:
    # docs/contract.md: a message without a key could reach a second worker and escape deduplication.
    refused = Rejection("message has no key: it must be the event's municipality 2183")
    assert check(event(), key=None) == refused


def test_local_day_follows_stockholm_time_across_dst_end() -> None:
    # 31 October 2026 23:30 UTC is 1 November 00:30 in Stockholm (CET, +01:00, after DST ended 25 Oct).
    result = check(event(time="2026-10-31T23:30:00Z"), now=datetime(2026, 11, 5, tzinfo=UTC))
    assert isinstance(result, UsageEvent)
    assert result.local_day(STOCKHOLM) == date(2026, 11, 1)
    # In summer time (+02:00) 22:30 UTC is already the next day.
    summer = check(event(time="2026-08-31T22:30:00Z"))
    assert isinstance(summer, UsageEvent)
    assert summer.local_day(STOCKHOLM) == date(2026, 9, 1)


def test_extra_data_fields_are_kept_as_attributes() -> None:
    result = check(event(data_channel="phone", data_priority="P2"))
    assert isinstance(result, UsageEvent)
    assert result.data.attributes == {"channel": "phone", "priority": "P2"}


def test_wire_form_keeps_quantity_exact() -> None:
    result = check(event(data_quantity="12.500000"))
    assert isinstance(result, UsageEvent)
    assert json.loads(result.to_json())["data"]["quantity"] == "12.5"
    assert format_quantity(Decimal("10")) == "10"
    assert format_quantity(Decimal("1E+1")) == "10"
