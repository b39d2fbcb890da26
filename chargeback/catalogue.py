"""The versioned service catalogue (SPEC "Catalogue"): pydantic models and a loader that points
at the file, line and field of every mistake.

Money and quantities in the YAML are strings (``"310.00"``): a bare YAML number such as ``310.10``
is a binary float and may not be the value finance wrote, so it is refused with a hint to quote it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

CENTS = Decimal("0.01")


class CatalogueError(ValueError):
    """A catalogue that does not validate; one line per problem: ``file:line: field: reason``."""


def _exact(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a decimal number in quotes, not a boolean")
    if isinstance(value, float):
        raise ValueError(f'must be quoted to be exact: write "{value}" (a bare YAML number is a float)')
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
        if not parsed.is_finite():
            raise ValueError(f"{value!r} is not a finite decimal number")
        return parsed
    return value


Amount = Annotated[Decimal, BeforeValidator(_exact), Field(ge=0)]
Positive = Annotated[Decimal, BeforeValidator(_exact), Field(gt=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Municipality(_Frozen):
    """A member municipality; ``inhabitants`` is the key of ``distributed`` prices."""

    code: str = Field(pattern=r"^[0-9]{1,8}$")
    name: str = Field(min_length=1)
    inhabitants: int = Field(gt=0)


class Service(_Frozen):
    """A catalogue service and the meter its usage is measured by."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    name: str = Field(min_length=1)
    meter: Literal["count", "daily_distinct", "daily_max"]
    unit: str = Field(min_length=1)
    vat_rate: Annotated[Decimal, BeforeValidator(_exact), Field(ge=0, le=1)]
    account: str = Field(min_length=1)


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
    """A yearly amount, monthly one twelfth, split between all municipalities by a key."""

    model: Literal["distributed"]
    annual_amount: Amount
    key: Literal["inhabitants", "equal"] = "inhabitants"


Price = Annotated[
    PerUnit | Package | TieredGraduated | TieredVolume | Flat | Distributed, Field(discriminator="model")
]


class PriceList(_Frozen):
    """Prices from ``valid_from``: explicit, or the list ``index_from`` times ``index``."""

    version: str = Field(min_length=1)
    valid_from: date
    prices: dict[str, Price] | None = None
    index_from: str | None = None
    index: Positive | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> PriceList:
        if self.prices is None and (self.index_from is None or self.index is None):
            raise ValueError("a price list needs prices, or index_from and index")
        if self.prices is not None and (self.index_from is not None or self.index is not None):
            raise ValueError("a price list has either prices or index_from and index, not both")
        return self


class ResolvedPriceList(_Frozen):
    """A price list with every price explicit (indexing applied)."""

    version: str
    valid_from: date
    prices: dict[str, Price]


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


class Catalogue(_Frozen):
    """Municipalities, services and price lists of one shared IT organisation."""

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    timezone: str = "Europe/Stockholm"
    municipalities: tuple[Municipality, ...]
    services: tuple[Service, ...]
    price_lists: tuple[PriceList, ...]
    service_levels: ServiceLevels | None = None

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

    @model_validator(mode="after")
    def _references(self) -> Catalogue:
        problems = [
            f"at least one {kind} is needed"
            for kind, items in (
                ("municipality", self.municipalities),
                ("service", self.services),
                ("price list", self.price_lists),
            )
            if not items
        ]
        for kind, values in (
            ("municipality code", [m.code for m in self.municipalities]),
            ("service id", [s.id for s in self.services]),
            ("price list version", [p.version for p in self.price_lists]),
            ("price list valid_from", [p.valid_from.isoformat() for p in self.price_lists]),
        ):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                problems.append(f"duplicate {kind}: {', '.join(dupes)}")
        services = {s.id for s in self.services}
        versions = {p.version: p for p in self.price_lists}
        for plist in self.price_lists:
            for service_id in plist.prices or {}:
                if service_id not in services:
                    problems.append(f"price list {plist.version} prices unknown service {service_id}")
            if plist.index_from is not None and plist.index_from not in versions:
                problems.append(
                    f"price list {plist.version} is indexed from unknown version {plist.index_from}"
                )
        for plist in self.price_lists:
            seen = {plist.version}
            current = plist
            while current.index_from is not None and current.index_from in versions:
                if current.index_from in seen:
                    problems.append(
                        f"price list {plist.version} is indexed from itself through {current.index_from}"
                    )
                    break
                seen.add(current.index_from)
                current = versions[current.index_from]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @cached_property
    def tz(self) -> ZoneInfo:
        """The deployment's time zone: billing days are calendar days here."""
        return ZoneInfo(self.timezone)

    @cached_property
    def municipality_codes(self) -> tuple[str, ...]:
        return tuple(sorted(m.code for m in self.municipalities))

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
        return ResolvedPriceList(
            version=chosen.version, valid_from=chosen.valid_from, prices=self._resolve(chosen)
        )

    def _resolve(self, plist: PriceList) -> dict[str, Price]:
        if plist.prices is not None:
            return dict(plist.prices)
        assert plist.index_from is not None and plist.index is not None
        base = next(p for p in self.price_lists if p.version == plist.index_from)
        return {sid: index_price(price, plist.index) for sid, price in self._resolve(base).items()}


# --- loading with line numbers --------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def plain_with_lines(
    node: yaml.Node, path: Path_, lines: dict[Path_, int], constructor: yaml.SafeLoader
) -> Any:
    """Like ``yaml.safe_load`` of ``node``, also recording in ``lines`` the line of every key path."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            out[key] = plain_with_lines(value_node, (*path, str(key)), lines, constructor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [plain_with_lines(item, (*path, i), lines, constructor) for i, item in enumerate(node.value)]
    return constructor.construct_object(node, deep=True)


def parse_catalogue(text: str, source_name: str) -> Catalogue:
    """Validate catalogue YAML; every problem is reported with its line, all at once."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                raise CatalogueError(f"{source_name}:1: the catalogue is empty")
            lines: dict[Path_, int] = {}
            data = plain_with_lines(root, (), lines, loader)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise CatalogueError(f"{source_name}:{line}: not valid YAML: {exc.problem}") from exc
    if not isinstance(data, dict):
        raise CatalogueError(
            f"{source_name}:1: the catalogue must be a mapping of currency, municipalities, ..."
        )
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        raise CatalogueError("\n".join(_describe(exc, lines, source_name))) from exc


def _describe(exc: ValidationError, lines: dict[Path_, int], source_name: str) -> list[str]:
    out = []
    for error in exc.errors(include_url=False):
        # Discriminated unions add the model name to the location: leave it out of the field path.
        loc = tuple(p for p in error["loc"] if p not in _MODEL_TAGS)
        line = 1
        for end in range(len(loc), -1, -1):
            if loc[:end] in lines:
                line = lines[loc[:end]]
                break
        field = _field_path(loc) or "catalogue"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "missing"
        elif error["type"] == "extra_forbidden":
            message = "unknown field"
        out.append(f"{source_name}:{line}: {field}: {message}")
    return out


_MODEL_TAGS = {"per_unit", "package", "tiered_graduated", "tiered_volume", "flat", "distributed"}


def _field_path(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load_catalogue(path: Path | str) -> Catalogue:
    """Read and validate a catalogue file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read the catalogue: {exc.strerror}") from exc
    return parse_catalogue(text, str(path))
