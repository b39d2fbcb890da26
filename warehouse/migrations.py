"""Numbered SQL migrations from ``sql/``, applied once each and in order.

The files live in the repository's top-level ``sql/`` folder and ship inside the installed package
as ``warehouse/sql`` (a link in the source tree, real files in the wheel); they are found with
``importlib.resources``, so an installed wheel migrates exactly as a checkout does.

Each applied file is recorded with its SHA-256 in ``schema_migrations``; a file that changed after
it was applied is refused (add a new numbered file instead), so every deployment has the same
schema history. Statements are written to be safe to re-run (``IF NOT EXISTS``), which makes a
migration interrupted half-way complete on the next run.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from chargeback.catalogue import Catalogue
from chargeback.clickhouse import ClickHouse
from chargeback.errors import ChargebackError

SQL_DIR = Path(str(resources.files("warehouse") / "sql"))
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class MigrationError(ChargebackError, RuntimeError):
    """A migration cannot be applied; the message says which file and why."""

    code = "migration.failed"


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    path: Path
    checksum: str

    @property
    def name(self) -> str:
        return self.path.name

    def statements(self) -> list[str]:
        """The file's statements, comments removed, split at ``;`` ending a line."""
        lines = [line for line in self.path.read_text().splitlines() if not line.strip().startswith("--")]
        text = "\n".join(lines)
        return [s.strip() for s in re.split(r";\s*$", text, flags=re.MULTILINE) if s.strip()]


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    """Every ``NNN_name.sql`` in ``sql_dir``, by number; a gap or a duplicate number is an error."""
    found = []
    for path in sorted(sql_dir.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNN_lower_case.sql")
        found.append(Migration(int(match.group(1)), path, hashlib.sha256(path.read_bytes()).hexdigest()))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"{migration.path}: expected migration number {expected:03d}")
    return found


def sync_catalogue(ch: ClickHouse, catalogue: Catalogue, *, now: datetime | None = None) -> tuple[int, int]:
    """Write the catalogue's services and municipalities to ClickHouse for the analysts' views."""
    at = (now or datetime.now(UTC)).replace(microsecond=0)
    ch.insert(
        "catalogue_services",
        ["service", "name", "meter", "unit", "vat_rate", "account", "synced_at"],
        [(s.id, s.name, s.meter, s.unit, s.vat_rate, s.account, at) for s in catalogue.services],
    )
    ch.insert(
        "catalogue_municipalities",
        ["municipality", "name", "inhabitants", "synced_at"],
        # Inhabitants in force on the sync day (the first dated value for a member yet to join).
        [
            (m.code, m.name, m.inhabitants_on(at.date()) or m.inhabitants[0].value, at)
            for m in catalogue.municipalities
        ],
    )
    ch.insert("catalogue_prices", PRICE_COLUMNS, price_rows(catalogue, at))
    return len(catalogue.services), len(catalogue.municipalities)


PRICE_COLUMNS = (
    "price_list",
    "valid_from",
    "service",
    "model",
    "unit_price",
    "package_size",
    "package_price",
    "tiers",
    "flat_amount",
    "annual_amount",
    "distribution_key",
    "minimum",
    "index_from",
    "price_index",
    "synced_at",
)


def price_rows(catalogue: Catalogue, at: datetime) -> list[tuple[object, ...]]:
    """Every price of every price list, indexing resolved, as ``catalogue_prices`` rows; tiers as
    JSON (``[{"up_to": "200", "unit_price": "95.00"}, ...]``, the last ``up_to`` null)."""
    rows: list[tuple[object, ...]] = []
    for plist in catalogue.price_lists:
        resolved = catalogue.price_list_for(plist.valid_from)
        for service, price in sorted(resolved.prices.items()):
            fields = price.model_dump(mode="json")
            tiers = fields.get("tiers")
            rows.append(
                (
                    plist.version,
                    plist.valid_from,
                    service,
                    price.model,
                    getattr(price, "unit_price", None),
                    getattr(price, "package_size", None),
                    getattr(price, "package_price", None),
                    json.dumps(tiers, separators=(",", ":")) if tiers else "",
                    getattr(price, "amount", None),
                    getattr(price, "annual_amount", None),
                    getattr(price, "key", ""),
                    price.minimum,
                    plist.index_from if service not in (plist.prices or {}) and plist.index_from else "",
                    plist.index if service not in (plist.prices or {}) and plist.index_from else None,
                    at,
                )
            )
    return rows


def migrate(ch: ClickHouse, sql_dir: Path = SQL_DIR, *, now: datetime | None = None) -> list[str]:
    """Apply what is not applied yet; return the names applied now."""
    ch.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, checksum String, "
        "applied_at DateTime('UTC')) ENGINE = MergeTree() ORDER BY version"
    )
    applied = {
        int(v): (name, checksum, at)
        for v, name, checksum, at in ch.execute(
            "SELECT version, name, checksum, applied_at FROM schema_migrations"
        )
    }
    done = []
    for migration in discover(sql_dir):
        if migration.version in applied:
            name, checksum, at = applied[migration.version]
            if checksum != migration.checksum:
                raise MigrationError(
                    f"{migration.path} changed after it was applied on {at:%Y-%m-%d %H:%M} UTC as {name}; "
                    "applied migrations are immutable: add a new numbered file instead"
                )
            continue
        for statement in migration.statements():
            try:
                ch.execute(statement)
            except Exception as exc:
                raise MigrationError(f"{migration.path}: {exc}") from exc
        ch.insert(
            "schema_migrations",
            ["version", "name", "checksum", "applied_at"],
            [(migration.version, migration.name, migration.checksum, now or datetime.now(UTC))],
        )
        done.append(migration.name)
    return done
