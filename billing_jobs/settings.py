"""Settings of finance's billing commands (environment, prefix ``CHARGEBACK_``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field

from chargeback.settings import CatalogueSettings, ClickHouseSettings, S3Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
# The Tax Administration's SAF-T files are data, not part of the product: a shared folder beside
# the checkout.
DEFAULT_SAFT_DIR = REPO_ROOT / ".." / "shared" / "saf-t-1.30"


class BillingSettings(ClickHouseSettings, CatalogueSettings, S3Settings):
    """Everything a billing command needs."""

    # The seller (the one seller identity of Peppol and SIE), its payment account and the buyers.
    parties_file: Path | None = None
    # KOSTRA grouping codes and standard tax codes for --format saft.
    saft_dir: Path = DEFAULT_SAFT_DIR
    # Usage alerts where the catalogue has no alerts: section (a share: 0.25 = ±25 %).
    alert_change: Decimal | None = Field(default=None, gt=0)
    alert_silent_working_days: int | None = Field(default=None, ge=0)
    # The billing lock (billing_jobs/lock.py): a holder older than this is reported as stale, and
    # how long a command waits for a held lock before it is refused (0: refused at once).
    billing_lock_timeout_seconds: int = Field(default=3600, gt=0)
    billing_lock_wait_seconds: float = Field(default=0.0, ge=0)
    # A member's share of a run billed to UNALLOCATED above this is flagged in its report (the
    # collectors warn at the same share: CHARGEBACK_UNALLOCATED_WARNING_SHARE).
    unallocated_warning_share: Decimal = Field(default=Decimal("0.10"), ge=0, le=1)
    # The headless Chromium that prints reports to PDF (``billing export --format report --pdf``).
    chromium: str = "chromium"
