"""Demo source files: what the six Hälsingland members' collectors would read, day by day.

``chargeback demo generate`` writes, per municipality and per day the collectors run (06:15 in
Stockholm), the exports in the layouts the collectors read, plus the mapping files they need::

    DIR/<code>/mapping.yaml              staff devices, licences, tickets, file-share folders
    DIR/<code>/mapping-pupils.yaml       pupils' devices (schools -> BUF, billed as pupil-device)
    DIR/<code>/<yyyy-mm-dd>/intune.csv   or configmgr.csv: staff computers
    DIR/<code>/<yyyy-mm-dd>/jamf.csv     pupils' 1-1 devices
    DIR/<code>/<yyyy-mm-dd>/m365-licensed-users.csv
    DIR/<code>/<yyyy-mm-dd>/topdesk.csv  or servicenow.csv or jira.csv: the day's ticket export
    DIR/<code>/<yyyy-mm-dd>/share/<folder>/...   the file share, as sparse files

Sizes follow inhabitants: employees are 8.5 % of inhabitants, one computer per two employees,
one Microsoft 365 E3 seat per employee, a 1-1 device per pupil (10 % of inhabitants) and 1,300
closed tickets a month per 4,000 employees. The irregularities of real data are in it: devices
that check in only every few days, devices no longer checking in (inactive after 30 days),
devices added and retired mid-month, devices moving to another cost centre (listed twice on the
day they move, as inventories do after a re-enrolment), ticket exports that overlap, open
tickets, a file-share folder deleted mid-month and a few identifiers the mapping does not know.

Everything is drawn from ``random.Random`` seeded with the seed, municipality and kind, so the
same arguments always give the same bytes, and one municipality's files do not depend on which
others are generated.
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import yaml

from chargeback.errors import UserError
from chargeback.period import Period

if TYPE_CHECKING:
    from collectors.mapping import Mapping
    from collectors.run import CollectorReport
    from collectors.settings import CollectorSettings
    from collectors.source import Source

STOCKHOLM = ZoneInfo("Europe/Stockholm")
OSLO = ZoneInfo("Europe/Oslo")
RUN_TIME = time(6, 15)  # the members' scheduled collector runs, local time
GIB = 2**30

# (cost centre, förvaltning as the sources write it, per cent of employees)
DEPARTMENTS = (
    ("BUF", "Barn- och utbildningsförvaltningen", 45),
    ("SOC", "Socialförvaltningen", 35),
    ("KS", "Kommunstyrelseförvaltningen", 12),
    ("SBF", "Samhällsbyggnadsförvaltningen", 8),
)
UNMAPPED_DEPARTMENT = "Kultur- och fritidsförvaltningen"  # deliberately not in the mapping
UNMAPPED_SKU = "POWER_BI_PRO"
DELETED_FOLDER = "Projekt-Vindkraft"  # Nordanstig's project share, removed on the 16th
DELETED_IN = "2132"
SCHOOLS = (
    "Centralskolan",
    "Norrskolan",
    "Södra skolan",
    "Bergsskolan",
    "Älvskolan",
    "Kyrkskolan",
    "Ängsskolan",
    "Torpskolan",
    "Strandskolan",
    "Skogsskolan",
    "Björkskolan",
    "Hagaskolan",
)
FIRST_NAMES = (  # noqa: SIM905 (a list of names reads better as text)
    "Anna Eva Maria Karin Sara Lena Emma Kerstin Elin Linnea Ida Johanna Åsa Ingrid Malin Sofia "
    "Erik Lars Karl Anders Johan Per Nils Mikael Jan Olof Hans Lennart Björn Gustav Oskar Jonas"
).split()
LAST_NAMES = (  # noqa: SIM905
    "Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Gustafsson "
    "Pettersson Jonsson Berg Lind Ek Holm Sjöberg Wikström Hedlund Lundgren Engström Öberg Åström"
).split()


@dataclass(frozen=True)
class Region:
    """A reference deployment's members and how their sources write things: departments and
    their cost centres, time zone, names, domains and the service desk's language."""

    name: str
    tz: ZoneInfo
    departments: tuple[tuple[str, str, int], ...]  # cost centre, department name, per cent
    unmapped_department: str
    schools: tuple[str, ...]
    pupils_cost_centre: str
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    shared_folder: tuple[str, str]  # the share's common folder and its cost centre
    deleted: tuple[str, str, str]  # member, folder removed on the 16th, its cost centre
    domain: str  # e-mail and directory top-level domain
    printer: tuple[str, str]  # the service account's name and display name
    categories: tuple[str, ...]
    topdesk_header: tuple[str, ...]
    topdesk_status: tuple[str, str]  # closed, open
    topdesk_channels: tuple[tuple[str, str], ...]
    topdesk_time: str  # strftime format of TOPdesk's times
    ticket_prefix: str


@dataclass(frozen=True)
class Member:
    """A member municipality and the systems its collectors read."""

    code: str
    name: str
    inhabitants: int
    devices: str  # "intune" or "configmgr": the staff computers' inventory
    desk: str  # "topdesk", "servicenow" or "jira"
    region: str = "halsingland"

    @property
    def area(self) -> Region:
        """The member's region."""
        return REGIONS[self.region]

    @property
    def slug(self) -> str:
        """The name in ASCII, as in e-mail domains and directory names (``Söderhamn`` -> ``soderhamn``)."""
        return _ascii(self.name).lower()

    @property
    def sizes(self) -> Sizes:
        return sizes_of(self.inhabitants)


# The catalogue's six members; each exercises a different mix of export layouts.
MEMBERS = (
    Member("2121", "Ovanåker", 11300, "intune", "topdesk"),
    Member("2132", "Nordanstig", 9400, "intune", "servicenow"),
    Member("2161", "Ljusdal", 19000, "intune", "jira"),
    Member("2182", "Söderhamn", 25400, "configmgr", "topdesk"),
    Member("2183", "Bollnäs", 26500, "configmgr", "topdesk"),
    Member("2184", "Hudiksvall", 37800, "intune", "topdesk"),
)
# The Vesterålen members (Statistics Norway's codes; approximate inhabitants, 1 January 2024, as
# in demo/data/vesteralen/catalogue.yaml): Intune, Microsoft 365 and TOPdesk in Norwegian.
VESTERALEN_MEMBERS = (
    Member("1866", "Hadsel", 8060, "intune", "topdesk", "vesteralen"),
    Member("1867", "Bø", 2520, "intune", "topdesk", "vesteralen"),
    Member("1868", "Øksnes", 4560, "intune", "topdesk", "vesteralen"),
    Member("1870", "Sortland", 10900, "intune", "topdesk", "vesteralen"),
    Member("1871", "Andøy", 4530, "intune", "topdesk", "vesteralen"),
)
MEMBER_BY_CODE = {m.code: m for m in (*MEMBERS, *VESTERALEN_MEMBERS)}
REGION_MEMBERS = {"halsingland": MEMBERS, "vesteralen": VESTERALEN_MEMBERS}


@dataclass(frozen=True)
class Sizes:
    """What a member has on an ordinary day, and its tickets in a month."""

    employees: int
    computers: int
    pupils: int
    tickets_per_month: int


def _ratio(amount: int, numerator: int, denominator: int) -> int:
    """amount × numerator / denominator, rounded half-up, in integers."""
    return (2 * amount * numerator + denominator) // (2 * denominator)


def sizes_of(inhabitants: int) -> Sizes:
    """Employees 8.5 % of inhabitants, a computer per two employees, a 1-1 device per pupil (10 %
    of inhabitants), 1,300 tickets a month per 4,000 employees; each rounded half-up."""
    employees = _ratio(inhabitants, 85, 1000)
    return Sizes(
        employees=employees,
        computers=_ratio(employees, 1, 2),
        pupils=_ratio(inhabitants, 10, 100),
        tickets_per_month=_ratio(employees, 1300, 4000),
    )


def parse_months(text: str) -> list[Period]:
    """``2026-10``, ``2026-10,2026-12`` or a range ``2026-10..2027-01`` (mixable), sorted."""
    months: set[Period] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        first, sep, last = part.partition("..")
        start = Period.parse(first)
        end = Period.parse(last) if sep else start
        if end < start:
            raise ValueError(f"the range {part!r} ends before it starts")
        while start <= end:
            months.add(start)
            start = start.next()
    if not months:
        raise ValueError("give at least one month, e.g. 2026-10")
    return sorted(months)


def days_of(months: Iterable[Period]) -> list[date]:
    """Every day of the months, in order."""
    return [p.first_day + timedelta(days=i) for p in sorted(set(months)) for i in range(p.days)]


def run_time(day: date, tz: ZoneInfo = STOCKHOLM) -> datetime:
    """When the members' collectors run on a day: 06:15 local time (Stockholm, or the region's
    ``tz``), as aware UTC."""
    return datetime.combine(day, RUN_TIME, tz).astimezone(UTC)


# --- the population ----------------------------------------------------------------------------


_ASCII = str.maketrans(
    {"å": "a", "ä": "a", "ö": "o", "ø": "o", "æ": "ae", "é": "e"}
    | {"Å": "A", "Ä": "A", "Ö": "O", "Ø": "O", "Æ": "AE", "É": "E"}
)


def _ascii(text: str) -> str:
    return text.translate(_ASCII)


def _department(index: int, departments: Sequence[tuple[str, str, int]] = DEPARTMENTS) -> int:
    """The department of the index-th employee or computer: the departments' shares, exactly per 100."""
    slot = index % 100
    for n, (_cc, _name, share) in enumerate(departments):
        if slot < share:
            return n
        slot -= share
    raise AssertionError("the department shares add up to 100")


@dataclass
class Device:
    """One device in an inventory and how it behaves over the generated days."""

    serial: str
    name: str
    identifier: str  # department, OU or school as the inventory writes it
    user: str
    model: str
    check_in: int  # seconds after local midnight of its usual check-in
    every: int = 1  # checks in every n days (1: daily)
    phase: int = 0
    last_seen: datetime | None = None  # no longer checking in since (aware)
    start: date | None = None  # enrolled that day
    end: date | None = None  # retired: not listed from that day
    move: tuple[date, str] | None = None  # (day, new identifier)
    tz: ZoneInfo = STOCKHOLM  # the inventory's local time

    def listed(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and (self.end is None or day < self.end)

    def identifier_on(self, day: date) -> str:
        if self.move is not None and day >= self.move[0]:
            return self.move[1]
        return self.identifier

    def last_check_in(self, day: date) -> datetime:
        """The last check-in the inventory shows at the run of ``day`` (aware)."""
        if self.last_seen is not None:
            return self.last_seen
        if self.every == 1 and self.check_in < 6 * 3600:  # checks in early, before the run
            seen = day
        else:
            previous = day - timedelta(days=1)
            seen = previous - timedelta(days=(previous.toordinal() + self.phase) % self.every)
        if self.start is not None and seen < self.start - timedelta(days=1):
            seen = self.start - timedelta(days=1)
        return datetime.combine(seen, time(0), self.tz) + timedelta(seconds=self.check_in)


@dataclass
class User:
    """A licensed user."""

    upn: str
    display_name: str
    department: str
    licences: str
    start: date | None = None
    end: date | None = None

    def listed(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and (self.end is None or day < self.end)


@dataclass(frozen=True)
class Ticket:
    """A service-desk ticket; ``closed`` None while it is open."""

    number: str
    department: str
    category: str
    priority: int  # 1..4
    channel: str  # phone, e-mail, portal
    opened: datetime
    first_response: datetime | None
    closed: datetime
    hours_spent: str  # e.g. "1.5"


@dataclass
class Plan:
    """One member's generated world over the days: what each day's exports list."""

    member: Member
    days: list[date]
    computers: list[Device] = field(default_factory=list)
    pupil_devices: list[Device] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    folders: dict[str, tuple[int, int, date | None]] = field(default_factory=dict)  # base, growth/day, gone

    def folder_sizes(self, day: date) -> dict[str, int]:
        """Bytes per top-level folder of the share on a day."""
        first = self.days[0]
        return {
            name: base + growth * (day - first).days
            for name, (base, growth, gone) in sorted(self.folders.items())
            if gone is None or day < gone
        }


def plan_member(member: Member, days: Sequence[date], seed: int) -> Plan:
    """The member's devices, users, tickets and share over the days, drawn from the seed."""
    plan = Plan(member, list(days))
    plan.computers = _computers(member, plan.days, random.Random(f"{seed}:{member.code}:computers"))
    plan.pupil_devices = _pupil_devices(member, plan.days, random.Random(f"{seed}:{member.code}:pupils"))
    plan.users = _users(member, plan.days, random.Random(f"{seed}:{member.code}:users"))
    plan.tickets = _tickets(member, plan.days, random.Random(f"{seed}:{member.code}:tickets"))
    plan.folders = _folders(member, plan.days, random.Random(f"{seed}:{member.code}:share"))
    return plan


def _ou(member: Member, cost_centre: str) -> str:
    return f"OU={cost_centre},OU={member.name},DC=kommun,DC=se"


def _staff_identifier(member: Member, department: int) -> str:
    cost_centre, name, _share = member.area.departments[department]
    return f"OU=Datorer,{_ou(member, cost_centre)}" if member.devices == "configmgr" else name


def _unmapped_identifier(member: Member) -> str:
    if member.devices == "configmgr":
        return f"OU=Datorer,OU=KoF,OU={member.name},DC=kommun,DC=se"
    return member.area.unmapped_department


def _behaviour(device: Device, rng: random.Random, first: date, lost: float, sometimes: float) -> None:
    """Daily check-ins mostly; some every few days (late check-ins); some no longer at all."""
    draw = rng.random()
    if draw < lost:  # lost, broken or in a drawer: inactive 30 days after its last check-in
        back = timedelta(days=rng.randrange(10, 120), seconds=device.check_in)
        device.last_seen = datetime.combine(first, time(0), device.tz) - back
    elif draw < lost + sometimes:
        device.every, device.phase = rng.randrange(2, 13), rng.randrange(12)


def _computers(member: Member, days: list[date], rng: random.Random) -> list[Device]:
    count = member.sizes.computers
    region = member.area
    prefix = member.slug[:3].upper()
    models = (
        ("HP EliteBook 840 G8", "5CG"),
        ("Lenovo ThinkPad T14 Gen 3", "PF"),
        ("Dell Latitude 5440", "DL"),
    )
    devices = []
    for n in range(count + max(2, count // 100)):  # the ordinary fleet and the month's newcomers
        model, serial_prefix = models[n % len(models)]
        first_names, last_names = region.first_names, region.last_names
        first_name, last_name = first_names[rng.randrange(len(first_names))], last_names[n % len(last_names)]
        device = Device(
            serial=f"{serial_prefix}{rng.randrange(16**4):04X}{n:05d}",
            name=f"{prefix}-PC{n:05d}",
            identifier=_staff_identifier(member, _department(n, region.departments)),
            user=f"{_ascii(first_name).lower()}.{_ascii(last_name).lower()}{n}@{member.slug}.{region.domain}",
            model=model,
            check_in=rng.randrange(4 * 3600 + 30 * 60, 21 * 3600),
            tz=region.tz,
        )
        if n >= count:
            device.start = days[rng.randrange(1, len(days))]
        else:
            _behaviour(device, rng, days[0], lost=0.015, sometimes=0.06)
        devices.append(device)
    ordinary = [n for n, d in enumerate(devices[:count]) if d.every == 1 and d.last_seen is None]
    moving = max(2, count // 250)
    chosen = rng.sample(ordinary, moving + 2 + max(1, count // 200))
    for n in chosen[:moving]:  # to another cost centre, mid-month
        departments = region.departments
        new_identifier = _staff_identifier(member, (_department(n, departments) + 1) % len(departments))
        devices[n].move = (days[rng.randrange(1, len(days))], new_identifier)
    for n in chosen[moving : moving + 2]:  # in a department the mapping does not know
        devices[n].identifier = _unmapped_identifier(member)
    for n in chosen[moving + 2 :]:  # retired mid-month
        devices[n].end = days[rng.randrange(1, len(days))]
    return devices


def _pupil_devices(member: Member, days: list[date], rng: random.Random) -> list[Device]:
    count = member.sizes.pupils
    schools = _schools(member)
    prefix = member.slug[:3].upper()
    devices = []
    for n in range(count + max(2, count // 200)):
        device = Device(
            serial=f"C02{rng.randrange(16**4):04X}{n:05d}",
            name=f"{prefix}-ELEV{n:05d}",
            identifier=schools[n % len(schools)],
            user=f"elev{member.code}{n:05d}",
            model="MacBook Air (M1, 2020)" if n % 3 else "MacBook Air (M2, 2022)",
            check_in=rng.randrange(7 * 3600, 20 * 3600),
            tz=member.area.tz,
        )
        if n >= count:
            device.start = days[rng.randrange(1, len(days))]
        else:
            _behaviour(device, rng, days[0], lost=0.02, sometimes=0.12)
        devices.append(device)
    for device in rng.sample(devices[:count], max(1, count // 300)):  # pupils who moved away
        device.end = days[rng.randrange(1, len(days))]
    return devices


def _schools(member: Member) -> tuple[str, ...]:
    schools = member.area.schools
    return schools[: max(2, min(len(schools), _ratio(member.sizes.pupils, 1, 350)))]


def _users(member: Member, days: list[date], rng: random.Random) -> list[User]:
    count = member.sizes.employees
    region = member.area
    users = []
    for n in range(count + max(2, count // 150)):
        first_name = region.first_names[rng.randrange(len(region.first_names))]
        last_name = region.last_names[rng.randrange(len(region.last_names))]
        user = User(
            upn=f"{_ascii(first_name).lower()}.{_ascii(last_name).lower()}{n}@{member.slug}.{region.domain}",
            display_name=f"{first_name} {last_name}",
            department=region.departments[_department(n, region.departments)][1],
            licences="SPE_E3",
        )
        if n >= count:  # hired mid-month
            user.start = days[rng.randrange(1, len(days))]
        users.append(user)
    for user in rng.sample(users[:count], max(1, count // 150)):  # left mid-month
        user.end = days[rng.randrange(1, len(days))]
    for user in rng.sample(users[:count], 3):  # a SKU the mapping does not name
        user.licences = f"SPE_E3+{UNMAPPED_SKU}"
    for n in range(2):  # accounts without a licence are listed too
        account, display = region.printer
        users.append(User(f"{account}{n}@{member.slug}.{region.domain}", f"{display} {n}", "", "Unlicensed"))
    return users


CATEGORIES = ("Hårdvara", "Programvara", "Konto och behörighet", "Nätverk", "Skrivare", "Telefoni")


def _tickets(member: Member, days: list[date], rng: random.Random) -> list[Ticket]:
    """Closed tickets by closing day: weekdays ten times as many as weekend days, the month's
    total exact; opened in opening hours the same day or up to three days before."""
    tickets: list[Ticket] = []
    per_month = member.sizes.tickets_per_month
    by_month: dict[tuple[int, int], list[date]] = {}
    for day in days:
        by_month.setdefault((day.year, day.month), []).append(day)
    for month_days in by_month.values():
        counts = _spread(per_month, [10 if d.isoweekday() <= 5 else 1 for d in month_days])
        for day, count in zip(month_days, counts, strict=True):
            for _ in range(count):
                tickets.append(_ticket(member, day, len(tickets), rng))
    return tickets


def _spread(total: int, weights: list[int]) -> list[int]:
    """``total`` split by weights, largest remainder first (ties to the earlier day)."""
    whole = sum(weights)
    parts = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _ticket(member: Member, day: date, n: int, rng: random.Random) -> Ticket:
    channel = rng.choices(("phone", "e-mail", "portal"), weights=(5, 3, 2))[0]
    priority = rng.choices((1, 2, 3, 4), weights=(1, 4, 12, 3))[0]
    answer = (
        timedelta(seconds=rng.randrange(15, 150))
        if channel == "phone"
        else timedelta(minutes=rng.randrange(5, 240))
    )
    lag = 0 if rng.random() < 0.8 else rng.randrange(1, 4)
    opened_day = day - timedelta(days=lag)
    region = member.area
    tz = region.tz
    opened = datetime.combine(opened_day, time(8), tz) + timedelta(minutes=rng.randrange(7 * 60))
    if rng.random() < 0.02:  # the on-call desk closes one late in the evening
        closed = datetime.combine(day, time(22), tz) + timedelta(minutes=rng.randrange(1, 119))
    elif lag == 0:
        closed = opened + answer + timedelta(minutes=rng.randrange(2, 25 if rng.random() < 0.87 else 360))
    else:
        closed = datetime.combine(day, time(8), tz) + timedelta(minutes=rng.randrange(9 * 60))
    first_response = opened + answer if opened + answer < closed else None
    departments = region.departments
    weights = [share for _cc, _name, share in departments]
    department = (
        region.unmapped_department
        if rng.random() < 0.01
        else departments[rng.choices(range(4), weights)[0]][1]
    )
    quarter_hours = rng.randrange(1, 17)
    return Ticket(
        number=_ticket_number(member, day, n),
        department=department,
        category=region.categories[rng.randrange(len(region.categories))],
        priority=priority,
        channel=channel,
        opened=opened,
        first_response=first_response,
        closed=closed,
        hours_spent=str(quarter_hours / 4).removesuffix(".0"),
    )


def _ticket_number(member: Member, day: date, n: int) -> str:
    month_number = (day.year - 2000) * 12 + day.month  # numbers never repeat across months
    if member.desk == "servicenow":
        return f"INC{month_number:03d}{n:05d}"
    if member.desk == "jira":
        return f"HD-{month_number * 10000 + n}"
    return f"{member.area.ticket_prefix} {day:%y%m} {n:04d}"


def _folders(member: Member, days: list[date], rng: random.Random) -> dict[str, tuple[int, int, date | None]]:
    """A folder per cost centre and a shared one; sizes in proportion to employees, growing daily."""
    employees = member.sizes.employees
    region = member.area
    folders: dict[str, tuple[int, int, date | None]] = {}
    for cost_centre, _name, share in region.departments:
        base = employees * share * rng.randrange(150, 400) * GIB // 10000  # 1.5-4 GiB per employee
        folders[cost_centre] = (base, base // 500, None)
    folders[region.shared_folder[0]] = (employees * GIB // 2, employees * GIB // 2000, None)
    deleted_in, deleted_folder, _cost_centre = region.deleted
    if member.code == deleted_in:
        first = days[0]
        folders[deleted_folder] = (350 * GIB + rng.randrange(GIB), 0, first.replace(day=16))
    return folders


# --- writing -----------------------------------------------------------------------------------


@dataclass
class Written:
    """What ``write_sources`` wrote."""

    files: int = 0
    bytes_on_disk: int = 0
    apparent_share_bytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # per export kind


def write_sources(
    root: Path,
    months: Sequence[Period],
    *,
    seed: int = 2183,
    codes: Sequence[str] = (),
    region: str = "halsingland",
) -> Written:
    """Write the members' (all of the region's, or ``codes``) exports for every day of the months
    under ``root`` (replacing what an earlier run wrote for those members), and their mapping files."""
    members = [MEMBER_BY_CODE[c] for c in codes] if codes else list(REGION_MEMBERS[region])
    days = days_of(months)
    root.mkdir(parents=True, exist_ok=True)
    _check_sparse(root)
    written = Written()
    for member in members:
        folder = root / member.code
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        plan = plan_member(member, days, seed)
        _put(folder / "mapping.yaml", mapping_text(member).encode(), written)
        _put(folder / "mapping-pupils.yaml", pupil_mapping_text(member).encode(), written)
        for day in days:
            _write_day(plan, day, folder / day.isoformat(), written)
    return written


def _put(path: Path, data: bytes, written: Written, kind: str = "", rows: int = 0) -> None:
    path.write_bytes(data)
    written.files += 1
    written.bytes_on_disk += len(data)
    if kind:
        written.rows[kind] = written.rows.get(kind, 0) + rows


def _write_day(plan: Plan, day: date, folder: Path, written: Written) -> None:
    folder.mkdir()
    member = plan.member
    kind = member.devices
    data, rows = device_export(kind, plan.computers, day, member.area.tz)
    _put(folder / f"{kind}.csv", data, written, kind, rows)
    data, rows = device_export("jamf", plan.pupil_devices, day, member.area.tz)
    _put(folder / "jamf.csv", data, written, "jamf", rows)
    data, rows = licence_export(plan.users, day)
    _put(folder / "m365-licensed-users.csv", data, written, "m365", rows)
    data, rows = ticket_export(member.desk, plan.tickets, day, member.area)
    _put(folder / f"{member.desk}.csv", data, written, member.desk, rows)
    share = folder / "share"
    share.mkdir()
    for name, size in plan.folder_sizes(day).items():
        (share / name).mkdir()
        archive = size * 3 // 4  # one older file and one current: a folder is a tree, not a file
        _sparse(share / name / "arkiv.dat", archive)
        (share / name / "Aktuellt").mkdir()
        _sparse(share / name / "Aktuellt" / "dokument.dat", size - archive)
        written.files += 2
        written.apparent_share_bytes += size


def _sparse(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        handle.truncate(size)


def _check_sparse(root: Path) -> None:
    """Refuse a file system that would fill the holes of the share's sparse files with zeros."""
    probe = root / ".sparse-probe"
    try:
        _sparse(probe, 64 * 2**20)
        allocated = os.stat(probe).st_blocks * 512
    finally:
        probe.unlink(missing_ok=True)
    if allocated >= 32 * 2**20:
        raise UserError(
            f"{root} is on a file system without sparse files; the demo shares would take their "
            "full size (terabytes): choose a folder on ext4, xfs, btrfs, APFS or NTFS"
        )


def _csv(rows: Iterable[Sequence[str]], delimiter: str, header: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


INTUNE_HEADER = [
    "Device name",
    "Managed by",
    "Ownership",
    "Compliance",
    "OS",
    "OS version",
    "Last check-in",
    "Primary user UPN",
    "Serial number",
    "Model",
    "Manufacturer",
    "Device category",
]
CONFIGMGR_HEADER = [
    "Name",
    "Serial Number",
    "Model",
    "Operating System",
    "Last Activity",
    "Primary User",
    "OU",
]
JAMF_HEADER = [
    "Computer Name",
    "Serial Number",
    "Model",
    "Operating System Version",
    "Last Check-in",
    "Department",
    "Username",
]


def device_export(
    kind: str, devices: Sequence[Device], day: date, tz: ZoneInfo = STOCKHOLM
) -> tuple[bytes, int]:
    """The inventory as ``kind`` (intune, configmgr, jamf) exports it at the run of ``day``, and
    its number of rows: Intune UTF-8 with BOM, UTC check-ins with seven decimals; Configuration
    Manager Windows-1252 with semicolons, local minutes and an OU column; Jamf semicolons, local."""
    rows = []
    for device in devices:
        if not device.listed(day):
            continue
        records = [(device.identifier_on(day), device.last_check_in(day))]
        if device.move is not None and device.move[0] == day:  # the old record is still listed
            old = datetime.combine(day - timedelta(days=2), time(12), tz)
            records.insert(0, (device.identifier, old))
        for identifier, seen in records:
            rows.append(_device_row(kind, device, identifier, seen, tz))
    if kind == "intune":
        return b"\xef\xbb\xbf" + _csv(rows, ",", INTUNE_HEADER).encode("utf-8"), len(rows)
    if kind == "configmgr":
        return _csv(rows, ";", CONFIGMGR_HEADER).encode("cp1252"), len(rows)
    return _csv(rows, ";", JAMF_HEADER).replace("\r\n", "\n").encode("utf-8"), len(rows)


def _device_row(kind: str, device: Device, identifier: str, seen: datetime, tz: ZoneInfo) -> list[str]:
    if kind == "intune":
        utc = seen.astimezone(UTC)
        manufacturer = device.model.split()[0]
        return [
            device.name,
            "Intune",
            "Corporate",
            "Compliant",
            "Windows",
            "10.0.22631.4317",
            f"{utc:%Y-%m-%d %H:%M:%S}.0000000",
            device.user,
            device.serial,
            device.model.removeprefix(manufacturer + " "),
            manufacturer,
            identifier,
        ]
    local = seen.astimezone(tz)
    if kind == "configmgr":
        account = device.user.split("@")[0]
        return [
            device.name,
            device.serial,
            device.model,
            "Microsoft Windows 11 Enterprise",
            f"{local:%Y-%m-%d %H:%M}",
            f"KOMMUN\\{account}",
            identifier,
        ]
    return [
        device.name,
        device.serial,
        device.model,
        "14.6.1",
        f"{local:%Y-%m-%d %H:%M:%S}",
        identifier,
        device.user,
    ]


def licence_export(users: Sequence[User], day: date) -> tuple[bytes, int]:
    """The Microsoft 365 admin centre's "Licensed users" CSV of ``day``, and its number of rows."""
    rows = [[u.display_name, u.upn, u.department, u.licences] for u in users if u.listed(day)]
    header = ["Display name", "User principal name", "Department", "Licenses"]
    return _csv(rows, ",", header).encode("utf-8"), len(rows)


TOPDESK_HEADER = [
    "Nummer",
    "Anmälare",
    "Avdelning",
    "Kategori",
    "Prioritet",
    "Anmälningssätt",
    "Anmälningsdatum",
    "Första svar",
    "Avslutad datum",
    "Status",
    "Tidsåtgång",
]
SERVICENOW_HEADER = [
    "number",
    "category",
    "priority",
    "contact_type",
    "u_department",
    "opened_at",
    "u_first_response",
    "resolved_at",
    "state",
]
JIRA_HEADER = [
    "Issue key",
    "Issue Type",
    "Priority",
    "Custom field (Category)",
    "Custom field (Channel)",
    "Custom field (Department)",
    "Created",
    "Custom field (First response)",
    "Resolved",
    "Status",
]
_CHANNEL_NAMES = {
    "topdesk": {"phone": "Telefon", "e-mail": "E-post", "portal": "Självservice"},
    "servicenow": {"phone": "phone", "e-mail": "email", "portal": "self-service"},
    "jira": {"phone": "Phone", "e-mail": "Email", "portal": "Portal"},
}
_SERVICENOW_PRIORITY = {1: "1 - Critical", 2: "2 - High", 3: "3 - Moderate", 4: "4 - Low"}

REGIONS = {
    "halsingland": Region(
        name="Hälsingland",
        tz=STOCKHOLM,
        departments=DEPARTMENTS,
        unmapped_department=UNMAPPED_DEPARTMENT,
        schools=SCHOOLS,
        pupils_cost_centre="BUF",
        first_names=tuple(FIRST_NAMES),
        last_names=tuple(LAST_NAMES),
        shared_folder=("Gemensamt", "KS"),
        deleted=(DELETED_IN, DELETED_FOLDER, "SBF"),
        domain="se",
        printer=("svc-skrivare", "Skrivartjänst"),
        categories=CATEGORIES,
        topdesk_header=tuple(TOPDESK_HEADER),
        topdesk_status=("Avslutad", "Pågående"),
        topdesk_channels=tuple(_CHANNEL_NAMES["topdesk"].items()),
        topdesk_time="%Y-%m-%d %H:%M",
        ticket_prefix="I",
    ),
    "vesteralen": Region(
        name="Vesterålen",
        tz=OSLO,
        departments=(
            ("OPPV", "Oppvekst og kultur", 45),
            ("HELSE", "Helse og omsorg", 35),
            ("ADM", "Administrasjon", 12),
            ("TEKN", "Teknisk drift", 8),
        ),
        unmapped_department="Næring og samfunn",
        schools=(
            "Sentrum skole",
            "Nordstrand skole",
            "Holmen skole",
            "Strand skole",
            "Fjellbygda skole",
            "Bygda skole",
            "Kirkegata skole",
            "Havna skole",
            "Myra skole",
            "Lia skole",
            "Haugen skole",
            "Elvebakken skole",
        ),
        pupils_cost_centre="OPPV",
        first_names=tuple(
            (  # noqa: SIM905 (a list of names reads better as text)
                "Kari Ingrid Anne Marit Liv Hilde Silje Ida Nora Emma Sofie Ragnhild Tone Mona Åse Solveig "
                "Ola Per Lars Knut Jan Bjørn Arne Hans Tor Erik Geir Odd Magnus Jonas Sindre Øyvind"
            ).split()
        ),
        last_names=tuple(
            (  # noqa: SIM905
                "Hansen Johansen Olsen Larsen Andersen Pedersen Nilsen Kristiansen Jensen Karlsen "
                "Johnsen Pettersen Eriksen Berg Haugen Hagen Johannessen Andreassen Jacobsen Dahl "
                "Jørgensen Halvorsen"
            ).split()
        ),
        shared_folder=("Felles", "ADM"),
        deleted=("1867", "Prosjekt-Vindkraft", "TEKN"),
        domain="no",
        printer=("svc-skriver", "Skrivertjeneste"),
        categories=("Maskinvare", "Programvare", "Konto og tilgang", "Nettverk", "Skriver", "Telefoni"),
        topdesk_header=(
            "Meldingsnummer",
            "Melder",
            "Avdeling",
            "Kategori",
            "Prioritet",
            "Meldingsmåte",
            "Meldingsdato",
            "Første svar",
            "Avsluttet dato",
            "Status",
            "Tidsbruk",
        ),
        topdesk_status=("Avsluttet", "Pågår"),
        topdesk_channels=(("phone", "Telefon"), ("e-mail", "E-post"), ("portal", "Selvbetjening")),
        topdesk_time="%d.%m.%Y %H:%M",
        ticket_prefix="M",
    ),
}


def tickets_of_day(
    tickets: Sequence[Ticket], day: date, tz: ZoneInfo = STOCKHOLM
) -> tuple[list[Ticket], list[Ticket]]:
    """The tickets a day's export lists: (closed from 22:00 the day before to the end of the day
    — exports overlap by two hours, as scheduled exports do — and still open at the end of it)."""
    start = datetime.combine(day - timedelta(days=1), time(22), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    closed = [t for t in tickets if start <= t.closed < end]
    still_open = [t for t in tickets if t.opened < end <= t.closed and t.opened >= end - timedelta(days=1)]
    return closed, still_open


def ticket_export(
    desk: str, tickets: Sequence[Ticket], day: date, region: Region | None = None
) -> tuple[bytes, int]:
    """The desk's export of ``day`` (tickets closed since 22:00 the day before, and those opened
    that day and still open), and its number of rows. TOPdesk: Swedish headers, semicolons,
    UTF-8 with BOM, local minutes, decimal commas; ServiceNow: local seconds; Jira: ``05/Oct/26
    8:12 AM``. The region (default Hälsingland) sets the time zone and TOPdesk's language: in
    Vesterålen Norwegian headers and ``05.10.2026 08:12``."""
    region = region or REGIONS["halsingland"]
    closed, still_open = tickets_of_day(tickets, day, region.tz)
    rows = [_ticket_row(desk, t, True, region) for t in closed] + [
        _ticket_row(desk, t, False, region) for t in still_open
    ]
    if desk == "topdesk":
        return b"\xef\xbb\xbf" + _csv(rows, ";", region.topdesk_header).encode("utf-8"), len(rows)
    header = SERVICENOW_HEADER if desk == "servicenow" else JIRA_HEADER
    return _csv(rows, ",", header).encode("utf-8"), len(rows)


def _ticket_row(desk: str, ticket: Ticket, is_closed: bool, region: Region) -> list[str]:
    channel = _CHANNEL_NAMES[desk][ticket.channel]
    tz = region.tz
    opened, answered = ticket.opened.astimezone(tz), ticket.first_response
    local_answer = answered.astimezone(tz) if answered else None
    closed = ticket.closed.astimezone(tz)
    if desk == "topdesk":
        channel = dict(region.topdesk_channels)[ticket.channel]
        when = region.topdesk_time
        return [
            ticket.number,
            "",
            ticket.department,
            ticket.category,
            f"P{ticket.priority}",
            channel,
            opened.strftime(when),
            local_answer.strftime(when) if local_answer else "",
            closed.strftime(when) if is_closed else "",
            region.topdesk_status[0] if is_closed else region.topdesk_status[1],
            ticket.hours_spent.replace(".", ",") if is_closed else "",
        ]
    if desk == "servicenow":
        return [
            ticket.number,
            ticket.category,
            _SERVICENOW_PRIORITY[ticket.priority],
            channel,
            ticket.department,
            f"{opened:%Y-%m-%d %H:%M:%S}",
            f"{local_answer:%Y-%m-%d %H:%M:%S}" if local_answer else "",
            f"{closed:%Y-%m-%d %H:%M:%S}" if is_closed else "",
            "Resolved" if is_closed else "In Progress",
        ]
    return [
        ticket.number,
        "Incident",
        f"P{ticket.priority}",
        ticket.category,
        channel,
        ticket.department,
        _jira_time(opened),
        _jira_time(local_answer) if local_answer else "",
        _jira_time(closed) if is_closed else "",
        "Resolved" if is_closed else "In Progress",
    ]


def _jira_time(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    month = _MONTH_ABBREVIATIONS[moment.month - 1]  # Jira's English names, whatever the locale
    return f"{moment.day:02d}/{month}/{moment:%y} {hour}:{moment:%M} {'AM' if moment.hour < 12 else 'PM'}"


_MONTH_ABBREVIATIONS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


# --- mapping files -----------------------------------------------------------------------------


def mapping_text(member: Member) -> str:
    """The member's collector mapping: förvaltningar (and their OUs), share folders, the E3 SKU."""
    cost_centres: dict[str, str] = {}
    region = member.area
    for cost_centre, name, _share in region.departments:
        cost_centres[name] = cost_centre
        if member.devices == "configmgr":
            cost_centres[_ou(member, cost_centre)] = cost_centre
    for cost_centre, _name, _share in region.departments:
        cost_centres[cost_centre] = cost_centre  # the share's folder of each förvaltning
    cost_centres[region.shared_folder[0]] = region.shared_folder[1]
    deleted_in, deleted_folder, deleted_cost_centre = region.deleted
    if member.code == deleted_in:
        cost_centres[deleted_folder] = deleted_cost_centre
    document = {
        "municipality": member.code,
        "cost_centres": cost_centres,
        "services": {"device": "pc-standard", "ticket": "ticket-incident", "storage": "storage-file"},
        "skus": {"SPE_E3": "m365-e3"},
    }
    head = f"# {member.name}'s collector mapping: source identifiers to cost centres, SKUs to services.\n"
    return head + yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=120)


def pupil_mapping_text(member: Member) -> str:
    """The mapping of the pupils' device inventory: every school to the schools' cost centre
    (BUF; OPPV in Vesterålen), billed as pupil-device."""
    cost_centre = member.area.pupils_cost_centre
    document = {
        "municipality": member.code,
        "cost_centres": dict.fromkeys(_schools(member), cost_centre),
        "services": {"device": "pupil-device"},
    }
    head = f"# {member.name}'s pupils' devices (Jamf): each school's devices to {cost_centre}.\n"
    return head + yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=120)


# --- what a collector run reads -------------------------------------------------------------------


@dataclass(frozen=True)
class CollectorRun:
    """One scheduled collector run over a generated file: its kind, what it reads and its mapping."""

    code: str
    day: date
    kind: str  # devices, pupil-devices, licences, tickets, storage
    reads: Path  # the export, or the share
    mapping: Path
    at: datetime | None  # the run's observation time (tickets carry their own)
    tz: ZoneInfo = STOCKHOLM  # the desk's local time, for ticket times without a zone

    def source(self) -> Source:
        """The collector source this run reads."""
        from collectors.sources.devices import DeviceSource
        from collectors.sources.licences import LicenceSource
        from collectors.sources.storage import StorageSource
        from collectors.sources.tickets import TicketSource

        if self.kind == "tickets":
            return TicketSource(self.reads, tz=self.tz)
        assert self.at is not None
        if self.kind == "licences":
            return LicenceSource(self.reads, self.at)
        if self.kind == "storage":
            return StorageSource(self.at, share=self.reads)
        return DeviceSource(self.reads, self.at)


_DAY_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def collector_runs(root: Path, *, stable_share: bool = False) -> Iterator[CollectorRun]:
    """The collector runs over a generated tree, member by member, day by day, in the order a
    member's scheduler runs them. With ``stable_share`` storage runs measure ``<code>/share``
    (the caller points that link at the day's tree, so a share keeps one path from day to day)."""
    for member_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name in MEMBER_BY_CODE):
        member = MEMBER_BY_CODE[member_dir.name]
        mapping = member_dir / "mapping.yaml"
        for day_dir in sorted(p for p in member_dir.iterdir() if _DAY_FOLDER.match(p.name)):
            day = date.fromisoformat(day_dir.name)
            at, code = run_time(day, member.area.tz), member.code
            yield CollectorRun(code, day, "devices", day_dir / f"{member.devices}.csv", mapping, at)
            pupils = member_dir / "mapping-pupils.yaml"
            yield CollectorRun(code, day, "pupil-devices", day_dir / "jamf.csv", pupils, at)
            yield CollectorRun(code, day, "licences", day_dir / "m365-licensed-users.csv", mapping, at)
            yield CollectorRun(
                code, day, "tickets", day_dir / f"{member.desk}.csv", mapping, None, member.area.tz
            )
            share = member_dir / "share" if stable_share else day_dir / "share"
            yield CollectorRun(code, day, "storage", share, mapping, at)


# --- running the collectors over a generated tree ---------------------------------------------------


@dataclass
class CollectTotals:
    """What the collector runs of one kind reported, added up."""

    runs: int = 0
    read: int = 0
    emitted: int = 0
    spooled: int = 0
    rejected: int = 0
    unmapped: int = 0
    inactive: int = 0
    listed_twice: int = 0
    warnings: int = 0  # warnings for finance (collectors.allocation)
    unmapped_by_identifier: dict[str, int] = field(default_factory=dict)
    exit_codes: dict[int, int] = field(default_factory=dict)

    def add(self, report: CollectorReport) -> None:
        """Count one run's report."""
        self.runs += 1
        code = int(report.status)
        self.exit_codes[code] = self.exit_codes.get(code, 0) + 1
        self.read += report.read
        self.emitted += report.sent
        self.spooled += report.spooled
        self.rejected += len(report.rejected)
        self.unmapped += sum(report.unmapped.values())
        for name, count in report.unmapped.items():  # quoted, as the collectors print them
            quoted = repr(name)
            self.unmapped_by_identifier[quoted] = self.unmapped_by_identifier.get(quoted, 0) + count
        self.inactive += report.skipped_count("inactive")
        self.listed_twice += report.skipped_count("listed_twice")
        self.warnings += len(report.finance)

    def line(self, kind: str) -> str:
        """One line for the demo's output."""
        extra = ""
        if self.inactive or self.listed_twice:
            extra = f", inactive {self.inactive}, listed twice {self.listed_twice}"
        if self.warnings:
            extra += f", warnings {self.warnings}"
        return (
            f"{kind}: {self.runs} runs, read {self.read}, emitted {self.emitted}, spooled {self.spooled}, "
            f"rejected {self.rejected}, unmapped {self.unmapped}{extra}"
        )


def run_collectors(root: Path, settings: CollectorSettings | None = None) -> dict[str, CollectTotals]:
    """Run the real collectors (``run_collector``), in this process, over every file of a generated
    tree, as each member's scheduler would day by day; return what they reported per kind.

    A file share keeps one path from day to day, as a real one does (the subject of its events is
    that path): ``<code>/share`` is a link that is pointed at the day's tree before it is measured.
    A run that needs a human for unmapped identifiers, or warns finance (an export without its
    cost-centre column), is counted, not raised: they are part of the demo; a source that cannot
    be read, or events that could not be kept, end the demo.
    """
    from chargeback.settings import load_settings
    from collectors.mapping import load_mapping
    from collectors.run import Status, run_collector
    from collectors.settings import CollectorSettings
    from collectors.source import SourceError

    settings = settings or load_settings(CollectorSettings)
    mappings: dict[Path, Mapping] = {}
    totals: dict[str, CollectTotals] = {}
    for run in collector_runs(root, stable_share=True):
        if run.kind == "storage":
            link = root / run.code / "share"
            if link.is_symlink():
                link.unlink()
            link.symlink_to(Path(run.day.isoformat()) / "share", target_is_directory=True)
        if run.mapping not in mappings:
            mappings[run.mapping] = load_mapping(run.mapping)
        try:
            report = run_collector(run.source(), mappings[run.mapping], settings)
        except SourceError as exc:
            raise UserError(f"{run.kind} collector for {run.code} on {run.day}: {exc}") from exc
        totals.setdefault(run.kind, CollectTotals()).add(report)
        if report.spool_error:
            raise UserError(f"{run.kind} collector for {run.code} on {run.day}: {report.spool_error}")
        if report.status not in (Status.DELIVERED, Status.NEEDS_HUMAN, Status.WARNING):  # expected
            raise UserError(
                f"{run.kind} collector for {run.code} on {run.day} ended with {int(report.status)}: "
                + "; ".join([report.summary, *report.warnings])
            )
    return totals
