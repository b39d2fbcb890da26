"""Settings shared by the processes: each process composes one class from these parts.

Every setting is read from the environment with the prefix ``CHARGEBACK_`` (for example
``CHARGEBACK_CLICKHOUSE_URL``). Library code never reads the environment: processes build their
settings once at start and pass plain values down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from chargeback.errors import ChargebackError

ENV_PREFIX = "CHARGEBACK_"


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

    def clickhouse_password_value(self) -> str | None:
        """The password, if one is configured apart from the URL."""
        return self.clickhouse_password.get_secret_value() if self.clickhouse_password else None


class KafkaSettings(Base):
    """The broker and the topics of the usage stream."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    usage_topic: str = "usage.events"
    dead_topic: str = "usage.dead"


class CatalogueSettings(Base):
    """The versioned service catalogue (YAML)."""

    catalogue: Path = Path("catalogue.yaml")


class S3Settings(Base):
    """An S3-compatible object store for exports (AWS, MinIO, Ceph, ...)."""

    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None


class SettingsError(ChargebackError, ValueError):
    """Settings that do not validate; the message lists every problem at once."""

    code = "settings.invalid"


S = TypeVar("S", bound=Base)


def load_settings(cls: type[S], **overrides: object) -> S:
    """Build ``cls`` from the environment plus explicit overrides, reporting all errors at once."""
    try:
        given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        return cls(**given)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            name = ENV_PREFIX + "_".join(str(p) for p in error["loc"]).upper()
            lines.append(f"  {name}: {error['msg']}")
        raise SettingsError("invalid settings:\n" + "\n".join(lines)) from exc
