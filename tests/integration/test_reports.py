"""`chargeback report sla|budget` on both ClickHouse backends: ticket events written by the stream
worker's sink, figures worked out by hand (see tests/unit/test_reports_sla.py for the rules)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from openpyxl import load_workbook

from billing_jobs import service
from billing_jobs.reports.budget import BudgetError
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

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SERVICE_LEVELS = """
service_levels:
  opens: "08:00"
  closes: "16:30"
  phone_answer_seconds: 60
  first_contact_resolution: "0.70"
  first_contact_minutes: 30
  resolution_hours: {P1: 4, P2: 8}
"""

# (municipality, number, channel, priority, opened, first response, closed) in UTC; Stockholm is
# +02:00 until 25 October 2026. T9 closed in November: not in October's report.
TICKETS = [
    ("2183", "T1", "phone", "P3", "2026-10-05T06:00:00Z", "2026-10-05T06:00:45Z", "2026-10-05T06:20:00Z"),
    ("2183", "T2", "phone", "P2", "2026-10-05T14:29:00Z", "2026-10-06T06:01:15Z", "2026-10-06T08:00:00Z"),
    ("2183", "T3", "e-mail", "P3", "2026-10-10T08:00:00Z", "2026-10-12T07:00:00Z", "2026-10-12T07:10:00Z"),
    ("2184", "U1", "e-mail", "P2", "2026-10-23T14:00:00Z", None, "2026-10-26T08:00:00Z"),
    ("2183", "T9", "phone", "P3", "2026-11-02T08:00:00Z", "2026-11-02T08:00:30Z", "2026-11-02T08:05:00Z"),
]


def seed(ch: ClickHouse, tmp_path: Path) -> Path:
    catalogue_file = tmp_path / "catalogue.yaml"
    catalogue_file.write_text((FIXTURES / "catalogue.yaml").read_text() + SERVICE_LEVELS)
    catalogue = load_catalogue(catalogue_file)
    records = []
    for offset, (municipality, number, channel, priority, opened, answered, closed) in enumerate(TICKETS):
        data = {
            "municipality": municipality,
            "cost_centre": "BUF",
            "service": "ticket-incident",
            "subject": number,
            "quantity": "1",
            "channel": channel,
            "priority": priority,
            "opened": opened,
            "closed": closed,
            **({"first_response": answered} if answered else {}),
        }
        body = {
            "specversion": "1.0",
            "id": f"{municipality}-tickets-{number}",
            "source": f"urn:chargeback:collector:{municipality}:tickets",
            "type": "chargeback.usage.v1",
            "time": closed,
            "data": data,
        }
        records.append(Record("usage", 0, offset, municipality.encode(), json.dumps(body).encode()))
    sink = UsageSink(
        ch,
        known=Known(set(catalogue.municipality_codes), set(catalogue.service_ids)),
        tz=ZoneInfo("Europe/Stockholm"),
        clock=lambda: datetime(2026, 11, 3, tzinfo=UTC),
    )
    sink.store(sink.prepare(records))
    return catalogue_file


def invoke(ch: ClickHouse, url: str, catalogue: Path, *args: str) -> str:
    env = {"CHARGEBACK_CLICKHOUSE_URL": url, "CHARGEBACK_CLICKHOUSE_DATABASE": ch.database}
    result = CliRunner().invoke(cli, ["report", "--catalogue", str(catalogue), *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_sla_report_from_ticket_events(clickhouse: ClickHouse, clickhouse_url: str, tmp_path: Path) -> None:
    catalogue = seed(clickhouse, tmp_path)
    documents = json.loads(
        invoke(clickhouse, clickhouse_url, catalogue, "sla", "--period", "2026-10", "--format", "json")
    )
    assert documents[0] == {
        "period": "2026-10",
        "municipality": "2183",
        "tickets": 3,
        "by_channel": {"e-mail": 1, "phone": 2},
        "by_priority": {"P2": 1, "P3": 2},
        "opened_outside_hours": 1,
        "phone_answered": 2,
        "phone_answer_avg_s": "90.0",
        "phone_answer_target_s": 60,
        "phone_answer_met": False,
        "first_response_avg_min": "21.0",
        "resolution_avg_h": "1.2",  # (1,200 + 7,260 + 4,200) / 3 = 4,220 s
        "resolved_first_contact": 2,
        "first_contact_pct": "66.7",
        "first_contact_target_pct": "70.0",
        "first_contact_met": False,
        "resolution_within_target": {
            "P1": {"within": 0, "of": 0, "target_hours": 4},
            "P2": {"within": 1, "of": 1, "target_hours": 8},
        },
    }
    assert documents[1]["municipality"] == "2184" and documents[1]["resolution_avg_h"] == "1.5"
    table = invoke(
        clickhouse, clickhouse_url, catalogue, "sla", "--period", "2026-10", "--municipality", "2184"
    )
    assert table.splitlines()[1].split() == [
        "2184", "1", "0", "1", "0", "0", "60", "1.5", "0.0", "70.0", "no", "0/0", "1/1"
    ]  # fmt: skip
    rows = list(
        csv.DictReader(
            io.StringIO(
                invoke(clickhouse, clickhouse_url, catalogue, "sla", "--period", "2026-11", "--format", "csv")
            )
        )
    )
    assert [
        (r["municipality"], r["tickets"], r["phone_answer_avg_s"], r["phone_answer_met"]) for r in rows
    ] == [("2183", "1", "30.0", "yes")]


def test_budget_report_through_a_period(clickhouse: ClickHouse, clickhouse_url: str, tmp_path: Path) -> None:
    catalogue_file = seed(clickhouse, tmp_path)
    catalogue = load_catalogue(catalogue_file)
    sync_catalogue(clickhouse, catalogue)
    priced = service.create_run(BillingStore(clickhouse), catalogue, "0" * 64, Period(2026, 10), now=LATER)
    service.finalize_run(BillingStore(clickhouse), priced.run.run_id, catalogue, now=LATER, accept_gaps=True)
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text('year: 2026\nbudgets:\n  "2183": {ticket-incident: "3000.00"}\n')
    rows = list(
        csv.DictReader(
            io.StringIO(
                invoke(
                    clickhouse,
                    clickhouse_url,
                    catalogue_file,
                    "budget",
                    "--budgets",
                    str(budgets),
                    "--period",
                    "2026-10",
                    "--format",
                    "csv",
                )
            )
        )
    )
    # 3 October tickets at 95.00 (the first tier) = 285.00; one invoiced month: x 12 = 3420.00
    assert {"municipality": "2183", "service": "ticket-incident", "budget": "3000.00", "actual": "285.00",
            "forecast": "3420.00", "variance": "420.00"} in rows  # fmt: skip
    env = {"CHARGEBACK_CLICKHOUSE_URL": clickhouse_url, "CHARGEBACK_CLICKHOUSE_DATABASE": clickhouse.database}
    wrong_year = CliRunner().invoke(
        cli,
        [
            "report",
            "--catalogue",
            str(catalogue_file),
            "budget",
            "--budgets",
            str(budgets),
            "--period",
            "2027-01",
        ],
        env=env,
    )
    assert isinstance(wrong_year.exception, BudgetError)  # the command line prints it as one sentence
    assert str(wrong_year.exception) == f"{budgets}: the budget is for 2026, the period 2027-01 is not"


def event(number: str, municipality: str, service: str, day: str, cost_centre: str | None = None) -> bytes:
    data = {"municipality": municipality, "service": service, "subject": number, "quantity": "1"}
    if cost_centre is not None:
        data["cost_centre"] = cost_centre
    body = {
        "specversion": "1.0",
        "id": f"{municipality}-{service}-{number}-{day}",
        "source": f"urn:chargeback:collector:{municipality}:{service}",
        "type": "chargeback.usage.v1",
        "time": f"{day}T09:00:00Z",
        "data": data,
    }
    return json.dumps(body).encode()


def test_member_reports_from_the_warehouse(
    clickhouse: ClickHouse, clickhouse_url: str, tmp_path: Path
) -> None:
    catalogue_file = seed(clickhouse, tmp_path)
    catalogue = load_catalogue(catalogue_file)
    known = Known(set(catalogue.municipality_codes), set(catalogue.service_ids))
    tz = ZoneInfo("Europe/Stockholm")
    november_3 = UsageSink(clickhouse, known=known, tz=tz, clock=lambda: datetime(2026, 11, 3, tzinfo=UTC))
    # A device without cost centre (UNALLOCATED) on 2 November, and a message for an unknown service.
    november_3.store(
        november_3.prepare(
            [
                Record("usage", 0, 10, b"2183", event("PC1", "2183", "pc-standard", "2026-11-02")),
                Record("usage", 0, 11, b"2183", event("X1", "2183", "nope", "2026-11-02", "BUF")),
            ]
        )
    )
    # Billed now (the real time): the late ticket below is stored after October was finalised.
    now = datetime.now(UTC)
    october = service.create_run(BillingStore(clickhouse), catalogue, "0" * 64, Period(2026, 10), now=now).run
    service.finalize_run(BillingStore(clickhouse), october.run_id, catalogue, now=now, accept_gaps=True)
    # A ticket closed on 20 October arrives after October was invoiced: late usage.
    later = UsageSink(clickhouse, known=known, tz=tz, clock=lambda: datetime.now(UTC) + timedelta(minutes=5))
    later.store(later.prepare([Record("usage", 0, 12, b"2183", event("T7", "2183", "ticket-incident",
                                                                      "2026-10-20", "BUF"))]))  # fmt: skip
    november = service.create_run(
        BillingStore(clickhouse), catalogue, "0" * 64, Period(2026, 11), now=datetime.now(UTC)
    ).run
    env = {
        "CHARGEBACK_CLICKHOUSE_URL": clickhouse_url,
        "CHARGEBACK_CLICKHOUSE_DATABASE": clickhouse.database,
        "CHARGEBACK_CATALOGUE": str(catalogue_file),
    }
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["billing", "export", november.run_id, "--format", "report", "--to", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == [
        str(out / f"{november.run_id}.html"),
        str(out / f"{november.run_id}.2121.html"),
        str(out / f"{november.run_id}.2132.html"),
    ]
    page = (out / f"{november.run_id}.html").read_text()
    assert f"Jämfört med körning {october.run_id} (slutlig) för oktober 2026." in page
    # 2183's tickets: 3 in October (285,00 kr), 1 in November (95,00 kr): -190,00 kr, -66,7 %
    assert (
        '<tr><td>2183 Bollnäs</td><td>Ärende incident</td><td class="n">285,00\u00a0kr</td>'
        '<td class="n">95,00\u00a0kr</td><td class="n">-190,00\u00a0kr (-66,7\u00a0%)</td></tr>'
    ) in page
    assert "UTKAST: körningen är inte slutlig och kan ändras." in page
    bollnas = (out / f"{november.run_id}.2183.html").read_text()
    # November for 2183: 1 ticket 95,00 (BUF); 1 device-day ÷ 30 = 0,033333 × 310 = 10,33
    # (UNALLOCATED); Basutbud 125 000,00; SOC 100 000,00 × 26 500 ÷ 129 400 = 20 479,13; and
    # October's late ticket: 4 tickets 380,00 less 285,00 invoiced = 95,00. Sum 145 679,46 kr.
    assert '<span class="value" id="excl">145\u00a0679,46\u00a0kr</span>' in bollnas
    assert (
        '<td class="why">Rättelse av oktober 2026: sen användning 20 oktober 2026 (1 händelse)</td>'
        in bollnas
    )
    assert '<td class="why">0,03 st = 1 enhetsdagar ÷ 30 dagar × 310,00\u00a0kr</td>' in bollnas
    # The box: 10,33 of the usage lines' 10,33 + 95,00 + 95,00 = 200,33 kr is UNALLOCATED (5,2 %);
    # the source without cost centre, the dead letter, and the days each source sent nothing.
    assert "(utan kostnadsställe): <b>5,2\u00a0%</b> (10,33\u00a0kr)</li>" in bollnas
    assert "per källa: pc-standard 1 st</li>" in bollnas
    assert "under månaden: <b>1</b> (unknown service: nope: 1)</li>" in bollnas
    # A draft counts the days up to the day it was made (all 30 once November is over).
    last = min(30, november.changed_at.astimezone(ZoneInfo("Europe/Stockholm")).day)
    missing = f"{last - 1} av {last} dagar (1 november 2026, 3–{last} november 2026)"
    # The late ticket's source sent nothing in November: named all the same.
    silent = f"ticket-incident {last} av {last} dagar (1–{last} november 2026)"
    assert f"per källa: pc-standard {missing}; {silent}; tickets {missing}</li>" in bollnas

    def export(*args: str) -> Result:
        return CliRunner().invoke(
            cli, ["billing", "export", november.run_id, "--to", str(out), *args], env=env
        )

    # Excel-ready files of the same run, and options given to the wrong format.
    assert export("--format", "xlsx").exit_code == 0
    assert load_workbook(out / f"{november.run_id}.xlsx")["lines"]["K2"].data_type == "n"
    assert export("--format", "csv", "--dialect", "excel-sv").exit_code == 0
    assert (
        (out / f"{november.run_id}.csv").read_bytes().startswith("\ufeffrun_id;period;municipality;".encode())
    )
    wrong = export("--format", "json", "--dialect", "excel-sv")
    assert (
        wrong.exit_code == 1 and "--dialect excel-sv is for --format csv, not --format json" in wrong.output
    )
    wrong = export("--format", "csv", "--pdf")
    assert wrong.exit_code == 1 and "--pdf is for --format report, not --format csv" in wrong.output
    printed = export("--format", "report", "--pdf")
    assert printed.exit_code == 0, printed.output
    assert (out / f"{november.run_id}.2183.pdf").read_bytes().startswith(b"%PDF-")


def test_billing_run_shows_its_progress_on_stderr(
    clickhouse: ClickHouse, clickhouse_url: str, tmp_path: Path
) -> None:
    catalogue_file = seed(clickhouse, tmp_path)
    env = {
        "CHARGEBACK_CLICKHOUSE_URL": clickhouse_url,
        "CHARGEBACK_CLICKHOUSE_DATABASE": clickhouse.database,
        "CHARGEBACK_CATALOGUE": str(catalogue_file),
    }
    first = CliRunner().invoke(cli, ["billing", "run", "--period", "2026-10", "--json"], env=env)
    assert first.exit_code == 0, first.output
    steps = [line.split("] ", 1)[1] for line in first.stderr.splitlines()]
    run_id = json.loads(first.stdout)["run_id"]  # standard output stays machine-readable
    # 2183: BUF ticket-incident; 2184: BUF ticket-incident (the October usage totals)
    assert steps[:2] == ["read 2 usage totals of 2026-10", "found 0 correction lines of finalised months"]
    assert steps[-1] == f"stored run {run_id}" and steps[2].startswith("priced ")
    again = CliRunner().invoke(cli, ["billing", "run", "--period", "2026-10", "--json"], env=env)
    assert again.stderr.splitlines()[-1].endswith(
        f"same usage and catalogue as run {run_id}: nothing to price"
    )
