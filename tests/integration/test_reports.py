"""`chargeback report sla|budget` on both ClickHouse backends: ticket events written by the stream
worker's sink, figures worked out by hand (see tests/unit/test_reports_sla.py for the rules)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

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
    priced = service.create_run(BillingStore(clickhouse), catalogue, "0" * 64, Period(2026, 10))
    service.finalize_run(BillingStore(clickhouse), priced.run.run_id, catalogue)
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


def test_run_report_compares_with_the_previous_months_final_run(
    clickhouse: ClickHouse, clickhouse_url: str, tmp_path: Path
) -> None:
    catalogue_file = seed(clickhouse, tmp_path)
    catalogue = load_catalogue(catalogue_file)
    october = service.create_run(BillingStore(clickhouse), catalogue, "0" * 64, Period(2026, 10)).run
    service.finalize_run(BillingStore(clickhouse), october.run_id, catalogue)
    november = service.create_run(BillingStore(clickhouse), catalogue, "0" * 64, Period(2026, 11)).run
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
    page = (out / f"{november.run_id}.html").read_text()
    assert f"Against run {october.run_id} (final) of 2026-10." in page
    # 2183's tickets: 3 in October (285.00), 1 in November (95.00): -190.00, -66.7 %
    assert (
        "<td>2183</td><td>ticket-incident</td><td class=n>285.00</td><td class=n>95.00</td>"
        "<td>-190.00 (-66.7%)</td>" in page
    )
    assert "DRAFT: this run is not final" in page


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
