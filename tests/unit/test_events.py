"""The usage event contract: what is valid, and the exact reason when it is not."""

from __future__ import annotations

import json
import time
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


# -- poison: what no message may do is stop the worker; each is refused with its reason -------------


def test_a_long_key_is_shown_cut_in_the_reason() -> None:
    assert check(event(), key=b"x" * 5000) == Rejection(
        f"message key '{'x' * 40}…' is not the event's municipality 2183"
    )


def test_nesting_100000_levels_deep_is_refused_before_parsing() -> None:
    body = json.dumps(event()).encode()
    deep = body[:-1] + b',"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    # 200,000 brackets are over the size bound already; within it, the depth bound answers.
    assert check(deep) == Rejection(f"event too large: {len(deep)} bytes, the limit is 65536")
    nested = body[:-1] + b',"x":' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    assert check(nested) == Rejection("bad JSON: nested more than 16 levels deep")


def test_depth_is_counted_outside_strings_only() -> None:
    body = event(data_note="[" * 1000 + "{" * 1000 + '\\"')
    result = check(body)
    assert isinstance(result, UsageEvent)
    assert result.data.attributes["note"] == "[" * 1000 + "{" * 1000 + '\\"'
    # Levels: the event, data, then 14 more arrays is 16 and allowed; 15 is one too many.
    assert isinstance(check(event(data_x=json.loads("[" * 14 + "]" * 14))), UsageEvent)
    assert check(event(data_x=json.loads("[" * 15 + "]" * 15))) == Rejection(
        "bad JSON: nested more than 16 levels deep"
    )


def test_an_integer_of_5000_digits_anywhere_is_refused() -> None:
    raw = json.dumps(event()).replace('"quantity": "1"', '"quantity": "1", "n": ' + "7" * 5000).encode()
    assert check(raw) == Rejection("bad JSON: a number with more than 40 digits")
    quantity = json.dumps(event()).replace('"quantity": "1"', '"quantity": ' + "7" * 41).encode()
    assert check(quantity) == Rejection("bad JSON: a number with more than 40 digits")
    # Digits inside a string are text, not a number.
    assert isinstance(check(event(data_serial="7" * 5000)), UsageEvent)


def test_a_40_digit_attribute_is_kept_exactly() -> None:
    raw = json.dumps(event()).replace('"quantity": "1"', '"quantity": "1", "n": ' + "7" * 40).encode()
    result = check(raw)
    assert isinstance(result, UsageEvent)
    assert result.data.attributes["n"] == int("7" * 40)


def test_an_event_over_64_kib_is_refused_whatever_it_holds() -> None:
    big = json.dumps(event(data_note="x" * 70_000)).encode()
    assert check(big) == Rejection(f"event too large: {len(big)} bytes, the limit is 65536")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_bad_json(constant: str) -> None:
    raw = json.dumps(event()).replace('"quantity": "1"', f'"quantity": "1", "n": {constant}').encode()
    assert check(raw) == Rejection(f"bad JSON: {constant} is not a JSON value")


@pytest.mark.parametrize(
    "quantity",
    ["1_000", "١٢", "NaN", "Infinity", "1e3", "1E3", " 1", "1 ", "1\n", "+1", ".5", "5.", "0x10", ""],
)
def test_quantity_text_is_plain_ascii_decimal_only(quantity: str) -> None:
    assert check(event(data_quantity=quantity)) == Rejection(
        f'data.quantity: Value error, quantity must be plain decimal text such as "12.5" (digits 0-9), '
        f"not {quantity!r}"
    )


@pytest.mark.parametrize(
    ("number", "expected"), [("12", "12"), ("0.5", "0.5"), ("2.50", "2.5"), ("1E2", "100")]
)
def test_quantity_as_json_number_any_exact_form(number: str, expected: str) -> None:
    raw = json.dumps(event()).replace('"quantity": "1"', f'"quantity": {number}').encode()
    result = check(raw)
    assert isinstance(result, UsageEvent)
    assert result.data.quantity == Decimal(expected)


@pytest.mark.parametrize(
    "moment",
    [
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00",
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "2101-01-01T00:00:00Z",
        "2100-12-31T23:00:00-01:00",
    ],
)
def test_times_outside_1970_to_2100_are_refused(moment: str) -> None:
    # "now" far ahead, so that the rule answering is the range, not the 1-day future bound.
    result = check(event(time=moment), now=datetime(2200, 1, 1, tzinfo=UTC))
    assert result == Rejection(
        "time: Value error, time must be from 1970-01-01T00:00:00Z to 2100-12-31T23:59:59Z"
    )


@pytest.mark.parametrize(
    "moment", ["1970-01-01T00:00:00Z", "2100-12-31T23:59:59Z", "1970-01-01T01:00:00+01:00"]
)
def test_the_ends_of_the_time_range_are_valid(moment: str) -> None:
    assert isinstance(check(event(time=moment), now=datetime(2200, 1, 1, tzinfo=UTC)), UsageEvent)


@pytest.mark.parametrize("field", ["id", "source", "data_subject"])
def test_a_lone_surrogate_in_a_stored_text_is_refused(field: str) -> None:
    raw = json.dumps(event(**{field: "PC\ud800"})).encode()
    reason = check(raw)
    assert isinstance(reason, Rejection)
    where = "data.subject" if field == "data_subject" else field
    # pydantic's own check: text that cannot be stored as UTF-8 is not a string to it.
    assert (
        reason.reason
        == f"{where}: Input should be a valid string, unable to parse raw data as a unicode string"
    )


@pytest.mark.parametrize(
    "raw",
    [
        b'"' + b'\\"' * 32_000,  # escaped quotes, never closed: each quote would start a failing match
        b'{"a":"' + b'x\\"' * 21_000,
        b'["' + b"[" * 65_000,
        b"[" * 65_000,
        b"9" * 65_000,
    ],
)
def test_adversarial_text_is_refused_in_linear_time(raw: bytes) -> None:
    started = time.perf_counter()
    result = check(raw)
    assert isinstance(result, Rejection)
    assert time.perf_counter() - started < 2.0  # a quadratic scan took 38 s on the first of these
