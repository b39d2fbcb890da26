"""The `collect devices` and `collect licences` runs: what they spool, report and exit with.

The readers of each export layout are tested in test_collector_sources.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from collectors.cli import collect
from collectors.spool import Spool

SOURCES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
STOCKHOLM = ZoneInfo("Europe/Stockholm")
AT = datetime(2026, 10, 5, 6, 0, tzinfo=UTC)


def run_devices(tmp_path: Path) -> tuple[int, str, list[dict[str, object]]]:
    env = {
        "CHARGEBACK_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "CHARGEBACK_COLLECTOR_SPOOL_DIR": str(tmp_path / "spool"),
        "CHARGEBACK_COLLECTOR_CONNECT_TIMEOUT_S": "0.5",
    }
    result = CliRunner().invoke(
        collect,
        [
            "devices",
            str(SOURCES / "intune_devices.csv"),
            "--mapping",
            str(SOURCES / "mapping.yaml"),
            "--at",
            AT.isoformat(),
        ],
        env=env,
    )
    spool = Spool(tmp_path / "spool")
    events = [json.loads(m.value) for segment in spool.segments() for m in spool.read(segment)]
    return result.exit_code, result.output, events


def test_a_devices_run_spools_mapped_devices_and_reports_the_rest(tmp_path: Path) -> None:
    code, output, events = run_devices(tmp_path)
    assert code == 1  # a rejected row and an unmapped department need a human
    assert "read 5, emitted 0, spooled 2, rejected 1, unmapped 1 (this run: 2)" in output
    assert "unmapped 'Kultur och fritid': 1 devices" in output
    assert [(e["id"], e["data"]["cost_centre"], e["time"]) for e in events] == [
        ("2183-devices-PF3ABC42-BUF-2026-10-05", "BUF", "2026-10-05T06:00:00Z"),
        ("2183-devices-PF3ABC43-SOC-2026-10-05", "SOC", "2026-10-05T06:00:00Z"),
    ]
    # The next run on the same day sends the same ids again (the stream worker counts them once).
    _, _, again = run_devices(tmp_path)
    assert [e["id"] for e in again] == [e["id"] for e in events] * 2


def test_licences_one_observation_per_user_and_mapped_sku(tmp_path: Path) -> None:
    env = {
        "CHARGEBACK_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "CHARGEBACK_COLLECTOR_SPOOL_DIR": str(tmp_path / "spool"),
        "CHARGEBACK_COLLECTOR_CONNECT_TIMEOUT_S": "0.5",
    }
    result = CliRunner().invoke(
        collect,
        [
            "licences",
            str(SOURCES / "m365_licensed_users.csv"),
            "--mapping",
            str(SOURCES / "mapping.yaml"),
            "--at",
            AT.isoformat(),
        ],
        env=env,
    )
    assert result.exit_code == 1, result.output
    assert "read 4, emitted 0, spooled 3, rejected 1, unmapped 1 (this run: 3)" in result.output
    assert "unmapped 'SKU POWER_BI_PRO': 1 assignments" in result.output
    spool = Spool(tmp_path / "spool")
    events = [json.loads(m.value) for segment in spool.segments() for m in spool.read(segment)]
    assert [(e["id"], e["data"]["service"], e["data"]["cost_centre"]) for e in events] == [
        ("2183-m365-anna.berg_bollnas.se-SPE_E3-BUF-2026-10-05", "m365-e3", "BUF"),
        ("2183-m365-anna.berg_bollnas.se-EXCHANGESTANDARD-BUF-2026-10-05", "exchange-standard", "BUF"),
        ("2183-m365-bo.lind_bollnas.se-SPE_E3-SOC-2026-10-05", "m365-e3", "SOC"),
    ]
