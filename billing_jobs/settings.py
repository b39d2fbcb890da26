"""Settings of finance's billing commands (environment, prefix ``CHARGEBACK_``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field

from chargeback.settings import CatalogueSettings, ClickHouseSettings, S3Settings


class BillingSettings(ClickHouseSettings, CatalogueSettings, S3Settings):
    """Everything a billing command needs."""

    # The seller (the one seller identity of Peppol and SIE), its payment account and the buyers.
    parties_file: Path | None = None
    # Usage alerts where the catalogue has no alerts: section (a share: 0.25 = ±25 %).
    alert_change: Decimal | None = Field(default=None, gt=0)
    alert_silent_working_days: int | None = Field(default=None, ge=0)
