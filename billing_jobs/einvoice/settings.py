"""Where the official e-invoice rules are (environment, prefix ``CHARGEBACK_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from chargeback.settings import Base

REPO_ROOT = Path(__file__).resolve().parents[2]
# The rules are not part of the product: they sit in a shared folder beside the checkout.
DEFAULT_RULES_DIR = REPO_ROOT / ".." / "shared" / "einvoice-rules"


class EInvoiceSettings(Base):
    """The folder with the UBL 2.1 schemas and the Peppol BIS Billing 3.0.19 Schematron files."""

    einvoice_rules_dir: Path = Field(
        default=DEFAULT_RULES_DIR,
        description="holds ubl-2.1/maindoc/*.xsd and peppol-bis-3.0.19/sch/*.sch (default: "
        "../shared/einvoice-rules beside the repository)",
    )
