"""The stream worker's settings (environment, prefix ``CHARGEBACK_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from chargeback.settings import CatalogueSettings, ClickHouseSettings, KafkaSettings


class WorkerSettings(ClickHouseSettings, KafkaSettings, CatalogueSettings):
    """Everything one stream worker process needs."""

    worker_app_id: str = Field(default="chargeback-worker", description="Faust app id = consumer group")
    worker_batch_max_events: int = Field(default=20_000, ge=1)
    worker_batch_max_seconds: float = Field(default=1.0, gt=0)
    worker_session_timeout_s: float = Field(default=6.0, gt=0)
    worker_heartbeat_interval_s: float = Field(default=1.5, gt=0)
    worker_rebalance_timeout_s: float = Field(default=10.0, gt=0)
    worker_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"
    worker_log_format: Literal["text", "json"] = Field(
        default="text", description="text lines, or one JSON object per line for log shippers"
    )
    worker_key_registry: Path | None = Field(
        default=None, description="YAML registry of collector keys; set: every event must be signed"
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1", description="bind address of /metrics and /health/*; 0.0.0.0 in a container"
    )
    worker_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="port of /metrics and /health/*; unset: no endpoint"
    )

    @field_validator("worker_log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("worker_log_format", mode="before")
    @classmethod
    def _format_in_any_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value
