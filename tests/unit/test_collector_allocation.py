"""Collector warnings finance sees: an export without its cost-centre column, and a run that bills
more than CHARGEBACK_UNALLOCATED_WARNING_SHARE of its events to UNALLOCATED."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from collectors.allocation import EXIT_WARNING, Allocation
from collectors.cli import collect

SOURCES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
LIMIT = Decimal("0.10")


def allocation(*events: tuple[str | None, str]) -> Allocation:
    counted = Allocation("UNALLOCATED")
    for identifier, cost_centre in events:
        counted.count(identifier, cost_centre)
    return counted


def test_a_share_over_the_limit_warns_and_one_at_the_limit_does_not() -> None:
    # 1 of 10 = 10,0 %: at the limit, no warning; 2 of 10 = 20,0 %: a warning.
    at_limit = allocation(*[("Kultur", "KUL")] * 9, ("", "UNALLOCATED"))
    assert at_limit.share == Decimal("0.1") and at_limit.warnings(LIMIT, "devices") == []
    over = allocation(*[("Kultur", "KUL")] * 8, *[("x", "UNALLOCATED")] * 2)
    assert over.warnings(LIMIT, "tickets") == [
        "2 of 10 tickets (20.0 %) go to UNALLOCATED, more than the 10.0 % allowed "
        "(CHARGEBACK_UNALLOCATED_WARNING_SHARE)"
    ]
    assert allocation().warnings(LIMIT, "devices") == []  # a run without events


def test_a_source_without_the_column_warns_even_under_the_limit() -> None:
    counted = allocation(*[("BUF", "BUF")] * 19, (None, "UNALLOCATED"))
    assert counted.warnings(LIMIT, "devices") == [
        "the export has no cost-centre column: 1 of 20 devices are billed to UNALLOCATED; export the "
        "column (or name it with --identifier-column)"
    ]
    assert EXIT_WARNING == 3


def run(export: str, tmp_path: Path, **env: str) -> tuple[int, str]:
    base = {
        "CHARGEBACK_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "CHARGEBACK_COLLECTOR_SPOOL_DIR": str(tmp_path / "spool"),
        "CHARGEBACK_COLLECTOR_CONNECT_TIMEOUT_S": "0.5",
    }
    result = CliRunner().invoke(
        collect,
        ["devices", str(SOURCES / export), "--mapping", str(SOURCES / "mapping.yaml"), "--at",
         "2026-10-05T06:00:00+00:00"],
        env={**base, **env},
    )  # fmt: skip
    return result.exit_code, result.output


def test_an_intune_export_without_categories_is_a_warning_in_the_output(tmp_path: Path) -> None:
    code, output = run("intune_devices_standard.csv", tmp_path)
    assert "read 2, emitted 0, spooled 2, rejected 0, unmapped 0 (this run: 2)" in output
    assert (
        "warning: the export has no cost-centre column: 2 of 2 devices are billed to UNALLOCATED; "
        "export the column (or name it with --identifier-column)\n" in output
    )
    assert (
        "warning: 2 of 2 devices (100.0 %) go to UNALLOCATED, more than the 10.0 % allowed "
        "(CHARGEBACK_UNALLOCATED_WARNING_SHARE)\n" in output
    )
    # The broker is away here: waiting in the spool (75) outranks the warning (3); the
    # integration test on the real broker sees 3.
    assert code == 75


def test_a_mapped_export_has_no_warning(tmp_path: Path) -> None:
    code, output = run("intune_devices.csv", tmp_path, CHARGEBACK_UNALLOCATED_WARNING_SHARE="0")
    assert "warning:" not in output and code == 1  # its rejected row and unmapped department
