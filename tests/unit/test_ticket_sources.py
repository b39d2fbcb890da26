"""The `collect tickets` run: one count event per closed ticket, spooled when the broker is away."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

SOURCES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def test_a_tickets_run_spools_one_count_event_per_closed_ticket(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from collectors.cli import collect
    from collectors.spool import Spool

    env = {
        "CHARGEBACK_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "CHARGEBACK_COLLECTOR_SPOOL_DIR": str(tmp_path / "spool"),
        "CHARGEBACK_COLLECTOR_CONNECT_TIMEOUT_S": "0.5",
    }
    result = CliRunner().invoke(
        collect,
        ["tickets", str(SOURCES / "topdesk_tickets.csv"), "--mapping", str(SOURCES / "mapping.yaml")],
        env=env,
    )
    assert result.exit_code == 75  # all mapped and valid; the broker is away, so they wait in the spool
    assert "read 4, emitted 0, spooled 3, rejected 0, unmapped 0 (this run: 3)" in result.output
    spool = Spool(tmp_path / "spool")
    events = [json.loads(m.value) for segment in spool.segments() for m in spool.read(segment)]
    assert [(e["id"], e["time"], e["data"]["channel"]) for e in events] == [
        ("2183-tickets-I_2610_001", "2026-10-05T07:40:00Z", "phone"),
        ("2183-tickets-I_2610_002", "2026-10-07T13:30:00Z", "e-mail"),
        ("2183-tickets-I_2610_004", "2026-10-31T22:40:00Z", "phone"),
    ]
    assert events[0]["data"]["service"] == "ticket-incident" and events[0]["data"]["quantity"] == "1"
