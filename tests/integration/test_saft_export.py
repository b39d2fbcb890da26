"""`billing export RUN --format saft` of a real priced run of the Vesterålen catalogue, on both
ClickHouse backends: the file validates against the Tax Administration's SAF-T Financial 1.30
XSD, every transaction balances, and its totals are the run's to the øre."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree as ET

from billing_jobs import service
from billing_jobs.formats.saft import NS, SCHEMA_FILE
from billing_jobs.settings import DEFAULT_SAFT_DIR
from billing_jobs.store import BillingStore
from chargeback.catalogue import load_catalogue
from chargeback.clickhouse import ClickHouse
from chargeback.events import Known
from chargeback.period import Period
from chargeback_cli.main import cli
from streams.sink import Record, UsageSink

pytestmark = pytest.mark.integration
# After every month these tests bill has ended (in Europe/Stockholm).
LATER = datetime(2027, 3, 1, tzinfo=UTC)

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_FILE = ROOT / "demo" / "data" / "vesteralen" / "catalogue.yaml"
PARTIES_FILE = ROOT / "demo" / "data" / "vesteralen" / "parties.yaml"
SAFT_DIR = Path(os.environ.get("CHARGEBACK_SAFT_DIR", DEFAULT_SAFT_DIR))
CATALOGUE = load_catalogue(CATALOGUE_FILE)
OCT = Period(2026, 10)
X = {"s": NS}
D = Decimal


def store_usage(ch: ClickHouse) -> None:
    """Sortland: 3 PCs in OPPV every day of October and 2 tickets; Andøy: 1 PC in HELSE every day."""
    sink = UsageSink(
        ch,
        known=Known(set(CATALOGUE.municipality_codes), set(CATALOGUE.service_ids)),
        tz=CATALOGUE.tz,
        clock=lambda: datetime(2026, 11, 2, tzinfo=UTC),
    )
    # id, municipality, cost centre, service, subject, day
    events: list[tuple[str, str, str, str, str, date]] = []
    for day in (date(2026, 10, 1) + timedelta(days=i) for i in range(31)):
        events += [(f"1870-PC{n}-{day}", "1870", "OPPV", "pc-standard", f"PC{n}", day) for n in range(3)]
        events.append((f"1871-PC9-{day}", "1871", "HELSE", "pc-standard", "PC9", day))
    events += [
        (f"1870-T{n}", "1870", "OPPV", "ticket-incident", f"T{n}", date(2026, 10, 15)) for n in range(2)
    ]
    records = []
    for offset, (eid, municipality, cost_centre, svc, subject, day) in enumerate(events):
        body = {
            "specversion": "1.0",
            "id": eid,
            "source": f"urn:chargeback:collector:{municipality}:test",
            "type": "chargeback.usage.v1",
            "time": f"{day}T06:00:00Z",
            "data": {
                "municipality": municipality,
                "cost_centre": cost_centre,
                "service": svc,
                "subject": subject,
                "quantity": "1",
            },
        }
        records.append(Record("usage", 0, offset, municipality.encode(), json.dumps(body).encode()))
    sink.store(sink.prepare(records))


def test_saft_export_of_a_priced_run(clickhouse: ClickHouse, clickhouse_url: str, tmp_path: Path) -> None:
    store_usage(clickhouse)
    store = BillingStore(clickhouse)
    run = service.create_run(store, CATALOGUE, "0" * 64, OCT, now=LATER).run
    final = service.finalize_run(store, run.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    lines = store.load_lines(run.run_id)
    env = {
        "CHARGEBACK_CLICKHOUSE_URL": clickhouse_url,
        "CHARGEBACK_CLICKHOUSE_DATABASE": clickhouse.database,
        "CHARGEBACK_CATALOGUE": str(CATALOGUE_FILE),
        "CHARGEBACK_PARTIES_FILE": str(PARTIES_FILE),
        "CHARGEBACK_SAFT_DIR": str(SAFT_DIR),
    }
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["billing", "export", run.run_id, "--format", "saft", "--to", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        f"{run.run_id}.saft.xml",
        f"{run.run_id}.saft.xml.manifest.json",
    ]
    # The run's EHF invoices go to the same folder beside it: a final run's files are never
    # overwritten, so the two exports must not share a manifest.
    ehf = CliRunner().invoke(
        cli, ["billing", "export", run.run_id, "--format", "peppol", "--to", str(out)], env=env
    )
    assert ehf.exit_code == 0, ehf.output
    assert (out / f"{run.run_id}.xml.manifest.json").is_file()
    doc = ET.parse(str(out / f"{run.run_id}.saft.xml"))
    schema = ET.XMLSchema(ET.parse(str(SAFT_DIR / SCHEMA_FILE)))
    assert schema.validate(doc), schema.error_log

    # The run, by hand: every member pays the base package (45 000.00), its share of the shared
    # operation (2 400 000.00 / 12 = 200 000.00 by inhabitants, 30 570 in all) and of the shared
    # systems (1 800 000.00 / 12 = 150 000.00 by users, 4 200 in all); Sortland 3 PCs and 2 tickets
    # (3 x 265.00 + 2 x 120.00 = 1 035.00), Andøy 1 PC (265.00).
    net = sum((x.amount for x in lines), D(0))
    vat = sum((x.vat_amount for x in lines), D(0))
    assert (
        net
        == D("5") * D("45000.00") + D("200000.00") + D("150000.00") + D("1035.00") + D("265.00")
        == D("576300.00")
    )
    # VAT is 25 % of each line, rounded half-up to the øre: the five shares (52 731.44, 16 486.75,
    # 29 833.17, 71 311.74, 29 636.90) give 13 182.86 + 4 121.69 + 7 458.29 + 17 827.94 + 7 409.23
    # = 50 000.01, one øre above 25 % of 200 000.00; the users shares likewise 37 500.01.
    assert vat == D("144075.02")
    per_member = {
        m: sum((x.amount + x.vat_amount for x in lines if x.municipality == m), D(0))
        for m in ("1866", "1867", "1868", "1870", "1871")
    }
    # Sortland: 45 000.00 + 200 000.00 x 10 900 / 30 570 = 71 311.74 + 150 000.00 x 1 450 / 4 200
    # = 51 785.71 + 1 035.00, each line with 25 % VAT to the øre (11 250.00 + 17 827.94 + 12 946.43
    # + 198.75 + 60.00)
    assert per_member["1870"] == D("169132.45") + D("42283.12") == D("211415.57")

    transactions = doc.findall("s:GeneralLedgerEntries/s:Journal/s:Transaction", X)
    assert [t.findtext("s:TransactionID", namespaces=X) for t in transactions] == [
        f"{run.run_id}-{m}" for m in ("1866", "1867", "1868", "1870", "1871")
    ]
    for transaction in transactions:
        debit = sum((D(str(e.text)) for e in transaction.findall("s:Line/s:DebitAmount/s:Amount", X)), D(0))
        credit = sum((D(str(e.text)) for e in transaction.findall("s:Line/s:CreditAmount/s:Amount", X)), D(0))
        assert debit == credit
        code = str(transaction.findtext("s:CustomerID", namespaces=X))
        receivable = transaction.find("s:Line[s:AccountID='2130']/s:DebitAmount/s:Amount", X)
        assert receivable is not None and D(str(receivable.text)) == per_member[code]
    assert doc.findtext("s:GeneralLedgerEntries/s:TotalDebit", namespaces=X) == "720375.02"
    assert doc.findtext("s:GeneralLedgerEntries/s:TotalCredit", namespaces=X) == "720375.02"
    assert net + vat == D("720375.02")
    assert (
        doc.findtext("s:Header/s:AuditFileDateCreated", namespaces=X) == final.changed_at.date().isoformat()
    )
