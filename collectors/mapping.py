"""A member's mapping from source identifiers (OU, department, group, bucket) to cost centres.

An identifier that is not in the mapping is never guessed: its observations are not sent, and
the run reports each unmapped identifier with its count.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chargeback.errors import UserError


class MappingError(UserError):
    """A mapping file that cannot be used."""


def _norm(identifier: str) -> str:
    return " ".join(identifier.split()).casefold()


class Mapping(BaseModel):
    """The collector's municipality, its cost centres by source identifier, and services."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    municipality: str = Field(pattern=r"^[0-9]{1,8}$")
    cost_centres: dict[str, str]
    services: dict[str, str] = Field(default_factory=lambda: {"device": "pc-standard"})
    skus: dict[str, str] = Field(default_factory=dict, description="licence SKU part number -> service")

    def cost_centre(self, identifier: str, unmapped: Counter[str]) -> str | None:
        """The cost centre of an identifier (case and spacing ignored); None and counted if unknown."""
        found = self._index.get(_norm(identifier))
        if found is None:
            unmapped[identifier.strip() or "(empty)"] += 1
        return found

    @property
    def _index(self) -> dict[str, str]:
        return {_norm(k): v for k, v in self.cost_centres.items()}


def load_mapping(path: Path) -> Mapping:
    """Read a mapping file; a mistake names the file and the field."""
    try:
        return Mapping.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except OSError as exc:
        raise MappingError(f"{path}: cannot read the mapping: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise MappingError(f"{path}: {problems}") from exc
