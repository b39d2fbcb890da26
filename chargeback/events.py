"""The usage event: the wire contract between collectors and stream workers.

The contract is docs/contract.md, "The usage event".

A CloudEvents 1.0 envelope in structured JSON mode, one event per Kafka message, keyed by the
municipality code. Validation is a pure function: it takes the raw bytes, what the catalogue knows
and an explicit clock, and returns either a valid event or the reason it is not one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

SPECVERSION = "1.0"
EVENT_TYPE = "chargeback.usage.v1"
DEFAULT_COST_CENTRE = "UNALLOCATED"
MAX_FUTURE = timedelta(days=1)
# Quantities are stored as Decimal(18, 6): 12 integer digits, 6 decimals.
QUANTITY_MAX = Decimal("999999999999.999999")
_SIX_PLACES = Decimal("0.000001")
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.-]{0,63}$")
# CloudEvents extension attribute names: lower-case letters and digits.
_EXTENSION = re.compile(r"^[a-z0-9]{1,20}$")

# Bounds on what is parsed at all, checked before and while parsing, so that no message can stop a
# worker (a parser's recursion, Python's 4,300-digit limit on integers, a huge document): an event
# is a few hundred bytes, two levels deep, with short numbers.
MAX_EVENT_BYTES = 65_536
MAX_DEPTH = 16  # nested objects and arrays; the event itself is level 1, its data level 2
MAX_NUMBER_DIGITS = 40  # digits in a row in any JSON number (integer, fraction or exponent)
# Times both ClickHouse backends store exactly in DateTime('UTC') and Date (1970 to 2106 and 2149);
# the contract keeps to whole calendar years inside that.
TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TIME_END = datetime(2101, 1, 1, tzinfo=UTC)  # the first moment past the range
TIME_RANGE = "1970-01-01T00:00:00Z to 2100-12-31T23:59:59Z"
# A JSON string, or an unterminated one to the end of the text: every quote starts a match, so
# setting strings aside is one linear pass whatever the text (a failing match at each of many
# quotes would be quadratic).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_LONG_NUMBER = re.compile(rb"[0-9]{%d}" % (MAX_NUMBER_DIGITS + 1))
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class UsageData(BaseModel):
    """The ``data`` of a usage event; fields beyond these are kept as attributes."""

    model_config = ConfigDict(extra="allow", frozen=True)

    municipality: str = Field(min_length=1, max_length=16)
    cost_centre: str = Field(default=DEFAULT_COST_CENTRE, min_length=1, max_length=64)
    service: str = Field(min_length=1, max_length=64)
    subject: str = Field(min_length=1, max_length=256)
    quantity: Decimal

    @field_validator("quantity", mode="before")
    @classmethod
    def _exact_quantity(cls, value: Any) -> Any:
        # A JSON number arrives here already parsed as Decimal (see parse_event_json); a Python
        # float would have lost the exact value the collector meant, so it is refused.
        if isinstance(value, float):
            raise ValueError("quantity must be a decimal string or an exact JSON number, not a float")
        if isinstance(value, bool):
            raise ValueError("quantity must be a number, not a boolean")
        # Decimal() would also read "1_000", " 1", "NaN" and other scripts' digits ("١٠٠").
        if isinstance(value, str) and not _PLAIN_DECIMAL.fullmatch(value):
            raise ValueError(
                f'quantity must be plain decimal text such as "12.5" (digits 0-9), not {value!r}'
            )
        return value

    @field_validator("quantity")
    @classmethod
    def _quantity_range(cls, value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("quantity must be a finite number")
        if value < 0:
            raise ValueError("quantity must be >= 0")
        if value > QUANTITY_MAX:
            raise ValueError(f"quantity must be at most {QUANTITY_MAX}")
        if value != value.quantize(_SIX_PLACES):
            raise ValueError("quantity has more than 6 decimals")
        return value

    @field_validator("municipality", "cost_centre", "service")
    @classmethod
    def _code(cls, value: str) -> str:
        if not _CODE.fullmatch(value):
            raise ValueError("must be letters, digits, '_', '.' or '-'")
        return value

    @property
    def attributes(self) -> dict[str, Any]:
        """Fields of ``data`` beyond the contract's (ticket channel, priority, ...)."""
        return dict(self.__pydantic_extra__ or {})


class UsageEvent(BaseModel):
    """A CloudEvents 1.0 usage event; extension attributes (such as a signature) are allowed."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=256)
    source: str = Field(min_length=1, max_length=512)
    type: Literal["chargeback.usage.v1"]
    time: AwareDatetime
    datacontenttype: str | None = None
    data: UsageData

    @field_validator("time")
    @classmethod
    def _time_range(cls, value: datetime) -> datetime:
        if not in_time_range(value):
            raise ValueError(f"time must be from {TIME_RANGE}")
        return value

    def to_json(self) -> bytes:
        """The event as compact JSON with exact decimals (``quantity`` as a string)."""
        return json.dumps(self.to_wire(), ensure_ascii=False, separators=(",", ":")).encode()

    def to_wire(self) -> dict[str, Any]:
        """The event as a JSON-ready dict in CloudEvents structured mode."""
        wire = self.model_dump(mode="json", exclude_none=True)
        wire["data"]["quantity"] = format_quantity(self.data.quantity)
        return wire

    def local_day(self, tz: ZoneInfo) -> date:
        """The calendar day the event belongs to, in the deployment's time zone."""
        return self.time.astimezone(tz).date()


def format_quantity(value: Decimal) -> str:
    """A quantity as plain decimal text without exponent or trailing zeros (``0.5``, ``10``)."""
    text = format(value.normalize(), "f")
    return text


def in_time_range(value: datetime) -> bool:
    """Whether ``value`` (time-zone aware) lies in the range every ClickHouse backend stores exactly."""
    try:
        return TIME_MIN <= value < TIME_END
    except OverflowError:  # year 1 or 9999 with an offset: outside whatever it means
        return False


def check_bounds(raw: bytes) -> str | None:
    """Why ``raw`` is too big, too deep or has too long a number to be parsed; None if it is not.

    Runs before any parser sees the message, in time linear in its size and without recursion:
    strings are set aside first, so brackets and digits inside them do not count.
    """
    if len(raw) > MAX_EVENT_BYTES:
        return f"event too large: {len(raw)} bytes, the limit is {MAX_EVENT_BYTES}"
    skeleton = _JSON_STRING.sub(b'""', raw)
    if _LONG_NUMBER.search(skeleton):
        return f"bad JSON: a number with more than {MAX_NUMBER_DIGITS} digits"
    depth = 0
    for bracket in skeleton.translate(None, _NOT_BRACKETS):
        if bracket in b"[{":
            depth += 1
            if depth > MAX_DEPTH:
                return f"bad JSON: nested more than {MAX_DEPTH} levels deep"
        else:
            depth -= 1
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a number with more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


def parse_event_json(raw: bytes | str) -> Any:
    """Parse JSON with numbers kept exact (``Decimal``), never as floats.

    Only strict JSON: ``NaN`` and ``Infinity`` are refused, and so are integers longer than
    ``MAX_NUMBER_DIGITS`` (bound the nesting with ``check_bounds`` first).
    """
    return json.loads(raw, parse_float=Decimal, parse_int=_bounded_int, parse_constant=_no_constant)


@dataclass(frozen=True)
class Rejection:
    """Why a message is not a valid usage event."""

    reason: str


@dataclass(frozen=True)
class Known:
    """What validation needs to know from the catalogue."""

    municipalities: Collection[str]
    services: Collection[str]


def validate_event(raw: bytes, *, known: Known, now: datetime, key: bytes | None) -> UsageEvent | Rejection:
    """Check one message against the contract; return the event or the reason it is refused.

    ``key`` is the Kafka message key: it must be the event's municipality code, so that all of a
    municipality's events share a partition (deduplication relies on it). A message without a key
    is refused like one with another municipality's key: either could reach a second worker.
    """
    bounds = check_bounds(raw)
    if bounds is not None:
        return Rejection(bounds)
    try:
        doc = parse_event_json(raw)
    except (ValueError, RecursionError, InvalidOperation) as exc:  # JSONDecodeError is a ValueError
        return Rejection(f"bad JSON: {exc}")
    if not isinstance(doc, dict):
        return Rejection("bad JSON: the event must be a JSON object")
    try:
        event = UsageEvent.model_validate(doc)
    except ValidationError as exc:
        return Rejection(describe_validation_error(exc))
    data = event.data
    if data.municipality not in known.municipalities:
        return Rejection(f"unknown municipality: {data.municipality}")
    if data.service not in known.services:
        return Rejection(f"unknown service: {data.service}")
    if event.time - now > MAX_FUTURE:
        return Rejection(f"time is more than 1 day in the future: {event.time.isoformat()}")
    if key is None:
        return Rejection(f"message has no key: it must be the event's municipality {data.municipality}")
    if (key_text := key.decode("utf-8", "replace")) != data.municipality:
        shown = key_text if len(key_text) <= 40 else key_text[:40] + "…"
        return Rejection(f"message key {shown!r} is not the event's municipality {data.municipality}")
    return event


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``field.path: message``."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"]) or "event"
        if error["type"] == "missing":
            parts.append(f"missing field: {loc}")
        else:
            parts.append(f"{loc}: {error['msg']}")
    return "; ".join(parts)


class Accepted(NamedTuple):
    """What a stream worker needs of a valid event: its fields, already checked."""

    id: str
    source: str
    time: datetime
    municipality: str
    cost_centre: str
    service: str
    subject: str
    quantity: Decimal
    attributes: dict[str, Any]


_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_QUANTITY = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
_ENVELOPE = frozenset({"specversion", "id", "source", "type", "time", "data", "datacontenttype"})
_DATA = frozenset({"municipality", "cost_centre", "service", "subject", "quantity"})
_PLAIN = (str, int, bool, type(None))
_VALID_CODES: set[str] = set()
_MOMENTS: dict[str, datetime] = {}
_QUANTITIES: dict[str, Decimal] = {}


def check_event(raw: bytes, *, known: Known, now: datetime, key: bytes | None) -> Accepted | Rejection:
    """``validate_event`` for the stream worker's hot path: the same verdicts, several times faster.

    Events in the canonical form collectors write (decimal string quantity, RFC 3339 time, plain
    codes) are checked here directly; anything else takes the full pydantic path, which decides
    and words the reason. A test holds both paths to the same verdicts.
    """
    if len(raw) > MAX_EVENT_BYTES:
        return Rejection(f"event too large: {len(raw)} bytes, the limit is {MAX_EVENT_BYTES}")
    fast = _check_fast(raw, known, now, key)
    if fast is not None:
        return fast
    result = validate_event(raw, known=known, now=now, key=key)
    if isinstance(result, Rejection):
        return result
    data = result.data
    return Accepted(
        result.id,
        result.source,
        result.time,
        data.municipality,
        data.cost_centre,
        data.service,
        data.subject,
        data.quantity,
        data.attributes,
    )


def _check_fast(raw: bytes, known: Known, now: datetime, key: bytes | None) -> Accepted | None:
    # Returns None whenever it is not certain: the full path then decides. orjson refuses what
    # is nested over 1,024 levels or has a number beyond a double, without recursing in Python.
    try:
        doc = orjson.loads(raw)
    except (ValueError, TypeError):
        return None
    if type(doc) is not dict or doc.get("specversion") != SPECVERSION or doc.get("type") != EVENT_TYPE:
        return None
    eid, source, when, data = doc.get("id"), doc.get("source"), doc.get("time"), doc.get("data")
    if not (type(eid) is str and 0 < len(eid) <= 256 and type(source) is str and 0 < len(source) <= 512):
        return None
    if type(when) is not str or type(data) is not dict:
        return None
    if not _ENVELOPE.issuperset(doc) and any(k not in _ENVELOPE and not _EXTENSION.match(k) for k in doc):
        return None
    if "datacontenttype" in doc and type(doc["datacontenttype"]) is not str:
        return None
    municipality, service, subject = data.get("municipality"), data.get("service"), data.get("subject")
    cost_centre = data.get("cost_centre", DEFAULT_COST_CENTRE)
    quantity = data.get("quantity")
    # Known codes are valid codes (the catalogue checks them), so membership is the whole test.
    if type(municipality) is not str or type(service) is not str or type(cost_centre) is not str:
        return None
    if municipality not in known.municipalities or service not in known.services:
        return None
    if cost_centre not in _VALID_CODES:
        if not _CODE.fullmatch(cost_centre):
            return None
        if len(_VALID_CODES) < 100_000:  # a cache of the few cost centres there are, bounded
            _VALID_CODES.add(cost_centre)
    if not (type(subject) is str and 0 < len(subject) <= 256) or type(quantity) is not str:
        return None
    amount = _QUANTITIES.get(quantity)  # quantities met before passed the pattern below
    if amount is None:
        if not _QUANTITY.fullmatch(quantity):
            return None
        amount = Decimal(quantity)
        if len(_QUANTITIES) < 10_000:
            _QUANTITIES[quantity] = amount
    if key is None or key != municipality.encode():
        return None
    moment = _MOMENTS.get(when)  # times met before passed the pattern below
    if moment is None:
        if not _TIME.fullmatch(when):
            return None
        try:
            moment = datetime.fromisoformat(when)
        except ValueError:
            return None
        if not in_time_range(moment):
            return None
        if len(_MOMENTS) >= 100_000:  # collectors stamp many events with one time: keep those met
            _MOMENTS.clear()
        _MOMENTS[when] = moment
    if moment - now > MAX_FUTURE:
        return None
    # Fields beyond the contract's become attributes; most events have none.
    contract_fields = len(_DATA) if "cost_centre" in data else len(_DATA) - 1
    attributes = {k: v for k, v in data.items() if k not in _DATA} if len(data) > contract_fields else {}
    if attributes and any(type(v) not in _PLAIN for v in attributes.values()):
        return None  # the full path keeps numbers exact and nested values as they were
    return Accepted(eid, source, moment, municipality, cost_centre, service, subject, amount, attributes)
