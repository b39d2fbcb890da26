"""The stream worker's settings (environment, prefix ``CHARGEBACK_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from chargeback.settings import CatalogueSettings, ClickHouseSettings, KafkaSettings


class WorkerSettings(ClickHouseSettings, KafkaSettings, CatalogueSettings):
    """Everything one stream worker process needs."""

    worker_app_id: str = Field(default="chargeback-worker", description="Faust app id = consumer group")
    worker_batch_max_events: int = Field(default=20_000, ge=1)
    worker_batch_max_seconds: float = Field(default=1.0, gt=0)
    worker_session_timeout_s: float = Field(default=6.0, gt=0)
    worker_heartbeat_interval_s: float = Field(default=1.5, gt=0)
    worker_rebalance_timeout_s: float = Field(default=10.0, gt=0)
    worker_log_level: str = "WARNING"
    worker_key_registry: Path | None = Field(
        default=None, description="YAML registry of collector keys; set: every event must be signed"
    )
    worker_metrics_host: str = Field(default="127.0.0.1", description="bind address of /metrics")
    worker_metrics_port: int | None = Field(default=None, description="port of /metrics; unset: no endpoint")
