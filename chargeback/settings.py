"""Settings shared by the processes: each process composes one class from these parts.

Every setting is read from the environment with the prefix ``CHARGEBACK_`` (for example
``CHARGEBACK_CLICKHOUSE_URL``). Library code never reads the environment: processes build their
settings once at start and pass plain values down.

Each deployable declares its settings class in its own ``settings`` module and names it under the
``chargeback.settings`` entry-point group (``pyproject.toml``), so that a process knows every real
setting name, also those of the other deployables, without importing them: a ``CHARGEBACK_*`` name
in the environment that no class declares is a typo, warned with the closest real name.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chargeback.errors import ChargebackError

ENV_PREFIX = "CHARGEBACK_"
ENTRY_POINT_GROUP = "chargeback.settings"
# The test suite's own variables (services that already run, shared test data): not settings.
TEST_PREFIX = "CHARGEBACK_TEST_"


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: safe to print or log."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def check_clickhouse_url(url: str) -> str:
    """``url`` if it is ``chdb:PATH`` or ``clickhouse://[user[:password]@]host[:port]``; else a
    one-sentence ValueError that shows the URL with its password redacted."""
    if url.startswith("chdb:"):
        if not url[len("chdb:") :].removeprefix("//"):
            raise ValueError("chdb URL needs a data folder, e.g. chdb:var/chdb")
        return url
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
        ok = parts.scheme == "clickhouse" and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"must be chdb:PATH or clickhouse://[user[:password]@]host[:port], not {redact_url(url)!r}"
        )
    return url


def http_url(value: str | None) -> str | None:
    """``value`` if it is an http(s) address (or None); else a one-sentence ValueError, redacted."""
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        if ok:
            parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"must be an http:// or https:// address, not {redact_url(value)!r}")
    return value


def secret_from_file(values: Any, secret: str, file: str) -> Any:
    """For a ``before`` model validator: fill ``secret`` from the file named by ``file``.

    Secrets come from the environment or, better in containers, from a file (a Docker or Kubernetes
    secret); giving both is a mistake. The file's content is stripped of surrounding whitespace.
    """
    if not isinstance(values, dict) or not values.get(file):
        return values
    if values.get(secret):
        raise ValueError(f"set {setting_name(secret)} or {setting_name(file)}, not both")
    path = Path(str(values[file]))
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"{setting_name(file)}: cannot read {path}: {exc.strerror}") from None
    if not text:
        raise ValueError(f"{setting_name(file)}: {path} is empty")
    return {**values, secret: text}


class Base(BaseSettings):
    """Common configuration of every settings class."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)


class ClickHouseSettings(Base):
    """Where usage and billing data live."""

    clickhouse_url: str = Field(
        default="chdb:var/chdb",
        description="chdb:PATH for embedded chDB, or clickhouse://user@host:port for a server",
    )
    clickhouse_database: str = Field(default="chargeback", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    clickhouse_password: SecretStr | None = None
    clickhouse_password_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _password_file(cls, values: Any) -> Any:
        return secret_from_file(values, "clickhouse_password", "clickhouse_password_file")

    @field_validator("clickhouse_url")
    @classmethod
    def _check_clickhouse_url(cls, value: str) -> str:
        return check_clickhouse_url(value)

    def clickhouse_password_value(self) -> str | None:
        """The password, if one is configured apart from the URL."""
        return self.clickhouse_password.get_secret_value() if self.clickhouse_password else None


def check_bootstrap(value: str) -> str:
    """``value`` if it is a comma-separated list of ``host:port``; else a one-sentence ValueError."""
    hosts = [h.strip() for h in value.split(",")]
    for host in hosts:
        name, _, port = host.rpartition(":")
        if not name or "/" in host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"must be host:port, or several separated by commas, not {host!r}")
    return value


class KafkaSettings(Base):
    """The broker, how to reach it safely, and the topics of the usage stream."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    usage_topic: str = "usage.events"
    dead_topic: str = "usage.dead"
    # PLAINTEXT inside a trusted network; SSL (TLS) or SASL_SSL (TLS and a login) across networks.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: Path | None = None  # CA bundle the broker's certificate must chain to
    kafka_ssl_certfile: Path | None = None  # client certificate (mutual TLS), with its key:
    kafka_ssl_keyfile: Path | None = None
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None

    @field_validator("kafka_bootstrap")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        return check_bootstrap(value)

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _sasl_password_file(cls, values: Any) -> Any:
        return secret_from_file(values, "kafka_sasl_password", "kafka_sasl_password_file")

    @model_validator(mode="after")
    def _consistent_security(self) -> KafkaSettings:
        protocol = self.kafka_security_protocol
        sasl = self.kafka_sasl_username is not None or self.kafka_sasl_password is not None
        tls_files = [self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile]
        if protocol == "PLAINTEXT" and (sasl or any(tls_files)):
            raise ValueError(
                "Kafka TLS or SASL settings are given but CHARGEBACK_KAFKA_SECURITY_PROTOCOL is PLAINTEXT: "
                "set it to SSL or SASL_SSL"
            )
        if protocol == "SASL_SSL" and (not self.kafka_sasl_username or self.kafka_sasl_password is None):
            raise ValueError(
                "SASL_SSL needs CHARGEBACK_KAFKA_SASL_USERNAME and CHARGEBACK_KAFKA_SASL_PASSWORD "
                "(or CHARGEBACK_KAFKA_SASL_PASSWORD_FILE)"
            )
        if protocol == "SSL" and sasl:
            raise ValueError("a SASL login needs CHARGEBACK_KAFKA_SECURITY_PROTOCOL=SASL_SSL, not SSL")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("a client certificate needs both CHARGEBACK_KAFKA_SSL_CERTFILE and _KEYFILE")
        for name, path in zip(("CAFILE", "CERTFILE", "KEYFILE"), tls_files, strict=True):
            if path is not None and not path.is_file():
                raise ValueError(f"CHARGEBACK_KAFKA_SSL_{name}: {path} is not a readable file")
        return self


class CatalogueSettings(Base):
    """The versioned service catalogue (YAML)."""

    catalogue: Path = Path("catalogue.yaml")


class S3Settings(Base):
    """An S3-compatible object store for exports (AWS, MinIO, Ceph, ...)."""

    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_secret_access_key_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _secret_file(cls, values: Any) -> Any:
        return secret_from_file(values, "s3_secret_access_key", "s3_secret_access_key_file")

    @field_validator("s3_endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        return http_url(value)


class SettingsError(ChargebackError, ValueError):
    """Settings that do not validate; the message lists every problem at once."""

    code = "settings.invalid"


S = TypeVar("S", bound=Base)


def setting_name(field: str) -> str:
    """The environment name of a settings field: ``clickhouse_url`` -> ``CHARGEBACK_CLICKHOUSE_URL``."""
    return ENV_PREFIX + field.upper()


def settings_classes() -> list[type[Base]]:
    """Every settings class: those the deployables declare as entry points, and any class loaded."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except ImportError:  # a deployable left out of this installation
            continue
    found: list[type[Base]] = []
    pending: list[type[Base]] = [Base]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub not in found:
                found.append(sub)
                pending.append(sub)
    return found


def known_settings() -> frozenset[str]:
    """The environment names of every setting of every settings class."""
    return frozenset(setting_name(f) for cls in settings_classes() for f in cls.model_fields)


_warned: set[str] = set()


def warn_unknown(environ: Mapping[str, str], *, stream: TextIO | None = None) -> list[str]:
    """Warn (once per name and process) of ``CHARGEBACK_*`` names that are no setting; return them."""
    known = known_settings()
    unknown = sorted(
        n
        for n in environ
        if n.upper().startswith(ENV_PREFIX)
        and not n.upper().startswith(TEST_PREFIX)
        and n.upper() not in known
    )
    out = stream or sys.stderr
    for name in unknown:
        if name in _warned:
            continue
        _warned.add(name)
        # Compared without the prefix every name shares, so only the part that differs counts.
        close = difflib.get_close_matches(
            name.upper().removeprefix(ENV_PREFIX), sorted(k.removeprefix(ENV_PREFIX) for k in known), n=1
        )
        hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else " and is ignored."
        out.write(f"warning: {name} is not a chargeback setting{hint}\n")
    return unknown


def load_settings(cls: type[S], **overrides: object) -> S:
    """Build ``cls`` from the environment plus explicit overrides, reporting all errors at once.

    One problem is one sentence (``invalid setting NAME: reason``); several are listed one a line.
    Values never appear in the message except URLs with their password redacted.
    """
    warn_unknown(os.environ)
    try:
        given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        return cls(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            name = ENV_PREFIX + "_".join(str(p) for p in error["loc"]).upper() if error["loc"] else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append((name, message))
        if len(problems) == 1:
            name, message = problems[0]
            raise SettingsError(
                f"invalid setting {name}: {message}" if name else f"invalid settings: {message}"
            ) from None
        lines = [f"  {name}: {message}" if name else f"  {message}" for name, message in problems]
        raise SettingsError("invalid settings:\n" + "\n".join(lines)) from None
