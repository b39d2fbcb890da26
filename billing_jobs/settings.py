"""Settings of finance's billing commands (environment, prefix ``CHARGEBACK_``)."""

from __future__ import annotations

from pathlib import Path

from chargeback.settings import CatalogueSettings, ClickHouseSettings, S3Settings


class BillingSettings(ClickHouseSettings, CatalogueSettings, S3Settings):
    """Everything a billing command needs."""

    seller_name: str = "Shared IT service"
    seller_org_number: str | None = None
    parties_file: Path | None = None  # seller and buyers of Peppol invoices
