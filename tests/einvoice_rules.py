"""The official e-invoice rules for tests: one validator per test process, and an assertion
other tests call on the documents they build.

The rules folder comes from ``CHARGEBACK_EINVOICE_RULES_DIR`` (default ``../shared/einvoice-rules``
beside the repository). It is not optional: CI has it, so a missing folder fails the test that
needs it, loudly, instead of skipping the only check that decides.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from billing_jobs.einvoice.settings import EInvoiceSettings
from billing_jobs.einvoice.validator import Validation, Validator


def official_rules_dir() -> Path:
    """The rules folder from the settings; fails the calling test when it is not there."""
    rules_dir = EInvoiceSettings().einvoice_rules_dir.resolve()
    if not rules_dir.is_dir():
        pytest.fail(
            f"the official e-invoice rules folder {rules_dir} does not exist: set "
            "CHARGEBACK_EINVOICE_RULES_DIR to the folder with ubl-2.1/ and peppol-bis-3.0.19/",
            pytrace=False,
        )
    return rules_dir


@cache
def official_validator() -> Validator:
    """The validator of the official rules, its Schematron compiled once per test process."""
    return Validator(official_rules_dir())


def assert_official_rules_pass(xml_bytes: bytes) -> Validation:
    """Fail unless ``xml_bytes`` passes the UBL 2.1 XSD and the CEN and PEPPOL Schematron with no
    fatal finding and no warning; the failure lists every finding."""
    validation = official_validator().validate(xml_bytes)
    if validation.findings:
        listed = "\n".join(
            f"  {f.flag} {f.rule} ({f.source}) at {f.location}: {f.text}" for f in validation.findings
        )
        raise AssertionError(f"the official e-invoice rules found {len(validation.findings)}:\n{listed}")
    return validation
