"""ClickHouse logins for analysts and members: read-only, and members see only their own rows.

Configured in YAML; passwords never are: each user names an environment variable or a secrets
file that holds its password, read when the users are written and never printed or logged.

Two ways to apply it, for the two kinds of servers:

- ``sql_statements``: ``CREATE USER``, ``GRANT SELECT`` and ``CREATE ROW POLICY`` for servers with
  SQL-driven access control (ClickHouse 20.5 and later; the deployment default). Members read the
  main database; row policies hide other municipalities' rows.
- ``users_xml``: a ``users.d`` file with read-only profiles for servers configured by files (such
  as the 18.16 server of the test environment), which the server reloads. Such servers can only
  allow whole databases, so each member is allowed only its own member database, which
  ``build_member_databases`` fills with copies of the member's rows and the analysts' views
  (see ``warehouse.member_databases``); analysts are allowed the main database.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from xml.sax.saxutils import escape

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chargeback import yamlfile
from chargeback.clickhouse import literal
from chargeback.errors import UserError
from warehouse.member_databases import COPIED_TABLES, MemberDatabase, member_condition, member_database

# The analysts' views of member rows, in every database a login may read (v_municipalities and
# v_services show the shared catalogue).
VIEWS = (
    "v_usage_daily",
    "v_usage_monthly",
    "v_charges",
    "v_charges_final",
    "v_dead_letters",
    "v_usage_events",
    "v_late_usage",
    "v_subjects_monthly",
    "v_line_subjects",
    "v_line_explanations",
)


class AccessError(UserError):
    """The access configuration is wrong or a password cannot be read."""

    code = "access.invalid"


class Login(BaseModel):
    """A ClickHouse user; its password comes from ``password_env`` or ``password_file``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    password_env: str | None = None
    password_file: Path | None = None
    networks: tuple[str, ...] = ("::/0",)

    @model_validator(mode="after")
    def _one_source(self) -> Login:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("give exactly one of password_env and password_file")
        return self

    def password(self, environ: Mapping[str, str]) -> str:
        """The password, from the environment or the secrets file."""
        if self.password_env is not None:
            value = environ.get(self.password_env)
            if not value:
                raise AccessError(f"user {self.name}: environment variable {self.password_env} is not set")
            return value
        assert self.password_file is not None
        try:
            value = self.password_file.read_text().strip()
        except OSError as exc:
            raise AccessError(f"user {self.name}: cannot read {self.password_file}: {exc.strerror}") from exc
        if not value:
            raise AccessError(f"user {self.name}: {self.password_file} is empty")
        return value


class Member(Login):
    """A login of one municipality: sees its own rows only.

    ``database`` names its member database on servers configured by files (default
    ``<database>_m<municipality>``).
    """

    municipality: str = Field(pattern=r"^[0-9]{1,8}$")
    database: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    def database_name(self, database: str) -> str:
        """The member database this login may read on a server configured by files."""
        return member_database(database, self.municipality, self.database)


class AccessConfig(BaseModel):
    """Who may read the chargeback database."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    analysts: tuple[Login, ...] = ()
    members: tuple[Member, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> AccessConfig:
        names = [login.name for login in (*self.analysts, *self.members)]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"user {twice[0]} is configured more than once")
        return self

    def member_databases(self, database: str) -> list[MemberDatabase]:
        """The member databases to build on a server configured by files, one per database."""
        found: dict[str, str] = {}
        for member in self.members:
            name = member.database_name(database)
            if name == database:
                raise AccessError(f"member {member.name}: its database must not be the main database {name}")
            if found.setdefault(name, member.municipality) != member.municipality:
                raise AccessError(
                    f"member {member.name}: database {name} already holds municipality {found[name]}"
                )
        return [MemberDatabase(code, name) for name, code in found.items()]


def load_access(path: Path) -> AccessConfig:
    """Read and validate an access configuration."""
    try:
        raw = yamlfile.load_plain(path) or {}
        return AccessConfig.model_validate(raw)
    except yamlfile.YamlFileError as exc:
        raise AccessError(str(exc)) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise AccessError(f"{path}: {where + ': ' if where else ''}{message}") from exc


def sql_statements(config: AccessConfig, database: str, environ: Mapping[str, str]) -> list[str]:
    """Statements for a server with SQL access control (passwords inside: never log them)."""
    out = []
    for login in (*config.analysts, *config.members):
        out.append(
            # Only the hash reaches the server (its query log, its errors): never the password.
            f"CREATE USER IF NOT EXISTS {login.name} IDENTIFIED WITH sha256_hash BY "
            f"{literal(hashlib.sha256(login.password(environ).encode()).hexdigest())} SETTINGS readonly = 1"
        )
        out.append(f"GRANT SELECT ON {database}.* TO {login.name}")
    for member in config.members:
        for table in COPIED_TABLES:
            condition = member_condition(table, member.municipality)
            if condition is None:
                continue
            out.append(
                f"CREATE ROW POLICY IF NOT EXISTS {member.name}_{table.name} ON {database}.{table.name} "
                f"FOR SELECT USING {condition} TO {member.name}"
            )
    return out


def users_xml(config: AccessConfig, database: str, environ: Mapping[str, str]) -> str:
    """A ``users.d`` file for a server configured by files.

    Read-only users; analysts may read ``database``, each member only its member database (built
    by ``build_member_databases``), so another member's rows and the main tables stay out of reach.
    """
    users = []
    for login in (*config.analysts, *config.members):
        digest = hashlib.sha256(login.password(environ).encode()).hexdigest()
        networks = "".join(f"<ip>{escape(n)}</ip>" for n in login.networks)
        allowed = login.database_name(database) if isinstance(login, Member) else database
        users.append(
            f"<{login.name}><password_sha256_hex>{digest}</password_sha256_hex>"
            f"<networks>{networks}</networks><profile>chargeback_readonly</profile><quota>default</quota>"
            f"<allow_databases><database>{allowed}</database></allow_databases></{login.name}>"
        )
    return (
        '<?xml version="1.0"?>\n<!-- Written by chargeback db users: do not edit by hand. -->\n<yandex>\n'
        "<profiles><chargeback_readonly><readonly>1</readonly></chargeback_readonly></profiles>\n"
        "<users>\n" + "\n".join(users) + "\n</users>\n</yandex>\n"
    )


def write_users_xml(
    config: AccessConfig, database: str, target: Path, environ: Mapping[str, str] | None = None
) -> None:
    """Write the users file atomically, readable by its owner only (it holds password hashes)."""
    text = users_xml(config, database, os.environ if environ is None else environ)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(target)
