"""`chargeback demo run --region vesteralen` from one command: a local broker and S3 server, the
stream worker, chDB, billing in NOK, and the exports (CSV, EHF passing the official rules, SAF-T
Financial) whose figures agree to the øre. Ready-made events (``--from events``) keep it short;
the sources path is the same after collection (tests/unit/test_demo_vesteralen.py reads the
sources)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree as ET

from billing_jobs.formats.saft import NS, SCHEMA_FILE
from billing_jobs.settings import DEFAULT_SAFT_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SAFT_DIR = Path(os.environ.get("CHARGEBACK_SAFT_DIR", DEFAULT_SAFT_DIR))
X = {"s": NS}


@pytest.mark.timeout(900)
def test_the_vesteralen_demo_runs_from_one_command(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CHARGEBACK_SAFT_DIR": str(SAFT_DIR)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chargeback_cli",
            "demo",
            "run",
            "--region",
            "vesteralen",
            "--from",
            "events",
            "--period",
            "2026-10",
            "--workdir",
            str(tmp_path / "work"),
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=880,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "excl. VAT (NOK)" in proc.stdout
    (csv_file,) = [x for x in out.glob("*.csv") if ".specification." not in x.name]
    (saft_file,) = out.glob("*.draft.saft.xml")  # the demo's run is a draft: a preview
    assert "official e-invoice rules: 5 of 5 Peppol files with 0 fatal, 0 warnings" in proc.stdout
    assert len(list(out.glob("*.draft.xml"))) == 5  # EHF
    rows = list(csv.DictReader(csv_file.open(encoding="utf-8")))
    assert {r["municipality"] for r in rows} == {"1866", "1867", "1868", "1870", "1871"}
    assert {r["currency"] for r in rows} == {"NOK"}
    # The shared systems (1 800 000.00 a year) by users, shared operation (2 400 000.00) by inhabitants.
    shares = {
        (r["municipality"], r["service"]): Decimal(r["amount"])
        for r in rows
        if r["service"] in ("fagsystemer", "soc-shared")
    }
    assert shares[("1870", "fagsystemer")] == Decimal("51785.71")
    assert shares[("1870", "soc-shared")] == Decimal("71311.74")
    total = sum((Decimal(r["amount"]) + Decimal(r["vat_amount"]) for r in rows), Decimal(0))

    doc = ET.parse(str(saft_file))
    schema = ET.XMLSchema(ET.parse(str(SAFT_DIR / SCHEMA_FILE)))
    assert schema.validate(doc), schema.error_log
    assert doc.findtext("s:GeneralLedgerEntries/s:NumberOfEntries", namespaces=X) == "5"
    debit = doc.findtext("s:GeneralLedgerEntries/s:TotalDebit", namespaces=X)
    credit = doc.findtext("s:GeneralLedgerEntries/s:TotalCredit", namespaces=X)
    assert Decimal(str(debit)) == Decimal(str(credit)) == total
