"""Norwegian municipalities' source exports: TOPdesk in bokmål (Meldingsnummer, Meldingsdato,
Avsluttet dato, Tidsbruk; day-first dotted dates, decimal commas), read in Europe/Oslo."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from collectors.events import Observation
from collectors.exports import parse_time
from collectors.sources.tickets import TicketReport, observe_tickets

OSLO = ZoneInfo("Europe/Oslo")


def test_a_norwegian_topdesk_export(tmp_path: Path) -> None:
    export = tmp_path / "meldinger.csv"
    export.write_bytes(
        b"\xef\xbb\xbf"
        + (
            "Meldingsnummer;Melder;Avdeling;Kategori;Prioritet;Meldingsmåte;Meldingsdato;Første svar;"
            "Avsluttet dato;Avsluttet;Tidsbruk\r\n"
            "M 2610 001;Kari;Oppvekst;Maskinvare;P2;Telefon;05.10.2026 08:12;05.10.2026 08:13;"
            "05.10.2026 09:40;Ja;1,5\r\n"
            "M 2610 002;Ola;Helse og omsorg;Programvare;P3;Selvbetjening;31.10.2026 16:00;;"
            "01.11.2026 01:30;Ja;0,25\r\n"
            "M 2610 003;Per;Helse og omsorg;Programvare;P3;E-post;05.10.2026 10:00;;;Nei;\r\n"
        ).encode()
    )
    report = TicketReport()
    observations = observe_tickets(export, report, tz=OSLO)
    assert observations == [
        Observation(
            "M 2610 001",
            "Oppvekst",
            datetime(2026, 10, 5, 7, 40, tzinfo=UTC),  # summer time: UTC+2
            attributes={
                "category": "Maskinvare",
                "priority": "P2",
                "channel": "phone",
                "opened": "2026-10-05T06:12:00Z",
                "first_response": "2026-10-05T06:13:00Z",
                "closed": "2026-10-05T07:40:00Z",
                "time_spent": "1.5",
            },
        ),
        # 01:30 on 1 November in Oslo (CET since 25 October): 00:30 UTC.
        Observation(
            "M 2610 002",
            "Helse og omsorg",
            datetime(2026, 11, 1, 0, 30, tzinfo=UTC),
            attributes={
                "category": "Programvare",
                "priority": "P3",
                "channel": "portal",
                "opened": "2026-10-31T15:00:00Z",
                "closed": "2026-11-01T00:30:00Z",
                "time_spent": "0.25",
            },
        ),
    ]
    assert (report.read, report.open, report.rejected) == (3, 1, [])


def test_norwegian_dotted_dates_are_day_first_and_mixed_separators_are_refused() -> None:
    assert parse_time("05.10.2026 08:12", OSLO) == datetime(2026, 10, 5, 6, 12, tzinfo=UTC)
    assert parse_time("5.1.2027 08:12:30", OSLO) == datetime(2027, 1, 5, 7, 12, 30, tzinfo=UTC)
    try:
        parse_time("05.10-2026 08:12", OSLO)
    except ValueError:
        pass
    else:
        raise AssertionError("a date with mixed separators was read")
