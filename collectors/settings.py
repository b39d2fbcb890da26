"""A collector's settings (environment, prefix ``CHARGEBACK_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from chargeback.settings import KafkaSettings, S3Settings


class CollectorSettings(KafkaSettings, S3Settings):
    """Everything one collector run needs."""

    collector_client_id: str = "chargeback-collector"
    collector_spool_dir: Path = Path("var/spool")
    collector_connect_timeout_s: float = 10.0  # how long to try the broker before spooling
    # The collector's own signing key (see chargeback/signing.py); unset: events go unsigned.
    collector_key_id: str | None = None
    collector_key_secret: SecretStr | None = None
    collector_key_file: Path | None = None
