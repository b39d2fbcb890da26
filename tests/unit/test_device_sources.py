"""Device inventories in their real export layouts, and the `collect devices` run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from collectors.cli import collect
from collectors.events import event_id
from collectors.sources.devices import Device, DeviceReport, active, read_inventory
from collectors.spool import Spool

SOURCES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
STOCKHOLM = ZoneInfo("Europe/Stockholm")
AT = datetime(2026, 10, 5, 6, 0, tzinfo=UTC)


def test_intune_csv_with_bom_and_seven_decimal_seconds() -> None:
    report = DeviceReport()
    devices = list(read_inventory(SOURCES / "intune_devices.csv", STOCKHOLM, report))
    assert devices[0] == Device(
        "PF3ABC42",
        "BOL-PC0042",
        "Barn- och utbildningsförvaltningen",
        datetime(2026, 10, 5, 5, 12, 33, 123456, tzinfo=STOCKHOLM),
    )
    assert [d.serial for d in devices] == ["PF3ABC42", "PF3ABC43", "PF3ABC44", "PF3ABC45"]
    assert report.read == 5
    assert report.rejected == [f"{SOURCES / 'intune_devices.csv'}:6: Last check-in: no check-in time"]


def test_stale_devices_are_not_active() -> None:
    report = DeviceReport()
    kept = list(active(read_inventory(SOURCES / "intune_devices.csv", STOCKHOLM, report), AT, 30, report))
    assert [d.serial for d in kept] == ["PF3ABC42", "PF3ABC43", "PF3ABC45"]
    assert report.stale == 1


def test_jamf_semicolon_csv_and_graph_json() -> None:
    jamf = list(read_inventory(SOURCES / "jamf_computers.csv", STOCKHOLM, DeviceReport()))
    assert [(d.serial, d.identifier) for d in jamf] == [
        ("C02XK1ABJGH5", "Barn- och utbildningsförvaltningen")
    ]
    graph = list(read_inventory(SOURCES / "graph_devices.json", STOCKHOLM, DeviceReport()))
    assert graph == [
        Device("PF3ABC50", "BOL-PC0050", "Socialförvaltningen", datetime(2026, 10, 5, 4, tzinfo=UTC))
    ]


def test_unknown_layout_is_named(tmp_path: Path) -> None:
    other = tmp_path / "x.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"not an Intune, Jamf or Graph device export \(columns: a, b\)"):
        list(read_inventory(other, STOCKHOLM, DeviceReport()))


def test_ids_are_deterministic_and_bounded() -> None:
    assert event_id("2183", "devices", "PF3ABC42", "2026-10-05") == "2183-devices-PF3ABC42-2026-10-05"
    long = event_id("2183", "devices", "x" * 300, "2026-10-05")
    assert len(long) == 200 and long == event_id("2183", "devices", "x" * 300, "2026-10-05")


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
        ("2183-devices-PF3ABC42-2026-10-05", "BUF", "2026-10-05T06:00:00Z"),
        ("2183-devices-PF3ABC43-2026-10-05", "SOC", "2026-10-05T06:00:00Z"),
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
        ("2183-m365-anna.berg_bollnas.se-SPE_E3-2026-10-05", "m365-e3", "BUF"),
        ("2183-m365-anna.berg_bollnas.se-EXCHANGESTANDARD-2026-10-05", "exchange-standard", "BUF"),
        ("2183-m365-bo.lind_bollnas.se-SPE_E3-2026-10-05", "m365-e3", "SOC"),
    ]
