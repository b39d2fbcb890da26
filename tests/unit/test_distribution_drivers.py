"""Distribution keys beyond inhabitants: a named driver per municipality (``drivers: {users: N}``)
that a distributed price names (``key: users``), dated like inhabitants; exact shares."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from billing_jobs.explain import explain_run, render_text
from billing_jobs.formats.local import Local
from billing_jobs.formats.summary import line_summary
from billing_jobs.model import Line, Run
from billing_jobs.pricing import PricingError, key_weights, price_period
from chargeback.catalogue import CatalogueError, load_catalogue, parse_catalogue
from chargeback.period import Period

D = Decimal
VESTERALEN = load_catalogue(
    Path(__file__).resolve().parents[2] / "demo" / "data" / "vesteralen" / "catalogue.yaml"
)
OCT = Period(2026, 10)
NBSP = "\u00a0"

SMALL = """\
currency: NOK
timezone: Europe/Oslo
municipalities:
  - {code: "1870", name: Sortland, inhabitants: 10900, drivers: {users: 1450}}
  - code: "1871"
    name: Andøy
    inhabitants: 4530
    drivers:
      users:
        - {from: 2026-01-01, value: 650}
        - {from: 2026-11-01, value: 700}
services:
  - {id: fagsystemer, name: Felles fagsystemer, meter: count, unit: mnd, vat_rate: "0.25", account: "17507"}
price_lists:
  - version: "2026"
    valid_from: 2026-01-01
    prices:
      fagsystemer: {model: distributed, annual_amount: "120000.00", key: users}
"""


def test_the_vesteralen_catalogue_gives_users_per_municipality() -> None:
    assert {m.code: m.driver_on("users", date(2026, 10, 1)) for m in VESTERALEN.municipalities} == {
        "1866": 1100,
        "1867": 380,
        "1868": 620,
        "1870": 1450,
        "1871": 650,
    }
    assert key_weights(VESTERALEN, OCT, "users") == {
        "1866": D(1100),
        "1867": D(380),
        "1868": D(620),
        "1870": D(1450),
        "1871": D(650),
    }


def test_a_service_distributed_by_users_splits_its_month_by_users() -> None:
    lines = [x for x in price_period(VESTERALEN, OCT, []) if x.service == "fagsystemer"]
    # 1 800 000.00 / 12 = 150 000.00 by 4 200 users: 1 100 -> 39 285.714.., 380 -> 13 571.428..,
    # 620 -> 22 142.857.., 1 450 -> 51 785.714.., 650 -> 23 214.285..; the three öre left over after
    # rounding down go to the largest remainders (Bø, Øksnes, Andøy).
    assert [(x.municipality, x.amount, x.vat_amount) for x in lines] == [
        ("1866", D("39285.71"), D("9821.43")),
        ("1867", D("13571.43"), D("3392.86")),
        ("1868", D("22142.86"), D("5535.72")),
        ("1870", D("51785.71"), D("12946.43")),
        ("1871", D("23214.29"), D("5803.57")),
    ]
    assert sum((x.amount for x in lines), D(0)) == D("150000.00")


def test_inhabitants_and_users_keys_give_different_shares_in_the_same_run() -> None:
    by_service = {
        (x.municipality, x.service): x.amount
        for x in price_period(VESTERALEN, OCT, [])
        if x.service in ("soc-shared", "fagsystemer")
    }
    # Sortland: 200 000.00 x 10 900 / 30 570 by inhabitants; 150 000.00 x 1 450 / 4 200 by users.
    assert (by_service[("1870", "soc-shared")], by_service[("1870", "fagsystemer")]) == (
        D("71311.74"),
        D("51785.71"),
    )


def test_a_dated_driver_applies_from_its_day() -> None:
    catalogue = parse_catalogue(SMALL, "c.yaml")
    assert key_weights(catalogue, OCT, "users") == {"1870": D(1450), "1871": D(650)}
    assert key_weights(catalogue, Period(2026, 11), "users") == {"1870": D(1450), "1871": D(700)}
    # 10 000.00 a month: 1 450 / 2 100 = 6 904.76.., 650 / 2 100 = 3 095.238..
    assert [(x.municipality, x.amount) for x in price_period(catalogue, OCT, [])] == [
        ("1870", D("6904.76")),
        ("1871", D("3095.24")),
    ]


def test_a_key_no_municipality_gives_is_refused_at_its_line() -> None:
    text = SMALL.replace("key: users", "key: seats")
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "c.yaml")
    assert str(info.value) == (
        "c.yaml:18: price_lists[0].prices.fagsystemer.key: fagsystemer is distributed by seats, which "
        "municipalities 1870, 1871 do not give; add drivers: {seats: N} to each, or use inhabitants or equal"
    )


def test_a_driver_missing_for_one_municipality_is_refused() -> None:
    text = SMALL.replace(", drivers: {users: 1450}", "")
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "c.yaml")
    assert "fagsystemer is distributed by users, which municipalities 1870 do not give" in str(info.value)


def test_a_driver_may_not_shadow_a_built_in_key() -> None:
    text = SMALL.replace("drivers: {users: 1450}", "drivers: {inhabitants: 1450}")
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "c.yaml")
    assert str(info.value).startswith(
        "c.yaml:4: municipalities[0].drivers: inhabitants is a built-in key, not a driver; "
        "give inhabitants: its own field"
    )


def test_a_driver_not_yet_in_force_stops_pricing_with_one_sentence() -> None:
    catalogue = parse_catalogue(
        SMALL.replace("from: 2026-01-01, value: 650", "from: 2026-11-01, value: 650").replace(
            "        - {from: 2026-11-01, value: 700}\n", ""
        ),
        "c.yaml",
    )
    with pytest.raises(PricingError) as info:
        price_period(catalogue, OCT, [])
    assert str(info.value) == (
        "municipality 1871 has no users in force on 2026-10-01 (the key of 2026-10); give it a value "
        "from that date in the catalogue"
    )


def _vesteralen_run() -> tuple[Run, list[Line]]:
    lines = price_period(VESTERALEN, OCT, [])
    at = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    return Run("2026-10-abc", "2026-10", (), "final", "2026", "NOK", "", "", at, at, 1), lines


def test_explain_names_the_users_key_and_its_numbers() -> None:
    run, lines = _vesteralen_run()
    found = explain_run(run, lines, VESTERALEN, [], municipality="1870", service="fagsystemer")
    text = render_text(found, VESTERALEN, top=3)
    assert (
        "  nøkkel users: 1 450 av 4 200 brukere → 150 000,00 × 1 450 ÷ 4 200 = 51 785,71 "
        "(største rest i øre)\n"
    ) in text


def test_the_member_reports_sentence_names_the_users_key_in_bokmaal() -> None:
    _run, lines = _vesteralen_run()
    line = next(x for x in lines if x.municipality == "1870" and x.service == "fagsystemer")
    sentence = line_summary(line, [line], VESTERALEN, OCT, Local("nb_NO", "NOK"))
    assert sentence.startswith(f"1{NBSP}450 / 4{NBSP}200 brukere × 150{NBSP}000,00{NBSP}kr per måned")
