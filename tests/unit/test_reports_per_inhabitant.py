"""IT cost per inhabitant per member, service, month and year, with the organisation's average."""

from __future__ import annotations

from decimal import Decimal

from billing_jobs.reports.per_inhabitant import (
    ALL,
    PerInhabitantRow,
    per_inhabitant_page,
    per_inhabitant_rows,
)
from chargeback.catalogue import parse_catalogue

D = Decimal
CATALOGUE = parse_catalogue(
    """
currency: SEK
municipalities:
  - {code: "2183", name: Bollnäs, inhabitants: 26500}
  - code: "2184"
    name: Hudiksvall
    inhabitants: [{from: null, value: 37000}, {from: 2026-10-01, value: 37800}]
services:
  - {id: base-offering, name: Basutbud, meter: count, unit: mån, vat_rate: "0.25", account: "3040"}
  - {id: ticket-incident, name: Ärende, meter: count, unit: st, vat_rate: "0.25", account: "3043"}
price_lists:
  - version: "2026"
    valid_from: 2026-01-01
    prices:
      base-offering: {model: flat, amount: "800000.00"}
      ticket-incident: {model: per_unit, unit_price: "95.00"}
""",
    "catalogue.yaml",
)
ACTUAL = {
    ("2183", "base-offering"): {"2026-09": D("800000.00"), "2026-10": D("800000.00")},
    ("2183", "ticket-incident"): {"2026-09": D("475.00"), "2026-10": D("190.00")},
    ("2184", "base-offering"): {"2026-09": D("800000.00"), "2026-10": D("800000.00")},
    ("2184", "ticket-incident"): {"2026-10": D("950.00")},
    ("9999", "base-offering"): {"2026-10": D("1.00")},  # no longer in the catalogue: left out
}


def test_cost_per_inhabitant_with_the_organisations_average() -> None:
    rows = per_inhabitant_rows(CATALOGUE, 2026, ACTUAL)
    october = {(r.municipality, r.service): r for r in rows if r.period == "2026-10"}
    # 2183: 800 190,00 / 26 500 = 30,195… -> 30,20; 2184 (37 800 from October): 800 950,00 / 37 800 =
    # 21,189… -> 21,19; the organisation: 1 601 140,00 / 64 300 = 24,901… -> 24,90
    assert october[("2183", ALL)] == PerInhabitantRow(
        "2026-10",
        "2183",
        "Bollnäs",
        ALL,
        D("800190.00"),
        26500,
        D("30.20"),
        D("1601140.00"),
        64300,
        D("24.90"),
    )
    assert (october[("2184", ALL)].inhabitants, october[("2184", ALL)].per_inhabitant) == (37800, D("21.19"))
    # Tickets: 2183 190,00 / 26 500 = 0,0071… -> 0,01; the organisation 1 140,00 / 64 300 = 0,0177… -> 0,02
    assert (
        october[("2183", "ticket-incident")].per_inhabitant,
        october[("2183", "ticket-incident")].organisation_per_inhabitant,
    ) == (D("0.01"), D("0.02"))
    september = {(r.municipality, r.service): r for r in rows if r.period == "2026-09"}
    # 2184 had no tickets in September: a row of 0,00 beside the organisation's 475,00 / 63 500
    assert september[("2184", "ticket-incident")].cost == D(0)
    assert september[("2184", ALL)].inhabitants == 37000
    year = {(r.municipality, r.service): r for r in rows if r.period == "2026"}
    # The year to date, inhabitants on 1 January (37 000 for 2184): 1 600 665,00 / 26 500 = 60,402… ;
    # 1 600 950,00 / 37 000 = 43,268… ; organisation 3 201 615,00 / 63 500 = 50,419…
    assert [
        (year[(m, ALL)].per_inhabitant, year[(m, ALL)].organisation_per_inhabitant) for m in ("2183", "2184")
    ] == [
        (D("60.40"), D("50.42")),
        (D("43.27"), D("50.42")),
    ]
    assert [r.period for r in rows][::6] == ["2026-09", "2026-10", "2026"]
    assert [(r.municipality, r.service) for r in rows[:6]] == [
        ("2183", ALL),
        ("2184", ALL),
        ("2183", "base-offering"),
        ("2184", "base-offering"),
        ("2183", "ticket-incident"),
        ("2184", "ticket-incident"),
    ]


def test_the_page_shows_members_side_by_side_with_the_organisation() -> None:
    page = per_inhabitant_page(2026, per_inhabitant_rows(CATALOGUE, 2026, ACTUAL))
    assert "<th>Month</th><th>Bollnäs</th><th>Hudiksvall</th><th>Organisation</th>" in page
    assert (
        "<tr><td>2026-10</td><td class=n>30.20</td><td class=n>21.19</td><td class=n>24.90</td></tr>" in page
    )
    assert (
        "<td>2183 Bollnäs</td><td class=n>26500</td><td class=n>1600665.00</td><td class=n>60.40</td>" in page
    )
