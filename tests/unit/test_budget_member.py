"""The budget per member the Norwegian way: the year's budget against what final runs billed and
the forecast, a total, in bokmål with Norwegian amounts for a NOK catalogue; exact values."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from billing_jobs.formats.local import Local
from billing_jobs.reports.budget import BudgetRow, MemberBudget, budget_by_member
from billing_jobs.reports.html import member_budget_page, signed_percent
from chargeback.catalogue import load_catalogue
from chargeback.period import Period

D = Decimal
NBSP = "\u00a0"
ROOT = Path(__file__).resolve().parents[2]
VESTERALEN = load_catalogue(ROOT / "demo" / "data" / "vesteralen" / "catalogue.yaml")
HALSINGLAND = load_catalogue(ROOT / "tests" / "fixtures" / "catalogue.yaml")
OCT = {"2026-10": D(0)}
ROWS = [
    # municipality, service, budget, months, actual, forecast (actual / 10 months x 12), variance
    BudgetRow("1870", "m365-e3", D("3000000.00"), OCT, D("2640846.80"), D("3169016.16"), D("169016.16")),
    BudgetRow("1870", "pc-standard", D("1500000.00"), OCT, D("1212674.20"), D("1455209.04"), D("-44790.96")),
    BudgetRow("1867", "m365-e3", D("800000.00"), OCT, D("662600.00"), D("795120.00"), D("-4880.00")),
    BudgetRow("1871", "pc-standard", D("0.00"), OCT, D("1000.00"), D("1200.00"), D("1200.00")),
]


NB = Local("nb_NO", "NOK")


def test_amounts_and_shares_as_norwegians_read_them() -> None:
    assert NB.money(D("1911785.62")) == f"1{NBSP}911{NBSP}785,62{NBSP}kr"
    assert NB.money(D("-44790.96")) == f"-44{NBSP}790,96{NBSP}kr"
    assert [signed_percent(x, NB) for x in (D("0.028"), D("-0.006"), D("0"), None)] == [
        f"+2,8{NBSP}%",
        f"-0,6{NBSP}%",
        f"0,0{NBSP}%",
        "–",
    ]


def test_the_budget_per_member_adds_up_its_services() -> None:
    assert budget_by_member(ROWS) == [
        MemberBudget("1867", D("800000.00"), D("662600.00"), D("795120.00"), D("-4880.00"), D("-0.006")),
        # 4 500 000.00 budgeted, 4 624 225.20 forecast: 124 225.20 over, 2.76 % -> 2.8 %
        MemberBudget("1870", D("4500000.00"), D("3853521.00"), D("4624225.20"), D("124225.20"), D("0.028")),
        MemberBudget("1871", D("0.00"), D("1000.00"), D("1200.00"), D("1200.00"), None),
    ]


def test_the_member_budget_page_is_in_bokmaal_for_a_nok_catalogue() -> None:
    html = member_budget_page(Period(2026, 10), 2026, budget_by_member(ROWS), VESTERALEN)
    assert html.startswith('<!DOCTYPE html>\n<html lang="nb">')
    assert "<h1>Budsjettkontroll 2026: fordeling per kommune</h1>" in html
    assert "til og med oktober 2026" in html and "beløp eksklusive mva." in html
    assert (
        "<th>Kommune</th><th>Årsbudsjett</th><th>Fakturert hittil</th><th>Prognose for året</th>"
        "<th>Avvik</th><th>Avvik (%)</th>"
    ) in html
    sortland = (
        f"<tr><td>1870 Sortland</td><td class=n>4{NBSP}500{NBSP}000,00{NBSP}kr</td>"
        f"<td class=n>3{NBSP}853{NBSP}521,00{NBSP}kr</td><td class=n>4{NBSP}624{NBSP}225,20{NBSP}kr</td>"
        f"<td class='n missed' title='over budsjett'>124{NBSP}225,20{NBSP}kr</td>"
        f"<td class=n>+2,8{NBSP}%</td></tr>"
    )
    assert sortland in html
    # The total: 5 300 000.00 budgeted, 5 420 545.20 forecast, 120 545.20 over (2.3 %).
    assert (
        f"<tr><td>Sum</td><td class=n>5{NBSP}300{NBSP}000,00{NBSP}kr</td>"
        f"<td class=n>4{NBSP}517{NBSP}121,00{NBSP}kr</td><td class=n>5{NBSP}420{NBSP}545,20{NBSP}kr</td>"
        f"<td class='n missed' title='over budsjett'>120{NBSP}545,20{NBSP}kr</td>"
        f"<td class=n>+2,3{NBSP}%</td></tr>"
    ) in html


def test_the_member_budget_page_is_swedish_for_a_sek_catalogue() -> None:
    html = member_budget_page(Period(2026, 10), 2026, budget_by_member(ROWS), HALSINGLAND)
    assert html.startswith('<!DOCTYPE html>\n<html lang="sv">')
    assert "<h1>Budgetuppföljning 2026 per kommun</h1>" in html and "till och med oktober 2026" in html
    assert f"<td class=n>4{NBSP}500{NBSP}000,00{NBSP}kr</td>" in html
    assert "title='över budget'" in html
