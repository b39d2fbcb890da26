"""A collector's settings (environment, prefix ``CHARGEBACK_``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from chargeback.errors import UserError
from chargeback.settings import KafkaSettings, S3Settings, http_url


class SettingsProblem(UserError):
    """A collector setting that cannot be used (a secrets file that cannot be read)."""

    code = "collector.settings"


class CollectorSettings(KafkaSettings, S3Settings):
    """Everything one collector run needs."""

    collector_client_id: str = "chargeback-collector"
    collector_spool_dir: Path = Path("var/spool")
    collector_connect_timeout_s: float = 10.0  # how long to try the broker before spooling
    # How long a spool segment may wait for the broker's confirmation before it is kept for the
    # next run (a broker that stops answering mid-run must not hold a scheduled collector forever).
    collector_send_timeout_s: float = Field(default=60.0, gt=0)
    # A run that bills more than this share of its events to the default cost centre (UNALLOCATED)
    # warns, and exits with 3 (collectors.allocation); billing's reports flag the same share.
    unallocated_warning_share: Decimal = Field(default=Decimal("0.10"), ge=0, le=1)
    # The collector's own signing key (see chargeback/signing.py); unset: events go unsigned.
    collector_key_id: str | None = None
    collector_key_secret: SecretStr | None = None
    collector_key_file: Path | None = None
    # Microsoft Graph (collect devices|licences --graph): an app registration's client credentials;
    # the secret from the environment or a secrets file, never from the command line.
    graph_tenant: str | None = None
    graph_client_id: str | None = None
    graph_client_secret: SecretStr | None = None
    graph_client_secret_file: Path | None = None
    graph_url: str = "https://graph.microsoft.com"
    graph_authority_url: str = "https://login.microsoftonline.com"
    # TOPdesk (collect tickets --topdesk-url): an operator's login name and application password.
    topdesk_url: str | None = None
    topdesk_user: str | None = None
    topdesk_password: SecretStr | None = None
    topdesk_password_file: Path | None = None
    topdesk_page_size: int = Field(default=1000, ge=1, le=10000)
    # Both APIs: seconds per request, and retries after 429/503 (each after its Retry-After).
    api_timeout_s: float = Field(default=30.0, gt=0)
    api_retries: int = Field(default=5, ge=0, le=20)

    @field_validator("graph_url", "graph_authority_url", "topdesk_url")
    @classmethod
    def _check_api_url(cls, value: str | None) -> str | None:
        return http_url(value)


def secret_setting(value: SecretStr | None, file: Path | None, name: str) -> SecretStr | None:
    """A secret from its setting ``name``, or else from the secrets file its ``name_FILE`` setting
    names (surrounding blanks dropped); None when neither is set. The one way collectors read
    secrets."""
    if value is not None or file is None:
        return value
    try:
        text = file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SettingsProblem(f"{name}_FILE: cannot read {file}: {reason}") from exc
    if not text:
        raise SettingsProblem(f"{name}_FILE: {file} is empty")
    return SecretStr(text)
