"""Service level from ticket attributes: opening-hours durations and rates worked out by hand."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing_jobs.reports.sla import (
    OpeningHours,
    Ticket,
    TicketDataError,
    priority_level,
    sla_rows,
    ticket_from,
)
from chargeback.catalogue import ServiceLevels

STOCKHOLM = ZoneInfo("Europe/Stockholm")
D = Decimal
LEVELS = ServiceLevels(resolution_hours={"P1": 4, "P2": 8})  # 08:00-16:30 Mon-Fri, 60 s, 70 %


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=STOCKHOLM)


def ticket(
    municipality: str,
    number: str,
    channel: str,
    priority: str,
    opened: str,
    first_response: str | None,
    closed: str,
    first_contact: bool | None = None,
) -> Ticket:
    return Ticket(
        municipality,
        number,
        channel,
        priority,
        local(opened),
        local(first_response) if first_response else None,
        local(closed),
        first_contact,
    )


# October 2026: Monday the 5th; summer time ends on Sunday the 25th.
TICKETS = [
    # answered 45 s after opening at 08:00, closed 20 min later: resolution 1,200 s, first contact
    ticket("2183", "T1", "phone", "P3", "2026-10-05 08:00:00", "2026-10-05 08:00:45", "2026-10-05 08:20"),
    # one minute before closing; answered 08:01:15 next morning: 60 + 75 = 135 s; closed 10:00:
    # resolution 60 + 7,200 = 7,260 s; closed 1 h 58 min after the answer: not first contact
    ticket("2183", "T2", "phone", "P2", "2026-10-05 16:29", "2026-10-06 08:01:15", "2026-10-06 10:00"),
    # a Saturday e-mail (outside hours), answered Monday 09:00: 3,600 s; resolution 4,200 s
    ticket("2183", "T3", "e-mail", "P3", "2026-10-10 10:00", "2026-10-12 09:00", "2026-10-12 09:10"),
    # no first response; closed in 20 min, but the export says it was not solved at first contact
    ticket("2183", "T4", "portal", "P1", "2026-10-09 16:00", None, "2026-10-09 16:20", first_contact=False),
    # over the weekend summer time ends: Friday 16:00-16:30 and Monday 08:00-09:00 = 5,400 s
    ticket("2184", "U1", "e-mail", "P2", "2026-10-23 16:00", None, "2026-10-26 09:00"),
]


def test_service_level_per_municipality_worked_out_by_hand() -> None:
    bollnas, hudiksvall = sla_rows(TICKETS, LEVELS, STOCKHOLM)
    assert bollnas.municipality == "2183"
    assert bollnas.tickets == 4
    assert bollnas.by_channel == Counter({"phone": 2, "e-mail": 1, "portal": 1})
    assert bollnas.by_priority == Counter({"P3": 2, "P2": 1, "P1": 1})
    assert bollnas.opened_outside_hours == 1  # T3 on a Saturday; T2 at 16:29 is inside
    assert (bollnas.phone_answered, bollnas.phone_answer_avg_s) == (2, D("90.0"))  # (45 + 135) / 2
    assert bollnas.phone_answer_met is False  # target 60 s
    assert bollnas.first_response_avg_min == D("21.0")  # (45 + 135 + 3,600) / 3 s = 1,260 s
    assert bollnas.resolution_avg_h == D("1.0")  # (1,200 + 7,260 + 4,200 + 1,200) / 4 = 3,465 s
    assert (bollnas.resolved_first_contact, bollnas.first_contact_rate) == (2, D("50.0"))  # T1, T3
    assert (bollnas.first_contact_target, bollnas.first_contact_met) == (D("70.0"), False)
    assert bollnas.resolution_within_target == {"P1": (1, 1), "P2": (1, 1)}

    assert hudiksvall.municipality == "2184"
    assert hudiksvall.resolution_avg_h == D("1.5")  # 5,400 s across the change to winter time
    assert (hudiksvall.phone_answer_avg_s, hudiksvall.phone_answer_met) == (None, None)
    assert hudiksvall.first_response_avg_min is None
    assert (hudiksvall.first_contact_rate, hudiksvall.first_contact_met) == (D("0.0"), False)
    assert hudiksvall.resolution_within_target == {"P1": (0, 0), "P2": (1, 1)}


def test_opening_hours_keep_local_times_on_the_day_summer_time_ends() -> None:
    every_day = OpeningHours(ServiceLevels(weekdays=(1, 2, 3, 4, 5, 6, 7)), STOCKHOLM)
    # Saturday 24 and Sunday 25 October (a 25-hour day): 08:00-16:30 local on both, 2 x 30,600 s
    assert every_day.seconds(local("2026-10-24 00:00"), local("2026-10-26 00:00")) == 61_200
    weekdays = OpeningHours(LEVELS, STOCKHOLM)
    assert weekdays.seconds(local("2026-10-24 00:00"), local("2026-10-26 00:00")) == 0
    assert weekdays.seconds(local("2026-10-05 12:00"), local("2026-10-05 11:00")) == 0  # reversed
    assert weekdays.is_open(local("2026-10-05 08:00")) and not weekdays.is_open(local("2026-10-05 16:30"))


def test_first_contact_window_and_flag() -> None:
    quick = ticket("1", "A", "phone", "P3", "2026-10-05 09:00", "2026-10-05 09:01", "2026-10-05 09:31")
    slow = ticket("1", "B", "phone", "P3", "2026-10-05 09:00", "2026-10-05 09:01", "2026-10-05 09:31:01")
    flagged = ticket(
        "1", "C", "phone", "P3", "2026-10-05 09:00", "2026-10-05 09:01", "2026-10-05 15:00", True
    )
    (row,) = sla_rows([quick, slow, flagged], LEVELS, STOCKHOLM)
    assert (row.resolved_first_contact, row.first_contact_rate) == (2, D("66.7"))  # 30 min is inside


def test_ticket_from_event_attributes() -> None:
    parsed = ticket_from(
        "2183",
        "I 2610 001",
        {
            "channel": "phone",
            "priority": "P3",
            "opened": "2026-10-05T06:12:00Z",
            "first_response": "2026-10-05T06:13:00Z",
            "closed": "2026-10-05T07:40:00Z",
            "first_contact": "Ja",
        },
    )
    assert parsed == ticket(
        "2183", "I 2610 001", "phone", "P3", "2026-10-05 08:12", "2026-10-05 08:13", "2026-10-05 09:40", True
    )
    with pytest.raises(TicketDataError, match="ticket X: needs opened and closed times"):
        ticket_from("2183", "X", {"closed": "2026-10-05T07:40:00Z"})
    with pytest.raises(TicketDataError, match=r"ticket X: opened '5 okt' is not an ISO 8601 time"):
        ticket_from("2183", "X", {"opened": "5 okt", "closed": "2026-10-05T07:40:00Z"})


def test_targets_are_validated() -> None:
    with pytest.raises(ValueError, match=r"closes \(08:00\) must be after opens \(16:30\)"):
        ServiceLevels(opens="16:30", closes="08:00")
    with pytest.raises(ValueError, match=r"weekdays are 1 \(Monday\) to 7 \(Sunday\), not \[8\]"):
        ServiceLevels(weekdays=(1, 8))


def test_sla_html_page() -> None:
    from billing_jobs.reports.html import sla_page
    from chargeback.catalogue import Catalogue, Municipality
    from chargeback.period import Period

    catalogue = Catalogue.model_construct(
        currency="SEK",
        timezone="Europe/Stockholm",
        municipalities=(Municipality(code="2183", name="Bollnäs <AB>", inhabitants=1),),
    )
    page = sla_page(Period(2026, 10), catalogue, LEVELS, sla_rows(TICKETS, LEVELS, STOCKHOLM))
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "<td>2183 Bollnäs &lt;AB&gt;</td>" in page  # names are escaped
    assert "<td class=n>90.0</td><td class=missed>missed</td>" in page  # phone answer vs 60 s
    assert "<td class=n>50.0</td><td class=missed>missed</td><td>1 / 1</td><td>1 / 1</td>" in page
    assert "<th>P1 within 4 h</th><th>P2 within 8 h</th>" in page


def test_priorities_of_each_desk_meet_the_catalogues_levels() -> None:
    written = ["P1", "p2", "3", "Prio 1", "Prioritet 2", "2 - High", "1 - Critical", "High", "P12", "none"]
    assert [priority_level(p) for p in written] == [
        "P1",
        "P2",
        "P3",
        "P1",
        "P2",
        "P2",
        "P1",
        "High",
        "P12",
        "none",
    ]
    parsed = ticket_from(
        "2132",
        "INC0010042",
        {"priority": "2 - High", "opened": "2026-10-05T06:00:00Z", "closed": "2026-10-05T07:00:00Z"},
    )
    assert parsed.priority == "P2"
