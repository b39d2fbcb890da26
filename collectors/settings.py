"""A collector's settings (environment, prefix ``CHARGEBACK_``)."""

from __future__ import annotations

from chargeback.settings import KafkaSettings


class CollectorSettings(KafkaSettings):
    """Everything one collector run needs."""

    collector_client_id: str = "chargeback-collector"
