"""Service-desk exports: closed tickets with their service-level attributes, times in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from collectors.sources.tickets import Ticket, TicketReport, read_tickets

SOURCES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def test_topdesk_semicolons_swedish_headers_and_channels() -> None:
    report = TicketReport()
    tickets = list(read_tickets(SOURCES / "topdesk_tickets.csv", STOCKHOLM, report))
    assert tickets[0] == Ticket(
        "I 2610 001",
        "Barn- och utbildningsförvaltningen",
        datetime(2026, 10, 5, 7, 40, tzinfo=UTC),
        {
            "category": "Hårdvara",
            "priority": "P3",
            "channel": "phone",
            "opened": "2026-10-05T06:12:00Z",
            "first_response": "2026-10-05T06:13:00Z",
            "closed": "2026-10-05T07:40:00Z",
        },
    )
    assert [t.attributes["channel"] for t in tickets] == ["phone", "e-mail", "phone"]
    # Closed 23:40 on 31 October in Stockholm (CET, +01:00) is 22:40 UTC: still October for billing.
    assert tickets[2].closed == datetime(2026, 10, 31, 22, 40, tzinfo=UTC)
    assert (report.read, report.open, report.rejected) == (4, 1, [])


def test_servicenow_rejects_a_bad_time_with_its_line() -> None:
    report = TicketReport()
    tickets = list(read_tickets(SOURCES / "servicenow_incidents.csv", STOCKHOLM, report))
    assert [(t.number, t.attributes["channel"], t.attributes["first_response"]) for t in tickets] == [
        ("INC0010001", "portal", "2026-10-05T05:05:00Z")
    ]
    assert report.rejected == [
        f"{SOURCES / 'servicenow_incidents.csv'}:3: Invalid isoformat string: 'not a date'"
    ]


def test_jira_dates() -> None:
    (ticket,) = read_tickets(SOURCES / "jira_requests.csv", STOCKHOLM, TicketReport())
    assert (ticket.number, ticket.closed, ticket.attributes["channel"]) == (
        "ITS-101",
        datetime(2026, 10, 5, 12, 40, tzinfo=UTC),
        "e-mail",
    )


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
