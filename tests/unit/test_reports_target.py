"""The savings target: the baseline indexed to the year, less the target share, against the
year's final runs and the forecast at the current rate, to the öre (figures worked out by hand)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from billing_jobs.reports.target import (
    Baseline,
    BaselineError,
    TargetRow,
    document,
    load_baseline,
    new_services,
    target_page,
    target_report,
)
from chargeback.catalogue import parse_catalogue

D = Decimal
CATALOGUE = parse_catalogue(
    """
currency: SEK
municipalities:
  - {code: "2183", name: Bollnäs, inhabitants: 26500}
  - {code: "2184", name: Hudiksvall, inhabitants: 37800}
  - {code: "2161", name: Ljusdal, inhabitants: 19000}
services:
  - {id: base-offering, name: Basutbud, meter: count, unit: mån, vat_rate: "0.25", account: "3040"}
  - {id: ticket-incident, name: Ärende, meter: count, unit: st, vat_rate: "0.25", account: "3043"}
  - {id: ai-assistant, name: AI-assistent, meter: count, unit: st, vat_rate: "0.25", account: "3046",
     introduced: 2025-03-01}
  - {id: e-archive, name: E-arkiv, meter: count, unit: st, vat_rate: "0.25", account: "3047"}
  - {id: old-extended, name: Utökad, meter: count, unit: st, vat_rate: "0.25", account: "3048",
     introduced: 2022-06-01}
price_lists:
  - version: "2026"
    valid_from: 2026-01-01
    prices:
      base-offering: {model: flat, amount: "800000.00"}
      ticket-incident: {model: per_unit, unit_price: "95.00"}
      ai-assistant: {model: per_unit, unit_price: "1000.00"}
      e-archive: {model: per_unit, unit_price: "200.00"}
      old-extended: {model: per_unit, unit_price: "1.00"}
""",
    "catalogue.yaml",
)
BASELINE = """\
baseline_year: 2022
index:
  2022: "1.000"
  2024: "1.101"
  2026: "1.153"
members:
  "2183": "10000000.00"
  "2184": "12000000.00"
new_services: [e-archive]
"""


def baseline(tmp_path: Path, text: str = BASELINE) -> Path:
    path = tmp_path / "baseline.yaml"
    path.write_text(text)
    return path


def test_the_issue_example_10_000_000_indexed_1_153_less_10_percent_allows_10_377_000(tmp_path: Path) -> None:
    loaded = load_baseline(baseline(tmp_path), CATALOGUE)
    assert loaded.target_share == D("0.10")  # the default
    report = target_report(loaded, CATALOGUE, 2026, {})
    row = report.rows[0]
    assert (row.municipality, row.baseline, row.indexed, row.target) == (
        "2183",
        D("10000000.00"),
        D("11530000.00"),  # 10 000 000,00 × 1,153 / 1,000
        D("10377000.00"),  # 11 530 000,00 × 0,90
    )
    assert (report.index_year, report.index_base, report.index) == (2026, D("1.000"), D("1.153"))


def test_actual_forecast_and_gap_per_member_and_in_total(tmp_path: Path) -> None:
    actual = {
        # 2183: two invoiced months; September's tickets include a correction (5 × 95.00)
        ("2183", "base-offering"): {"2026-09": D("800000.00"), "2026-10": D("800000.00")},
        ("2183", "ticket-incident"): {"2026-09": D("475.00"), "2026-10": D("190.00")},
        ("2183", "ai-assistant"): {"2026-09": D("2000.00")},  # introduced 2025: apart
        ("2183", "old-extended"): {"2026-10": D("10.00")},  # introduced 2022: in the baseline
        ("2184", "base-offering"): {"2026-09": D("800000.00"), "2026-10": D("800000.00")},
        ("2184", "ticket-incident"): {"2026-10": D("950.00")},
        ("2184", "e-archive"): {"2026-10": D("1000.00")},  # listed in the baseline file: apart
        ("2161", "base-offering"): {"2026-10": D("800000.00")},  # no baseline: no target
    }
    report = target_report(load_baseline(baseline(tmp_path), CATALOGUE), CATALOGUE, 2026, actual)
    assert report.excluded == ("ai-assistant", "e-archive")
    assert report.rows == (
        # 800 000,00 / 1 month × 12
        TargetRow("2161", "Ljusdal", None, None, None, D("800000.00"), D(0), 1, D("9600000.00"), None, None),
        # 1 600 675,00 / 2 × 12 = 9 604 050,00; − 10 377 000,00 = −772 950,00 = −7,4 %
        TargetRow(
            "2183",
            "Bollnäs",
            D("10000000.00"),
            D("11530000.00"),
            D("10377000.00"),
            D("1600675.00"),
            D("2000.00"),
            2,
            D("9604050.00"),
            D("-772950.00"),
            D("-7.4"),
        ),
        # 12 000 000,00 × 1,153 = 13 836 000,00; × 0,9 = 12 452 400,00; 1 600 950,00 / 2 × 12 =
        # 9 605 700,00; gap −2 846 700,00 = −22,86… %
        TargetRow(
            "2184",
            "Hudiksvall",
            D("12000000.00"),
            D("13836000.00"),
            D("12452400.00"),
            D("1600950.00"),
            D("1000.00"),
            2,
            D("9605700.00"),
            D("-2846700.00"),
            D("-22.9"),
        ),
    )
    # Members of the baseline only: gap −3 619 650,00 of 22 829 400,00 = −15,855… %
    assert report.total == TargetRow(
        "total",
        "",
        D("22000000.00"),
        D("25366000.00"),
        D("22829400.00"),
        D("3201625.00"),
        D("3000.00"),
        2,
        D("19209750.00"),
        D("-3619650.00"),
        D("-15.9"),
    )
    assert report.new_by_service == {"ai-assistant": D("2000.00"), "e-archive": D("1000.00")}
    assert document(report)["total"]["gap_pct"] == "-15.9"
    assert document(report)["members"][0]["target"] is None


def test_target_share_and_the_latest_index_on_or_before_the_year(tmp_path: Path) -> None:
    text = BASELINE.replace("baseline_year: 2022\n", 'baseline_year: 2022\ntarget_share: "0.15"\n')
    report = target_report(load_baseline(baseline(tmp_path, text), CATALOGUE), CATALOGUE, 2025, {})
    # 2025 has no index: 2024's 1,101. 10 000 000,00 × 1,101 = 11 010 000,00; × 0,85 = 9 358 500,00
    assert (report.index_year, report.rows[0].indexed, report.rows[0].target) == (
        2024,
        D("11010000.00"),
        D("9358500.00"),
    )


def test_a_service_introduced_after_the_baseline_year_is_new() -> None:
    plain = Baseline(baseline_year=2024, index={2024: D(1)}, members={"2183": D(1)})
    assert new_services(plain, CATALOGUE) == ("ai-assistant",)
    assert new_services(plain.model_copy(update={"baseline_year": 2025}), CATALOGUE) == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASELINE.replace('  2022: "1.000"\n', ""), "baseline.yaml:2: index: needs the baseline year 2022"),
        (
            BASELINE.replace('"1.153"', "1.153"),
            'baseline.yaml:5: index.2026: must be quoted to be exact: write "1.153"',
        ),
        (
            BASELINE.replace('"2184"', '"2999"'),
            "baseline.yaml:8: members: 2999 is not a municipality of the catalogue",
        ),
        (
            BASELINE.replace("[e-archive]", "[e-arkiv]"),
            "baseline.yaml:9: new_services: e-arkiv is not a service of the catalogue",
        ),
        (
            BASELINE.replace("baseline_year", "base_year"),
            "baseline.yaml:1: base_year: is not a field of a baseline file",
        ),
        ("members: {}\n", "baseline.yaml:1: baseline_year: is missing; add baseline_year:"),
        (BASELINE + 'target_share: "1.5"\n', "baseline.yaml:10: target_share: Input should be less than 1"),
    ],
)
def test_a_wrong_baseline_file_is_one_sentence_with_its_line(tmp_path: Path, text: str, message: str) -> None:
    path = baseline(tmp_path, text)
    with pytest.raises(BaselineError) as caught:
        load_baseline(path, CATALOGUE)
    assert str(caught.value).startswith(str(path.parent) + "/" + message), str(caught.value)


def test_the_html_page_names_the_index_and_keeps_new_services_apart(tmp_path: Path) -> None:
    actual = {("2183", "ai-assistant"): {"2026-09": D("2000.00")}}
    page = target_page(target_report(load_baseline(baseline(tmp_path), CATALOGUE), CATALOGUE, 2026, actual))
    assert "Baseline 2022 indexed 1.000 → 1.153 (index of 2026), target −10 %" in page
    assert "<td>ai-assistant</td><td class=n>2000.00</td>" in page
    assert "<td>2183 Bollnäs</td><td class=n>10000000.00</td><td class=n>11530000.00</td>" in page


def test_the_command_line_names_a_wrong_baseline_in_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit.test_cli import run

    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(
        Path(__file__).resolve().parents[1].joinpath("fixtures", "catalogue.yaml").read_text()
    )
    path = baseline(tmp_path, BASELINE.replace('"1.153"', "1.153"))
    code, out, err = run(
        ["report", "--catalogue", str(catalogue), "target", "--baseline", str(path), "--year", "2026"], capsys
    )
    assert (code, out) == (1, "")
    assert err == (
        f'error: {path}:5: index.2026: must be quoted to be exact: write "1.153" '
        "(a bare YAML number is a float)\n"
    )
