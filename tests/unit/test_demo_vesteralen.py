"""The Vesterålen reference deployment of the demo (`--region vesteralen`): the five members as the
catalogue gives them, their sources in the layouts Norwegian municipalities use (Intune, Microsoft
365, TOPdesk in Norwegian), read by the real readers in Europe/Oslo."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from click.testing import CliRunner

from chargeback.catalogue import load_catalogue
from chargeback.period import Period
from collectors.mapping import Mapper, load_mapping
from collectors.sources.tickets import TicketReport, observe_tickets
from demo.cli import VESTERALEN, demo, demo_catalogue, demo_parties, generate_month
from demo.sources import OSLO, VESTERALEN_MEMBERS, Sizes, plan_member, sizes_of, write_sources

OCTOBER = [date(2026, 10, 1) + timedelta(days=i) for i in range(31)]


def test_the_demo_members_are_the_catalogues() -> None:
    catalogue = load_catalogue(demo_catalogue("vesteralen"))
    assert (catalogue.currency, catalogue.timezone) == ("NOK", "Europe/Oslo")
    expected = {
        "1866": ("Hadsel", 8060),
        "1867": ("Bø", 2520),
        "1868": ("Øksnes", 4560),
        "1870": ("Sortland", 10900),
        "1871": ("Andøy", 4530),
    }
    assert {m.code: (m.name, m.inhabitants[0].value) for m in catalogue.municipalities} == expected
    assert expected == VESTERALEN
    assert {m.code: (m.name, m.inhabitants) for m in VESTERALEN_MEMBERS} == expected
    assert demo_parties("vesteralen").name == "parties.yaml"


def test_sizes_of_the_vesteralen_members() -> None:
    assert {m.code: sizes_of(m.inhabitants) for m in VESTERALEN_MEMBERS} == {
        "1866": Sizes(employees=685, computers=343, pupils=806, tickets_per_month=223),
        "1867": Sizes(employees=214, computers=107, pupils=252, tickets_per_month=70),
        "1868": Sizes(employees=388, computers=194, pupils=456, tickets_per_month=126),
        "1870": Sizes(employees=927, computers=464, pupils=1090, tickets_per_month=301),
        "1871": Sizes(employees=385, computers=193, pupils=453, tickets_per_month=125),
    }


def test_bo_writes_norwegian_topdesk_exports_that_the_collector_reads(tmp_path: Path) -> None:
    written = write_sources(tmp_path, [Period(2026, 10)], codes=["1867"], region="vesteralen")
    assert written.rows["topdesk"] > 0
    folder = tmp_path / "1867"
    first = (folder / "2026-10-05" / "topdesk.csv").read_bytes()
    assert first.startswith(
        "\ufeffMeldingsnummer;Melder;Avdeling;Kategori;Prioritet;Meldingsmåte;Meldingsdato;Første svar;"
        "Avsluttet dato;Status;Tidsbruk\r\n".encode()
    )
    mapper = Mapper(load_mapping(folder / "mapping.yaml"))
    closed: dict[str, str] = {}
    departments: set[str] = set()
    for day in OCTOBER:
        report = TicketReport()
        for ticket in observe_tickets(folder / day.isoformat() / "topdesk.csv", report, tz=OSLO):
            closed[ticket.entity] = str(ticket.attributes["closed"])
            departments.add(str(ticket.identifier))
        assert report.rejected == []
    # Every ticket closed in October is read once however the daily exports overlap.
    plan = plan_member(VESTERALEN_MEMBERS[1], OCTOBER, 2183)
    assert len(closed) == len(plan.tickets) == 70
    assert all(number.startswith("M 2610 ") for number in closed)
    mapped = {d: mapper.mapping.cost_centres.get(d) for d in departments}
    assert {d: cc for d, cc in mapped.items() if cc} == {
        "Oppvekst og kultur": "OPPV",
        "Helse og omsorg": "HELSE",
        "Administrasjon": "ADM",
        "Teknisk drift": "TEKN",
    }
    pupils = load_mapping(folder / "mapping-pupils.yaml")
    assert set(pupils.cost_centres.values()) == {"OPPV"}
    assert (folder / "2026-10-01" / "intune.csv").read_bytes().startswith(b"\xef\xbb\xbfDevice name,")
    licences = (folder / "2026-10-01" / "m365-licensed-users.csv").read_text(encoding="utf-8")
    assert "@bo.no," in licences and "Skrivertjeneste 0" in licences


def test_a_municipality_of_the_other_region_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        demo,
        [
            "generate",
            "--months",
            "2026-10",
            "--to",
            str(tmp_path),
            "--region",
            "vesteralen",
            "--municipality",
            "2121",
        ],
    )
    assert result.exit_code == 2
    assert "2121 is not a member in vesteralen; its members are 1866, 1867, 1868, 1870, 1871" in result.output


def test_ready_made_events_of_the_vesteralen_month() -> None:
    catalogue = load_catalogue(demo_catalogue("vesteralen"))
    events = [json.loads(line) for line in generate_month(Period(2026, 10), region="vesteralen")]
    data = [e["data"] for e in events if "municipality" in e["data"]]
    assert {d["municipality"] for d in data} == set(VESTERALEN)
    assert {d["cost_centre"] for d in data} == {"OPPV", "HELSE", "ADM", "TEKN"}
    assert {d["service"] for d in data} <= set(catalogue.service_ids)
    # Hadsel: one computer per 25 inhabitants (322); on the 1st the 313 already there (the other
    # nine, every 40th, arrive later in the month) and the re-run of its collector, all 322 again.
    first_day = [e for e in events if e["id"].startswith("m1866-intune-") and e["id"].endswith("2026-10-01")]
    assert len(first_day) == 313 + 322
