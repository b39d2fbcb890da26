"""``chargeback demo generate``: the members' exports in the collectors' real layouts, read back
with the collectors' own readers, with exact counts for the default seed."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from chargeback.period import Period
from collectors.events import build_event
from collectors.exports import read_table
from collectors.mapping import Mapper, load_mapping
from collectors.run import CollectorReport
from collectors.source import Skipped
from collectors.sources.devices import DeviceReport, observe_devices
from collectors.sources.licences import LicenceReport, observe_licences
from collectors.sources.storage import StorageReport, observe_share
from collectors.sources.tickets import TicketReport, observe_tickets
from demo.cli import demo
from demo.sources import (
    MEMBERS,
    STOCKHOLM,
    CollectTotals,
    Sizes,
    collector_runs,
    days_of,
    parse_months,
    plan_member,
    run_time,
    sizes_of,
)

OCTOBER = days_of([Period(2026, 10)])


@pytest.fixture(scope="module")
def nordanstig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Nordanstig's October 2026 with the default seed, written by the command itself."""
    root = tmp_path_factory.mktemp("demo-sources")
    result = CliRunner().invoke(
        demo, ["generate", "--months", "2026-10", "--to", str(root), "--municipality", "2132"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "wrote 466 files (7.4 MB; shares 94.6 TiB as sparse files) for 1 municipalities and 31 days "
        f"to {root}",
        "rows: intune 12376, jamf 29126, m365 24838, servicenow 300",
    ]
    return root / "2132"


def digest(folder: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        sha.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            sha.update(
                path.read_bytes() if path.stat().st_size < 2**24 else str(path.stat().st_size).encode()
            )
    return sha.hexdigest()


# --- sizes and months ----------------------------------------------------------------------------


def test_sizes_follow_inhabitants() -> None:
    # 8.5 % of inhabitants employed, a computer per two employees, a device per pupil (10 %),
    # 1,300 tickets a month per 4,000 employees: each rounded half-up.
    assert {m.code: (m.inhabitants, sizes_of(m.inhabitants)) for m in MEMBERS} == {
        "2121": (11300, Sizes(employees=961, computers=481, pupils=1130, tickets_per_month=312)),
        "2132": (9400, Sizes(employees=799, computers=400, pupils=940, tickets_per_month=260)),
        "2161": (19000, Sizes(employees=1615, computers=808, pupils=1900, tickets_per_month=525)),
        "2182": (25400, Sizes(employees=2159, computers=1080, pupils=2540, tickets_per_month=702)),
        "2183": (26500, Sizes(employees=2253, computers=1127, pupils=2650, tickets_per_month=732)),
        "2184": (37800, Sizes(employees=3213, computers=1607, pupils=3780, tickets_per_month=1044)),
    }


def test_every_member_lists_its_sizes_on_the_first_day_and_closes_its_tickets_in_the_month() -> None:
    first = OCTOBER[0]
    for member in MEMBERS:
        plan = plan_member(member, OCTOBER, 2183)
        sizes = member.sizes
        assert sum(d.listed(first) for d in plan.computers) == sizes.computers
        assert sum(d.listed(first) for d in plan.pupil_devices) == sizes.pupils
        assert sum(u.listed(first) and u.licences != "Unlicensed" for u in plan.users) == sizes.employees
        assert len(plan.tickets) == sizes.tickets_per_month
        assert {t.closed.astimezone(STOCKHOLM).date().month for t in plan.tickets} == {10}


def test_months_are_lists_ranges_or_both() -> None:
    assert [str(p) for p in parse_months("2026-12..2027-02, 2026-10,2027-01")] == [
        "2026-10",
        "2026-12",
        "2027-01",
        "2027-02",
    ]
    with pytest.raises(ValueError, match="ends before it starts"):
        parse_months("2026-11..2026-10")
    result = CliRunner().invoke(demo, ["generate", "--months", "oktober", "--to", "x"])
    assert result.exit_code == 2
    assert "Invalid value for --months: period must be YYYY-MM (for example 2026-10), not 'oktober'" in (
        result.output
    )


# --- the layout ----------------------------------------------------------------------------------


def test_layout_one_folder_per_day_with_each_system_export(nordanstig: Path) -> None:
    assert sorted(p.name for p in nordanstig.iterdir())[:2] == ["2026-10-01", "2026-10-02"]
    assert len([p for p in nordanstig.iterdir() if p.is_dir()]) == 31
    assert sorted(p.name for p in nordanstig.iterdir() if p.is_file()) == [
        "mapping-pupils.yaml",
        "mapping.yaml",
    ]
    day = nordanstig / "2026-10-05"
    assert sorted(p.name for p in day.iterdir()) == [
        "intune.csv",
        "jamf.csv",
        "m365-licensed-users.csv",
        "servicenow.csv",
        "share",
    ]
    intune = (day / "intune.csv").read_bytes()
    assert intune.startswith(b"\xef\xbb\xbfDevice name,Managed by,Ownership,Compliance,OS,OS version,")
    assert (day / "jamf.csv").read_bytes().startswith(b"Computer Name;Serial Number;Model;")
    assert read_table(day / "servicenow.csv").columns[:3] == ("number", "category", "priority")
    share = day / "share" / "BUF"
    sizes = [f.stat().st_size for f in sorted(share.rglob("*.dat"))]
    assert sizes == [369_694_764_611, 1_109_084_293_833]  # Aktuellt/dokument.dat, arkiv.dat: 3/4
    assert sum(f.stat().st_blocks for f in share.rglob("*.dat")) == 0  # sparse: nothing on disk


def test_the_same_seed_gives_the_same_bytes(nordanstig: Path, tmp_path: Path) -> None:
    again = CliRunner().invoke(
        demo,
        [
            "generate",
            "--months",
            "2026-10",
            "--to",
            str(tmp_path),
            "--municipality",
            "2132",
            "--seed",
            "2183",
        ],
    )
    assert again.exit_code == 0
    assert digest(tmp_path / "2132") == digest(nordanstig)
    other = CliRunner().invoke(
        demo,
        ["generate", "--months", "2026-10", "--to", str(tmp_path), "--municipality", "2132", "--seed", "7"],
    )
    assert other.exit_code == 0
    assert digest(tmp_path / "2132") != digest(nordanstig)


def test_configmgr_members_write_windows_1252_semicolons_and_ous(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        demo, ["generate", "--months", "2026-10", "--to", str(tmp_path), "--municipality", "2183"]
    )
    assert result.exit_code == 0
    export = tmp_path / "2183" / "2026-10-01" / "configmgr.csv"
    lines = export.read_bytes().split(b"\r\n")
    assert lines[0] == b"Name;Serial Number;Model;Operating System;Last Activity;Primary User;OU"
    assert b",OU=Bolln\xe4s,DC=kommun" in export.read_bytes()  # Windows-1252
    report = DeviceReport()
    observations = observe_devices(export, run_time(date(2026, 10, 1)), report)
    mapper = Mapper(load_mapping(tmp_path / "2183" / "mapping.yaml"))
    events = [build_event("devices", mapper, o, "pc-standard", 1, date(2026, 10, 1)) for o in observations]
    assert (report.read, report.stale, len(observations), report.rejected) == (1127, 9, 1118, [])
    assert Counter(e.data.cost_centre for e in events if e) == {"BUF": 518, "SOC": 379, "KS": 132, "SBF": 87}
    assert mapper.unmapped == {"OU=Datorer,OU=KoF,OU=Bollnäs,DC=kommun,DC=se": 2}
    topdesk = tmp_path / "2183" / "2026-10-01" / "topdesk.csv"
    assert topdesk.read_bytes().startswith("\ufeffNummer;Anmälare;Avdelning;Kategori;".encode())
    assert b";Avslutad;0,75\r\n" in topdesk.read_bytes()  # decimal commas


# --- read back with the collectors' readers --------------------------------------------------------


def test_device_observations_day_by_day(nordanstig: Path) -> None:
    per_day = []
    for day in OCTOBER:
        report = DeviceReport()
        observations = observe_devices(nordanstig / day.isoformat() / "intune.csv", run_time(day), report)
        assert report.rejected == []
        per_day.append((report.read, report.stale, report.duplicates, len(observations)))
    assert per_day[0] == (400, 6, 0, 394)  # 400 computers, 6 of them without a check-in for 30 days
    assert per_day[1] == (399, 6, 0, 393)  # one retired on the 2nd
    assert per_day[10] == (399, 6, 1, 392)  # a device moving on the 11th is listed twice, counted once
    assert per_day[30] == (402, 6, 0, 396)  # four newcomers during the month, two retired
    assert sum(n for *_, n in per_day) == 12188

    pupils = [DeviceReport() for _ in OCTOBER]
    counted = [
        len(observe_devices(nordanstig / day.isoformat() / "jamf.csv", run_time(day), report))
        for day, report in zip(OCTOBER, pupils, strict=True)
    ]
    assert (pupils[0].read, pupils[0].stale, counted[0]) == (940, 19, 921)
    assert (pupils[30].read, pupils[30].stale, counted[30]) == (941, 21, 920)  # two went inactive
    assert sum(counted) == 28493


def test_a_device_moving_cost_centre(nordanstig: Path) -> None:
    mapper = Mapper(load_mapping(nordanstig / "mapping.yaml"))

    def cost_centres(day: date) -> list[str]:
        report = DeviceReport()
        observations = observe_devices(nordanstig / day.isoformat() / "intune.csv", run_time(day), report)
        built = [build_event("devices", mapper, o, "pc-standard", 1, day) for o in observations]
        return [e.data.cost_centre for e in built if e and e.data.subject == "5CGD09700363"]

    moved = date(2026, 10, 11)
    rows = [
        line
        for line in (nordanstig / moved.isoformat() / "intune.csv").read_text("utf-8-sig").splitlines()
        if "5CGD09700363" in line
    ]
    # The inventory lists the device under both förvaltningar on the day it moves ...
    assert [row.rsplit(",", 1)[1] for row in rows] == ["Socialförvaltningen", "Kommunstyrelseförvaltningen"]
    # ... and the collector counts it once, under its latest check-in: per device and day, one id.
    assert cost_centres(moved - timedelta(days=1)) == ["SOC"]
    assert cost_centres(moved) == ["KS"]
    assert cost_centres(moved + timedelta(days=1)) == ["KS"]


def test_licences_unmapped_sku_and_unlicensed_accounts(nordanstig: Path) -> None:
    total, unmapped = 0, Counter[str]()
    for day in OCTOBER:
        mapper = Mapper(load_mapping(nordanstig / "mapping.yaml"))
        report = LicenceReport()
        seats = observe_licences(
            nordanstig / day.isoformat() / "m365-licensed-users.csv", mapper, run_time(day), report
        )
        total += len(seats)
        unmapped.update(mapper.unmapped)
        if day == OCTOBER[0]:
            assert (report.read, len(seats)) == (801, 799)  # 799 employees, 2 accounts without a licence
            assert {s.service for s in seats} == {"m365-e3"}
    assert total == 24776
    assert unmapped == {"SKU POWER_BI_PRO": 93}  # three users a day, reported, never guessed


def test_tickets_overlap_open_and_unmapped(nordanstig: Path) -> None:
    mapper = Mapper(load_mapping(nordanstig / "mapping.yaml"))
    seen: Counter[str] = Counter()
    read = still_open = 0
    for day in OCTOBER:
        report = TicketReport()
        for observation in observe_tickets(nordanstig / day.isoformat() / "servicenow.csv", report):
            seen[observation.entity] += 1
            build_event("tickets", mapper, observation, "ticket-incident", 1)
        assert report.rejected == []
        read, still_open = read + report.read, still_open + report.open
    assert (read, still_open) == (300, 37)
    assert len(seen) == 260  # 1,300 a month per 4,000 employees: 799 employees
    assert sum(n == 2 for n in seen.values()) == 3  # closed after 22:00: in two days' exports, one id
    assert mapper.unmapped == {"Kultur- och fritidsförvaltningen": 2}


def test_the_project_share_is_gone_after_its_day(nordanstig: Path) -> None:
    def readings(day: int) -> dict[str, Decimal]:
        moment = run_time(date(2026, 10, day))
        share = nordanstig / f"2026-10-{day:02d}" / "share"
        return {r.observation.identifier or "": r.gib for r in observe_share(share, moment, StorageReport())}

    assert readings(15) == {
        "BUF": Decimal("1404.546120"),
        "Gemensamt": Decimal("405.093000"),
        "KS": Decimal("374.545632"),
        "Projekt-Vindkraft": Decimal("350.128260"),
        "SBF": Decimal("224.727379"),
        "SOC": Decimal("540.462776"),
    }
    assert "Projekt-Vindkraft" not in readings(16)
    assert readings(31)["BUF"] == Decimal("1448.267400")  # 2.732580 GiB more each day
    mapper = Mapper(load_mapping(nordanstig / "mapping.yaml"))
    assert [mapper.cost_centre(f) for f in sorted(readings(15))] == ["BUF", "KS", "KS", "SBF", "SBF", "SOC"]


# --- the collector runs over the tree -------------------------------------------------------------


def test_collector_runs_per_member_and_day(nordanstig: Path) -> None:
    runs = list(collector_runs(nordanstig.parent, stable_share=True))
    assert len(runs) == 31 * 5
    first = runs[:5]
    day = nordanstig / "2026-10-01"
    at = datetime(2026, 10, 1, 4, 15, tzinfo=UTC)  # 06:15 in Stockholm (summer time)
    mapping, pupils = nordanstig / "mapping.yaml", nordanstig / "mapping-pupils.yaml"
    assert [(r.kind, r.reads, r.mapping, r.at) for r in first] == [
        ("devices", day / "intune.csv", mapping, at),
        ("pupil-devices", day / "jamf.csv", pupils, at),
        ("licences", day / "m365-licensed-users.csv", mapping, at),
        ("tickets", day / "servicenow.csv", mapping, None),
        ("storage", nordanstig / "share", mapping, at),
    ]
    assert [type(r.source()).__name__ for r in first] == [
        "DeviceSource",
        "DeviceSource",
        "LicenceSource",
        "TicketSource",
        "StorageSource",
    ]
    assert runs[-1].at == datetime(2026, 10, 31, 5, 15, tzinfo=UTC)  # winter time from the 25th


def test_collector_reports_are_added_up() -> None:
    totals = CollectTotals()
    totals.add(
        CollectorReport(
            400,
            392,
            392,
            0,
            unmapped={"Kultur- och fritidsförvaltningen": 2},
            skipped=(
                Skipped("inactive", 6, "inactive (no check-in for 30 days)"),
                Skipped("listed_twice", 1, "listed more than once (counted once)"),
            ),
        )
    )
    totals.add(CollectorReport(0, 0, 10, 0))
    assert totals.line("devices") == (
        "devices: 2 runs, read 400, emitted 402, spooled 0, rejected 0, unmapped 2, "
        "inactive 6, listed twice 1"
    )
    assert totals.unmapped_by_identifier == {"'Kultur- och fritidsförvaltningen'": 2}
    assert totals.exit_codes == {1: 1, 0: 1}
    # A run delivered with a warning for finance (exit code 3) counts its warnings.
    totals.add(CollectorReport(2, 2, 2, 0, finance=("the export has no cost-centre column: ...",)))
    assert totals.line("devices").endswith(", inactive 6, listed twice 1, warnings 1")
    assert totals.exit_codes == {1: 1, 0: 1, 3: 1}


def test_the_demo_ends_naming_each_members_report_and_specification(tmp_path: Path) -> None:
    from chargeback.catalogue import load_catalogue
    from demo.cli import demo_catalogue, member_files

    run = "2026-10-abc"
    # The demo's run is a draft: its specification files are named so.
    names = (f"{run}.html", f"{run}.2183.html", f"{run}.2183.draft.specification.xlsx", f"{run}.2184.html")
    for name in (*names, f"{run}.2184.draft.specification.csv", f"{run}.2182.specification.xlsx"):
        (tmp_path / name).write_text("x")
    assert member_files(tmp_path, run, load_catalogue(demo_catalogue())) == [
        f"overview: {tmp_path}/{run}.html",
        f"2182 Söderhamn: {tmp_path}/{run}.2182.specification.xlsx",
        f"2183 Bollnäs: {tmp_path}/{run}.2183.html, {tmp_path}/{run}.2183.draft.specification.xlsx",
        f"2184 Hudiksvall: {tmp_path}/{run}.2184.html, {tmp_path}/{run}.2184.draft.specification.csv",
    ]
