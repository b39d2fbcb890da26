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
    assert catalogue.municipality("2183").inhabitants_on(date(2026, 10, 1)) == 26500
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


def test_a_bare_yaml_number_for_money_is_refused_with_the_text_as_written() -> None:
    text = MINIMAL.replace('unit_price: "310.00"', "unit_price: 180.50")
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "catalogue.yaml")
    assert str(info.value) == (
        "catalogue.yaml:10: price_lists[0].prices.pc-standard.unit_price: "
        'must be quoted to be exact: write "180.50" (a bare YAML number is a float)'
    )


def test_every_problem_is_reported_at_once_with_its_line() -> None:
    text = MINIMAL.replace("meter: daily_distinct", "meter: hourly").replace(
        "inhabitants: 26500", "inhabitants: 0"
    )
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "c.yaml")
    assert str(info.value).splitlines() == [
        "c.yaml:3: municipalities[0].inhabitants: must be a whole number above 0, not 0",
        "c.yaml:5: services[0].meter: 'hourly' is not a known meter; use one of count, daily_distinct, "
        "daily_max",
    ]


def test_unknown_service_in_prices_and_missing_fields() -> None:
    text = MINIMAL.replace("pc-standard: {model", "pc-premium: {model").replace(
        "    valid_from: 2026-01-01\n", ""
    )
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "c.yaml")
    # Field mistakes and cross-references together, each at its own line, in line order.
    assert str(info.value).splitlines() == [
        "c.yaml:7: price_lists[0].valid_from: is missing; add valid_from: to this entry",
        "c.yaml:7: price_lists[0]: price list 2026 has no price for pc-standard; add a price, or name "
        "the service under retired: if it is no longer sold",
        "c.yaml:9: price_lists[0].prices.pc-premium: price list 2026 prices service 'pc-premium', which "
        "is not in the catalogue; the services are pc-standard",
    ]


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
        CatalogueError,
        match=r"^c.yaml:10: price_lists\[0\].prices.pc-standard.colour: is not a known field here; check "
        r"its spelling \(docs/catalogue.md lists the fields\)$",
    ):
        parse_catalogue(text, "c.yaml")


def test_bad_yaml_and_bad_time_zone() -> None:
    with pytest.raises(CatalogueError, match=r"^c.yaml:2: not valid YAML: "):
        parse_catalogue("currency: SEK\n  - oops: [\n", "c.yaml")
    with pytest.raises(CatalogueError, match=r"c\.yaml:1: timezone: unknown time zone 'Mars/Olympus'"):
        parse_catalogue("timezone: Mars/Olympus\n" + MINIMAL, "c.yaml")


def test_report_locale_by_currency_or_as_given() -> None:
    assert parse_catalogue(MINIMAL, "c.yaml").report_locale == "sv_SE"
    assert (
        parse_catalogue(MINIMAL.replace("currency: SEK", "currency: NOK"), "c.yaml").report_locale == "nb_NO"
    )
    assert parse_catalogue("locale: nb_NO\n" + MINIMAL, "c.yaml").report_locale == "nb_NO"
    with pytest.raises(CatalogueError, match=r"c\.yaml:1: locale: unknown locale 'xx_YY' \(use a CLDR name"):
        parse_catalogue("locale: xx_YY\n" + MINIMAL, "c.yaml")


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


# --- every mistake at once, at its own line, in finance's words (#12 item 5) -----------------------

MANY_MISTAKES = """\
currency: SEK
municipalities:
  - {code: "2183", name: Bollnäs, inhabitants: 26500}
  - {code: "2183", name: Hudiksvall, inhabitants: "1_000"}
services:
  - {id: pc-standard, name: Dator, meter: daily_distinct, unit: st, vat_rate: "0.25", account: "3041"}
  - {id: soc-shared, name: SOC, meter: count, unit: mån, vat_rate: "0.25", account: "3045"}
price_lists:
  - version: "2026"
    valid_from: 2026-01-01
    prices:
      pc-standard: {model: per-unit, unit_price: "310.00"}
      pc-premium: {model: per_unit, unit_price: 180.50}
  - version: "2027"
    valid_from: 2027-01-01
    index_from: "2026"
    index: "1.032"
    index: "1.05"
"""

MANY_MISTAKES_REPORTED = [
    "c.yaml:4: municipalities[1].inhabitants: '1_000' is not a whole number; write digits 0-9, such as 26500",
    "c.yaml:4: municipalities[1].code: municipality code 2183 is already used by municipalities[0]; "
    "make it unique",
    "c.yaml:9: price_lists[0]: price list 2026 has no price for soc-shared; add a price, or name the "
    "service under retired: if it is no longer sold",
    "c.yaml:12: price_lists[0].prices.pc-standard: price model 'per-unit' is not known; use one of "
    "per_unit, package, tiered_graduated, tiered_volume, flat, distributed",
    'c.yaml:13: price_lists[0].prices.pc-premium.unit_price: must be quoted to be exact: write "180.50" '
    "(a bare YAML number is a float)",
    "c.yaml:13: price_lists[0].prices.pc-premium: price list 2026 prices service 'pc-premium', which is "
    "not in the catalogue; the services are pc-standard, soc-shared",
    # 2027 takes 2026's prices (pc-standard, pc-premium) and adds none: soc-shared is missing there too.
    "c.yaml:14: price_lists[1]: price list 2027 has no price for soc-shared; add a price, or name the "
    "service under retired: if it is no longer sold",
    "c.yaml:18: price_lists[1].index: written twice (first at line 17); keep one",
]


def test_every_mistake_is_reported_at_once_each_at_its_own_line() -> None:
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(MANY_MISTAKES, "c.yaml")
    assert str(info.value).splitlines() == MANY_MISTAKES_REPORTED


def test_catalogue_validate_lists_every_mistake_and_exits_1(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from billing_jobs.catalogue_cli import catalogue

    path = tmp_path / "c.yaml"
    path.write_text(MANY_MISTAKES, encoding="utf-8")
    result = CliRunner().invoke(catalogue, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [
        *(line.replace("c.yaml", str(path), 1) for line in MANY_MISTAKES_REPORTED),
        f"{path}: not valid: 8 mistakes; correct them and validate again",
    ]


def test_a_duplicate_key_is_an_error_not_the_last_one_winning() -> None:
    text = MINIMAL.replace(
        'pc-standard: {model: per_unit, unit_price: "310.00"}',
        'pc-standard:\n        model: per_unit\n        unit_price: "310.00"\n        unit_price: "3100.00"',
    )
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "c.yaml")
    assert str(info.value) == (
        "c.yaml:13: price_lists[0].prices.pc-standard.unit_price: written twice (first at line 12); keep one"
    )


@pytest.mark.parametrize(
    "written",
    ['"1_000"', "1_000", '"١٠٠"', '"NaN"', "'Infinity'", ".nan", ".inf", '"1e3"', '" 310.00"', '"0x10"'],
)
def test_money_is_plain_ascii_decimal_text_only(written: str) -> None:
    text = MINIMAL.replace('unit_price: "310.00"', f"unit_price: {written}")
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "c.yaml")
    shown = written.strip("\"'")
    assert str(info.value) == (
        f"c.yaml:10: price_lists[0].prices.pc-standard.unit_price: {shown!r} is not a plain decimal "
        'number; write digits 0-9 with a point, such as "180.50"'
    )


@pytest.mark.parametrize(("written", "value"), [('"310.00"', "310.00"), ("310", "310"), ('"0.5"', "0.5")])
def test_money_as_plain_text_or_a_whole_yaml_number(written: str, value: str) -> None:
    text = MINIMAL.replace('unit_price: "310.00"', f"unit_price: {written}")
    prices = parse_catalogue(text, "c.yaml").price_list_for(date(2026, 1, 1)).prices
    assert prices["pc-standard"] == PerUnit(model="per_unit", unit_price=Decimal(value))


def test_an_octal_looking_count_is_read_as_written() -> None:
    # YAML 1.1 reads a bare 010 as the octal 8; finance wrote ten.
    text = MINIMAL.replace("inhabitants: 26500", "inhabitants: 010")
    assert parse_catalogue(text, "c.yaml").municipality("2183").inhabitants_on(date(2026, 1, 1)) == 10


def test_aliases_are_refused_so_a_billion_laughs_never_expands() -> None:
    bomb = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(bomb, "c.yaml")
    assert str(info.value) == (
        "c.yaml:2: not valid YAML: aliases (*a) are not allowed; write the values out in full (column 8)"
    )


def test_a_file_over_the_size_limit_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    from chargeback.yamlfile import MAX_BYTES

    assert MAX_BYTES == 5 * 1024 * 1024
    path = tmp_path / "big.yaml"
    with path.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: 200 MB that take no disk and no time to make
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    assert str(info.value) == (
        f"{path}: the file is 200.0 MB, more than the 5 MB a YAML file may be; is it the right file?"
    )
    with pytest.raises(CatalogueError, match=r"^c.yaml: the file is 5.0 MB, more than the 5 MB"):
        parse_catalogue(MINIMAL + "#" * MAX_BYTES, "c.yaml")


# --- price lists: retired services, indexing with overrides (docs/contract.md, "Invoice integrity") -

TWO_SERVICES = MINIMAL.replace(
    "price_lists:\n",
    '  - {id: fax, name: Fax, meter: count, unit: st, vat_rate: "0.25", account: "3049"}\nprice_lists:\n',
).replace(
    'pc-standard: {model: per_unit, unit_price: "310.00"}',
    'pc-standard: {model: per_unit, unit_price: "310.00"}\n      fax: {model: per_unit, unit_price: "2.00"}',
)


def test_a_price_list_prices_or_retires_every_service() -> None:
    assert TWO_SERVICES.splitlines()[6:12] == [
        "price_lists:",
        '  - version: "2026"',
        "    valid_from: 2026-01-01",
        "    prices:",
        '      pc-standard: {model: per_unit, unit_price: "310.00"}',
        '      fax: {model: per_unit, unit_price: "2.00"}',
    ]
    without_fax = (
        TWO_SERVICES
        + '  - {version: "2027", valid_from: 2027-01-01, prices: {pc-standard: '
        + ('{model: per_unit, unit_price: "320.00"}}}\n')
    )
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(without_fax, "c.yaml")
    assert str(info.value) == (
        "c.yaml:13: price_lists[1]: price list 2027 has no price for fax; add a price, or name the "
        "service under retired: if it is no longer sold"
    )
    retired = without_fax.replace("}}}\n", "}}, retired: [fax]}\n")
    resolved = parse_catalogue(retired, "c.yaml").price_list_for(date(2027, 1, 1))
    assert (sorted(resolved.prices), resolved.retired) == (["pc-standard"], ("fax",))


def test_retired_names_a_service_of_the_catalogue_not_also_priced() -> None:
    text = TWO_SERVICES.replace("    prices:\n", "    retired: [fax, telex]\n    prices:\n")
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "c.yaml")
    assert str(info.value).splitlines() == [
        "c.yaml:10: price_lists[0].retired[0]: price list 2026 both prices and retires service fax; keep "
        "one of the two",
        "c.yaml:10: price_lists[0].retired[1]: price list 2026 retires service 'telex', which is not in "
        "the catalogue; the services are pc-standard, fax",
    ]


def test_an_indexed_list_may_override_some_prices_and_keeps_retired_services_retired() -> None:
    text = TWO_SERVICES.replace("    prices:\n", "    retired: []\n    prices:\n") + (
        '  - {version: "2027", valid_from: 2027-01-01, index_from: "2026", index: "1.032", retired: [fax]}\n'
        '  - version: "2028"\n'
        "    valid_from: 2028-01-01\n"
        '    index_from: "2027"\n'
        '    index: "1.10"\n'
        "    prices:\n"
        '      pc-standard: {model: per_unit, unit_price: "400.00"}\n'
    )
    catalogue = parse_catalogue(text, "c.yaml")
    y2027 = catalogue.price_list_for(date(2027, 1, 1))
    # 310.00 x 1.032 = 319.92; fax retired in 2027
    assert (y2027.prices, y2027.retired) == (
        {"pc-standard": PerUnit(model="per_unit", unit_price=Decimal("319.92"))},
        ("fax",),
    )
    y2028 = catalogue.price_list_for(date(2028, 1, 1))
    # 400.00 set in 2028 overrides 319.92 x 1.10 = 351.91; fax stays retired (2027 retired it)
    assert (y2028.prices, y2028.retired) == (
        {"pc-standard": PerUnit(model="per_unit", unit_price=Decimal("400.00"))},
        ("fax",),
    )


def test_index_from_and_index_go_together() -> None:
    text = MINIMAL + '  - {version: "2027", valid_from: 2027-01-01, index_from: "2026"}\n'
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "c.yaml")
    assert str(info.value) == (
        "c.yaml:11: price_lists[1]: index_from and index go together: name the list to index and the factor"
    )


# --- membership dates and dated keys (#12 items 2 and 3) -------------------------------------------


def test_membership_months_are_whole_months_from_joined_to_left() -> None:
    text = MINIMAL.replace("inhabitants: 26500}", "inhabitants: 26500, joined: 2026-11-15, left: 2027-02-01}")
    member = parse_catalogue(text, "c.yaml").municipality("2183")
    # joined on the 15th: a member (and billed) for the whole of November; left on 1 February: the
    # whole of February too; not in October, not in March.
    assert [member.member_in(Period(2026, m)) for m in (10, 11, 12)] == [False, True, True]
    assert [member.member_in(Period(2027, m)) for m in (1, 2, 3)] == [True, True, False]
    catalogue = parse_catalogue(text, "c.yaml")
    assert (catalogue.members(Period(2026, 10)), catalogue.members(Period(2026, 11))) == ((), ("2183",))


def test_left_before_joined_is_named() -> None:
    text = MINIMAL.replace("inhabitants: 26500}", "inhabitants: 26500, joined: 2026-11-01, left: 2026-10-31}")
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "c.yaml")
    assert str(info.value) == "c.yaml:3: municipalities[0]: left (2026-10-31) is before joined (2026-11-01)"


DATED = MINIMAL.replace(
    '  - {code: "2183", name: Bollnäs, inhabitants: 26500}\n',
    '  - code: "2183"\n'
    "    name: Bollnäs\n"
    "    inhabitants:\n"
    "      - {from: 2026-01-01, value: 26500}\n"
    '      - {from: 2027-01-01, value: "26720"}\n',
)


def test_inhabitants_may_be_dated_and_the_value_in_force_on_a_day_applies() -> None:
    member = parse_catalogue(DATED, "c.yaml").municipality("2183")
    assert [member.inhabitants_on(date(*d)) for d in ((2025, 12, 31), (2026, 1, 1), (2026, 12, 31))] == [
        None,
        26500,
        26500,
    ]
    assert member.inhabitants_on(date(2027, 1, 1)) == 26720


def test_dated_values_must_be_in_order() -> None:
    text = DATED.replace("from: 2027-01-01", "from: 2025-01-01")
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "c.yaml")
    assert str(info.value) == (
        "c.yaml:5: municipalities[0].inhabitants: the from: dates must increase, each value once"
    )
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(DATED.replace("value: 26500", "value: ١٠٠"), "c.yaml")
    assert str(info.value) == (
        "c.yaml:6: municipalities[0].inhabitants[0].value: '١٠٠' is not a whole number; write digits 0-9, "
        "such as 26500"
    )


def test_catalogue_show_names_the_retired_services(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from billing_jobs.catalogue_cli import catalogue

    path = tmp_path / "c.yaml"
    path.write_text(
        TWO_SERVICES + '  - {version: "2027", valid_from: 2027-01-01, index_from: "2026", index: "1.032",'
        " retired: [fax]}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(catalogue, ["show", str(path), "--period", "2027-02"])
    assert (result.exit_code, result.output.splitlines()) == (
        0,
        [
            "2027-02: price list 2027 (valid from 2027-01-01), SEK",
            "  pc-standard          daily_distinct  st    319.92 per unit",
            "  fax                  retired",
        ],
    )
