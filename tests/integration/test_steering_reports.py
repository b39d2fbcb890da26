"""`chargeback report target|per-inhabitant|alerts` and the view `v_cost_per_inhabitant` on both
ClickHouse backends: usage events written by the stream worker's sink, September and October 2026
billed and finalised by the billing service (a late September ticket corrected in October's run),
and every figure worked out by hand (the same as tests/unit/test_reports_target.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from billing_jobs import service
from billing_jobs.store import BillingStore
from chargeback.catalogue import Catalogue, load_catalogue
from chargeback.clickhouse import ClickHouse
from chargeback.events import Known
from chargeback.period import Period
from chargeback_cli.main import cli
from streams.sink import Record, UsageSink
from warehouse.migrations import sync_catalogue

pytestmark = pytest.mark.integration
# After every month these tests bill has ended (in Europe/Stockholm).
LATER = datetime(2027, 3, 1, tzinfo=UTC)
D = Decimal

CATALOGUE = """\
currency: SEK
timezone: Europe/Stockholm
municipalities:
  - {code: "2183", name: Bollnäs, inhabitants: 26500}
  - {code: "2184", name: Hudiksvall, inhabitants: 37800}
services:
  - {id: base-offering, name: Basutbud, meter: count, unit: mån, vat_rate: "0.25", account: "3040"}
  - {id: ticket-incident, name: Ärende, meter: count, unit: st, vat_rate: "0.25", account: "3043"}
  - {id: ai-assistant, name: AI-assistent, meter: count, unit: st, vat_rate: "0.25", account: "3046",
     introduced: 2025-03-01}
  - {id: e-archive, name: E-arkiv, meter: count, unit: st, vat_rate: "0.25", account: "3047"}
price_lists:
  - version: "2026"
    valid_from: 2026-01-01
    prices:
      base-offering: {model: flat, amount: "800000.00"}
      ticket-incident: {model: per_unit, unit_price: "95.00"}
      ai-assistant: {model: per_unit, unit_price: "1000.00"}
      e-archive: {model: per_unit, unit_price: "200.00"}
"""
BASELINE = """\
baseline_year: 2022
index:
  2022: "1.000"
  2026: "1.153"
members:
  "2183": "10000000.00"
  "2184": "12000000.00"
new_services: [e-archive]
"""
# (municipality, source, service, subject, quantity, day) at 10:00 UTC
SEPTEMBER = [
    *[("2183", "tickets", "ticket-incident", f"T{n}", "1", "2026-09-14") for n in range(1, 5)],
    ("2183", "ai", "ai-assistant", "A1", "1", "2026-09-15"),
    ("2183", "ai", "ai-assistant", "A2", "1", "2026-09-15"),
]
LATE_SEPTEMBER = [("2183", "tickets", "ticket-incident", "T5", "1", "2026-09-30")]
OCTOBER = [
    ("2183", "tickets", "ticket-incident", "T6", "1", "2026-10-20"),
    ("2183", "tickets", "ticket-incident", "T7", "1", "2026-10-26"),  # a Monday: silent 27-30
    ("2184", "tickets", "ticket-incident", "U1", "10", "2026-10-30"),
    ("2184", "archive", "e-archive", "E1", "5", "2026-10-30"),
]


def send(
    ch: ClickHouse, catalogue: Catalogue, events: list[tuple[str, str, str, str, str, str]], first: int = 0
) -> None:
    """Events as the stream worker stores them; ``first``: the first Kafka offset (a worker skips
    offsets it has stored)."""
    records = []
    for offset, (municipality, source, service_id, subject, quantity, day) in enumerate(events):
        body = {
            "specversion": "1.0",
            "id": f"{municipality}-{source}-{subject}",
            "source": f"urn:chargeback:collector:{municipality}:{source}",
            "type": "chargeback.usage.v1",
            "time": f"{day}T10:00:00Z",
            "data": {
                "municipality": municipality,
                "cost_centre": "BUF",
                "service": service_id,
                "subject": subject,
                "quantity": quantity,
            },
        }
        records.append(Record("usage", 0, first + offset, municipality.encode(), json.dumps(body).encode()))
    sink = UsageSink(
        ch,
        known=Known(set(catalogue.municipality_codes), set(catalogue.service_ids)),
        tz=ZoneInfo("Europe/Stockholm"),
        clock=lambda: datetime(2026, 11, 3, tzinfo=UTC),
    )
    sink.store(sink.prepare(records))


def bill(ch: ClickHouse, catalogue: Catalogue, period: Period) -> None:
    priced = service.create_run(BillingStore(ch), catalogue, "0" * 64, period, now=LATER)
    service.finalize_run(BillingStore(ch), priced.run.run_id, catalogue, now=LATER, accept_gaps=True)


@pytest.fixture
def billed(clickhouse: ClickHouse, tmp_path: Path) -> Path:
    """September and October 2026 final; September corrected by a late ticket in October's run."""
    path = tmp_path / "catalogue.yaml"
    path.write_text(CATALOGUE)
    catalogue = load_catalogue(path)
    sync_catalogue(clickhouse, catalogue)
    send(clickhouse, catalogue, SEPTEMBER)
    bill(clickhouse, catalogue, Period(2026, 9))
    send(clickhouse, catalogue, LATE_SEPTEMBER + OCTOBER, first=len(SEPTEMBER))
    bill(clickhouse, catalogue, Period(2026, 10))
    return path


def invoke(ch: ClickHouse, url: str, catalogue: Path, *args: str, code: int = 0) -> str:
    env = {"CHARGEBACK_CLICKHOUSE_URL": url, "CHARGEBACK_CLICKHOUSE_DATABASE": ch.database}
    result = CliRunner().invoke(cli, ["report", "--catalogue", str(catalogue), *args], env=env)
    assert result.exit_code == code, result.output
    return result.stdout


def test_target_report(clickhouse: ClickHouse, clickhouse_url: str, billed: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(BASELINE)
    args = ("target", "--baseline", str(baseline), "--year", "2026")
    (report,) = json.loads(invoke(clickhouse, clickhouse_url, billed, *args, "--format", "json"))
    assert report["new_services"] == ["ai-assistant", "e-archive"]
    assert report["new_services_actual"] == {"ai-assistant": "2000.00", "e-archive": "1000.00"}
    assert report["members"] == [
        # 2183: base 2 × 800 000,00 + tickets 475,00 (Sept. 4 + 1 corrected in October's run) + 190,00
        # = 1 600 665,00 over 2 months: × 6 = 9 603 990,00; target 10 000 000,00 × 1,153 × 0,9 =
        # 10 377 000,00; gap −773 010,00 = −7,449… %
        {
            "municipality": "2183",
            "name": "Bollnäs",
            "baseline": "10000000.00",
            "indexed_baseline": "11530000.00",
            "target": "10377000.00",
            "actual": "1600665.00",
            "new_services": "2000.00",
            "months": 2,
            "forecast": "9603990.00",
            "gap": "-773010.00",
            "gap_pct": "-7.4",
        },
        # 2184: 1 600 000,00 + 10 tickets 950,00 = 1 600 950,00 (e-archive 1 000,00 apart);
        # forecast 9 605 700,00; target 12 000 000,00 × 1,153 × 0,9 = 12 452 400,00
        {
            "municipality": "2184",
            "name": "Hudiksvall",
            "baseline": "12000000.00",
            "indexed_baseline": "13836000.00",
            "target": "12452400.00",
            "actual": "1600950.00",
            "new_services": "1000.00",
            "months": 2,
            "forecast": "9605700.00",
            "gap": "-2846700.00",
            "gap_pct": "-22.9",
        },
    ]
    # −3 619 710,00 / 22 829 400,00 = −15,855… %
    assert report["total"] == {
        "municipality": "total",
        "name": None,
        "baseline": "22000000.00",
        "indexed_baseline": "25366000.00",
        "target": "22829400.00",
        "actual": "3201615.00",
        "new_services": "3000.00",
        "months": 2,
        "forecast": "19209690.00",
        "gap": "-3619710.00",
        "gap_pct": "-15.9",
    }
    table = invoke(clickhouse, clickhouse_url, billed, *args).splitlines()
    assert table[-1].split() == [
        "total", "22000000.00", "25366000.00", "22829400.00", "3201615.00", "3000.00", "2", "19209690.00",
        "-3619710.00", "-15.9",
    ]  # fmt: skip
    csv_text = invoke(clickhouse, clickhouse_url, billed, *args, "--format", "csv").splitlines()
    assert csv_text[0] == (
        "municipality,name,baseline,indexed_baseline,target,actual,new_services,months,forecast,gap,gap_pct"
    )
    assert csv_text[1] == (
        "2183,Bollnäs,10000000.00,11530000.00,10377000.00,1600665.00,2000.00,2,9603990.00,-773010.00,-7.4"
    )
    page = invoke(clickhouse, clickhouse_url, billed, *args, "--format", "html")
    assert "<td>Total</td><td class=n>22000000.00</td>" in page


def test_target_report_refuses_a_year_not_after_the_baseline(
    clickhouse: ClickHouse, clickhouse_url: str, billed: Path, tmp_path: Path
) -> None:
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(BASELINE)
    env = {"CHARGEBACK_CLICKHOUSE_URL": clickhouse_url, "CHARGEBACK_CLICKHOUSE_DATABASE": clickhouse.database}
    args = ["report", "--catalogue", str(billed), "target", "--baseline", str(baseline), "--year", "2022"]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 2 and "2022 is not after the baseline year 2022" in result.output


def test_cost_per_inhabitant_report_and_view(
    clickhouse: ClickHouse, clickhouse_url: str, billed: Path
) -> None:
    rows = json.loads(
        invoke(clickhouse, clickhouse_url, billed, "per-inhabitant", "--year", "2026", "--format", "json")
    )
    by_key = {(r["period"], r["municipality"], r["service"]): r for r in rows}
    # October: 2183 800 190,00 / 26 500 = 30,1958… ; 2184 801 950,00 / 37 800 = 21,2156… ;
    # the organisation 1 602 140,00 / 64 300 = 24,9166…
    assert by_key[("2026-10", "2183", "*")] == {
        "period": "2026-10",
        "municipality": "2183",
        "name": "Bollnäs",
        "service": "*",
        "cost": "800190.00",
        "inhabitants": 26500,
        "per_inhabitant": "30.20",
        "organisation_cost": "1602140.00",
        "organisation_inhabitants": 64300,
        "organisation_per_inhabitant": "24.92",
    }
    assert by_key[("2026-10", "2184", "*")]["per_inhabitant"] == "21.22"
    # The year: 1 602 665,00 / 26 500 = 60,4779… ; 1 601 950,00 / 37 800 = 42,3796… ;
    # 3 204 615,00 / 64 300 = 49,8385…
    assert [
        (by_key[("2026", m, "*")]["per_inhabitant"], by_key[("2026", m, "*")]["organisation_per_inhabitant"])
        for m in ("2183", "2184")
    ] == [("60.48", "49.84"), ("42.38", "49.84")]
    # September's tickets: 475,00 (with the correction) / 26 500 = 0,0179… ; 2184 none: 0,00
    assert by_key[("2026-09", "2184", "ticket-incident")]["per_inhabitant"] == "0.00"
    assert by_key[("2026-09", "2183", "ticket-incident")]["cost"] == "475.00"
    only = invoke(
        clickhouse, clickhouse_url, billed, "per-inhabitant", "--period", "2026-10",
        "--service", "*", "--format", "csv",
    ).splitlines()  # fmt: skip
    assert only == [
        "period,municipality,name,service,cost,inhabitants,per_inhabitant,organisation_per_inhabitant",
        "2026-10,2183,Bollnäs,*,800190.00,26500,30.20,24.92",
        "2026-10,2184,Hudiksvall,*,801950.00,37800,21.22,24.92",
    ]
    view = clickhouse.execute(
        "SELECT period, municipality, name, service, cost, inhabitants, per_inhabitant, "
        "organisation_per_inhabitant FROM v_cost_per_inhabitant WHERE service IN ('*', 'ticket-incident') "
        "ORDER BY period, municipality, service"
    )
    # September: 802 475,00 / 26 500 = 30,282… ; 800 000,00 / 37 800 = 21,164… ; the organisation
    # 1 602 475,00 / 64 300 = 24,921… ; tickets 475,00 / 26 500 = 0,0179… and / 64 300 = 0,0073…
    assert [(p, m, n, s, D(c), i, D(x), D(o)) for p, m, n, s, c, i, x, o in view] == [
        ("2026-09", "2183", "Bollnäs", "*", D("802475.00"), 26500, D("30.28"), D("24.92")),
        ("2026-09", "2183", "Bollnäs", "ticket-incident", D("475.00"), 26500, D("0.02"), D("0.01")),
        ("2026-09", "2184", "Hudiksvall", "*", D("800000.00"), 37800, D("21.16"), D("24.92")),
        ("2026-09", "2184", "Hudiksvall", "ticket-incident", D("0"), 37800, D("0"), D("0.01")),
        ("2026-10", "2183", "Bollnäs", "*", D("800190.00"), 26500, D("30.20"), D("24.92")),
        ("2026-10", "2183", "Bollnäs", "ticket-incident", D("190.00"), 26500, D("0.01"), D("0.02")),
        ("2026-10", "2184", "Hudiksvall", "*", D("801950.00"), 37800, D("21.22"), D("24.92")),
        ("2026-10", "2184", "Hudiksvall", "ticket-incident", D("950.00"), 37800, D("0.03"), D("0.02")),
    ]
    assert clickhouse.execute("SELECT * FROM v_municipalities ORDER BY municipality") == [
        ("2183", "Bollnäs", 26500),
        ("2184", "Hudiksvall", 37800),
    ]


def test_alerts_exit_3_with_alerts_and_0_without(
    clickhouse: ClickHouse, clickhouse_url: str, billed: Path, tmp_path: Path
) -> None:
    documents = json.loads(
        invoke(
            clickhouse, clickhouse_url, billed, "alerts", "--period", "2026-10", "--format", "json", code=3
        )
    )
    assert [
        (d["kind"], d["municipality"], d.get("service") or d["source"], d.get("change_pct"),
         d.get("silent_working_days"))
        for d in documents
    ] == [
        ("change", "2183", "ai-assistant", "-100.0", None),  # 2 -> 0
        ("change", "2183", "ticket-incident", "-60.0", None),  # 5 (with the late one) -> 2
        ("change", "2184", "e-archive", None, None),  # new usage
        ("change", "2184", "ticket-incident", None, None),
        # the AI source's last events on Tuesday 15 September: 11 working days to 30 September,
        # 22 in October; the tickets' on Monday 26 October: 27-30 October
        ("silent", "2183", "urn:chargeback:collector:2183:ai", None, 33),
        ("silent", "2183", "urn:chargeback:collector:2183:tickets", None, 4),
    ]  # fmt: skip
    table = invoke(clickhouse, clickhouse_url, billed, "alerts", "--period", "2026-10", code=3)
    assert table.splitlines()[1] == "change  2183 ticket-incident: 5 → 2 (-60.0 %, beyond ±25 %)"
    textfile = tmp_path / "chargeback_alerts.prom"
    invoke(
        clickhouse, clickhouse_url, billed, "alerts", "--period", "2026-10", "--format", "prometheus",
        "--output", str(textfile), code=3,
    )  # fmt: skip
    assert 'chargeback_usage_alerts{period="2026-10",kind="change"} 4\n' in textfile.read_text()
    assert (
        'chargeback_source_silent_workdays{period="2026-10",municipality="2183",'
        'source="urn:chargeback:collector:2183:tickets"} 4\n'
    ) in textfile.read_text()
    quiet = invoke(clickhouse, clickhouse_url, billed, "alerts", "--period", "2026-08")
    assert quiet == "no usage alerts for 2026-08\n"
    assert (
        invoke(clickhouse, clickhouse_url, billed, "alerts", "--period", "2026-08", "--format", "json")
        == "[]\n"
    )


def test_alerts_exit_code_of_the_command_line_process(
    clickhouse: ClickHouse, clickhouse_url: str, billed: Path
) -> None:
    if clickhouse.backend != "server":
        pytest.skip("a second process cannot open this process's chDB folder")
    env = {
        **os.environ,
        "CHARGEBACK_CLICKHOUSE_URL": clickhouse_url,
        "CHARGEBACK_CLICKHOUSE_DATABASE": clickhouse.database,
        "CHARGEBACK_CATALOGUE": str(billed),
    }
    command = [sys.executable, "-m", "chargeback_cli", "report", "alerts", "--format", "json", "--period"]

    def alerts(period: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, period], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    some = alerts("2026-10")
    assert some.returncode == 3, some.stderr
    assert len(json.loads(some.stdout)) == 6
    none = alerts("2026-08")
    assert (none.returncode, none.stdout) == (0, "[]\n")
    later = alerts("2099-01")
    assert later.returncode == 2 and "2099-01 has not begun" in later.stderr


def test_alerts_in_the_run_summary_and_in_the_member_reports(
    clickhouse: ClickHouse, clickhouse_url: str, tmp_path: Path
) -> None:
    """October priced by `billing run` (not finalised): its alerts on stderr, then each member's
    own alerts in its report's data-quality box and every member's on the overview."""
    path = tmp_path / "catalogue.yaml"
    path.write_text(CATALOGUE)
    catalogue = load_catalogue(path)
    sync_catalogue(clickhouse, catalogue)
    send(clickhouse, catalogue, SEPTEMBER)
    bill(clickhouse, catalogue, Period(2026, 9))
    send(clickhouse, catalogue, LATE_SEPTEMBER + OCTOBER, first=len(SEPTEMBER))
    env = {"CHARGEBACK_CLICKHOUSE_URL": clickhouse_url, "CHARGEBACK_CLICKHOUSE_DATABASE": clickhouse.database}

    def billing(*args: str) -> Result:
        result = CliRunner().invoke(cli, ["billing", "--catalogue", str(path), *args], env=env)
        assert result.exit_code == 0, result.output
        return result

    tickets = "2183 ticket-incident: 5 → 2 (-60.0 %, beyond ±25 %)"  # 4 + the late one, then 2
    alerts_2183 = [
        "2183 ai-assistant: 2 → 0 (-100.0 %, beyond ±25 %)",
        tickets,
        # the AI source's last events on Tuesday 15 September: 11 + 22 working days; the tickets'
        # on Monday 26 October: 27-30 October
        "urn:chargeback:collector:2183:ai (2183) has sent no events for 33 working days since "
        "2026-09-15 (more than 3)",
        "urn:chargeback:collector:2183:tickets (2183) has sent no events for 4 working days since "
        "2026-10-26 (more than 3)",
    ]
    alerts_2184 = [
        "2184 e-archive: 0 → 5 (new usage, beyond ±25 %)",
        "2184 ticket-incident: 0 → 10 (new usage, beyond ±25 %)",
    ]
    priced = billing("run", "--period", "2026-10")
    shown = [line for line in priced.stderr.splitlines() if line.startswith("alert: ")]
    assert shown == [f"alert: {a}" for a in [alerts_2183[0], tickets, *alerts_2184, *alerts_2183[2:]]]
    run_id = priced.stdout.split()[1]
    # A run of one member shows only that member's alerts.
    one = billing("run", "--period", "2026-10", "--municipality", "2184")
    assert [x for x in one.stderr.splitlines() if x.startswith("alert: ")] == [
        f"alert: {a}" for a in alerts_2184
    ]
    out = tmp_path / "report"
    billing("export", run_id, "--format", "report", "--to", str(out))
    bollnas = (out / f"{run_id}.2183.html").read_text()
    hudiksvall = (out / f"{run_id}.2184.html").read_text()
    overview = (out / f"{run_id}.html").read_text()
    # The pages say the same alerts in Swedish, with the services' names.
    beyond = "mer än ±25\u00a0% mot föregående månad"
    page_2183 = [
        f"AI-assistent: 2 → 0 (−100,0\u00a0%, {beyond})",
        f"Ärende: 5 → 2 (−60,0\u00a0%, {beyond})",
        "ai har inte skickat några händelser på 33 arbetsdagar sedan 15 september 2026 (gränsen är 3)",
        "tickets har inte skickat några händelser på 4 arbetsdagar sedan 26 oktober 2026 (gränsen är 3)",
    ]
    page_2184 = [f"E-arkiv: 0 → 5 (ny användning, {beyond})", f"Ärende: 0 → 10 (ny användning, {beyond})"]
    assert (
        'tysta källor): <ul class="alerts">' + "".join(f"<li>{a}</li>" for a in page_2183) + "</ul></li>"
    ) in bollnas
    assert (
        'tysta källor): <ul class="alerts">' + "".join(f"<li>{a}</li>" for a in page_2184) + "</ul></li>"
    ) in hudiksvall
    assert page_2183[1] not in hudiksvall and "E-arkiv: 0" not in bollnas
    # --json: standard output is the run, standard error the progress; the alerts are in
    # `report alerts --format json`.
    quiet = billing("run", "--period", "2026-10", "--json")
    assert not [x for x in quiet.stderr.splitlines() if not x.startswith("[")]
    assert all(f"<li>2183 {a}</li>" in overview for a in page_2183)
    assert all(f"<li>2184 {a}</li>" in overview for a in page_2184)
    # Before the month is final, finalize shows the same alerts under its totals (they do not refuse).
    final = billing("finalize", run_id, "--yes", "--accept-gaps")
    assert [x for x in final.stdout.splitlines() if x.startswith("alert: ")] == [
        f"alert: {a}" for a in [alerts_2183[0], tickets, *alerts_2184, *alerts_2183[2:]]
    ]
    assert final.stdout.splitlines()[-1] == f"run {run_id} is final"
