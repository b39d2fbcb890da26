"""A member's mapping from source identifiers (OU, department, AD group, folder, bucket) to cost
centres, and from licence SKUs to services.

An identifier that is not in the mapping is never guessed: its observations are not sent, and
the run reports each unmapped identifier with its count (``Unmapped``). Matching ignores case and
spacing (``"OU=BUF, OU=Bollnas"`` is ``"ou=buf, ou=bollnas"``), because exports disagree on both.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from chargeback import yamlfile
from chargeback.errors import UserError
from chargeback.events import DEFAULT_COST_CENTRE

# The event contract's code: letters, digits, '_', '.', '-' (chargeback.events.UsageData).
Code = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z_.-]{0,63}$")]


_RDN = re.compile(r"(?<!\\),")  # the commas between a DN's parts (not escaped ones)


class MappingError(UserError):
    """A mapping file that cannot be used."""

    code = "mapping.invalid"


def normalise(identifier: str) -> str:
    """The form identifiers are compared in: case folded, blanks collapsed, blanks around ``,``
    and ``=`` dropped (LDAP distinguished names are written both ways)."""
    text = " ".join(identifier.split()).casefold()
    for sep in (",", "="):
        text = sep.join(p.strip() for p in text.split(sep))
    return text


class Unmapped(Counter[str]):
    """Identifiers (and SKUs) that had no mapping, with how many observations each had."""

    def lines(self, what: str) -> list[str]:
        """One line per identifier, for the run's report: ``unmapped 'Kultur': 3 devices``."""
        return [f"unmapped {identifier!r}: {count} {what}" for identifier, count in sorted(self.items())]


class Mapping(BaseModel):
    """The collector's municipality, its cost centres by source identifier, and services."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    municipality: str = Field(pattern=r"^[0-9]{1,8}$")
    # For observations whose source has no identifier at all (never for an unmapped one).
    default_cost_centre: Code = DEFAULT_COST_CENTRE
    cost_centres: dict[str, Code] = Field(default_factory=dict)
    services: dict[str, Code] = Field(default_factory=lambda: {"device": "pc-standard"})
    skus: dict[str, Code] = Field(default_factory=dict, description="SKU part number or name -> service")

    @model_validator(mode="after")
    def _unambiguous(self) -> Mapping:
        for field in ("cost_centres", "skus"):
            seen: dict[str, tuple[str, str]] = {}
            for key, value in getattr(self, field).items():
                other = seen.setdefault(normalise(key), (key, value))
                if other[1] != value:
                    raise ValueError(
                        f"{field}: {other[0]!r} and {key!r} are the same identifier "
                        f"but map to {other[1]} and {value}"
                    )
        return self


class Mapper:
    """Looks identifiers up in a mapping and counts those it has no answer for."""

    def __init__(self, mapping: Mapping, unmapped: Counter[str] | None = None) -> None:
        self.mapping = mapping
        self.unmapped: Counter[str] = Unmapped() if unmapped is None else unmapped
        self._cost_centres = {normalise(k): v for k, v in mapping.cost_centres.items()}
        self._skus = {normalise(k): (k, v) for k, v in mapping.skus.items()}

    @property
    def municipality(self) -> str:
        """The collector's own municipality."""
        return self.mapping.municipality

    def cost_centre(self, identifier: str | None) -> str | None:
        """The cost centre of a source identifier; None (and counted) when it is not mapped.

        A distinguished name (``OU=Datorer,OU=BUF,DC=kommun,DC=se``) also matches its nearest
        mapped parent (``OU=BUF,DC=kommun,DC=se``): what is in an OU belongs to it.
        ``None`` as the identifier means the source has no such field: the default cost centre.
        An empty identifier is a field left blank, and is unmapped unless ``""`` is in the mapping.
        """
        if identifier is None:
            return self.mapping.default_cost_centre
        key = normalise(identifier)
        found = self._cost_centres.get(key)
        if found is None and "=" in key:  # an LDAP DN: the nearest mapped parent OU
            parts = _RDN.split(key)
            found = next(
                filter(None, (self._cost_centres.get(",".join(parts[i:])) for i in range(len(parts)))), None
            )
        if found is None:
            self.unmapped[identifier.strip() or "(empty)"] += 1
        return found

    def sku(self, sku: str) -> tuple[str, str] | None:
        """(the mapping's own spelling of the SKU, its service), or None (counted as ``SKU <name>``)
        when unmapped: ids then name a SKU the same way whichever way an export spells it."""
        found = self._skus.get(normalise(sku))
        if found is None:
            self.unmapped[f"SKU {sku.strip()}"] += 1
        return found

    def service_for_sku(self, sku: str) -> str | None:
        """The service a licence SKU is billed as; None (counted as ``SKU <name>``) if unmapped."""
        found = self.sku(sku)
        return found[1] if found else None


def load_mapping(path: Path) -> Mapping:
    """Read a mapping file; every mistake is named with the file, line and field."""
    try:
        doc = yamlfile.load(path)
    except yamlfile.YamlFileError as exc:
        raise MappingError(str(exc).replace("cannot read the file", "cannot read the mapping")) from exc
    if doc.duplicates:
        raise MappingError("\n".join(f"{path}:{line}: {message}" for line, message in doc.duplicates))
    data = {} if doc.data is None else doc.data
    found = doc.lines
    if not isinstance(data, dict):
        raise MappingError(f"{path}:1: the mapping must be a YAML mapping (municipality, cost_centres, ...)")
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        lines = {tuple(str(part) for part in where): line for where, line in found.items()}
        raise MappingError("\n".join(_describe(exc, lines, path))) from exc


def _describe(exc: ValidationError, lines: dict[tuple[str, ...], int], path: Path) -> list[str]:
    out = []
    for error in exc.errors(include_url=False):
        loc = tuple(str(p) for p in error["loc"])
        line = next((lines[loc[:end]] for end in range(len(loc), -1, -1) if loc[:end] in lines), 1)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "missing"
        elif error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "string_pattern_mismatch" and loc[0] == "municipality":
            message = f'{error["input"]!r} is not a municipality code (digits, e.g. "2183")'
        elif error["type"] == "string_pattern_mismatch":
            message = f"{error['input']!r} is not a code (letters, digits, '_', '.', '-')"
        out.append(f"{path}:{line}: {'.'.join(loc) or 'mapping'}: {message}")
    return out
