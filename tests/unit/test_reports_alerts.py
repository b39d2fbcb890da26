"""Usage alerts: month-over-month changes beyond the threshold and silent sources, counted in
working days (Monday to Friday, less Swedish public holidays), with exact values."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing_jobs.model import Usage
from billing_jobs.reports.alerts import (
    CHANGE,
    SILENT,
    Alert,
    Thresholds,
    alert_document,
    change_alerts,
    easter_sunday,
    is_working_day,
    prometheus_text,
    silent_alerts,
    swedish_holidays,
    thresholds_for,
    working_days_after,
)
from chargeback.catalogue import parse_catalogue
from chargeback.period import Period

D = Decimal


def usage(*rows: tuple[str, str, str, str]) -> list[Usage]:
    return [Usage(m, cc, s, D(q)) for m, cc, s, q in rows]


def test_swedish_holidays_of_2026() -> None:
    assert easter_sunday(2026) == date(2026, 4, 5) and easter_sunday(2027) == date(2027, 3, 28)
    assert sorted(swedish_holidays(2026)) == [
        date(2026, 1, 1),
        date(2026, 1, 6),
        date(2026, 4, 3),
        date(2026, 4, 5),
        date(2026, 4, 6),  # Good Friday, Easter, Easter Monday
        date(2026, 5, 1),
        date(2026, 5, 14),
        date(2026, 5, 24),  # Ascension (+39), Whit Sunday (+49)
        date(2026, 6, 6),
        date(2026, 6, 19),
        date(2026, 6, 20),  # National Day, Midsummer Eve and Day
        date(2026, 10, 31),  # All Saints' Day: the Saturday from 31 October to 6 November
        date(2026, 12, 24),
        date(2026, 12, 25),
        date(2026, 12, 26),
        date(2026, 12, 31),
    ]


def test_working_days_skip_weekends_and_holidays() -> None:
    # Thursday 2 April 2026 to Tuesday 7 April: Good Friday and Easter Monday are off.
    assert working_days_after(date(2026, 4, 1), date(2026, 4, 7)) == 2  # Thu 2, Tue 7
    assert working_days_after(date(2026, 4, 1), date(2026, 4, 7), holidays="none") == 4
    assert not is_working_day(date(2026, 12, 24)) and is_working_day(date(2026, 12, 24), "none")
    assert working_days_after(date(2026, 10, 30), date(2026, 10, 30)) == 0


def test_changes_beyond_the_threshold_per_member_and_service() -> None:
    before = usage(
        ("2183", "BUF", "pc-standard", "100"),
        ("2183", "SOC", "pc-standard", "100"),  # cost centres add up: 200
        ("2183", "BUF", "m365-e3", "40"),
        ("2184", "BUF", "pc-standard", "80"),
        ("2184", "BUF", "ticket-incident", "5"),
    )
    now = usage(
        ("2183", "BUF", "pc-standard", "250"),  # 200 -> 250: +25.0 %, not beyond ±25 %
        ("2183", "BUF", "m365-e3", "29.5"),  # 40 -> 29.5: -26.25 % -> -26.3 %
        ("2184", "BUF", "pc-standard", "100.5"),  # 80 -> 100.5: +25.625 %, but pc-standard is ±30 %
        ("2184", "BUF", "storage-file", "12"),  # new usage
        # 2184 ticket-incident 5 -> 0: -100 %
    )
    thresholds = Thresholds(change=D("0.25"), per_service={"pc-standard": D("0.30")})
    assert change_alerts(before, now, thresholds) == [
        Alert(
            CHANGE, "2183", "m365-e3", before=D(40), now=D("29.5"), change_pct=D("-26.3"), threshold_pct=D(25)
        ),
        Alert(CHANGE, "2184", "storage-file", before=D(0), now=D(12), change_pct=None, threshold_pct=D(25)),
        Alert(
            CHANGE,
            "2184",
            "ticket-incident",
            before=D(5),
            now=D(0),
            change_pct=D("-100.0"),
            threshold_pct=D(25),
        ),
    ]
    assert (
        change_alerts(before, now, Thresholds())[0].message
        == "2183 m365-e3: 40 → 29.5 (-26.3 %, beyond ±25 %)"
    )


def test_a_source_silent_for_more_than_the_allowed_working_days() -> None:
    last_days = [
        ("urn:chargeback:collector:2183:tickets", "2183", date(2026, 10, 26)),  # Mon: 27-30 = 4 days
        ("urn:chargeback:collector:2184:tickets", "2184", date(2026, 10, 27)),  # Tue: 28-30 = 3 days
        ("urn:chargeback:collector:2183:intune", "2183", date(2026, 9, 15)),  # 11 in Sep + 22 in Oct
    ]
    alerts = silent_alerts(last_days, date(2026, 10, 31), Thresholds(silent_working_days=3))
    assert [(a.source, a.silent_working_days) for a in alerts] == [
        ("urn:chargeback:collector:2183:intune", 33),
        ("urn:chargeback:collector:2183:tickets", 4),
    ]
    assert alerts[1].message == (
        "urn:chargeback:collector:2183:tickets (2183) has sent no events for 4 working days since "
        "2026-10-26 (more than 3)"
    )
    assert alert_document(Period(2026, 10), alerts[1])["silent_working_days"] == 4


def test_thresholds_from_the_catalogue_else_the_settings_else_the_defaults() -> None:
    text = """
currency: SEK
municipalities: [{code: "2183", name: Bollnäs, inhabitants: 26500}]
services: [{id: pc, name: PC, meter: count, unit: st, vat_rate: "0.25", account: "3041"}]
price_lists: [{version: "1", valid_from: 2026-01-01, prices: {pc: {model: per_unit, unit_price: "1"}}}]
"""
    plain = parse_catalogue(text, "c.yaml")
    assert thresholds_for(plain) == Thresholds(D("0.25"), {}, 3, "SE")
    assert thresholds_for(plain, D("0.40"), 5) == Thresholds(D("0.40"), {}, 5, "SE")
    section = parse_catalogue(
        text + 'alerts: {change: "0.10", services: {pc: "0.5"}, silent_working_days: 2, holidays: none}\n',
        "c.yaml",
    )
    assert thresholds_for(section, D("0.40"), 5) == Thresholds(D("0.10"), {"pc": D("0.5")}, 2, "none")


@pytest.mark.parametrize("kinds", [(), (CHANGE, SILENT)])
def test_prometheus_textfile(kinds: tuple[str, ...]) -> None:
    alerts = [
        Alert(
            CHANGE, "2183", "m365-e3", before=D(40), now=D("29.5"), change_pct=D("-26.3"), threshold_pct=D(25)
        ),
        Alert(CHANGE, "2184", "storage-file", before=D(0), now=D(12), threshold_pct=D(25)),
        Alert(
            SILENT,
            "2183",
            source="urn:x",
            last_day=date(2026, 10, 26),
            silent_working_days=4,
            allowed_working_days=3,
        ),
    ]
    text = prometheus_text(Period(2026, 10), alerts if kinds else [])
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    if not kinds:
        assert samples == [
            'chargeback_usage_alerts{period="2026-10",kind="change"} 0',
            'chargeback_usage_alerts{period="2026-10",kind="silent"} 0',
        ]
        return
    assert samples == [
        'chargeback_usage_alerts{period="2026-10",kind="change"} 2',
        'chargeback_usage_alerts{period="2026-10",kind="silent"} 1',
        'chargeback_usage_change_ratio{period="2026-10",municipality="2183",service="m365-e3"} -0.263',
        'chargeback_usage_change_ratio{period="2026-10",municipality="2184",service="storage-file"} +Inf',
        'chargeback_source_silent_workdays{period="2026-10",municipality="2183",source="urn:x"} 4',
    ]


def test_the_catalogue_refuses_alerts_for_an_unknown_service() -> None:
    from chargeback.catalogue import CatalogueError

    text = """\
currency: SEK
municipalities: [{code: "2183", name: Bollnäs, inhabitants: 26500}]
services: [{id: pc, name: PC, meter: count, unit: st, vat_rate: "0.25", account: "3041"}]
price_lists: [{version: "1", valid_from: 2026-01-01, prices: {pc: {model: per_unit, unit_price: "1"}}}]
alerts:
  services: {mac: "0.5"}
"""
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(text, "c.yaml")
    assert str(caught.value) == (
        "c.yaml:6: alerts.services.mac: alerts name service 'mac', which is not in the catalogue; "
        "the services are pc"
    )
