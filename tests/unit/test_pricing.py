"""Pricing rules to the öre: each model, minimums, splits, VAT and lines.

The contract is docs/contract.md, "From quantities to money".
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from billing_jobs.model import Line, Usage
from billing_jobs.pricing import (
    apply_minimum,
    key_weights,
    price_amount,
    price_period,
    split_largest_remainder,
    unbilled_usage,
)
from chargeback.catalogue import (
    Package,
    PerUnit,
    Tier,
    TieredGraduated,
    TieredVolume,
    load_catalogue,
    parse_catalogue,
)
from chargeback.period import Period

D = Decimal
CATALOGUE = load_catalogue(Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml")
OCT = Period(2026, 10)
GRADUATED = TieredGraduated(
    model="tiered_graduated", tiers=(Tier(up_to=D("200"), unit_price=D("95.00")), Tier(unit_price=D("80.00")))
)
VOLUME = TieredVolume(
    model="tiered_volume", tiers=(Tier(up_to=D("1000"), unit_price=D("260.00")), Tier(unit_price=D("240.00")))
)
PACKAGE = Package(model="package", package_size=D("100"), package_price=D("450.00"))


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [
        ("0", "0.00"),
        ("199", "18905.00"),  # 199 x 95
        ("200", "19000.00"),  # the tier edge belongs to the first tier
        ("200.5", "19040.00"),  # 200 x 95 + 0.5 x 80
        ("1301", "107080.00"),  # 19000 + 1101 x 80
        ("0.000001", "0.00"),  # 0.000095 rounds to 0.00
        ("0.000053", "0.01"),  # 0.005035 half-up to 0.01
    ],
)
def test_tiered_graduated(quantity: str, amount: str) -> None:
    assert price_amount(GRADUATED, D(quantity)) == D(amount)


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [
        ("1000", "260000.00"),  # up_to is inclusive: 1000 x 260
        ("1000.000001", "240000.00"),  # the whole quantity at 240: 240000.00024
        ("1500", "360000.00"),
        ("0.5", "130.00"),
    ],
)
def test_tiered_volume(quantity: str, amount: str) -> None:
    assert price_amount(VOLUME, D(quantity)) == D(amount)


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [("0", "0.00"), ("0.000001", "450.00"), ("100", "450.00"), ("100.000001", "900.00"), ("250", "1350.00")],
)
def test_package(quantity: str, amount: str) -> None:
    assert price_amount(PACKAGE, D(quantity)) == D(amount)


def test_per_unit_rounds_half_up_once_at_the_end() -> None:
    price = PerUnit(model="per_unit", unit_price=D("310.00"))
    assert price_amount(price, D("2.516129")) == D("780.00")  # 779.99999
    assert price_amount(PerUnit(model="per_unit", unit_price=D("0.05")), D("0.1")) == D(
        "0.01"
    )  # 0.005 -> 0.01


def test_minimum_is_a_floor() -> None:
    assert apply_minimum(D("120.00"), D("500.00")) == D("500.00")
    assert apply_minimum(D("520.00"), D("500.00")) == D("520.00")
    assert apply_minimum(D("520.00"), None) == D("520.00")


def test_split_with_a_tie_goes_to_the_lower_code() -> None:
    # 100.00 in three equal parts: 33.333.. each; the one leftover öre goes to the lowest code.
    assert split_largest_remainder(D("100.00"), {"SOC": D(1), "BUF": D(1), "KS": D(1)}) == {
        "BUF": D("33.34"),
        "KS": D("33.33"),
        "SOC": D("33.33"),
    }


def test_distributed_split_of_the_spec_by_inhabitants() -> None:
    weights = key_weights(CATALOGUE, OCT, "inhabitants")
    assert weights == {
        "2121": D(11300),
        "2132": D(9400),
        "2161": D(19000),
        "2182": D(25400),
        "2183": D(26500),
        "2184": D(37800),
    }
    assert split_largest_remainder(D("100000.00"), weights) == {
        "2121": D("8732.61"),
        "2132": D("7264.30"),
        "2161": D("14683.15"),
        "2182": D("19629.06"),
        "2183": D("20479.13"),
        "2184": D("29211.75"),
    }


def test_split_refuses_what_it_cannot_split() -> None:
    with pytest.raises(ValueError, match="not all zero"):
        split_largest_remainder(D("1.00"), {"A": D(0)})
    with pytest.raises(ValueError, match="not in whole öre"):
        split_largest_remainder(D("1.001"), {"A": D(1)})


def lines_for(
    usage: list[Usage], municipalities: list[str] | None = None, catalogue_text: str | None = None
) -> list[Line]:
    catalogue = parse_catalogue(catalogue_text, "c.yaml") if catalogue_text else CATALOGUE
    return price_period(catalogue, OCT, usage, municipalities)


def test_cost_centres_share_the_municipality_total_by_quantity() -> None:
    lines = lines_for(
        [Usage("2183", "BUF", "pc-standard", D("1.516129")), Usage("2183", "SOC", "pc-standard", D("1"))],
        ["2183"],
    )
    usage_lines = [
        (x.cost_centre, x.quantity, x.unit_price, x.amount, x.vat_amount)
        for x in lines
        if x.service == "pc-standard"
    ]
    assert usage_lines == [
        ("BUF", D("1.516129"), D("310.00"), D("470.00"), D("117.50")),
        ("SOC", D("1"), D("310.00"), D("310.00"), D("77.50")),
    ]


def test_graduated_tiers_apply_to_the_municipality_total_not_per_cost_centre() -> None:
    # 150 + 150 tickets = 300: 200 x 95 + 100 x 80 = 27000.00, split evenly: 13500.00 each. Priced per
    # cost centre it would have been 2 x 14250.00.
    lines = lines_for(
        [
            Usage("2183", "BUF", "ticket-incident", D("150")),
            Usage("2183", "SOC", "ticket-incident", D("150")),
        ],
        ["2183"],
    )
    assert [(x.cost_centre, x.amount) for x in lines if x.service == "ticket-incident"] == [
        ("BUF", D("13500.00")),
        ("SOC", D("13500.00")),
    ]


def test_quantities_are_rounded_to_six_decimals_before_pricing() -> None:
    lines = lines_for([Usage("2183", "BUF", "pc-standard", D("1.0000004999"))], ["2183"])
    assert [(x.quantity, x.amount) for x in lines if x.service == "pc-standard"] == [
        (D("1.000000"), D("310.00"))
    ]


def test_flat_and_distributed_lines_for_every_municipality_in_scope() -> None:
    lines = lines_for([], ["2132", "2184"])
    assert [
        (x.municipality, x.cost_centre, x.service, x.quantity, x.amount, x.vat_amount) for x in lines
    ] == [
        ("2132", "UNALLOCATED", "base-offering", D(1), D("125000.00"), D("31250.00")),
        ("2132", "UNALLOCATED", "soc-shared", D(1), D("7264.30"), D("1816.08")),
        ("2184", "UNALLOCATED", "base-offering", D(1), D("125000.00"), D("31250.00")),
        ("2184", "UNALLOCATED", "soc-shared", D(1), D("29211.75"), D("7302.94")),
    ]


MINIMUM_CATALOGUE = """\
currency: SEK
municipalities:
  - {code: "2183", name: Bollnäs, inhabitants: 26500}
  - {code: "2184", name: Hudiksvall, inhabitants: 37800}
services:
  - {id: pc-standard, name: Dator, meter: daily_distinct, unit: st, vat_rate: "0.25", account: "3041"}
  - {id: soc-shared, name: SOC, meter: count, unit: mån, vat_rate: "0.25", account: "3045"}
price_lists:
  - version: "2026"
    valid_from: 2026-01-01
    prices:
      pc-standard: {model: per_unit, unit_price: "310.00", minimum: "1000.00"}
      soc-shared: {model: distributed, annual_amount: "1000.00", key: equal}
"""


def test_minimum_with_usage_is_split_and_without_usage_goes_to_unallocated() -> None:
    lines = lines_for(
        [Usage("2183", "BUF", "pc-standard", D("1")), Usage("2183", "KS", "pc-standard", D("2"))],
        catalogue_text=MINIMUM_CATALOGUE,
    )
    assert [
        (x.municipality, x.cost_centre, x.service, x.quantity, x.unit_price, x.amount) for x in lines
    ] == [
        # 3 x 310 = 930.00 < 1000.00: the minimum, split 1:2 -> 333.333.. / 666.666..: 333.33 / 666.67
        ("2183", "BUF", "pc-standard", D("1"), D("333.33"), D("333.33")),
        ("2183", "KS", "pc-standard", D("2"), D("333.34"), D("666.67")),
        # 1000.00 / 12 = 83.333.. -> 83.33, split equally: 41.665 each -> 41.67 (lower code) + 41.66
        ("2183", "UNALLOCATED", "soc-shared", D(1), D("41.67"), D("41.67")),
        # no usage: the minimum alone, quantity 0, no unit price
        ("2184", "UNALLOCATED", "pc-standard", D(0), None, D("1000.00")),
        ("2184", "UNALLOCATED", "soc-shared", D(1), D("41.66"), D("41.66")),
    ]


def test_indexed_prices_apply_from_their_year() -> None:
    lines = price_period(CATALOGUE, Period(2027, 1), [Usage("2183", "BUF", "pc-standard", D("10"))], ["2183"])
    pc = next(x for x in lines if x.service == "pc-standard")
    assert (pc.amount, pc.unit_price, pc.price_list) == (D("3199.20"), D("319.92"), "2027")


def test_no_line_without_quantity_and_amount() -> None:
    lines = lines_for([Usage("2183", "BUF", "storage-file", D("0"))], ["2183"])
    assert [x.service for x in lines] == ["base-offering", "soc-shared"]


def test_usage_no_line_can_bill_is_reported_and_blocks_nobody() -> None:
    usage = [
        Usage("2183", "BUF", "coffee", D("1")),
        Usage("9999", "BUF", "pc-standard", D("2.5")),
        Usage("9999", "KS", "pc-standard", D("0.5")),
        Usage("2183", "BUF", "pc-standard", D("1")),
    ]
    lines = lines_for(usage, ["2183"])
    # 2183 is billed as if the other usage were not there.
    assert [(x.cost_centre, x.service, x.amount) for x in lines] == [
        ("BUF", "pc-standard", D("310.00")),
        ("UNALLOCATED", "base-offering", D("125000.00")),
        ("UNALLOCATED", "soc-shared", D("20479.13")),
    ]
    assert unbilled_usage(CATALOGUE, OCT, usage) == [
        "usage of coffee by 2183 in 2026-10 is not billed: service coffee is not in the catalogue "
        "(quantity 1.000000)",
        "usage of pc-standard by 9999 in 2026-10 is not billed: municipality 9999 is not in the catalogue "
        "(quantity 3.000000)",
    ]
