"""The specification and the explanation of a run on real ClickHouse (server and chDB): a month
with a device moved between cost centres, the day summer time ends, re-sent event ids and a reading
late on the last evening that belongs to the next month. Every line's subjects add up exactly to
its billed quantity; the explanation agrees with every stored line; the analysts' views show the
same figures."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from click.testing import CliRunner, Result

from billing_jobs import service
from billing_jobs.explain import NothingToExplain, RunExplanation, explain_run, render_text, totals_of
from billing_jobs.formats import FORMATS, ExportContext, Seller
from billing_jobs.formats.specification import line_quantity
from billing_jobs.store import BillingStore
from chargeback.catalogue import load_catalogue
from chargeback.clickhouse import ClickHouse
from chargeback.events import Known
from chargeback.period import Period
from chargeback_cli.main import cli
from streams.sink import Record, UsageSink
from warehouse.migrations import sync_catalogue

pytestmark = pytest.mark.integration
# After every month these tests bill has ended (in Europe/Stockholm).
LATER = datetime(2027, 3, 1, tzinfo=UTC)

CATALOGUE = load_catalogue(Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml")
STOCKHOLM = ZoneInfo("Europe/Stockholm")
OCT = Period(2026, 10)
SHA = "d" * 64


def local(day: int, hour: int = 0, minute: int = 30) -> str:
    """A moment of an October day in Stockholm as UTC text (summer time until the 25th, 03:00)."""
    moment = datetime.combine(date(2026, 10, day), time(hour, minute), STOCKHOLM)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def body(eid: str, cc: str, svc: str, subject: str, when: str, quantity: str = "1", **data: str) -> bytes:
    event = {
        "specversion": "1.0",
        "id": eid,
        "source": "urn:chargeback:collector:2183:test",
        "type": "chargeback.usage.v1",
        "time": when,
        "data": {
            "municipality": "2183",
            "cost_centre": cc,
            "service": svc,
            "subject": subject,
            "quantity": quantity,
            **data,
        },
    }
    return json.dumps(event).encode()


def month_of_usage() -> list[bytes]:
    pc1 = {"device_name": "BUF-PC1", "subject_user": "anna.berg@bollnas.se"}
    events = []
    # PC1 in BUF from the 1st to the 16th, in SOC from the 16th (moved that day: counts in both).
    for day in range(1, 17):
        events.append(body(f"pc1-BUF-{day}", "BUF", "pc-standard", "PC1", local(day, 6), **pc1))
    for day in range(16, 32):
        events.append(body(f"pc1-SOC-{day}", "SOC", "pc-standard", "PC1", local(day, 6), **pc1))
    # PC2 every day at 00:30 local time, which is 22:30 or 23:30 UTC the day before.
    for day in range(1, 32):
        events.append(body(f"pc2-{day}", "BUF", "pc-standard", "PC2", local(day), device_name="BUF-PC2"))
    # 1 November 00:30 local time: next month's.
    events.append(body("pc2-nov-1", "BUF", "pc-standard", "PC2", "2026-10-31T23:30:00Z"))
    # The BUF share: 100 GiB on days 1..15, a second reading of 120 GiB on the 10th.
    for day in range(1, 16):
        events.append(body(f"buf-{day}", "BUF", "storage-file", r"\\fs01\buf", local(day, 7), "100"))
    events.append(body("buf-10-late", "BUF", "storage-file", r"\\fs01\buf", local(10, 18), "120"))
    # The SOC share on the day summer time ends: 02:30 local twice (CEST, then CET), then the 26th.
    events.append(body("soc-25a", "SOC", "storage-file", r"\\fs01\soc", "2026-10-25T00:30:00Z", "50"))
    events.append(body("soc-25b", "SOC", "storage-file", r"\\fs01\soc", "2026-10-25T01:30:00Z", "70"))
    events.append(body("soc-26", "SOC", "storage-file", r"\\fs01\soc", local(26, 9), "50"))
    # Tickets: one in BUF, one in SOC closed in the night summer time ends, one closed on
    # 1 November local time.
    for eid, cc, when in (
        ("I-1001", "BUF", "2026-10-05T08:00:00Z"),
        ("I-1002", "SOC", "2026-10-25T01:30:00Z"),
        ("I-1003", "SOC", "2026-10-31T23:10:00Z"),
    ):
        events.append(body(eid, cc, "ticket-incident", eid, when, channel="phone", closed=when))
    return events


def resent() -> list[bytes]:
    """Re-sent ids: the same PC1 days again, and a ticket again under another cost centre."""
    again = [body(f"pc1-BUF-{day}", "BUF", "pc-standard", "PC1", local(day, 6)) for day in range(1, 17)]
    again.append(body("I-1001", "SOC", "ticket-incident", "I-1001", "2026-10-05T08:00:00Z"))
    return again


def store_events(ch: ClickHouse, bodies: list[bytes], offset: int) -> None:
    sink = UsageSink(
        ch,
        known=Known(set(CATALOGUE.municipality_codes), set(CATALOGUE.service_ids)),
        tz=STOCKHOLM,
        clock=lambda: datetime(2026, 11, 1, 12, tzinfo=UTC),
    )
    records = [Record("usage", 0, offset + i, b"2183", b) for i, b in enumerate(bodies)]
    sink.store(sink.prepare(records))


def spec_rows(files: dict[str, bytes], name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(files[name].decode())))


def test_specification_adds_up_to_every_line_and_the_explanation_agrees(clickhouse: ClickHouse) -> None:
    store_events(clickhouse, month_of_usage(), 0)
    store_events(clickhouse, resent(), 1000)
    store = BillingStore(clickhouse)
    run = service.create_run(store, CATALOGUE, SHA, OCT, ["2183"], now=LATER)
    metered = [
        (x.cost_centre, x.service, x.quantity, x.amount)
        for x in run.lines
        if x.service in ("pc-standard", "storage-file", "ticket-incident")
    ]
    # pc-standard: BUF 16 + 31 = 47 subject-days, SOC 16; 63 ÷ 31 = 2.032258 × 310 = 630.00.
    # storage-file: BUF 14 × 100 + 120 = 1520 GiB-days, SOC 70 + 50 = 120; 1 package of 100.
    assert metered == [
        ("BUF", "pc-standard", Decimal("1.516129"), Decimal("470.00")),
        ("BUF", "storage-file", Decimal("49.032258"), Decimal("417.07")),
        ("BUF", "ticket-incident", Decimal("1"), Decimal("95.00")),
        ("SOC", "pc-standard", Decimal("0.516129"), Decimal("160.00")),
        ("SOC", "storage-file", Decimal("3.870968"), Decimal("32.93")),
        ("SOC", "ticket-incident", Decimal("1"), Decimal("95.00")),
    ]

    subjects = store.subjects(OCT, ["2183"])
    context = ExportContext(CATALOGUE, Seller("IT"), subjects=subjects)
    files = {f.name: f.body for f in FORMATS["specification"](run.run, run.lines, context)}
    name = f"{run.run.run_id}.2183.draft.specification"  # the run is a draft
    assert sorted(files) == [f"{name}.csv", f"{name}.xlsx"]
    rows = spec_rows(files, f"{name}.csv")
    subject_rows = [
        (r["cost_centre"], r["service"], r["subject"], r["name"], r["user"], r["counted"], r["counted_unit"])
        for r in rows
        if r["row"] == "subject"
    ]
    assert subject_rows == [
        ("BUF", "pc-standard", "PC2", "BUF-PC2", "", "31", "days"),
        ("BUF", "pc-standard", "PC1", "BUF-PC1", "anna.berg@bollnas.se", "16", "days"),
        ("BUF", "storage-file", r"\\fs01\buf", "", "", "1520", "GiB-days"),
        ("BUF", "ticket-incident", "I-1001", "", "", "1", "st"),
        ("SOC", "pc-standard", "PC1", "BUF-PC1", "anna.berg@bollnas.se", "16", "days"),
        ("SOC", "storage-file", r"\\fs01\soc", "", "", "120", "GiB-days"),
        ("SOC", "ticket-incident", "I-1002", "", "", "1", "st"),
    ]
    tickets = [(r["subject"], r["channel"], r["closed"]) for r in rows if r["service"] == "ticket-incident"]
    assert tickets[0] == ("I-1001", "phone", "2026-10-05T08:00:00Z")
    # Every line: its subjects' sum ÷ days, rounded as the line, is exactly its billed quantity.
    by_line = {(x.cost_centre, x.service): x for x in run.lines}
    checked = 0
    for r in rows:
        if r["row"] != "line" or r["counted"] == "":
            continue
        meter = CATALOGUE.service(r["service"]).meter
        total = sum(
            (
                Decimal(s["counted"])
                for s in rows
                if s["row"] == "subject"
                and (s["cost_centre"], s["service"]) == (r["cost_centre"], r["service"])
            ),
            Decimal(0),
        )
        assert Decimal(r["counted"]) == total
        assert (
            line_quantity(meter, total, 31)
            == Decimal(r["quantity"])
            == by_line[(r["cost_centre"], r["service"])].quantity
        )
        assert r["note"] == ""
        checked += 1
    assert checked == 6

    workbook = openpyxl.load_workbook(io.BytesIO(files[f"{name}.xlsx"]))
    assert workbook.sheetnames == sorted({r["service"] for r in rows})
    sheet = workbook["pc-standard"]
    # A draft's sheet: its draft line, the column titles, then the rows.
    assert sheet["A1"].value == "UTKAST – körningen är inte slutlig"
    assert sheet["A2"].value == "municipality"
    cells = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
    assert [(c[3], c[5], c[10]) for c in cells] == [
        ("BUF", "PC2", 31),
        ("BUF", "PC1", 16),
        ("BUF", None, 47),  # the line's sum; an empty cell is empty
        ("SOC", "PC1", 16),
        ("SOC", None, 16),
    ]
    again = FORMATS["specification"](run.run, store.load_lines(run.run.run_id), context)
    assert {f.name: f.body for f in again} == files  # the same run, the same bytes

    # The explanation recomputes every line from the same usage and catalogue and agrees.
    explained = explain_run(run.run, run.lines, CATALOGUE, subjects, municipality="2183")
    assert all(e.agrees for e in explained.lines) and explained.notes == ()
    assert len(explained.lines) == len(run.lines)
    storage_soc = [
        e for e in explained.lines if (e.line.cost_centre, e.line.service) == ("SOC", "storage-file")
    ]
    assert render_text(explained.__class__(run.run, (), tuple(storage_soc)), CATALOGUE) == (
        "2183 Bollnäs · SOC · storage-file (Fillagring) · prislista 2026\n"
        "  antal: Σ GiB-dagar ÷ dagar = 120 ÷ 31 = 3,870968 (avrundat till 6 decimaler) GiB\n"
        "  kommunens summa: BUF 49,032258 + SOC 3,870968 = 52,903226 GiB\n"
        "  paket: ceil(52,903226 ÷ 100) = 1; 1 × 450,00 = 450,00\n"
        "  fördelat på kostnadsställen efter antal (största rest i öre): "
        "BUF 49,032258 av 52,903226 → 417,07; SOC 3,870968 av 52,903226 → 32,93\n"
        "  moms 25 %: 32,93 × 0,25 = 8,23\n"
        "  rad: 3,870968 GiB, 32,93 SEK exkl. moms, à-pris 8,51\n"
        "  objekt (1 av 1):\n"
        "    \\\\fs01\\soc  120 GiB-dagar\n"
    )
    digest = service.usage_digest(totals_of(subjects), [])
    assert digest == run.run.usage_sha256  # the explanation's usage is the run's


def test_analyst_views_explain_lines_and_list_their_subjects(clickhouse: ClickHouse) -> None:
    store_events(clickhouse, month_of_usage(), 0)
    store_events(clickhouse, resent(), 1000)
    # Names as collectors send them (non-ASCII, a domain's backslash) are read back as they were
    # (November: October's lines stay as below).
    store_events(
        clickhouse,
        [
            body("pc9", "KS", "pc-standard", "PC9", "2026-11-01T06:00:00Z", subject_user="KOMMUN\\åsa.ek"),
            body("m9", "KS", "m365-e3", "asa.ek@bollnas.se", "2026-11-01T06:00:00Z", subject_name="Åsa Ek"),
        ],
        3000,
    )
    assert clickhouse.execute(
        "SELECT subject, subject_name, subject_user FROM usage_events WHERE cost_centre = 'KS' "
        "ORDER BY subject"
    ) == [("PC9", "", "KOMMUN\\åsa.ek"), ("asa.ek@bollnas.se", "Åsa Ek", "")]
    sync_catalogue(clickhouse, CATALOGUE, now=datetime(2026, 11, 2, tzinfo=UTC))
    run = service.create_run(BillingStore(clickhouse), CATALOGUE, SHA, OCT, ["2183"], now=LATER).run
    assert clickhouse.execute("SELECT * FROM v_municipalities ORDER BY municipality") == [
        ("2121", "Ovanåker", 11300),
        ("2132", "Nordanstig", 9400),
        ("2161", "Ljusdal", 19000),
        ("2182", "Söderhamn", 25400),
        ("2183", "Bollnäs", 26500),
        ("2184", "Hudiksvall", 37800),
    ]
    assert clickhouse.execute(
        "SELECT service, name, meter, price_list, model, unit_price, package_size, package_price, tiers, "
        "annual_amount, distribution_key, index_from, price_index FROM v_services "
        "WHERE service IN ('pc-standard', 'storage-file', 'ticket-incident', 'soc-shared') "
        "ORDER BY service, price_list"
    ) == [
        (
            "pc-standard",
            "Standarddator",
            "daily_distinct",
            "2026",
            "per_unit",
            Decimal("310"),
            None,
            None,
            "",
            None,
            "",
            "",
            None,
        ),
        (
            "pc-standard",
            "Standarddator",
            "daily_distinct",
            "2027",
            "per_unit",
            Decimal("319.92"),
            None,
            None,
            "",
            None,
            "",
            "2026",
            Decimal("1.032"),
        ),
        (
            "soc-shared",
            "Gemensam SOC",
            "count",
            "2026",
            "distributed",
            None,
            None,
            None,
            "",
            Decimal("1200000"),
            "inhabitants",
            "",
            None,
        ),
        (
            "soc-shared",
            "Gemensam SOC",
            "count",
            "2027",
            "distributed",
            None,
            None,
            None,
            "",
            Decimal("1238400"),
            "inhabitants",
            "2026",
            Decimal("1.032"),
        ),
        (
            "storage-file",
            "Fillagring",
            "daily_max",
            "2026",
            "package",
            None,
            Decimal("100"),
            Decimal("450"),
            "",
            None,
            "",
            "",
            None,
        ),
        (
            "storage-file",
            "Fillagring",
            "daily_max",
            "2027",
            "package",
            None,
            Decimal("100"),
            Decimal("464.40"),
            "",
            None,
            "",
            "2026",
            Decimal("1.032"),
        ),
        (
            "ticket-incident",
            "Ärende incident",
            "count",
            "2026",
            "tiered_graduated",
            None,
            None,
            None,
            '[{"up_to":"200","unit_price":"95.00"},{"up_to":null,"unit_price":"80.00"}]',
            None,
            "",
            "",
            None,
        ),
        (
            "ticket-incident",
            "Ärende incident",
            "count",
            "2027",
            "tiered_graduated",
            None,
            None,
            None,
            '[{"up_to":"200","unit_price":"98.04"},{"up_to":null,"unit_price":"82.56"}]',
            None,
            "",
            "2026",
            Decimal("1.032"),
        ),
    ]
    assert clickhouse.execute(
        "SELECT cost_centre, service, municipality_name, inhabitants, meter, model, days_in_month, subjects, "
        "subject_days, unit_days, usage_quantity, municipality_quantity, municipality_amount, quantity, "
        "amount, list_unit_price, package_size, package_price FROM v_line_explanations "
        "WHERE run_id = %(run)s AND service IN ('pc-standard', 'storage-file') ORDER BY cost_centre, service",
        {"run": run.run_id},
    ) == [
        (
            "BUF",
            "pc-standard",
            "Bollnäs",
            26500,
            "daily_distinct",
            "per_unit",
            31,
            2,
            47,
            Decimal("47"),
            Decimal("47"),
            Decimal("2.032258"),
            Decimal("630.00"),
            Decimal("1.516129"),
            Decimal("470.00"),
            Decimal("310"),
            None,
            None,
        ),
        (
            "BUF",
            "storage-file",
            "Bollnäs",
            26500,
            "daily_max",
            "package",
            31,
            1,
            15,
            Decimal("1520"),
            Decimal("1620"),
            Decimal("52.903226"),
            Decimal("450.00"),
            Decimal("49.032258"),
            Decimal("417.07"),
            None,
            Decimal("100"),
            Decimal("450"),
        ),
        (
            "SOC",
            "pc-standard",
            "Bollnäs",
            26500,
            "daily_distinct",
            "per_unit",
            31,
            1,
            16,
            Decimal("16"),
            Decimal("16"),
            Decimal("2.032258"),
            Decimal("630.00"),
            Decimal("0.516129"),
            Decimal("160.00"),
            Decimal("310"),
            None,
            None,
        ),
        (
            "SOC",
            "storage-file",
            "Bollnäs",
            26500,
            "daily_max",
            "package",
            31,
            1,
            2,
            Decimal("120"),
            Decimal("170"),
            Decimal("52.903226"),
            Decimal("450.00"),
            Decimal("3.870968"),
            Decimal("32.93"),
            None,
            Decimal("100"),
            Decimal("450"),
        ),
    ]
    assert clickhouse.execute(
        "SELECT cost_centre, subject, days, unit_days, quantity, subject_name, subject_user "
        "FROM v_line_subjects "
        "WHERE run_id = %(run)s AND service = 'pc-standard' ORDER BY cost_centre, subject",
        {"run": run.run_id},
    ) == [
        ("BUF", "PC1", 16, Decimal("16"), Decimal("16"), "BUF-PC1", "anna.berg@bollnas.se"),
        ("BUF", "PC2", 31, Decimal("31"), Decimal("31"), "BUF-PC2", ""),
        ("SOC", "PC1", 16, Decimal("16"), Decimal("16"), "BUF-PC1", "anna.berg@bollnas.se"),
    ]


def test_billing_explain_and_export_specification_commands(
    clickhouse: ClickHouse, clickhouse_url: str, tmp_path: Path
) -> None:
    store_events(clickhouse, month_of_usage(), 0)
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_bytes((Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml").read_bytes())
    env = {
        "CHARGEBACK_CLICKHOUSE_URL": clickhouse_url,
        "CHARGEBACK_CLICKHOUSE_DATABASE": clickhouse.database,
        "CHARGEBACK_CATALOGUE": str(catalogue),
    }

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["billing", *args], env=env)

    priced = invoke("run", "--period", "2026-10", "--municipality", "2183", "--json")
    assert priced.exit_code == 0, priced.output
    run_id = json.loads(priced.stdout)["run_id"]
    text = invoke(
        "explain", run_id, "--municipality", "2183", "--service", "pc-standard", "--cost-centre", "SOC"
    )
    assert text.exit_code == 0, text.output
    assert text.stdout == (
        "2183 Bollnäs · SOC · pc-standard (Standarddator) · prislista 2026\n"
        "  antal: Σ enhetsdagar ÷ dagar = 16 ÷ 31 = 0,516129 (avrundat till 6 decimaler) st\n"
        "  kommunens summa: BUF 1,516129 + SOC 0,516129 = 2,032258 st\n"
        "  per enhet: 2,032258 × 310,00 = 630,00\n"
        "  fördelat på kostnadsställen efter antal (största rest i öre): "
        "BUF 1,516129 av 2,032258 → 470,00; SOC 0,516129 av 2,032258 → 160,00\n"
        "  moms 25 %: 160,00 × 0,25 = 40,00\n"
        "  rad: 0,516129 st, 160,00 SEK exkl. moms, à-pris 310,00\n"
        "  objekt (1 av 1):\n"
        "    PC1  16 dagar  BUF-PC1, anna.berg@bollnas.se\n"
    )
    as_json = invoke("explain", run_id, "--municipality", "2183", "--service", "pc-standard", "--json")
    lines = json.loads(as_json.stdout)["lines"]
    assert [(x["cost_centre"], x["subject_days"], x["quantity"], x["amount"]) for x in lines] == [
        ("BUF", 47, "1.516129", "470.00"),
        ("SOC", 16, "0.516129", "160.00"),
    ]
    assert [s["subject"] for s in lines[0]["subjects"]] == ["PC2", "PC1"]

    # The run is a draft: its specification is exported (a preview), named and headed as a draft.
    exported = invoke("export", run_id, "--format", "specification", "--to", str(tmp_path / "out"))
    assert exported.exit_code == 0, exported.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"{run_id}.2183.draft.specification.csv",
        f"{run_id}.2183.draft.specification.xlsx",
        f"{run_id}.draft.specification.manifest.json",
    ]
    book = openpyxl.load_workbook(tmp_path / "out" / f"{run_id}.2183.draft.specification.xlsx")
    assert book["pc-standard"]["A1"].value == "UTKAST – körningen är inte slutlig"
    csv_text = (tmp_path / "out" / f"{run_id}.2183.draft.specification.csv").read_text()
    assert csv_text.startswith("municipality,service,service_name,")
    # The member report of the draft links to those files.
    report = invoke("export", run_id, "--format", "report", "--to", str(tmp_path / "report"))
    assert report.exit_code == 0, report.output
    page = (tmp_path / "report" / f"{run_id}.2183.html").read_text()
    assert f'<a href="{run_id}.2183.draft.specification.xlsx"' in page
    # Once final, the names carry no draft marker.
    finalised = invoke("finalize", run_id, "--yes")
    assert finalised.exit_code == 0, finalised.output
    final = invoke("export", run_id, "--format", "specification", "--to", str(tmp_path / "final"))
    assert final.exit_code == 0, final.output
    assert sorted(p.name for p in (tmp_path / "final").iterdir()) == [
        f"{run_id}.2183.specification.csv",
        f"{run_id}.2183.specification.xlsx",
        f"{run_id}.specification.manifest.json",
    ]
    final_book = openpyxl.load_workbook(tmp_path / "final" / f"{run_id}.2183.specification.xlsx")
    assert final_book["pc-standard"]["A1"].value == "municipality"
    # A final run's files never change, and its formats share a folder: each keeps its own manifest.
    for fmt in ("csv", "xlsx", "specification"):
        again = invoke("export", run_id, "--format", fmt, "--to", str(tmp_path / "final"))
        assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (tmp_path / "final").iterdir() if p.name.endswith(".manifest.json")) == [
        f"{run_id}.csv.manifest.json",
        f"{run_id}.specification.manifest.json",
        f"{run_id}.xlsx.manifest.json",
    ]

    missing = invoke("explain", run_id, "--municipality", "2184")
    assert missing.exit_code == 1
    assert isinstance(missing.exception, NothingToExplain)
    assert str(missing.exception) == f"run {run_id} has no line of 2184"

    # A changed catalogue: the explanation says so and shows what the current one gives.
    catalogue.write_text(catalogue.read_text().replace('unit_price: "310.00"', 'unit_price: "320.00"'))
    changed = invoke(
        "explain", run_id, "--municipality", "2183", "--service", "pc-standard", "--cost-centre", "SOC"
    )
    assert changed.exit_code == 0, changed.output
    assert changed.stdout.splitlines()[0] == (
        f"obs: katalogen har ändrats sedan körning {run_id} prissattes: förklaringen använder den "
        "nuvarande katalogen, och rader som den prissätter annorlunda säger det"
    )
    assert (
        "  omräknad nu: 0,516129 st, 165,16 SEK (skiljer sig från den lagrade raden)"
        in changed.stdout.splitlines()
    )


def test_late_usage_is_named_by_the_explanation_and_its_correction_explained(clickhouse: ClickHouse) -> None:
    store_events(clickhouse, month_of_usage(), 0)
    store = BillingStore(clickhouse)
    october = service.create_run(store, CATALOGUE, SHA, OCT, ["2183"], now=LATER)
    service.finalize_run(store, october.run.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    # PC3 in BUF on the 20th, stored after October was invoiced.
    store_events(clickhouse, [body("pc3-20", "BUF", "pc-standard", "PC3", local(20, 6))], 2000)
    november = service.create_run(store, CATALOGUE, SHA, Period(2026, 11), ["2183"], now=LATER)

    def explained(run_id: str, period: Period) -> RunExplanation:
        run, lines = store.get_run(run_id), store.load_lines(run_id)
        digest = service.usage_digest(store.period_totals(period), [x for x in lines if x.corrects_period])
        return explain_run(
            run,
            lines,
            CATALOGUE,
            store.subjects(period, ["2183"]),
            usage_changed=digest != run.usage_sha256,
            municipality="2183",
            service="pc-standard",
        )

    old = explained(october.run.run_id, OCT)
    assert old.notes == (
        f"användningen för 2026-10 har ändrats sedan körning {october.run.run_id} prissattes (sen "
        "användning): förklaringen använder användningen som är lagrad nu, och rader som den mäter "
        "annorlunda säger det",
    )
    assert [e.steps[-1] for e in old.lines] == [
        "omräknad nu: 1,548387 st, 480,00 SEK (skiljer sig från den lagrade raden)",
        "rad: 0,516129 st, 160,00 SEK exkl. moms, à-pris 310,00",  # SOC's share is the same
    ]
    new = explained(november.run.run_id, Period(2026, 11))
    assert new.notes == ()
    assert [(e.line.cost_centre, e.steps) for e in new.lines] == [
        (
            "BUF",  # PC2 at 00:30 on 1 November, local time
            (
                "antal: Σ enhetsdagar ÷ dagar = 1 ÷ 30 = 0,033333 (avrundat till 6 decimaler) st",
                "per enhet: 0,033333 × 310,00 = 10,33",
                "moms 25 %: 10,33 × 0,25 = 2,58",
                "rad: 0,033333 st, 10,33 SEK exkl. moms, à-pris 309,90",
            ),
        ),
        (
            "BUF",
            (
                "rättelse av 2026-10: månaden prissatt på nytt med användningen som lagrats efter att den "
                "slutfördes, minus det som dess slutliga körning fakturerade: 0,032258 st, 10,00 SEK",
            ),
        ),
    ]
