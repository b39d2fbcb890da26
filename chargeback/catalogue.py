"""The versioned service catalogue (docs/contract.md, "The catalogue"): pydantic models and a
loader that names the file, line and field of every mistake, all at once, in finance's words
(docs/catalogue.md).

Money and quantities in the YAML are plain decimal text in quotes (``"310.00"``): a bare YAML
number such as ``310.10`` is a binary float and may not be the value finance wrote, so it is
refused with a hint to quote it as written. Digits are ASCII ``0-9`` with an optional point;
``"1_000"``, ``"1e3"``, ``"NaN"`` or other scripts' digits are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from chargeback import yamlfile
from chargeback.errors import ChargebackError
from chargeback.period import Period

CENTS = Decimal("0.01")
PRICE_MODELS = ("per_unit", "package", "tiered_graduated", "tiered_volume", "flat", "distributed")
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_PLAIN_COUNT = re.compile(r"[0-9]+")


class CatalogueError(ChargebackError, ValueError):
    """A catalogue that does not validate; one line per problem: ``file:line: field: reason``."""

    code = "catalogue.invalid"


def _exact(value: Any) -> Any:
    """A decimal from plain ASCII decimal text, a YAML integer, or a ``Decimal``; never a float."""
    if isinstance(value, bool):
        raise ValueError('must be a decimal number in quotes, such as "310.00", not a yes/no value')
    if isinstance(value, yamlfile.WrittenFloat) and _PLAIN_DECIMAL.fullmatch(value.written):
        raise ValueError(
            f'must be quoted to be exact: write "{value.written}" (a bare YAML number is a float)'
        )
    if isinstance(value, yamlfile.WrittenFloat):
        value = value.written
    elif isinstance(value, float):
        raise ValueError(f'must be quoted to be exact: write "{value}" (a float is not exact)')
    if isinstance(value, str):
        if not _PLAIN_DECIMAL.fullmatch(value):
            raise ValueError(
                f'{value!r} is not a plain decimal number; write digits 0-9 with a point, such as "180.50"'
            )
        return Decimal(value)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"{value} is not a finite decimal number")
    return value


def _count(value: Any) -> Any:
    """A whole number above 0 from a YAML integer or plain ASCII digits."""
    if isinstance(value, bool | float):
        shown = value.written if isinstance(value, yamlfile.WrittenFloat) else value
        raise ValueError(f"must be a whole number such as 26500, not {shown}")
    if isinstance(value, str):
        if not _PLAIN_COUNT.fullmatch(value):
            raise ValueError(f"{value!r} is not a whole number; write digits 0-9, such as 26500")
        value = int(value)
    if isinstance(value, int) and value <= 0:
        raise ValueError(f"must be a whole number above 0, not {value}")
    return value


Amount = Annotated[Decimal, BeforeValidator(_exact), Field(ge=0)]
Positive = Annotated[Decimal, BeforeValidator(_exact), Field(gt=0)]
Count = Annotated[int, BeforeValidator(_count)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatedCount(_Frozen):
    """A key's value from a day on (``from: null``: from the start)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    from_: date | None = Field(alias="from")
    value: Count


def _dated(value: Any) -> Any:
    """A bare number is one value in force from the start; a list is taken as it is."""
    if isinstance(value, list | tuple):
        return value
    return ({"from": None, "value": _count(value)},)


def _dated_in_order(values: tuple[DatedCount, ...]) -> tuple[DatedCount, ...]:
    if not values:
        raise ValueError("needs at least one value, e.g. [{from: 2026-01-01, value: 26500}]")
    if any(v.from_ is None for v in values[1:]):
        raise ValueError("only the first value may be without a from: date")
    days = [v.from_ for v in values if v.from_ is not None]
    if any(a >= b for a, b in pairwise(days)):
        raise ValueError("the from: dates must increase, each value once")
    return values


Dated = Annotated[tuple[DatedCount, ...], BeforeValidator(_dated)]
# A driver's name: the key a distributed price names (``key: users``).
DRIVER_NAME = r"^[a-z][a-z0-9_]{0,31}$"
BUILT_IN_KEYS = ("inhabitants", "equal")


def _value_on(values: tuple[DatedCount, ...], day: date) -> int | None:
    found = [v.value for v in values if v.from_ is None or v.from_ <= day]
    return found[-1] if found else None


class Municipality(_Frozen):
    """A member municipality. ``inhabitants`` (dated) is the key of ``distributed`` prices;
    ``drivers`` are further keys by name (``drivers: {users: 5200}``, dated the same way), for
    prices with ``key: users``; ``joined``/``left`` (the first and last day of membership) bound
    the months it is billed."""

    code: str = Field(pattern=r"^[0-9]{1,8}$")
    name: str = Field(min_length=1)
    inhabitants: Dated
    drivers: dict[Annotated[str, Field(pattern=DRIVER_NAME)], Dated] = Field(default_factory=dict)
    joined: date | None = None
    left: date | None = None

    @field_validator("inhabitants")
    @classmethod
    def _in_order(cls, values: tuple[DatedCount, ...]) -> tuple[DatedCount, ...]:
        return _dated_in_order(values)

    @field_validator("drivers")
    @classmethod
    def _drivers_in_order(
        cls, values: dict[str, tuple[DatedCount, ...]]
    ) -> dict[str, tuple[DatedCount, ...]]:
        if bad := sorted(set(values) & set(BUILT_IN_KEYS)):
            raise ValueError(f"{bad[0]} is a built-in key, not a driver; give inhabitants: its own field")
        for name, dated in values.items():
            try:
                _dated_in_order(dated)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return values

    @model_validator(mode="after")
    def _membership(self) -> Municipality:
        if self.joined is not None and self.left is not None and self.left < self.joined:
            raise ValueError(f"left ({self.left}) is before joined ({self.joined})")
        return self

    def member_in(self, period: Period) -> bool:
        """A member for a month if it joined on or before its last day and did not leave before its
        first day: the whole month is billed, never a part of it."""
        return (self.joined is None or self.joined <= period.last_day) and (
            self.left is None or self.left >= period.first_day
        )

    def inhabitants_on(self, day: date) -> int | None:
        """The inhabitants in force on ``day`` (the latest value from on or before it), or None."""
        return _value_on(self.inhabitants, day)

    def driver_on(self, name: str, day: date) -> int | None:
        """The value of driver ``name`` in force on ``day``, or None (no such driver, or none yet)."""
        values = self.drivers.get(name)
        return _value_on(values, day) if values else None


class Service(_Frozen):
    """A catalogue service and the meter its usage is measured by."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    name: str = Field(min_length=1)
    meter: Literal["count", "daily_distinct", "daily_max"]
    unit: str = Field(min_length=1)
    vat_rate: Annotated[Decimal, BeforeValidator(_exact), Field(ge=0, le=1)]
    account: str = Field(min_length=1)
    # The day a new or extended service was introduced: the savings target report keeps services
    # introduced after its baseline year apart from the comparison.
    introduced: date | None = None


class Tier(_Frozen):
    """A price tier up to and including ``up_to`` (``None``: no upper bound)."""

    up_to: Positive | None = None
    unit_price: Amount


class _Price(_Frozen):
    minimum: Amount | None = None


class PerUnit(_Price):
    """quantity × unit_price."""

    model: Literal["per_unit"]
    unit_price: Amount


class Package(_Price):
    """ceil(quantity / package_size) × package_price."""

    model: Literal["package"]
    package_size: Positive
    package_price: Amount


class _Tiered(_Price):
    tiers: tuple[Tier, ...]

    @field_validator("tiers")
    @classmethod
    def _ascending(cls, tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
        if not tiers:
            raise ValueError("at least one tier is needed")
        bounds = [t.up_to for t in tiers]
        if bounds[-1] is not None:
            raise ValueError("the last tier must have up_to: null")
        if any(b is None for b in bounds[:-1]):
            raise ValueError("only the last tier may have up_to: null")
        finite = [b for b in bounds[:-1] if b is not None]
        if any(a >= b for a, b in pairwise(finite)):
            raise ValueError("tier bounds must increase")
        return tiers


class TieredGraduated(_Tiered):
    """Each tier's slice of the quantity at that tier's price."""

    model: Literal["tiered_graduated"]


class TieredVolume(_Tiered):
    """The whole quantity at the price of the tier it falls in."""

    model: Literal["tiered_volume"]


class Flat(_Price):
    """A fixed amount per municipality and month."""

    model: Literal["flat"]
    amount: Amount


class Distributed(_Price):
    """A yearly amount, monthly one twelfth, split between all municipalities by a key:
    ``inhabitants``, ``equal`` or the name of a driver every municipality gives (``users``)."""

    model: Literal["distributed"]
    annual_amount: Amount
    key: str = Field(default="inhabitants", pattern=DRIVER_NAME)


Price = Annotated[
    PerUnit | Package | TieredGraduated | TieredVolume | Flat | Distributed, Field(discriminator="model")
]


class PriceList(_Frozen):
    """Prices from ``valid_from``: the list ``index_from`` times ``index`` (if given), with
    ``prices`` set here overriding the indexed ones, less the services ``retired`` here."""

    version: str = Field(min_length=1)
    valid_from: date
    prices: dict[str, Price] | None = None
    index_from: str | None = None
    index: Positive | None = None
    retired: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_kind(self) -> PriceList:
        if (self.index_from is None) != (self.index is None):
            raise ValueError("index_from and index go together: name the list to index and the factor")
        if self.prices is None and self.index_from is None and not self.retired:
            raise ValueError("a price list needs prices, or index_from and index")
        return self


class ResolvedPriceList(_Frozen):
    """A price list with every price explicit (indexing and overrides applied), and the services
    it no longer sells."""

    version: str
    valid_from: date
    prices: dict[str, Price]
    retired: tuple[str, ...] = ()


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENTS, rounding=ROUND_HALF_UP)


def index_price(price: Price, index: Decimal) -> Price:
    """Every money field of ``price`` times ``index``, each rounded to öre; sizes and bounds stay."""
    updates: dict[str, Any] = {}
    if price.minimum is not None:
        updates["minimum"] = _cents(price.minimum * index)
    match price:
        case PerUnit():
            updates["unit_price"] = _cents(price.unit_price * index)
        case Package():
            updates["package_price"] = _cents(price.package_price * index)
        case TieredGraduated() | TieredVolume():
            updates["tiers"] = tuple(
                t.model_copy(update={"unit_price": _cents(t.unit_price * index)}) for t in price.tiers
            )
        case Flat():
            updates["amount"] = _cents(price.amount * index)
        case Distributed():
            updates["annual_amount"] = _cents(price.annual_amount * index)
    return price.model_copy(update=updates)


_CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class ServiceLevels(_Frozen):
    """The service desk's opening hours and service-level targets (an optional catalogue section,
    read by ``chargeback report sla``). Times are in the catalogue's time zone; durations count
    only time within opening hours."""

    opens: str = Field(default="08:00", pattern=_CLOCK)
    closes: str = Field(default="16:30", pattern=_CLOCK)
    weekdays: tuple[int, ...] = Field(default=(1, 2, 3, 4, 5), min_length=1)  # ISO: Monday = 1
    phone_answer_seconds: int = Field(default=60, gt=0)  # target: average phone answer time
    first_contact_resolution: Annotated[Decimal, BeforeValidator(_exact), Field(ge=0, le=1)] = Decimal("0.70")
    # Without an explicit flag in the export, a ticket closed within this many minutes of its
    # first response was resolved at first contact.
    first_contact_minutes: int = Field(default=30, gt=0)
    resolution_hours: dict[str, int] = Field(default_factory=dict)  # priority -> target, opening hours

    @model_validator(mode="after")
    def _hours(self) -> ServiceLevels:
        if self.closes <= self.opens:
            raise ValueError(f"closes ({self.closes}) must be after opens ({self.opens})")
        if bad := sorted({d for d in self.weekdays if not 1 <= d <= 7}):
            raise ValueError(f"weekdays are 1 (Monday) to 7 (Sunday), not {bad}")
        return self


class Alerts(_Frozen):
    """Thresholds of the usage alerts (an optional catalogue section, read by ``chargeback report
    alerts``): a month-over-month change of a member's usage of a service beyond ``change``
    (a share: ``"0.25"`` = ±25 %; ``services`` sets it per service), and a source silent for more
    than ``silent_working_days`` working days (Monday to Friday, less Swedish public holidays
    when ``holidays`` is ``SE``)."""

    change: Positive | None = None
    services: dict[str, Positive] = Field(default_factory=dict)
    silent_working_days: int | None = Field(default=None, ge=0)
    holidays: Literal["SE", "none"] = "SE"


class Catalogue(_Frozen):
    """Municipalities, services and price lists of one shared IT organisation."""

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    timezone: str = "Europe/Stockholm"
    # The language and number formats of reports for members (a CLDR locale such as sv_SE, nb_NO);
    # None: Norwegian bokmål for NOK, else Swedish (``report_locale``).
    locale: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")
    municipalities: tuple[Municipality, ...]
    services: tuple[Service, ...]
    price_lists: tuple[PriceList, ...]
    service_levels: ServiceLevels | None = None
    alerts: Alerts | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Stockholm)"
            ) from None
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        from babel import Locale, UnknownLocaleError

        if value is not None:
            try:
                Locale.parse(value)
            except (UnknownLocaleError, ValueError):
                raise ValueError(
                    f"unknown locale {value!r} (use a CLDR name such as sv_SE or nb_NO)"
                ) from None
        return value

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> Catalogue:
        # parse_catalogue checks references itself, on the YAML, so as to name each one's line.
        if info.context and info.context.get(_REFERENCES_CHECKED):
            return self
        problems = reference_problems(self.model_dump(by_alias=True))
        if problems:
            raise ValueError("; ".join(f"{_field_path(path)}: {message}" for path, message in problems))
        return self

    @property
    def report_locale(self) -> str:
        """The locale reports for members are written in: ``locale``, else nb_NO for a NOK
        catalogue and sv_SE for any other."""
        if self.locale:
            return self.locale
        return "nb_NO" if self.currency == "NOK" else "sv_SE"

    @cached_property
    def tz(self) -> ZoneInfo:
        """The deployment's time zone: billing days are calendar days here."""
        return ZoneInfo(self.timezone)

    @cached_property
    def municipality_codes(self) -> tuple[str, ...]:
        """Every municipality of the catalogue, former and future members too."""
        return tuple(sorted(m.code for m in self.municipalities))

    def members(self, period: Period) -> tuple[str, ...]:
        """The codes of the municipalities that were members in ``period`` (``Municipality.member_in``)."""
        return tuple(sorted(m.code for m in self.municipalities if m.member_in(period)))

    @cached_property
    def service_ids(self) -> tuple[str, ...]:
        return tuple(sorted(s.id for s in self.services))

    @cached_property
    def _services(self) -> Mapping[str, Service]:
        return {s.id: s for s in self.services}

    @cached_property
    def _municipalities(self) -> Mapping[str, Municipality]:
        return {m.code: m for m in self.municipalities}

    def service(self, service_id: str) -> Service:
        """The service with this id (KeyError naming it if unknown)."""
        try:
            return self._services[service_id]
        except KeyError:
            raise KeyError(f"unknown service {service_id}") from None

    def municipality(self, code: str) -> Municipality:
        """The municipality with this code (KeyError naming it if unknown)."""
        try:
            return self._municipalities[code]
        except KeyError:
            raise KeyError(f"unknown municipality {code}") from None

    def price_list_for(self, day: date) -> ResolvedPriceList:
        """The list whose valid_from is the latest on or before ``day``, indexing resolved."""
        candidates = [p for p in self.price_lists if p.valid_from <= day]
        if not candidates:
            raise CatalogueError(f"no price list is valid on {day.isoformat()}")
        chosen = max(candidates, key=lambda p: p.valid_from)
        prices, retired = self._resolve(chosen)
        return ResolvedPriceList(
            version=chosen.version,
            valid_from=chosen.valid_from,
            prices=prices,
            retired=tuple(sorted(retired)),
        )

    def _resolve(self, plist: PriceList) -> tuple[dict[str, Price], set[str]]:
        prices: dict[str, Price] = {}
        retired: set[str] = set()
        if plist.index_from is not None:
            assert plist.index is not None
            base = next(p for p in self.price_lists if p.version == plist.index_from)
            base_prices, retired = self._resolve(base)
            prices = {sid: index_price(price, plist.index) for sid, price in base_prices.items()}
        prices.update(plist.prices or {})
        retired = (retired | set(plist.retired)) - set(plist.prices or {})
        return {sid: p for sid, p in prices.items() if sid not in plist.retired}, retired


# --- cross-references, checked on plain data so that each names its own line ----------------------

Problem = tuple[yamlfile.KeyPath, str]
_REFERENCES_CHECKED = "references_checked"


def _entries(data: Mapping[str, Any], key: str) -> list[tuple[int, Mapping[str, Any]]]:
    value = data.get(key)
    if not isinstance(value, list | tuple):
        return []
    return [(i, v) for i, v in enumerate(value) if isinstance(v, Mapping)]


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def reference_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Mistakes between the parts of a catalogue (as plain data): duplicate codes, ids, versions
    and dates, prices of unknown services, unknown or circular ``index_from``, and price lists that
    neither price nor retire every service. Each with the key path it is at."""
    problems: list[Problem] = []
    for key, kind in (
        ("municipalities", "municipality"),
        ("services", "service"),
        ("price_lists", "price list"),
    ):
        if isinstance(data.get(key), list | tuple) and not data[key]:
            problems.append(((key,), f"at least one {kind} is needed"))
    for key, name, what in (
        ("municipalities", "code", "municipality code"),
        ("services", "id", "service id"),
        ("price_lists", "version", "price list version"),
        ("price_lists", "valid_from", "price list valid_from"),
    ):
        first: dict[str, int] = {}
        for i, entry in _entries(data, key):
            if entry.get(name) is None:
                continue
            value = _text(entry[name])
            if value in first:
                problems.append(
                    (
                        (key, i, name),
                        f"{what} {value} is already used by {key}[{first[value]}]; make it unique",
                    )
                )
            else:
                first.setdefault(value, i)
    services = [str(s["id"]) for _, s in _entries(data, "services") if isinstance(s.get("id"), str)]
    known = set(services)
    hint = f"the services are {', '.join(services)}" if services else "add it under services:"
    alerts = data.get("alerts")
    per_service = alerts.get("services") if isinstance(alerts, Mapping) else None
    for sid in sorted(map(str, per_service or ()) if isinstance(per_service, Mapping) else ()):
        if sid not in known:
            problems.append(
                (
                    ("alerts", "services", sid),
                    f"alerts name service {sid!r}, which is not in the catalogue; {hint}",
                )
            )
    problems += _key_problems(data)
    lists: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for i, plist in _entries(data, "price_lists"):
        if plist.get("version") is not None:
            lists.setdefault(_text(plist["version"]), (i, plist))
    for i, plist in _entries(data, "price_lists"):
        version = _text(plist.get("version", f"#{i + 1}"))
        prices = plist.get("prices")
        priced = {str(s) for s in prices} if isinstance(prices, Mapping) else set()
        for sid in sorted(priced - known):
            problems.append(
                (
                    ("price_lists", i, "prices", sid),
                    f"price list {version} prices service {sid!r}, which is not in the catalogue; {hint}",
                )
            )
        retired = plist.get("retired")
        for j, sid in enumerate(retired if isinstance(retired, list | tuple) else ()):
            where = ("price_lists", i, "retired", j)
            if str(sid) not in known:
                problems.append(
                    (
                        where,
                        f"price list {version} retires service {sid!r}, which is not in the catalogue; "
                        + hint,
                    )
                )
            elif str(sid) in priced:
                problems.append(
                    (
                        where,
                        f"price list {version} both prices and retires service {sid}; keep one of the two",
                    )
                )
        base = plist.get("index_from")
        if base is not None and _text(base) not in lists:
            others = ", ".join(v for v in lists if v != version) or "none"
            problems.append(
                (
                    ("price_lists", i, "index_from"),
                    f"price list {version} is indexed from version {_text(base)!r}, which is not a price "
                    f"list here; the versions are {others}",
                )
            )
    for version, (i, plist) in lists.items():
        chain, current, circular = [version], plist, False
        while (base := current.get("index_from")) is not None and _text(base) in lists:
            if _text(base) in chain:
                problems.append(
                    (
                        ("price_lists", i, "index_from"),
                        f"price list {version} is indexed from itself through {_text(base)}; "
                        "index from an earlier list",
                    )
                )
                circular = True
                break
            chain.append(_text(base))
            current = lists[_text(base)][1]
        if circular or current.get("index_from") is not None:
            continue  # an unknown version at the end of the chain is reported above
        covered: set[str] = set()
        for step in reversed(chain):  # from the base list to this one, as Catalogue._resolve
            entry = lists[step][1]
            prices = entry.get("prices")
            retired = entry.get("retired")
            covered |= {str(s) for s in prices} if isinstance(prices, Mapping) else set()
            covered |= {str(s) for s in retired} if isinstance(retired, list | tuple) else set()
        missing = [s for s in services if s not in covered]
        if missing:
            problems.append(
                (
                    ("price_lists", i),
                    f"price list {version} has no price for {', '.join(missing)}; add a price, "
                    "or name the service under retired: if it is no longer sold",
                )
            )
    return problems


def _key_problems(data: Mapping[str, Any]) -> list[Problem]:
    """A distributed price's key that is neither built in nor a driver of every municipality."""
    drivers: dict[str, set[str]] = {}
    for _, municipality in _entries(data, "municipalities"):
        given = municipality.get("drivers")
        code = str(municipality.get("code", "?"))
        drivers[code] = {str(k) for k in given} if isinstance(given, Mapping) else set()
    problems: list[Problem] = []
    for i, plist in _entries(data, "price_lists"):
        prices = plist.get("prices")
        for sid, price in sorted(prices.items()) if isinstance(prices, Mapping) else ():
            if not isinstance(price, Mapping) or price.get("model") != "distributed":
                continue
            key = price.get("key", "inhabitants")
            if not isinstance(key, str) or key in BUILT_IN_KEYS or not re.fullmatch(DRIVER_NAME, key):
                continue
            missing = sorted(code for code, names in drivers.items() if key not in names)
            if missing:
                problems.append(
                    (
                        ("price_lists", i, "prices", sid, "key"),
                        f"{sid} is distributed by {key}, which municipalities {', '.join(missing)} do not "
                        f"give; add drivers: {{{key}: N}} to each, or use inhabitants or equal",
                    )
                )
    return problems


# --- loading, with every mistake at its line in finance's words -----------------------------------


def parse_catalogue(text: str, source_name: str) -> Catalogue:
    """Validate catalogue YAML; every problem is reported with its line (from 1), all at once."""
    try:
        doc = yamlfile.parse(text, source_name)
    except yamlfile.YamlFileError as exc:
        raise CatalogueError(str(exc)) from exc
    if doc.data is None:
        raise CatalogueError(f"{source_name}:1: the catalogue is empty")
    if not isinstance(doc.data, dict):
        raise CatalogueError(
            f"{source_name}:1: the catalogue must be a mapping of currency, municipalities, ..."
        )
    problems: list[tuple[int, str]] = list(doc.duplicates)
    catalogue = None
    try:
        catalogue = Catalogue.model_validate(doc.data, context={_REFERENCES_CHECKED: True})
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = _without_model_tag(error["loc"])
            problems.append(
                (doc.line_of(loc), f"{_field_path(loc) or 'catalogue'}: {_finance_words(error, loc)}")
            )
    problems.extend(
        (doc.line_of(path), f"{_field_path(path)}: {message}")
        for path, message in reference_problems(doc.data)
    )
    if problems:
        ordered = sorted(problems, key=lambda p: p[0])
        raise CatalogueError("\n".join(f"{source_name}:{line}: {message}" for line, message in ordered))
    assert catalogue is not None
    return catalogue


def _without_model_tag(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    # A discriminated union puts the model's tag in the location: price_lists.0.prices.X.<tag>.field
    if len(loc) > 4 and loc[2] == "prices" and loc[4] in PRICE_MODELS:
        return (*loc[:4], *loc[5:])
    return loc


_PATTERNS = {
    "code": 'is not a municipality code; write its digits in quotes, such as "2183"',
    "id": "is not a service id; use lower-case letters, digits, '_', '.' and '-', such as pc-standard",
    "currency": "is not a currency code; use three capital letters, such as SEK",
    "opens": "is not a time of day; write HH:MM, such as 08:00",
    "closes": "is not a time of day; write HH:MM, such as 16:30",
}


def _finance_words(error: ErrorDetails, loc: tuple[str | int, ...]) -> str:
    """Pydantic's error in the words of the people who write the catalogue, with a hint."""
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    name = str(loc[-1]) if loc else "catalogue"
    match kind:
        case "missing":
            return f"is missing; add {name}: to this entry"
        case "extra_forbidden":
            return "is not a known field here; check its spelling (docs/catalogue.md lists the fields)"
        case "union_tag_invalid":
            return f"price model {ctx['tag']!r} is not known; use one of {', '.join(PRICE_MODELS)}"
        case "union_tag_not_found":
            return f"has no price model; add model: with one of {', '.join(PRICE_MODELS)}"
        case "literal_error":
            choices = ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
            return f"{value!r} is not a known {name}; use one of {choices}"
        case "greater_than":
            return f"must be more than {ctx['gt']}, not {value}"
        case "greater_than_equal":
            return f"must be {ctx['ge']} or more, not {value}"
        case "less_than_equal":
            return f"must be at most {ctx['le']}, not {value}"
        case "string_pattern_mismatch":
            return f"{value!r} {_PATTERNS.get(name, 'is not written as expected')}"
        case "string_too_short":
            return "must not be empty"
        case "string_type":
            return f"must be text, not {value!r}"
        case "int_parsing" | "int_type" | "int_from_float":
            return f"must be a whole number, not {value!r}"
        case "bool_type" | "bool_parsing":
            return f"must be true or false, not {value!r}"
        case _ if kind.startswith("date") or kind.startswith("datetime"):
            return f"must be a date written YYYY-MM-DD, such as 2026-01-01, not {value!r}"
        case "dict_type" | "model_type" | "model_attributes_type":
            return f"must be a mapping of fields (name: value), not {value!r}"
        case "tuple_type" | "list_type":
            return f"must be a list (one '- ' item per line, or [a, b]), not {value!r}"
    return str(error["msg"]).removeprefix("Value error, ")


_field_path = yamlfile.field_path


def load_catalogue(path: Path | str) -> Catalogue:
    """Read and validate a catalogue file (refused over ``yamlfile.MAX_BYTES`` before parsing)."""
    path = Path(path)
    try:
        text = yamlfile.read_text(path)
    except yamlfile.YamlFileError as exc:
        raise CatalogueError(str(exc).replace("cannot read the file", "cannot read the catalogue")) from exc
    return parse_catalogue(text, str(path))
