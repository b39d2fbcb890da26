"""`chargeback report budget --by member` for the Vesterålen deployment on both ClickHouse
backends: a finalised October run against a yearly budget per member, in bokmål with Norwegian
amounts in the table and the page, plain amounts in JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from billing_jobs import service
from billing_jobs.store import BillingStore
from chargeback.clickhouse import ClickHouse
from chargeback.period import Period
from chargeback_cli.main import cli
from tests.integration.test_saft_export import CATALOGUE, CATALOGUE_FILE, store_usage

pytestmark = pytest.mark.integration
# After every month these tests bill has ended (in Europe/Stockholm).
LATER = datetime(2027, 3, 1, tzinfo=UTC)
NBSP = "\u00a0"
BUDGETS = """\
year: 2026
budgets:
  "1870":
    {base-offering: "540000.00", soc-shared: "850000.00", fagsystemer: "600000.00", pc-standard: "12000.00"}
  "1871": {base-offering: "540000.00", soc-shared: "360000.00", fagsystemer: "280000.00"}
"""


def test_budget_per_member_in_bokmaal(clickhouse: ClickHouse, clickhouse_url: str, tmp_path: Path) -> None:
    store_usage(clickhouse)
    store = BillingStore(clickhouse)
    run = service.create_run(store, CATALOGUE, "0" * 64, Period(2026, 10), now=LATER).run
    service.finalize_run(store, run.run_id, CATALOGUE, now=LATER, accept_gaps=True)
    budgets = tmp_path / "budsjett.yaml"
    budgets.write_text(BUDGETS, encoding="utf-8")
    env = {
        "CHARGEBACK_CLICKHOUSE_URL": clickhouse_url,
        "CHARGEBACK_CLICKHOUSE_DATABASE": clickhouse.database,
        "CHARGEBACK_CATALOGUE": str(CATALOGUE_FILE),
    }
    args = ["report", "budget", "--budgets", str(budgets), "--period", "2026-10", "--by", "member"]
    as_json = CliRunner().invoke(cli, [*args, "--format", "json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    sortland = next(d for d in json.loads(as_json.output) if d["municipality"] == "1870")
    # October, the only final month: 45 000.00 + 71 311.74 + 51 785.71 + 3 PCs 795.00 + 2 tickets
    # 240.00 = 169 132.45; forecast x 12 = 2 029 589.40 against 2 002 000.00: 27 589.40 over (1.4 %).
    assert sortland == {
        "year": 2026,
        "through": "2026-10",
        "municipality": "1870",
        "budget": "2002000.00",
        "actual": "169132.45",
        "forecast": "2029589.40",
        "variance": "27589.40",
        "variance_share": "0.014",
    }
    table = CliRunner().invoke(cli, [*args, "--format", "table"], env=env)
    assert table.exit_code == 0, table.output
    assert "Årsbudsjett" in table.output and "Prognose for året" in table.output
    assert f"2{NBSP}029{NBSP}589,40{NBSP}kr" in table.output and f"+1,4{NBSP}%" in table.output
    page = tmp_path / "budsjett.html"
    html = CliRunner().invoke(cli, [*args, "--format", "html", "--output", str(page)], env=env)
    assert html.exit_code == 0, html.output
    text = page.read_text(encoding="utf-8")
    assert '<html lang="nb">' in text and "<td>1870 Sortland</td>" in text
    assert f"<td class='n missed' title='over budsjett'>27{NBSP}589,40{NBSP}kr</td>" in text
