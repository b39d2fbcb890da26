"""Loading and validating the catalogue: exact values, and errors that name file, line and field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from chargeback.catalogue import (
    CatalogueError,
    Distributed,
    Flat,
    Package,
    PerUnit,
    TieredGraduated,
    TieredVolume,
    load_catalogue,
    parse_catalogue,
)
from chargeback.period import Period

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml"

MINIMAL = """\
currency: SEK
municipalities:
  - {code: "2183", name: Bollnäs, inhabitants: 26500}
services:
  - {id: pc-standard, name: Standarddator, meter: daily_distinct, unit: st, vat_rate: "0.25", account: "3041"}
price_lists:
  - version: "2026"
    valid_from: 2026-01-01
    prices:
      pc-standard: {model: per_unit, unit_price: "310.00"}
"""


def test_the_spec_catalogue_loads_with_exact_values() -> None:
    catalogue = load_catalogue(FIXTURE)
    assert catalogue.currency == "SEK"
    assert catalogue.timezone == "Europe/Stockholm"
    assert catalogue.municipality_codes == ("2121", "2132", "2161", "2182", "2183", "2184")
    assert catalogue.municipality("2183").inhabitants == 26500
    assert catalogue.service("storage-file").meter == "daily_max"
    assert catalogue.service("pc-standard").vat_rate == Decimal("0.25")
    prices = catalogue.price_list_for(date(2026, 10, 1)).prices
    assert prices["pc-standard"] == PerUnit(model="per_unit", unit_price=Decimal("310.00"))
    assert prices["storage-file"] == Package(
        model="package", package_size=Decimal("100"), package_price=Decimal("450.00")
    )
    assert isinstance(prices["ticket-incident"], TieredGraduated)
    assert isinstance(prices["m365-e3"], TieredVolume)
    assert prices["base-offering"] == Flat(model="flat", amount=Decimal("125000.00"))
    assert prices["soc-shared"] == Distributed(
        model="distributed", annual_amount=Decimal("1200000.00"), key="inhabitants"
    )


def test_the_2027_list_is_2026_times_the_index_each_rounded_to_ore() -> None:
    catalogue = load_catalogue(FIXTURE)
    resolved = catalogue.price_list_for(Period(2027, 1).first_day)
    assert resolved.version == "2027"
    p = resolved.prices
    assert p["pc-standard"].unit_price == Decimal("319.92")  # type: ignore[union-attr]  # 310.00 x 1.032
    assert p["storage-file"].package_price == Decimal("464.40")  # type: ignore[union-attr]  # 450.00 x 1.032
    assert p["storage-file"].package_size == Decimal("100")  # type: ignore[union-attr]  # not a price
    tiers = p["ticket-incident"].tiers  # type: ignore[union-attr]
    assert [(t.up_to, t.unit_price) for t in tiers] == [
        (Decimal("200"), Decimal("98.04")),
        (None, Decimal("82.56")),
    ]
    assert p["base-offering"].amount == Decimal("129000.00")  # type: ignore[union-attr]
    assert p["soc-shared"].annual_amount == Decimal("1238400.00")  # type: ignore[union-attr]


def test_the_list_valid_on_the_first_day_applies() -> None:
    catalogue = load_catalogue(FIXTURE)
    assert catalogue.price_list_for(date(2026, 12, 31)).version == "2026"
    assert catalogue.price_list_for(date(2027, 1, 1)).version == "2027"
    with pytest.raises(CatalogueError, match="no price list is valid on 2025-12-01"):
        catalogue.price_list_for(date(2025, 12, 1))


def test_indexing_chains_round_at_each_step() -> None:
    text = MINIMAL + (
        '  - {version: "2027", valid_from: 2027-01-01, index_from: "2026", index: "1.001"}\n'
        '  - {version: "2028", valid_from: 2028-01-01, index_from: "2027", index: "1.001"}\n'
    )
    catalogue = parse_catalogue(text, "c.yaml")
    # 310.00 x 1.001 = 310.31 (310.310); x 1.001 = 310.62 (310.62031), not 310.00 x 1.002001 = 310.62
    assert catalogue.price_list_for(date(2028, 6, 1)).prices["pc-standard"].unit_price == Decimal("310.62")  # type: ignore[union-attr]


def test_a_bare_yaml_number_for_money_is_refused_with_file_line_and_field() -> None:
    text = MINIMAL.replace('unit_price: "310.00"', "unit_price: 310.10")
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "catalogue.yaml")
    assert str(info.value) == (
        "catalogue.yaml:10: price_lists[0].prices.pc-standard.unit_price: "
        'must be quoted to be exact: write "310.1" (a bare YAML number is a float)'
    )


def test_every_problem_is_reported_at_once_with_its_line() -> None:
    text = MINIMAL.replace("meter: daily_distinct", "meter: hourly").replace(
        "inhabitants: 26500", "inhabitants: 0"
    )
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "c.yaml")
    assert str(info.value).splitlines() == [
        "c.yaml:3: municipalities[0].inhabitants: Input should be greater than 0",
        "c.yaml:5: services[0].meter: Input should be 'count', 'daily_distinct' or 'daily_max'",
    ]


def test_unknown_service_in_prices_and_missing_fields() -> None:
    text = MINIMAL.replace("pc-standard: {model", "pc-premium: {model").replace(
        "    valid_from: 2026-01-01\n", ""
    )
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "c.yaml")
    assert str(info.value).splitlines() == ["c.yaml:7: price_lists[0].valid_from: missing"]


def test_price_for_unknown_service_is_named() -> None:
    text = MINIMAL.replace("pc-standard: {model", "pc-premium: {model")
    with pytest.raises(
        CatalogueError, match=r"^c.yaml:1: catalogue: price list 2026 prices unknown service pc-premium$"
    ):
        parse_catalogue(text, "c.yaml")


def test_tiers_must_ascend_and_end_open() -> None:
    text = MINIMAL.replace(
        '{model: per_unit, unit_price: "310.00"}',
        '{model: tiered_volume, tiers: [{up_to: "100", unit_price: "1"}, {up_to: "50", unit_price: "2"}]}',
    )
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "c.yaml")
    assert (
        str(info.value)
        == "c.yaml:10: price_lists[0].prices.pc-standard.tiers: the last tier must have up_to: null"
    )


def test_unknown_model_and_unknown_field() -> None:
    text = MINIMAL.replace("model: per_unit, unit_price", "model: per_unit, colour: red, unit_price")
    with pytest.raises(
        CatalogueError, match=r"^c.yaml:10: price_lists\[0\].prices.pc-standard.colour: unknown field$"
    ):
        parse_catalogue(text, "c.yaml")


def test_bad_yaml_and_bad_time_zone() -> None:
    with pytest.raises(CatalogueError, match=r"^c.yaml:2: not valid YAML: "):
        parse_catalogue("currency: SEK\n  - oops: [\n", "c.yaml")
    with pytest.raises(CatalogueError, match=r"c\.yaml:1: timezone: unknown time zone 'Mars/Olympus'"):
        parse_catalogue("timezone: Mars/Olympus\n" + MINIMAL, "c.yaml")


def test_missing_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(
        CatalogueError, match=r"nope.yaml: cannot read the catalogue: No such file or directory"
    ):
        load_catalogue(tmp_path / "nope.yaml")


def test_period_parsing() -> None:
    assert Period.parse("2026-10") == Period(2026, 10)
    assert (Period(2026, 12).next(), Period(2026, 1).previous()) == (Period(2027, 1), Period(2025, 12))
    assert (Period(2024, 2).days, Period(2026, 2).days, str(Period(2026, 2).last_day)) == (
        29,
        28,
        "2026-02-28",
    )
    with pytest.raises(ValueError, match=r"period must be YYYY-MM \(for example 2026-10\), not '2026-13-01'"):
        Period.parse("2026-13-01")
    with pytest.raises(ValueError, match="not a calendar month: 2026-13"):
        Period.parse("2026-13")
