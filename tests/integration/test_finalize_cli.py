"""``billing run`` and ``billing finalize`` as finance uses them: real processes on the ClickHouse
server, at chosen moments under Debian's ``faketime`` (month ends in the catalogue's time zone),
with the confirmation asked on a real terminal (a pseudo-terminal)."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chargeback.clickhouse import ClickHouse, connect
from chargeback.period import Period
from tests.integration.test_invoice_guards import LATER, NEW_TEXT, TEXT, computer_days, store_events, ticket
from warehouse.migrations import migrate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "tests" / "fixtures" / "catalogue.yaml"


@pytest.fixture
def server(
    clickhouse_server_url: str, clickhouse_server_database: str
) -> Iterator[tuple[ClickHouse, dict[str, str]]]:
    """A migrated database on the ClickHouse server, and the environment of a command using it."""
    ch = connect(clickhouse_server_url, clickhouse_server_database)
    migrate(ch)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGEBACK_")}
    env.update(
        CHARGEBACK_CLICKHOUSE_URL=clickhouse_server_url,
        CHARGEBACK_CLICKHOUSE_DATABASE=clickhouse_server_database,
        CHARGEBACK_CATALOGUE=str(CATALOGUE),
        PYTHONPATH=str(ROOT),
        TZ="UTC",
    )
    try:
        yield ch, env
    finally:
        ch.close()


def chargeback(
    env: dict[str, str], *args: str, at: str | None = None, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    """The command in its own process; with ``at`` (UTC) on a clock stopped at that moment
    (faketime's absolute form: ``@…`` would let the clock run on, and a start-up of a second or two
    would cross the boundary under test)."""
    cmd = [sys.executable, "-m", "chargeback_cli", *args]
    if at is not None:
        assert shutil.which("faketime"), (
            "faketime is missing: scripts/bootstrap --clickhouse-server installs it"
        )
        cmd = ["faketime", "-f", at, *cmd]
        env = {**env, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    return subprocess.run(cmd, env=env, stdin=stdin, capture_output=True, text=True, timeout=120, check=False)


def test_a_month_is_finalised_only_once_it_has_ended_in_stockholm(
    server: tuple[ClickHouse, dict[str, str]],
) -> None:
    ch, env = server
    november = Period(2026, 11)
    store_events(
        ch, computer_days("2183", "BUF", "pc1", november), stored_at=datetime(2026, 11, 30, 12, tzinfo=UTC)
    )
    # 2026-11-30 22:59:59 UTC is 23:59:59 CET: December has not begun, November has not ended.
    just_before = "2026-11-30 22:59:59"
    early = chargeback(env, "billing", "run", "--period", "2026-12", at=just_before)
    assert (early.returncode, early.stdout, early.stderr.splitlines()[-1]) == (
        1,
        "",
        "error: billing run of 2026-12 refused: 2026-12 has not begun in Europe/Stockholm (it begins "
        "2026-12-01 00:00 CET); a month can be run once it has begun",
    )
    preview = chargeback(
        env, "billing", "run", "--period", "2026-11", "--municipality", "2183", at=just_before
    )
    assert preview.returncode == 0, preview.stderr
    lines = preview.stdout.splitlines()
    run_id = lines[0].split()[1]
    assert lines[0] == f"run {run_id} (draft, created 2026-11-30 22:59 UTC)"
    assert lines[1] == (
        "preview: 2026-11 has not ended in Europe/Stockholm (it ends 2026-12-01 00:00 CET): this draft is a "
        "preview and cannot be finalised before then"
    )
    # Bollnäs's computer was seen on each of the 29 days of November that have ended.
    assert lines[-1] == "gaps: none"
    refused = chargeback(env, "billing", "finalize", run_id, "--yes", at=just_before)
    assert (refused.returncode, refused.stdout, refused.stderr.splitlines()[-1]) == (
        1,
        "",
        f"error: run {run_id} (2026-11, municipality 2183) cannot be finalised before 2026-11 has ended in "
        "Europe/Stockholm (2026-12-01 00:00 CET); it stays a draft (a preview) until then",
    )
    # One second later November has ended: the same draft is finalised. Bollnäs's only source
    # delivered every day, nothing is dead or late: no gaps.
    done = chargeback(env, "billing", "finalize", run_id, "--yes", at="2026-11-30 23:00:00")
    assert done.returncode == 0, done.stderr
    # base 125,000.00 + SOC 100,000.00 x 26,500 / 129,400 = 20,479.13 + 1 computer 310.00;
    # VAT 31,250.00 + 5,119.78 + 77.50
    assert done.stdout == (
        f"run {run_id}  period 2026-11  draft\n"
        "member  excl. VAT (SEK)       VAT      total\n"
        "2183          145789.13  36447.28  182236.41\n"
        "total         145789.13  36447.28  182236.41\n"
        "gaps: none\n"
        # The month's usage alert, shown before finalising (it informs, it does not refuse).
        "alert: 2183 pc-standard: 0 → 1 (new usage, beyond ±25 %)\n"
        f"run {run_id} is final\n"
    )
    shown = json.loads(chargeback(env, "billing", "show", run_id, "--json").stdout)
    assert (shown["status"], shown["changed_at"]) == ("final", "2026-11-30T23:00:00+00:00")


def on_terminal(env: dict[str, str], answer: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    """The command with a pseudo-terminal as standard input, answering ``answer``."""
    main, side = pty.openpty()
    try:
        os.write(main, answer)
        return chargeback(env, *args, stdin=side)
    finally:
        os.close(main)
        os.close(side)


def test_finalize_shows_totals_and_gaps_and_asks(server: tuple[ClickHouse, dict[str, str]]) -> None:
    ch, env = server
    october = Period(2026, 10)
    events = [e for e in computer_days("2183", "BUF", "pc1", october) if not e[6].startswith("2026-10-11")]
    store_events(
        ch, [*events, ticket("t1", "2026-10-05T08:00:00Z")], stored_at=datetime(2026, 11, 1, 1, tzinfo=UTC)
    )
    priced = chargeback(env, "billing", "run", "--period", "2026-10", "--municipality", "2183", "--json")
    run_id = json.loads(priced.stdout)["run_id"]
    # base 125,000.00 + SOC 20,479.13 + 30/31 of a computer (0.967742 x 310.00 = 300.00) + a ticket 95.00;
    # VAT 31,250.00 + 5,119.78 + 75.00 + 23.75
    summary = (
        f"run {run_id}  period 2026-10  draft\n"
        "member  excl. VAT (SEK)       VAT      total\n"
        "2183          145874.13  36468.53  182342.66\n"
        "total         145874.13  36468.53  182342.66\n"
        "gaps (2), what may be missing:\n"
        "  2183: source urn:devices has no events on 1 of 31 days: 2026-10-11\n"
        "  2183: source urn:tickets has no events on 30 of 31 days: 2026-10-01 to 2026-10-04, "
        "2026-10-06 to 2026-10-31\n"
        # September had no usage: both services are new; the tickets' source last delivered on
        # Monday 5 October, 19 working days before the end of October.
        "alert: 2183 pc-standard: 0 → 0.967742 (new usage, beyond ±25 %)\n"
        "alert: 2183 ticket-incident: 0 → 1 (new usage, beyond ±25 %)\n"
        "alert: urn:tickets (2183) has sent no events for 19 working days since 2026-10-05 (more than 3)\n"
    )
    gaps = chargeback(env, "billing", "finalize", run_id, "--yes")
    assert (gaps.returncode, gaps.stdout, gaps.stderr.splitlines()[-1]) == (
        1,
        summary,
        f"error: run {run_id} was not finalised: it has 2 gaps (listed above); finalise with --accept-gaps "
        "to accept them",
    )
    script = chargeback(env, "billing", "finalize", run_id, "--accept-gaps")
    assert (script.returncode, script.stdout, script.stderr.splitlines()[-1]) == (
        1,
        summary,
        f"error: run {run_id} was not finalised: there is no terminal to confirm on; pass --yes to finalise "
        "from a script",
    )
    declined = on_terminal(env, b"n\n", "billing", "finalize", run_id, "--accept-gaps")
    question = f"Finalise run {run_id}? A final run never changes [y/N]: "
    assert (declined.returncode, declined.stdout, declined.stderr.splitlines()[-1]) == (
        1,
        summary + question,  # the answer is echoed by the terminal, not the command
        f"error: run {run_id} was not finalised: not confirmed",
    )
    status = json.loads(chargeback(env, "billing", "show", run_id, "--json").stdout)["status"]
    assert status == "draft"
    confirmed = on_terminal(env, b"y\n", "billing", "finalize", run_id, "--accept-gaps")
    assert (confirmed.returncode, confirmed.stdout) == (
        0,
        summary + question + f"run {run_id} is final\n",
    )
    again = chargeback(env, "billing", "finalize", run_id)
    assert (again.returncode, again.stdout) == (0, f"run {run_id} is final\n")


def test_billing_run_states_what_it_does_not_reprice_and_reprices_when_asked(
    server: tuple[ClickHouse, dict[str, str]], tmp_path: Path
) -> None:
    ch, env = server
    october = Period(2026, 10)
    store_events(
        ch,
        [*computer_days("2183", "BUF", "pc1", october), ticket("t1", "2026-10-05T08:00:00Z")],
        stored_at=datetime(2026, 11, 1, 1, tzinfo=UTC),
    )
    run_id = json.loads(
        chargeback(env, "billing", "run", "--period", "2026-10", "--municipality", "2183", "--json").stdout
    )["run_id"]
    final = chargeback(env, "billing", "finalize", run_id, "--yes", "--accept-gaps")
    assert final.stdout.endswith(f"run {run_id} is final\n"), final.stderr
    store_events(
        ch,
        [ticket("t2", "2026-10-20T08:00:00Z"), ticket("n1", "2026-11-05T08:00:00Z")],
        stored_at=datetime(2026, 11, 20, tzinfo=UTC),
        offset=100,
    )
    fixed = tmp_path / "catalogue.yaml"
    fixed.write_text(NEW_TEXT, encoding="utf-8")
    args = ("billing", "--catalogue", str(fixed), "run", "--period", "2026-11", "--municipality", "2183")
    plain = chargeback(env, *args)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[-1] == (
        "not repriced: the current catalogue would bill finalised months differently from the catalogue "
        "they were billed with (2026-10 2 lines +20.00 SEK excl. VAT): they are not repriced; run with "
        "--reprice-invoiced to bill the differences as corrections"
    )
    assert "corrects 2026-10 (late usage): 1 line, +95.00 SEK excl. VAT" in plain.stdout.splitlines()
    repriced = json.loads(chargeback(env, *args, "--reprice-invoiced", "--json").stdout)
    told = chargeback(env, *args, "--reprice-invoiced").stdout.splitlines()
    assert [x for x in told if x.startswith("corrects ")] == [
        "corrects 2026-10 (late usage, repriced): 1 line, +105.00 SEK excl. VAT",
        "corrects 2026-10 (repriced): 1 line, +10.00 SEK excl. VAT",
    ]
    # Priced again, the run is found, not priced: the same document but for "created".
    found = json.loads(chargeback(env, *args, "--reprice-invoiced", "--json").stdout)
    assert (repriced.pop("created"), found.pop("created")) == (True, False)
    assert found == repriced
    assert repriced["repricing"] is None
    assert [
        (x["period"], x["service"], x["quantity"], x["amount"], x["reason"])
        for x in repriced["lines"]
        if "reason" in x
    ] == [
        ("2026-10", "pc-standard", "0", "10.00", "repriced"),
        ("2026-10", "ticket-incident", "1", "105.00", "late usage, repriced"),
    ]
    shown = chargeback(env, "billing", "show", repriced["run_id"]).stdout.splitlines()
    assert [x.split("  corrects ")[1] for x in shown if "  corrects " in x] == [
        "2026-10 (repriced)",
        "2026-10 (late usage, repriced)",
    ]
    # The CSV keeps the contract's columns: the reason is not one of them.
    out = tmp_path / "csv"
    chargeback(env, "billing", "export", repriced["run_id"], "--format", "csv", "--to", str(out))
    csv_lines = (out / f"{repriced['run_id']}.csv").read_text().splitlines()
    assert csv_lines[0] == (
        "run_id,period,municipality,cost_centre,service,quantity,unit,unit_price,amount,vat_rate,vat_amount,"
        "currency,price_list"
    )
    assert [x for x in csv_lines if ",2026-10," in x] == [
        f"{repriced['run_id']},2026-10,2183,BUF,pc-standard,0,st,,10.00,0.25,2.50,SEK,2026",
        f"{repriced['run_id']},2026-10,2183,BUF,ticket-incident,1,st,105.00,105.00,0.25,26.25,SEK,2026",
    ]


def test_billing_run_lists_late_usage_beyond_the_correction_window(
    server: tuple[ClickHouse, dict[str, str]], tmp_path: Path
) -> None:
    ch, env = server
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(TEXT.replace("valid_from: 2026-01-01", "valid_from: 2024-01-01"), encoding="utf-8")
    env = {**env, "CHARGEBACK_CATALOGUE": str(catalogue)}
    store_events(ch, [ticket("j0", "2024-06-03T08:00:00Z")], stored_at=datetime(2024, 7, 1, tzinfo=UTC))
    run_id = json.loads(chargeback(env, "billing", "run", "--period", "2024-06", "--json").stdout)["run_id"]
    assert chargeback(env, "billing", "finalize", run_id, "--yes", "--accept-gaps").returncode == 0
    # Stored after June 2024 was finalised (now): 3 tickets of Bollnäs, 1 of Ljusdal.
    late = [ticket(f"j{i}", "2024-06-10T08:00:00Z") for i in range(1, 4)]
    store_events(ch, [*late, ticket("j9", "2024-06-11T08:00:00Z", "2161", "SOC")], stored_at=LATER, offset=10)
    july = chargeback(env, "billing", "run", "--period", "2026-07")
    assert july.returncode == 0, july.stderr
    assert [x for x in july.stdout.splitlines() if x.startswith("warning: ")] == [
        "warning: late usage older than the 24-month correction window is not billed: 2161 2024-06 "
        "ticket-incident quantity 1.000000 (1 event)",
        "warning: late usage older than the 24-month correction window is not billed: 2183 2024-06 "
        "ticket-incident quantity 3.000000 (3 events)",
    ]
    listed = json.loads(chargeback(env, "billing", "run", "--period", "2026-07", "--json").stdout)
    assert listed["late_beyond_window"] == [
        {
            "municipality": "2161",
            "period": "2024-06",
            "service": "ticket-incident",
            "quantity": "1",
            "events": 1,
        },
        {
            "municipality": "2183",
            "period": "2024-06",
            "service": "ticket-incident",
            "quantity": "3",
            "events": 3,
        },
    ]
