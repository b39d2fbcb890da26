"""Collector sources in their real export layouts: exact observations, events and ids."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chargeback.events import Known, UsageEvent, validate_event
from collectors.events import Observation, build_event, to_message
from collectors.exports import parse_time
from collectors.ids import MAX_ID, event_id
from collectors.mapping import Mapper, MappingError, Unmapped, load_mapping
from collectors.sources.devices import DeviceReport, observe_devices
from collectors.sources.licences import LicenceReport, observe_licences
from collectors.sources.storage import StorageReport, gib, observe_share
from collectors.sources.tickets import TicketReport, observe_tickets

SOURCES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
STOCKHOLM = ZoneInfo("Europe/Stockholm")
AT = datetime(2026, 10, 5, 6, 0, tzinfo=UTC)  # 08:00 in Stockholm
DAY = date(2026, 10, 5)
KNOWN = Known(
    municipalities={"2183"},
    services={"pc-standard", "m365-e3", "m365-e5", "exchange-standard", "ticket-incident", "storage-file"},
)


def mapper() -> Mapper:
    return Mapper(load_mapping(SOURCES / "mapping_2183.yaml"))


def events_of(kind: str, m: Mapper, observations: list[Observation], service: str) -> list[UsageEvent]:
    built = (build_event(kind, m, o, service, 1, DAY) for o in observations)
    return [e for e in built if e is not None]


def test_a_daily_reading_under_two_cost_centres_counts_in_both_a_ticket_once() -> None:
    m = mapper()
    morning = Observation("PC0042", "Barn- och utbildningsförvaltningen", AT)
    afternoon = Observation("PC0042", "Socialförvaltningen", AT.replace(hour=13))
    again = Observation("PC0042", "barn- och utbildningsförvaltningen", AT.replace(hour=15))
    ids = [e.id for e in events_of("devices", m, [morning, afternoon, again], "pc-standard")]
    # Moved between two runs of one day: two observations; seen again where it was: the same id.
    assert ids == [
        "2183-devices-PC0042-BUF-2026-10-05",
        "2183-devices-PC0042-SOC-2026-10-05",
        "2183-devices-PC0042-BUF-2026-10-05",
    ]
    # A closed ticket is one event, whichever cost centre an export gives it.
    tickets = [
        build_event("tickets", m, Observation("I2610-0042", unit, AT), "ticket-incident", 1)
        for unit in ("Barn- och utbildningsförvaltningen", "Socialförvaltningen")
    ]
    assert [(e.id, e.data.cost_centre) for e in tickets if e] == [
        ("2183-tickets-I2610-0042", "BUF"),
        ("2183-tickets-I2610-0042", "SOC"),
    ]


# --- mapping -------------------------------------------------------------------------------------


def test_mapping_matches_without_case_or_spacing_and_never_guesses() -> None:
    m = mapper()
    assert m.mapping.default_cost_centre == "UNALLOCATED"
    assert m.cost_centre("  barn-  och UTBILDNINGSförvaltningen ") == "BUF"
    assert m.cost_centre("ou=soc, ou=bollnas, dc=kommun, dc=se") == "SOC"
    assert m.cost_centre("OU=Datorer,OU=BUF,OU=Bollnas,DC=kommun,DC=se") == "BUF"  # nearest mapped OU
    assert m.cost_centre(None) == "UNALLOCATED"  # the source has no identifier field at all
    assert m.cost_centre("Kultur och fritid") is None
    assert m.cost_centre("Kultur och fritid ") is None
    assert m.cost_centre("") is None
    assert m.cost_centre("Socialförvaltning") is None  # close is not the same
    assert m.sku("microsoft 365  E3") == ("Microsoft 365 E3", "m365-e3")
    assert m.service_for_sku("POWER_BI_PRO") is None
    assert isinstance(m.unmapped, Unmapped)
    assert m.unmapped == {"Kultur och fritid": 2, "(empty)": 1, "Socialförvaltning": 1, "SKU POWER_BI_PRO": 1}
    assert m.unmapped.lines("devices")[0] == "unmapped '(empty)': 1 devices"


def test_mapping_errors_name_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "mapping.yaml"
    bad.write_text(
        'municipality: "Bollnäs"\n'
        "cost_centres:\n"
        '  "Socialförvaltningen": SOC X\n'
        "skus: {SPE_E3: m365-e3}\n"
        "colour: red\n",
        encoding="utf-8",
    )
    with pytest.raises(MappingError) as caught:
        load_mapping(bad)
    assert str(caught.value).splitlines() == [
        f"{bad}:1: municipality: 'Bollnäs' is not a municipality code (digits, e.g. \"2183\")",
        f"{bad}:3: cost_centres.Socialförvaltningen: 'SOC X' is not a code (letters, digits, '_', '.', '-')",
        f"{bad}:5: colour: unknown field",
    ]
    bad.write_text('municipality: "2183"\ncost_centres: {"SOC ": SOC, "soc": BUF}\n', encoding="utf-8")
    with pytest.raises(
        MappingError, match=r"'SOC ' and 'soc' are the same identifier but map to SOC and BUF"
    ):
        load_mapping(bad)
    bad.write_text("municipality: [\n", encoding="utf-8")
    with pytest.raises(MappingError, match=rf"^{bad}:2: not valid YAML"):
        load_mapping(bad)


# --- ids ---------------------------------------------------------------------------------------


def test_ids_are_deterministic_readable_and_bounded() -> None:
    assert event_id("intune", "2183", "PC0042", DAY) == "2183-intune-PC0042-2026-10-05"
    assert event_id("m365", "2183", "anna.berg@bollnas.se", "SPE_E3", "2026-10-05") == (
        "2183-m365-anna.berg_bollnas.se-SPE_E3-2026-10-05"
    )
    assert event_id("tickets", "2183", " I 2610 001 ") == "2183-tickets-I_2610_001"
    long_a = event_id("fileshare", "2183", "/srv/share/" + "a" * 300, DAY)
    long_b = event_id("fileshare", "2183", "/srv/share/" + "a" * 299 + "b", DAY)
    assert len(long_a) == MAX_ID and long_a.startswith("2183-fileshare-_srv_share_aaaa")
    assert long_a == event_id("fileshare", "2183", "/srv/share/" + "a" * 300, DAY)
    assert long_a != long_b and long_a[:183] == long_b[:183]
    assert long_a[-17] == "-" and all(c in "0123456789abcdef" for c in long_a[-16:])
    with pytest.raises(ValueError, match="non-empty parts"):
        event_id("devices", "2183", "  ", DAY)


# --- devices -----------------------------------------------------------------------------------


def test_configmgr_semicolons_windows_1252_swedish_times_stale_duplicates_and_bad_rows() -> None:
    report = DeviceReport()
    observations = observe_devices(SOURCES / "configmgr_devices.csv", AT, report)
    assert observations == [
        Observation(
            "5CG1234ABC",
            "OU=Datorer,OU=BUF,OU=Bollnas,DC=kommun,DC=se",
            AT,
            attributes={
                "device_name": "BOL-PC0101",
                "last_check_in": "2026-10-05T04:12:00Z",
                "subject_user": "KOMMUN\\åsa.ek",  # the primary user the inventory names
            },
        ),
        # 00:10 on 5 September in Stockholm: exactly 30 days before the run's day, still active.
        Observation(
            "5CG1234ABD",
            "OU=SOC,OU=Bollnas,DC=kommun,DC=se",
            AT,
            attributes={
                "device_name": "BOL-PC0102",
                "last_check_in": "2026-09-04T22:10:00Z",
                "subject_user": "KOMMUN\\bo.lind",
            },
        ),
        # A placeholder serial: the device name identifies the device; "17.05" is Swedish time.
        Observation(
            "BOL-PC0104",
            "OU=Kultur och fritid,OU=Bollnas,DC=kommun,DC=se",
            AT,
            attributes={
                "device_name": "BOL-PC0104",
                "last_check_in": "2026-10-04T15:05:00Z",
                "subject_user": "KOMMUN\\kf",
            },
        ),
    ]
    path = SOURCES / "configmgr_devices.csv"
    assert (report.read, report.stale, report.duplicates) == (7, 1, 1)
    assert report.rejected == [
        f"{path}:6: Last Activity: Invalid isoformat string: 'igår'",
        f"{path}:7: 2 fields where the header has 7",
    ]
    m = mapper()
    assert [
        (e.id, e.data.cost_centre, e.data.subject) for e in events_of("configmgr", m, observations, "pc")
    ] == [
        ("2183-configmgr-5CG1234ABC-BUF-2026-10-05", "BUF", "5CG1234ABC"),
        ("2183-configmgr-5CG1234ABD-SOC-2026-10-05", "SOC", "5CG1234ABD"),
    ]
    assert m.unmapped == {"OU=Kultur och fritid,OU=Bollnas,DC=kommun,DC=se": 1}


def test_intune_export_with_bom_has_utc_check_ins_and_no_department() -> None:
    report = DeviceReport()
    observations = observe_devices(SOURCES / "intune_devices_standard.csv", AT, report)
    assert [(o.entity, o.identifier, o.attributes["last_check_in"]) for o in observations] == [
        ("BOL-VM0001", None, "2026-10-04T22:30:00Z"),  # serial "0": a virtual machine
        ("PF3ABC42", None, "2026-10-05T06:12:33Z"),
    ]
    events = events_of("intune", mapper(), observations, "pc-standard")
    assert [(e.id, e.data.cost_centre) for e in events] == [
        ("2183-intune-BOL-VM0001-UNALLOCATED-2026-10-05", "UNALLOCATED"),
        ("2183-intune-PF3ABC42-UNALLOCATED-2026-10-05", "UNALLOCATED"),
    ]


def test_intune_with_category_jamf_and_graph_exports() -> None:
    report = DeviceReport()
    intune = observe_devices(SOURCES / "intune_devices.csv", AT, report)
    assert [(o.entity, o.identifier, o.attributes["last_check_in"]) for o in intune] == [
        ("PF3ABC42", "Barn- och utbildningsförvaltningen", "2026-10-05T05:12:33.123456Z"),
        ("PF3ABC43", "Socialförvaltningen", "2026-10-04T16:40:00Z"),
        ("PF3ABC45", "Kultur och fritid", "2026-10-05T06:00:00Z"),
    ]
    assert report.stale == 1  # PF3ABC44, last seen 1 August
    assert report.rejected == [f"{SOURCES / 'intune_devices.csv'}:6: Last check-in: no check-in time"]
    jamf = observe_devices(SOURCES / "jamf_inventory.csv", AT, DeviceReport())
    assert [(o.entity, o.identifier, o.attributes["last_check_in"]) for o in jamf] == [
        ("C02XK1ABJGH6", "Socialförvaltningen", "2026-10-04T13:05:00Z")  # "at 3:05 PM" local
    ]
    graph = observe_devices(SOURCES / "graph_devices.json", AT, DeviceReport())
    assert [(o.entity, o.identifier, o.attributes["last_check_in"]) for o in graph] == [
        ("PF3ABC50", "Socialförvaltningen", "2026-10-05T04:00:00Z")
    ]


def test_an_unknown_device_layout_is_named(tmp_path: Path) -> None:
    other = tmp_path / "x.csv"
    other.write_text("a;b\n1;2\n")
    with pytest.raises(ValueError, match=r"not an Intune, Jamf or Graph device export \(columns: a, b\)"):
        observe_devices(other, AT, DeviceReport())


# --- licences ----------------------------------------------------------------------------------


def test_licensed_users_csv_one_seat_per_user_and_mapped_sku() -> None:
    m, report = mapper(), LicenceReport()
    seats = observe_licences(SOURCES / "m365_licensed_users.csv", m, AT, report)
    events = [build_event("m365", m, s.observation, s.service, 1, DAY) for s in seats]
    assert [(e.id, e.data.service, e.data.cost_centre, e.data.attributes) for e in events if e] == [
        (
            "2183-m365-anna.berg_bollnas.se-SPE_E3-BUF-2026-10-05",
            "m365-e3",
            "BUF",
            {"sku": "SPE_E3", "subject_name": "Anna Berg"},
        ),
        (
            "2183-m365-anna.berg_bollnas.se-EXCHANGESTANDARD-BUF-2026-10-05",
            "exchange-standard",
            "BUF",
            {"sku": "EXCHANGESTANDARD", "subject_name": "Anna Berg"},
        ),
        (
            "2183-m365-bo.lind_bollnas.se-SPE_E3-SOC-2026-10-05",
            "m365-e3",
            "SOC",
            {"sku": "SPE_E3", "subject_name": "Bo Lind"},
        ),
    ]
    assert m.unmapped == {"SKU POWER_BI_PRO": 1}
    assert report.rejected == [f"{SOURCES / 'm365_licensed_users.csv'}:5: no User principal name"]


def test_product_names_are_matched_as_the_mapping_spells_them() -> None:
    m, report = mapper(), LicenceReport()
    seats = observe_licences(SOURCES / "m365_licensed_users_names.csv", m, AT, report)
    assert [(s.observation.entity, s.observation.key, s.service) for s in seats] == [
        ("asa.ek@bollnas.se", ("Microsoft 365 E3",), "m365-e3"),
        ("asa.ek@bollnas.se", ("Exchange Online (Plan 1)",), "exchange-standard"),
        ("per.lind@bollnas.se", ("Microsoft 365 E3",), "m365-e3"),
    ]
    assert build_event("m365", m, seats[1].observation, seats[1].service, 1, DAY) is not None
    assert event_id("m365", "2183", "asa.ek@bollnas.se", "Exchange Online (Plan 1)", DAY) == (
        "2183-m365-asa.ek_bollnas.se-Exchange_Online_Plan_1_-2026-10-05"
    )
    assert (report.read, report.duplicates, report.rejected, dict(m.unmapped)) == (3, 0, [], {})


def test_graph_licences_json() -> None:
    m, report = mapper(), LicenceReport()
    seats = observe_licences(SOURCES / "graph_licences.json", m, AT, report)
    assert [(s.observation.entity, s.observation.identifier, s.service) for s in seats] == [
        ("anna.berg@bollnas.se", "Barn- och utbildningsförvaltningen", "m365-e3"),
        ("dan.ek@bollnas.se", "", "m365-e5"),
    ]
    assert build_event("m365", m, seats[1].observation, seats[1].service, 1, DAY) is None
    assert m.unmapped == {"SKU 6fd2c87f-b296-42f0-b197-1e91e994b900": 1, "(empty)": 1}
    assert report.rejected == [f"{SOURCES / 'graph_licences.json'}: item 4: no userPrincipalName"]


# --- tickets -----------------------------------------------------------------------------------


def test_topdesk_swedish_headers_semicolons_and_decimal_comma() -> None:
    report = TicketReport()
    observations = observe_tickets(SOURCES / "topdesk_anmalningar.csv", report)
    assert observations == [
        Observation(
            "I 2610 101",
            "Socialförvaltningen",
            datetime(2026, 10, 5, 7, 40, tzinfo=UTC),
            attributes={
                "category": "Hårdvara",
                "priority": "P2",
                "channel": "phone",
                "opened": "2026-10-05T06:12:00Z",
                "closed": "2026-10-05T07:40:00Z",
                "time_spent": "1.5",
            },
        ),
        # Closed 01:30 on 1 November in Stockholm (CET since 25 October): 00:30 UTC.
        Observation(
            "I 2610 102",
            "Barn- och utbildningsförvaltningen",
            datetime(2026, 11, 1, 0, 30, tzinfo=UTC),
            attributes={
                "category": "Programvara",
                "priority": "P3",
                "channel": "portal",
                "opened": "2026-10-31T15:00:00Z",
                "closed": "2026-11-01T00:30:00Z",
                "time_spent": "0.25",
            },
        ),
    ]
    assert (report.read, report.open) == (4, 1)
    assert report.rejected == [f"{SOURCES / 'topdesk_anmalningar.csv'}:5: Tidsåtgång: not a number: 'tre'"]
    events = [build_event("topdesk", mapper(), o, "ticket-incident", 1) for o in observations]
    assert [(e.id, e.to_wire()["time"], e.data.quantity) for e in events if e] == [
        ("2183-topdesk-I_2610_101", "2026-10-05T07:40:00Z", Decimal(1)),
        ("2183-topdesk-I_2610_102", "2026-11-01T00:30:00Z", Decimal(1)),
    ]


def test_dutch_topdesk_with_a_closed_flag(tmp_path: Path) -> None:
    export = tmp_path / "meldingen.csv"
    export.write_text(
        "Aanmeldingsnummer;Aanmelder;Afdeling;Categorie;Prioriteit;Soort melding;Datum aanmelding;"
        "Datum afgemeld;Afgemeld\n"
        "M2610 001;Jan;Socialförvaltningen;Hardware;P1;Telefoon;05-10-2026 08:12;05-10-2026 09:40;Ja\n"
        "M2610 002;Piet;Socialförvaltningen;Software;P2;E-mail;05-10-2026 10:00;;Nee\n"
        "M2610 003;Kees;Socialförvaltningen;Software;P2;E-mail;05-10-2026 10:00;;Ja\n",
        encoding="utf-8",
    )
    report = TicketReport()
    (ticket,) = observe_tickets(export, report)
    assert (ticket.entity, ticket.seen_at, ticket.attributes["channel"]) == (
        "M2610 001",
        datetime(2026, 10, 5, 7, 40, tzinfo=UTC),
        "phone",
    )
    assert (report.open, report.rejected) == (1, [f"{export}:4: Datum afgemeld: closed, but no closing time"])


def test_servicenow_and_jira_exports() -> None:
    report = TicketReport()
    (incident,) = observe_tickets(SOURCES / "servicenow_incidents.csv", report)
    assert incident == Observation(
        "INC0010001",
        "Socialförvaltningen",
        datetime(2026, 10, 5, 10, 0, tzinfo=UTC),
        attributes={
            "category": "network",
            "priority": "2 - High",
            "channel": "portal",
            "opened": "2026-10-05T05:00:00Z",
            "first_response": "2026-10-05T05:05:00Z",
            "closed": "2026-10-05T10:00:00Z",
        },
    )
    assert report.rejected == [
        f"{SOURCES / 'servicenow_incidents.csv'}:3: closed_at: Invalid isoformat string: 'not a date'"
    ]
    (request,) = observe_tickets(SOURCES / "jira_requests.csv", TicketReport(), tz=STOCKHOLM)
    assert (request.entity, request.seen_at, request.attributes) == (
        "ITS-101",
        datetime(2026, 10, 5, 12, 40, tzinfo=UTC),
        {
            "category": "Printing",
            "priority": "Medium",
            "channel": "e-mail",
            "opened": "2026-10-05T06:12:00Z",
            "closed": "2026-10-05T12:40:00Z",
        },
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-05 06:12:33.1234567", datetime(2026, 10, 5, 4, 12, 33, 123456, tzinfo=UTC)),
        ("2026-10-05T04:00:00Z", datetime(2026, 10, 5, 4, 0, tzinfo=UTC)),
        ("2026-10-05 06.12", datetime(2026, 10, 5, 4, 12, tzinfo=UTC)),
        ("05-10-2026 06:12", datetime(2026, 10, 5, 4, 12, tzinfo=UTC)),
        ("05/Oct/26 8:12 AM", datetime(2026, 10, 5, 6, 12, tzinfo=UTC)),
        ("05/okt/26 12:05 AM", datetime(2026, 10, 4, 22, 5, tzinfo=UTC)),
        ("31/Dec/26 12:40 PM", datetime(2026, 12, 31, 11, 40, tzinfo=UTC)),
    ],
)
def test_export_times(text: str, expected: datetime) -> None:
    assert parse_time(text, STOCKHOLM) == expected


def test_slash_dates_with_a_numeric_month_are_refused() -> None:
    with pytest.raises(ValueError, match="Invalid isoformat string"):
        parse_time("10/5/2026 6:12:33 AM", STOCKHOLM)


# --- storage -----------------------------------------------------------------------------------


def _sized(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)  # sparse: the size without the disk


def test_share_gib_per_top_level_folder_exact(tmp_path: Path) -> None:
    share = tmp_path / "share"
    _sized(share / "BUF" / "a" / "b" / "big.bin", 3 * 2**30)
    _sized(share / "BUF" / "half.bin", 2**29)
    _sized(share / "SOC" / "tiny", 537)  # 0.0000005001 GiB: half-up to 0.000001
    _sized(share / "KS" / "tinier", 536)
    (share / "KS" / "link").symlink_to(share / "BUF")
    (share / "BUF-link").symlink_to(share / "BUF")
    _sized(share / "loose.txt", 10)
    report = StorageReport()
    readings = observe_share(share, AT, report, label="//fil01/gemensam")
    assert [(r.observation.entity, r.observation.identifier, r.size, r.gib) for r in readings] == [
        ("//fil01/gemensam/BUF", "BUF", 3 * 2**30 + 2**29, Decimal("3.500000")),
        ("//fil01/gemensam/KS", "KS", 536, Decimal("0.000000")),
        ("//fil01/gemensam/SOC", "SOC", 537, Decimal("0.000001")),
    ]
    assert (report.unreadable, report.loose_bytes) == ([], 10)
    m = Mapper(
        load_mapping(SOURCES / "mapping_2183.yaml").model_copy(update={"cost_centres": {"buf": "BUF"}})
    )
    (event,) = [
        e for r in readings if (e := build_event("fileshare", m, r.observation, "storage-file", r.gib, DAY))
    ]
    assert event.to_wire()["data"] == {
        "municipality": "2183",
        "cost_centre": "BUF",
        "service": "storage-file",
        "subject": "//fil01/gemensam/BUF",
        "quantity": "3.5",
        "bytes": 3 * 2**30 + 2**29,
    }
    assert event.id == "2183-fileshare-_fil01_gemensam_BUF-BUF-2026-10-05"
    assert m.unmapped == {"KS": 1, "SOC": 1}


@given(st.integers(min_value=0, max_value=2**60))
def test_gib_is_half_up_at_six_decimals(size: int) -> None:
    exact = Decimal(size) / Decimal(2**30)
    assert gib(size) == exact.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    assert abs(gib(size) - exact) <= Decimal("0.0000005")


def test_an_unreadable_folder_is_reported_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _sized(tmp_path / "BUF" / "secret" / "f", 100)
    _sized(tmp_path / "BUF" / "open", 7)
    secret = str(tmp_path / "BUF" / "secret")
    real_scandir = os.scandir

    def scandir(path: str) -> Any:
        if str(path) == secret:  # as without the right to list it (tests may run as root)
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = StorageReport()
    (reading,) = observe_share(tmp_path, AT, report)
    assert reading.size == 7
    assert report.unreadable == [f"{secret}: Permission denied"]


# --- events ------------------------------------------------------------------------------------


def test_events_are_valid_usage_events_and_a_rerun_gives_the_same_ids() -> None:
    def run() -> list[bytes]:
        m = mapper()
        devices = observe_devices(SOURCES / "configmgr_devices.csv", AT, DeviceReport())
        tickets = observe_tickets(SOURCES / "topdesk_anmalningar.csv", TicketReport())
        built = [build_event("configmgr", m, o, "pc-standard", 1, DAY) for o in devices]
        built += [build_event("topdesk", m, o, "ticket-incident", 1) for o in tickets]
        return [to_message(e).value for e in built if e is not None]

    first, second = run(), run()
    assert first == second
    assert [json.loads(v)["id"] for v in first] == [
        "2183-configmgr-5CG1234ABC-BUF-2026-10-05",
        "2183-configmgr-5CG1234ABD-SOC-2026-10-05",
        "2183-topdesk-I_2610_101",
        "2183-topdesk-I_2610_102",
    ]
    wire = json.loads(first[0])
    assert wire["source"] == "urn:chargeback:collector:2183:configmgr"
    assert wire["time"] == "2026-10-05T06:00:00Z" and wire["data"]["quantity"] == "1"
    later = datetime(2026, 11, 2, tzinfo=UTC)  # the last ticket closed on 1 November
    for value in first:
        assert isinstance(validate_event(value, known=KNOWN, now=later, key=b"2183"), UsageEvent)
    assert to_message(UsageEvent.model_validate(wire)).key == b"2183"


def test_build_event_refuses_what_is_not_an_observation() -> None:
    with pytest.raises(ValueError, match="needs a time zone"):
        Observation("PC1", "BUF", datetime(2026, 10, 5, 6, 0))  # noqa: DTZ001
    observation = Observation("PC1", None, AT, attributes={"service": "other"})
    with pytest.raises(ValueError, match="may not replace the event's own fields: service"):
        build_event("devices", mapper(), observation, "pc-standard", 1, DAY)


def test_devices_keep_their_primary_user_where_the_export_names_one() -> None:
    intune = observe_devices(SOURCES / "intune_devices_standard.csv", AT, DeviceReport())
    assert [(o.entity, o.attributes["device_name"], o.attributes.get("subject_user")) for o in intune] == [
        ("BOL-VM0001", "BOL-VM0001", "svc-print@bollnas.se"),
        ("PF3ABC42", "BOL-PC0042", "anna.berg@bollnas.se"),
    ]
    jamf = observe_devices(SOURCES / "jamf_inventory.csv", AT, DeviceReport())
    assert [o.attributes.get("subject_user") for o in jamf] == ["bo"]
    event = build_event("intune", mapper(), intune[1], "pc-standard", 1, DAY)
    assert event is not None and event.data.attributes["subject_user"] == "anna.berg@bollnas.se"
