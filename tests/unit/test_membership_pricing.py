"""Membership dates and dated keys in pricing (docs/contract.md, "Invoice integrity"): only the
members of a month are billed and count in distribution keys, and a month uses the key in force on
its first day.

The scenario: the six members of the fixture; Ockelbo (2101, 5,900 inhabitants) joins on
2026-11-01; Nordanstig (2132) leaves on 2026-11-30 (its last day as a member); Bollnäs (2183) has
26,500 inhabitants from 2026-01-01 and 26,720 from 2027-01-01. SOC costs 1,200,000.00 a year
in 2026, 100,000.00 a month = 10,000,000 öre; 2027 is 2026 x 1.032: 1,238,400.00, 103,200.00 a month.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from billing_jobs.model import Line, Usage
from billing_jobs.pricing import key_weights, price_period, unbilled_usage
from chargeback.catalogue import Catalogue, parse_catalogue
from chargeback.period import Period

D = Decimal
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml"
TEXT = (
    FIXTURE.read_text(encoding="utf-8")
    .replace(
        '  - {code: "2121", name: Ovanåker, inhabitants: 11300}\n',
        '  - {code: "2101", name: Ockelbo, inhabitants: 5900, joined: 2026-11-01}\n'
        '  - {code: "2121", name: Ovanåker, inhabitants: 11300}\n',
    )
    .replace("inhabitants: 9400}", "inhabitants: 9400, left: 2026-11-30}")
    .replace(
        "inhabitants: 26500}",
        "inhabitants: [{from: 2026-01-01, value: 26500}, {from: 2027-01-01, value: 26720}]}",
    )
)
CATALOGUE = parse_catalogue(TEXT, "c.yaml")
OCT, NOV, DEC, JAN = Period(2026, 10), Period(2026, 11), Period(2026, 12), Period(2027, 1)


def charges(catalogue: Catalogue, period: Period, usage: list[Usage] | None = None) -> list[Line]:
    return price_period(catalogue, period, usage or [])


def soc(lines: list[Line]) -> dict[str, Decimal]:
    return {x.municipality: x.amount for x in lines if x.service == "soc-shared"}


def test_the_scenario_catalogue_is_as_described() -> None:
    assert CATALOGUE.municipality_codes == ("2101", "2121", "2132", "2161", "2182", "2183", "2184")
    assert [CATALOGUE.members(p) for p in (OCT, NOV, DEC)] == [
        ("2121", "2132", "2161", "2182", "2183", "2184"),
        ("2101", "2121", "2132", "2161", "2182", "2183", "2184"),
        ("2101", "2121", "2161", "2182", "2183", "2184"),
    ]


def test_october_a_member_to_be_is_charged_nothing_and_the_six_keep_their_shares() -> None:
    lines = charges(CATALOGUE, OCT)
    assert [x for x in lines if x.municipality == "2101"] == []
    # 10,000,000 öre by 129,400 inhabitants: the split of the six without 2101 (test_pricing).
    assert soc(lines) == {
        "2121": D("8732.61"),
        "2132": D("7264.30"),
        "2161": D("14683.15"),
        "2182": D("19629.06"),
        "2183": D("20479.13"),
        "2184": D("29211.75"),
    }
    assert sum(x.amount for x in lines if x.service == "base-offering") == D("750000.00")  # 6 x 125,000


def test_november_the_new_member_pays_the_flat_fee_and_soc_is_split_by_seven() -> None:
    lines = charges(CATALOGUE, NOV)
    assert [(x.service, x.amount) for x in lines if x.municipality == "2101"] == [
        ("base-offering", D("125000.00")),
        ("soc-shared", D("4360.68")),
    ]
    # 10,000,000 öre x inhabitants / 135,300:
    #   2101  5,900: 436,067.997 | 2121 11,300: 835,181.079 | 2132  9,400: 694,752.402
    #   2161 19,000: 1,404,286.770 | 2182 25,400: 1,877,309.682 | 2183 26,500: 1,958,610.495
    #   2184 37,800: 2,793,791.574
    # floors add up to 9,999,996: the 4 öre left go to the largest remainders .997 (2101),
    # .770 (2161), .682 (2182) and .574 (2184).
    assert soc(lines) == {
        "2101": D("4360.68"),
        "2121": D("8351.81"),
        "2132": D("6947.52"),
        "2161": D("14042.87"),
        "2182": D("18773.10"),
        "2183": D("19586.10"),
        "2184": D("27937.92"),
    }
    assert sum(soc(lines).values()) == D("100000.00")


def test_december_the_member_that_left_is_charged_nothing_and_counts_in_no_key() -> None:
    lines = charges(CATALOGUE, DEC)
    assert [x for x in lines if x.municipality == "2132"] == []
    # 10,000,000 öre x inhabitants / 125,900 (135,300 - 9,400):
    #   2101: 468,625.894 | 2121: 897,537.728 | 2161: 1,509,134.234 | 2182: 2,017,474.186
    #   2183: 2,104,845.115 | 2184: 3,002,382.844; 3 öre left: .894 (2101), .844 (2184), .728 (2121)
    assert soc(lines) == {
        "2101": D("4686.26"),
        "2121": D("8975.38"),
        "2161": D("15091.34"),
        "2182": D("20174.74"),
        "2183": D("21048.45"),
        "2184": D("30023.83"),
    }


def test_january_uses_the_inhabitants_in_force_on_its_first_day() -> None:
    assert key_weights(CATALOGUE, DEC, "inhabitants")["2183"] == D(26500)
    assert key_weights(CATALOGUE, JAN, "inhabitants")["2183"] == D(26720)
    lines = charges(CATALOGUE, JAN)
    # 10,320,000 öre x inhabitants / 129,620 (125,900 + 220 more in 2183):
    #   2101: 482,778.306 | 2121: 924,643.197 | 2161: 1,554,709.800 | 2182: 2,078,401.522
    #   2183 (26,720): 2,186,412.940 | 2184: 3,093,054.234; 3 öre left: .940 (2183), .800 (2161),
    #   .522 (2182)
    assert soc(lines) == {
        "2101": D("4827.78"),
        "2121": D("9246.43"),
        "2161": D("15547.10"),
        "2182": D("20784.02"),
        "2183": D("21864.13"),
        "2184": D("30930.54"),
    }
    # ... and December, priced again later, still uses 26,500: the same shares as above.
    assert soc(charges(CATALOGUE, DEC))["2183"] == D("21048.45")


def test_usage_outside_membership_is_not_billed_but_reported() -> None:
    usage = [
        Usage("2101", "BUF", "pc-standard", D("5")),  # October: 2101 joins in November
        Usage("2183", "BUF", "pc-standard", D("2")),
    ]
    lines = charges(CATALOGUE, OCT, usage)
    assert [(x.municipality, x.amount) for x in lines if x.service == "pc-standard"] == [
        ("2183", D("620.00"))
    ]
    assert unbilled_usage(CATALOGUE, OCT, usage) == [
        "usage of pc-standard by 2101 in 2026-10 is not billed: municipality 2101 was not a member in "
        "2026-10 (joined 2026-11-01) (quantity 5.000000)"
    ]
    # A former member's late usage of a month it was a member in is billed as usual.
    late = [Usage("2132", "KS", "pc-standard", D("1"))]
    assert [
        (x.municipality, x.amount) for x in charges(CATALOGUE, NOV, late) if x.service == "pc-standard"
    ] == [("2132", D("310.00"))]
    assert unbilled_usage(CATALOGUE, NOV, late) == []
    assert unbilled_usage(CATALOGUE, DEC, late) == [
        "usage of pc-standard by 2132 in 2026-12 is not billed: municipality 2132 was not a member in "
        "2026-12 (left 2026-11-30) (quantity 1.000000)"
    ]


def test_a_scope_of_non_members_has_no_lines() -> None:
    assert price_period(CATALOGUE, OCT, [], ["2101"]) == []
    assert [x.municipality for x in price_period(CATALOGUE, DEC, [], ["2132", "2184"])] == ["2184", "2184"]


SMALL = """\
currency: SEK
municipalities:
  - code: "2183"
    name: Bollnäs
    inhabitants: [{from: 2026-01-01, value: 100}, {from: 2027-01-01, value: 200}]
  - {code: "2184", name: Hudiksvall, inhabitants: 200, joined: 2026-11-01}
services:
  - {id: pc-standard, name: Dator, meter: daily_distinct, unit: st, vat_rate: "0.25", account: "3041"}
  - {id: soc-shared, name: SOC, meter: count, unit: mån, vat_rate: "0.25", account: "3045"}
price_lists:
  - version: "2026"
    valid_from: 2026-01-01
    prices:
      pc-standard: {model: per_unit, unit_price: "310.00", minimum: "1000.00"}
      soc-shared: {model: distributed, annual_amount: "1000.00", key: inhabitants}
"""


def test_minimums_and_keys_count_only_members_and_a_tie_goes_to_the_lower_code() -> None:
    small = parse_catalogue(SMALL, "c.yaml")
    # October: 2184 not yet a member: no minimum for it, and 2183 carries the whole 83.33
    # (1000.00 / 12 = 83.333.. -> 83.33).
    assert [(x.municipality, x.service, x.amount) for x in price_period(small, OCT, [])] == [
        ("2183", "pc-standard", D("1000.00")),
        ("2183", "soc-shared", D("83.33")),
    ]
    # December: 8,333 öre by 100 : 200 -> 2,777.667 and 5,555.333: the öre left goes to 2183 (.667).
    assert soc(price_period(small, DEC, [])) == {"2183": D("27.78"), "2184": D("55.55")}
    # January 2027: 2183 has 200 too -> 4,166.5 each, a tie: the öre goes to the lower code, 2183.
    assert soc(price_period(small, JAN, [])) == {"2183": D("41.67"), "2184": D("41.66")}
