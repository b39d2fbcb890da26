"""billing diff and the catalogue commands."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from billing_jobs.catalogue_cli import catalogue
from billing_jobs.diff import LineChange, diff_lines
from billing_jobs.model import Line, Run

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml"
D = Decimal


def line(cc: str, service: str, quantity: str, amount: str, corrects: str | None = None) -> Line:
    return Line(
        "2183", cc, service, D(quantity), "st", None, D(amount), D("0.25"), D(0), "SEK", "2026", corrects
    )


def test_diff_lists_changed_added_and_removed_lines() -> None:
    a = [line("BUF", "pc-standard", "10", "3100.00"), line("SOC", "pc-standard", "1", "310.00")]
    b = [
        line("BUF", "pc-standard", "11", "3410.00"),
        line("KS", "pc-standard", "2", "620.00"),
        line("SOC", "pc-standard", "1", "310.00"),
        line("BUF", "ticket-incident", "1", "95.00", "2026-09"),
    ]
    assert diff_lines(a, b, "2026-10", "2026-10") == [
        LineChange("2026-09", "2183", "BUF", "ticket-incident", D(0), D(1), D(0), D("95.00")),
        LineChange("2026-10", "2183", "BUF", "pc-standard", D(10), D(11), D("3100.00"), D("3410.00")),
        LineChange("2026-10", "2183", "KS", "pc-standard", D(0), D(2), D(0), D("620.00")),
    ]


def test_catalogue_validate_and_show_effective_prices() -> None:
    runner = CliRunner()
    ok = runner.invoke(catalogue, ["validate", str(FIXTURE)])
    assert ok.exit_code == 0
    assert ok.output.endswith("valid: 6 municipalities, 6 services, 2 price lists (2026, 2027)\n")
    shown = runner.invoke(catalogue, ["show", str(FIXTURE), "--period", "2027-03"])
    assert shown.exit_code == 0
    assert "  pc-standard          daily_distinct  st    319.92 per unit\n" in shown.output
    assert "  storage-file         daily_max       GiB   464.40 per started 100\n" in shown.output
    assert "graduated tiers (≤ 200: 98.04, above: 82.56)" in shown.output


def test_json_export_is_exact_and_names_corrected_months() -> None:
    import json
    from datetime import UTC, datetime

    from billing_jobs.formats.json import render_json

    at = datetime(2026, 11, 3, tzinfo=UTC)
    run = Run("2026-11-abc", "2026-11", (), "draft", "2026", "SEK", "", "", at, at, 1)
    body = render_json(
        run,
        [line("BUF", "pc-standard", "1.5", "465.00"), line("BUF", "pc-standard", "1", "310.00", "2026-10")],
    )
    doc = json.loads(body)
    assert [(x["period"], x["quantity"], x["amount"]) for x in doc["lines"]] == [
        ("2026-11", "1.5", "465.00"),
        ("2026-10", "1", "310.00"),
    ]
    assert (doc["total_amount"], doc["status"], body.endswith(b"\n")) == ("775.00", "draft", True)
    assert render_json(run, list(reversed([line("BUF", "pc-standard", "1.5", "465.00")]))) == render_json(
        run, [line("BUF", "pc-standard", "1.5", "465.00")]
    )
