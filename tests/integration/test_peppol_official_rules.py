"""The official rules decide: Peppol invoices and credit notes built through the real export path
(usage stored by the stream sink in real ClickHouse, server and chDB; runs priced, finalised and
corrected by the billing service; files written by ``billing export``) pass the UBL 2.1 XSD and
the CEN EN 16931 and PEPPOL BIS 3.0.19 Schematron with 0 fatal findings and 0 warnings:

(a) a finalised month of the six demo members; (b) the next month, whose corrections lower some
cost centres (negative lines on an invoice); (c) a credit note, for a member whose corrections net
negative; (d) an invoice to a Norwegian (0192) buyer. The rules folder has no UBL CreditNote
schema: a credit note is checked by the two Schematron files only (``Validation.schema`` is None).

The catalogue is the demo's with two changes that make the corrections: Microsoft 365 is a
volume-tiered price that drops from 260.00 to 100.00 a licence above 3 (so one late licence lowers
the others), and Hudiksvall left on 2026-08-31 (so September has only its corrections).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from lxml import etree

from billing_jobs import service
from billing_jobs.formats import ExportRefused
from billing_jobs.store import BillingStore
from chargeback.catalogue import load_catalogue
from chargeback.clickhouse import ClickHouse
from chargeback.events import Known
from chargeback.period import Period
from chargeback_cli.main import cli
from streams.sink import Record, UsageSink
from tests.einvoice_rules import assert_official_rules_pass
from tests.unit.test_formats_sie import read_sie

pytestmark = [pytest.mark.integration, pytest.mark.einvoice]

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "data"
AUG, SEP = Period(2026, 8), Period(2026, 9)
# After every month these tests bill has ended (in Europe/Stockholm).
LATER = datetime(2027, 3, 1, tzinfo=UTC)
NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
MEMBERS = ["2121", "2132", "2161", "2182", "2183", "2184"]


def catalogue_file(tmp_path: Path) -> Path:
    text = (DEMO / "catalogue.yaml").read_text(encoding="utf-8")
    for given, changed in (
        (
            'tiers: [{up_to: "1000", unit_price: "260.00"}, {up_to: null, unit_price: "240.00"}]',
            'tiers: [{up_to: "3", unit_price: "260.00"}, {up_to: null, unit_price: "100.00"}]',
        ),
        (
            '{code: "2184", name: Hudiksvall, inhabitants: 37800}',
            '{code: "2184", name: Hudiksvall, inhabitants: 37800, left: 2026-08-31}',
        ),
    ):
        assert given in text, given
        text = text.replace(given, changed)
    path = tmp_path / "catalogue.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class Usage:
    """Usage events through the real stream sink."""

    def __init__(self, ch: ClickHouse, catalogue: Path) -> None:
        known = load_catalogue(catalogue)
        self.sink = UsageSink(
            ch,
            known=Known(set(known.municipality_codes), set(known.service_ids)),
            tz=ZoneInfo("Europe/Stockholm"),
        )
        self.offset = 0

    def send(self, events: list[tuple[str, str, str, str, str]]) -> None:
        """(municipality, cost centre, service, subject, ISO time) events."""
        records = []
        for m, cc, service_id, subject, when in events:
            body = {
                "specversion": "1.0",
                "id": f"{m}-{service_id}-{subject}-{when}",
                "source": "urn:test",
                "type": "chargeback.usage.v1",
                "time": when,
                "data": {"municipality": m, "cost_centre": cc, "service": service_id, "subject": subject,
                         "quantity": "1"},
            }  # fmt: skip
            records.append(Record("usage", 0, self.offset, m.encode(), json.dumps(body).encode()))
            self.offset += 1
        self.sink.store(self.sink.prepare(records))


def every_day(period: Period, m: str, cc: str, users: list[str]) -> list[tuple[str, str, str, str, str]]:
    """Microsoft 365 licences in use on every day of the month (daily distinct: a whole licence)."""
    days = (period.last_day - period.first_day).days + 1
    return [
        (m, cc, "m365-e3", user, f"{period.first_day + timedelta(days=d)}T09:00:00Z")
        for d in range(days)
        for user in users
    ]


def export(
    ch: ClickHouse,
    url: str,
    catalogue: Path,
    run_id: str,
    out: Path,
    parties: Path,
    *extra: str,
    fmt: str = "peppol",
) -> tuple[int, str | BaseException | None]:
    """``billing export RUN --format peppol``: (exit code, output, or the error the CLI's entry point
    prints as one sentence). Not through ``main()``, which closes the test's chDB session."""
    env = {"CHARGEBACK_CLICKHOUSE_URL": url, "CHARGEBACK_CLICKHOUSE_DATABASE": ch.database}
    args = ["billing", "--catalogue", str(catalogue), "export", run_id, "--format", fmt]
    result = CliRunner().invoke(cli, [*args, "--to", str(out), "--parties", str(parties), *extra], env=env)
    return result.exit_code, result.exception or result.output


def documents(out: Path) -> dict[str, etree._Element]:
    return {p.name: etree.fromstring(p.read_bytes()) for p in sorted(out.glob("*.xml"))}


def text(doc: etree._Element, path: str) -> str | None:
    return doc.findtext(path, namespaces=NS)


def test_official_rules_pass_a_month_its_corrections_a_credit_note_and_a_norwegian_buyer(
    clickhouse: ClickHouse, clickhouse_url: str, tmp_path: Path
) -> None:
    catalogue_path = catalogue_file(tmp_path)
    catalogue = load_catalogue(catalogue_path)
    store = BillingStore(clickhouse)
    usage = Usage(clickhouse, catalogue_path)
    usage.send(
        [(m, "KS", "ticket-incident", f"t-{m}", "2026-08-10T08:00:00Z") for m in MEMBERS]
        + every_day(AUG, "2183", "BUF", ["u1", "u2", "u3"])
        + every_day(AUG, "2184", "KS", ["v1", "v2", "v3"])
    )
    august = service.create_run(store, catalogue, "c" * 64, AUG, now=LATER).run
    service.finalize_run(store, august.run_id, catalogue, now=LATER, accept_gaps=True)

    # (a) a finalised month of the six demo members
    out_a = tmp_path / "a"
    assert (
        export(clickhouse, clickhouse_url, catalogue_path, august.run_id, out_a, DEMO / "parties.yaml")[0]
        == 0
    )
    found = documents(out_a)
    assert sorted(found) == [f"{august.run_id}.{m}.xml" for m in MEMBERS]
    for name, doc in found.items():
        validation = assert_official_rules_pass(etree.tostring(doc))
        assert validation.schema is not None and validation.schema.name == "UBL-Invoice-2.1.xsd", name
    bollnas = found[f"{august.run_id}.2183.xml"]
    # 125000.00 base offering + 100000.00 × 26500/129400 SOC (20479.13) + 95.00 ticket + 3 × 260.00
    assert text(bollnas, "cac:LegalMonetaryTotal/cbc:LineExtensionAmount") == "146354.13"

    # Late August usage: one more Microsoft 365 licence each for Bollnäs and Hudiksvall (on SOC), which
    # takes them over 3 licences: 4 × 100.00 = 400.00 instead of 3 × 260.00 = 780.00.
    usage.send(every_day(AUG, "2183", "SOC", ["u4"]) + every_day(AUG, "2184", "SOC", ["v4"]))
    usage.send([("2183", "KS", "ticket-incident", "t-sep", "2026-09-03T08:00:00Z")])
    september = service.create_run(store, catalogue, "c" * 64, SEP, now=LATER).run
    service.finalize_run(store, september.run_id, catalogue, now=LATER, accept_gaps=True)
    out_b = tmp_path / "b"
    assert (
        export(clickhouse, clickhouse_url, catalogue_path, september.run_id, out_b, DEMO / "parties.yaml")[0]
        == 0
    )
    found = documents(out_b)
    assert sorted(found) == [f"{september.run_id}.{m}.xml" for m in MEMBERS]

    # (b) the next month, with corrections that lower a cost centre: negative lines on an invoice
    bollnas = found[f"{september.run_id}.2183.xml"]
    assert etree.QName(bollnas).localname == "Invoice"
    corrections = [
        (
            x.findtext("cbc:AccountingCost", namespaces=NS),
            x.findtext("cbc:InvoicedQuantity", namespaces=NS),
            x.findtext("cac:Price/cbc:PriceAmount", namespaces=NS),
            x.findtext("cbc:LineExtensionAmount", namespaces=NS),
            x.findtext("cbc:Note", namespaces=NS),
        )
        for x in bollnas.findall("cac:InvoiceLine", NS)
        if x.find("cac:InvoicePeriod", NS) is not None
    ]
    assert corrections == [
        # same licences, a lower price: one unit, -1, at the amount
        ("BUF", "-1", "480.00", "-480.00", "Correction of 2026-08 (quantity 0 st, amount -480.00)"),
        ("SOC", "1", "100.00", "100.00", "Correction of 2026-08"),
    ]
    assert (
        text(bollnas, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == f"{august.run_id}-2183"
    )
    assert (
        text(bollnas, "cbc:Note")
        == f"Billing run {september.run_id} for 2026-09, price list 2026; corrects 2026-08"
    )
    for name, doc in found.items():
        if name.endswith(".2184.xml"):
            continue
        assert_official_rules_pass(etree.tostring(doc))

    # (c) a credit note: Hudiksvall left on 2026-08-31, its September is only the correction of August
    credit = found[f"{september.run_id}.2184.xml"]
    assert etree.QName(credit).localname == "CreditNote"
    assert text(credit, "cbc:CreditNoteTypeCode") == "381"
    assert text(credit, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == f"{august.run_id}-2184"
    # 480.00 credited on KS less 100.00 charged on SOC = 380.00, VAT 95.00
    assert text(credit, "cac:LegalMonetaryTotal/cbc:PayableAmount") == "475.00"
    validation = assert_official_rules_pass(etree.tostring(credit))
    assert (validation.document_type, validation.schema) == ("CreditNote", None)

    # The SIE file of the same run, read back: one voucher per document, equal to it to the öre.
    assert (
        export(
            clickhouse,
            clickhouse_url,
            catalogue_path,
            september.run_id,
            out_b,
            DEMO / "parties.yaml",
            fmt="sie",
        )[0]
        == 0
    )
    _, vouchers = read_sie((out_b / f"{september.run_id}.si").read_bytes())
    payable = {
        (etree.QName(doc).localname, text(doc, "cbc:ID")): Decimal(
            text(doc, "cac:LegalMonetaryTotal/cbc:PayableAmount") or ""
        )
        for doc in found.values()
    }
    kinds = {"Faktura": "Invoice", "Kreditnota": "CreditNote"}
    assert len(vouchers) == len(payable) == 6
    for voucher, transactions in vouchers:
        kind, document = voucher.split()[:2]
        assert sum(amount for _, _, amount in transactions) == 0, voucher
        receivable = sum(amount for account, _, amount in transactions if account == "1510")
        assert receivable == payable[(kinds[kind], document)] * (-1 if kind == "Kreditnota" else 1), voucher
    assert vouchers[-1][0] == f"Kreditnota {september.run_id}-2184 Hudiksvall 2026-09"

    # (d) an invoice to a Norwegian buyer (endpoint scheme 0192, a Norwegian organisation number)
    parties = (DEMO / "parties.yaml").read_text(encoding="utf-8")
    ovanaker = next(row for row in parties.splitlines() if row.startswith('  "2121"'))
    norwegian = (
        '  "2121": {name: Oslo kommune IKT, org_number: "923 456 783", vat_number: NO923456783MVA, '
        'endpoint: {scheme: "0192", id: "923456783"}, address: {street: Postboks 1, city: Oslo, '
        'postal_code: "0037", country: NO}, reference: "IKT-2121"}'
    )
    norway = tmp_path / "parties-no.yaml"
    norway.write_text(parties.replace(ovanaker, norwegian), encoding="utf-8")
    out_d = tmp_path / "d"
    assert export(clickhouse, clickhouse_url, catalogue_path, august.run_id, out_d, norway)[0] == 0
    oslo = documents(out_d)[f"{august.run_id}.2121.xml"]
    buyer = oslo.find("cac:AccountingCustomerParty/cac:Party", NS)
    assert buyer.find("cbc:EndpointID", NS).attrib["schemeID"] == "0192"
    assert (text(buyer, "cbc:EndpointID"), text(buyer, "cac:PartyLegalEntity/cbc:CompanyID")) == (
        "923456783",
        "923456783",
    )
    assert_official_rules_pass(etree.tostring(oslo))


def test_a_draft_is_refused_without_draft_and_marked_with_it(
    clickhouse: ClickHouse, clickhouse_url: str, tmp_path: Path
) -> None:
    catalogue_path = catalogue_file(tmp_path)
    catalogue = load_catalogue(catalogue_path)
    Usage(clickhouse, catalogue_path).send([("2183", "KS", "ticket-incident", "t1", "2026-08-10T08:00:00Z")])
    run = service.create_run(BillingStore(clickhouse), catalogue, "c" * 64, AUG, ["2183"], now=LATER).run
    parties = DEMO / "parties.yaml"
    code, error = export(clickhouse, clickhouse_url, catalogue_path, run.run_id, tmp_path / "x", parties)
    assert (code, type(error), str(error)) == (
        1,
        ExportRefused,  # a UserError: the entry point prints "error: " and this sentence, exit code 1
        f"run {run.run_id} is a draft: finalise it before exporting peppol, or add --draft for a "
        "preview marked as a draft in every file",
    )
    assert not (tmp_path / "x").exists()
    code, output = export(
        clickhouse, clickhouse_url, catalogue_path, run.run_id, tmp_path / "x", parties, "--draft"
    )
    assert code == 0, output
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == [
        f"{run.run_id}.2183.draft.xml",
        f"{run.run_id}.draft.xml.manifest.json",
    ]
    doc = etree.fromstring((tmp_path / "x" / f"{run.run_id}.2183.draft.xml").read_bytes())
    assert (
        text(doc, "cbc:Note")
        == f"UTKAST / DRAFT — not an invoice; Billing run {run.run_id} for 2026-08, price list 2026"
    )
    assert_official_rules_pass(etree.tostring(doc))
    # The run report names the same seller, from the parties file (there are no seller settings).
    code, output = export(
        clickhouse, clickhouse_url, catalogue_path, run.run_id, tmp_path / "r", parties, fmt="report"
    )
    assert code == 0, output
    page = (tmp_path / "r" / f"{run.run_id}.html").read_text(encoding="utf-8")
    assert f"Underlag från Hälsinglands IT-förbund; körning {run.run_id}, utkast" in page
