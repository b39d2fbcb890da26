"""The catalogue of the contract (docs/contract.md, "The catalogue" and "From quantities to money"),
checked through the ``chargeback catalogue`` command only: which price list a month gets, indexing
to the öre, and a catalogue that is refused with the file and line of each mistake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chargeback_cli.main import main

CATALOGUE = """\
currency: SEK
timezone: Europe/Stockholm
municipalities:
  - {code: "2121", name: Ovanåker, inhabitants: 11300}
  - {code: "2183", name: Bollnäs, inhabitants: 26500}
services:
  - {id: base-offering, name: Basutbud, meter: count, unit: mån, vat_rate: "0.25", account: "3040"}
  - {id: pc-standard, name: Standarddator, meter: daily_distinct, unit: st, vat_rate: "0.25", account: "3041"}
  - {id: storage-file, name: Fillagring, meter: daily_max, unit: GiB, vat_rate: "0.25", account: "3042"}
  - {id: ticket-incident, name: Ärende incident, meter: count, unit: st, vat_rate: "0.25", account: "3043"}
  - {id: m365-e3, name: Microsoft 365 E3, meter: daily_distinct, unit: st, vat_rate: "0.25", account: "3044"}
  - {id: soc-shared, name: Gemensam SOC, meter: count, unit: mån, vat_rate: "0.25", account: "3045"}
  - {id: print-page, name: Utskrift, meter: count, unit: sida, vat_rate: "0.25", account: "3048"}
price_lists:
  - version: "2026"
    valid_from: 2026-01-01
    prices:
      pc-standard: {model: per_unit, unit_price: "310.00"}
      storage-file: {model: package, package_size: "100", package_price: "450.00"}
      ticket-incident:
        model: tiered_graduated
        tiers: [{up_to: "200", unit_price: "95.00"}, {up_to: null, unit_price: "80.00"}]
      m365-e3:
        model: tiered_volume
        tiers: [{up_to: "1000", unit_price: "260.00"}, {up_to: null, unit_price: "240.00"}]
      base-offering: {model: flat, amount: "125000.00"}
      soc-shared: {model: distributed, annual_amount: "1200000.00", key: inhabitants}
      print-page: {model: per_unit, unit_price: "12.34", minimum: "500.50"}
  - version: "2026.2"
    valid_from: 2026-10-02
    index_from: "2026"
    index: "1"
    prices:
      print-page: {model: per_unit, unit_price: "20.00"}
  - version: "2027"
    valid_from: 2027-01-01
    index_from: "2026"
    index: "1.032"
"""


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return int(code or 0), out, err


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    path = tmp_path / "catalogue.yaml"
    path.write_text(CATALOGUE, encoding="utf-8")
    return path


def show(catalogue: Path, period: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = run(["catalogue", "show", str(catalogue), "--period", period, "--json"], capsys)
    assert (code, err) == (0, "")
    doc: dict[str, Any] = json.loads(out)
    return doc


@pytest.mark.parametrize(
    ("period", "version"),
    [
        ("2026-01", "2026"),
        # "2026.2" is valid from 2 October: October's first day is before it, so October keeps 2026.
        ("2026-10", "2026"),
        ("2026-11", "2026.2"),
        ("2026-12", "2026.2"),
        ("2027-01", "2027"),
        ("2031-06", "2027"),
    ],
)
def test_the_list_valid_on_the_months_first_day_applies(
    catalogue: Path, period: str, version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert show(catalogue, period, capsys)["price_list"] == version


def test_a_month_before_every_list_is_one_sentence(
    catalogue: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["catalogue", "show", str(catalogue), "--period", "2025-12"], capsys)
    assert code == 1
    assert "2025-12-01" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_an_index_multiplies_every_price_each_rounded_to_the_ore(
    catalogue: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = show(catalogue, "2027-01", capsys)["prices"]
    # Each money figure of 2026 times 1.032, rounded half-up to 0.01 one by one:
    #  310.00 -> 319.92; 450.00 -> 464.40 (the package size stays 100); tiers 95.00 -> 98.04,
    #  80.00 -> 82.56, 260.00 -> 268.32, 240.00 -> 247.68 (bounds stay); 125000.00 -> 129000.00;
    #  1200000.00 -> 1238400.00; 12.34 -> 12.73488 -> 12.73; minimum 500.50 -> 516.516 -> 516.52.
    assert prices["pc-standard"]["unit_price"] == "319.92"
    assert (prices["storage-file"]["package_size"], prices["storage-file"]["package_price"]) == (
        "100",
        "464.40",
    )
    assert prices["ticket-incident"]["tiers"] == [
        {"up_to": "200", "unit_price": "98.04"},
        {"up_to": None, "unit_price": "82.56"},
    ]
    assert prices["m365-e3"]["tiers"] == [
        {"up_to": "1000", "unit_price": "268.32"},
        {"up_to": None, "unit_price": "247.68"},
    ]
    assert prices["base-offering"]["amount"] == "129000.00"
    assert (prices["soc-shared"]["annual_amount"], prices["soc-shared"]["key"]) == (
        "1238400.00",
        "inhabitants",
    )
    # The index applies to the 2026 list it names, not to the overriding price of 2026.2.
    assert (prices["print-page"]["unit_price"], prices["print-page"]["minimum"]) == ("12.73", "516.52")


def test_prices_set_in_an_indexed_list_override_the_indexed_ones(
    catalogue: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = show(catalogue, "2026-11", capsys)["prices"]
    assert prices["print-page"]["unit_price"] == "20.00"
    # Index 1: the rest as in 2026.
    assert prices["pc-standard"]["unit_price"] == "310.00"
    assert prices["base-offering"]["amount"] == "125000.00"


def test_the_contract_catalogue_is_valid(catalogue: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["catalogue", "validate", str(catalogue)], capsys)
    assert (code, err) == (0, "")
    assert "valid" in out and "not valid" not in out


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("meter: daily_max, unit: GiB", "meter: weekly, unit: GiB"), "meter"),
        (("timezone: Europe/Stockholm", "timezone: Mars/Olympus"), "time zone"),
        (('unit_price: "310.00"', 'unit_price: "-310.00"'), "unit_price"),
        (("key: inhabitants", "key: area"), "key"),
        (('package_size: "100"', 'package_size: "0"'), "package_size"),
        (('vat_rate: "0.25", account: "3041"', 'vat_rate: "25 %", account: "3041"'), "vat_rate"),
        (('unit_price: "310.00"', "unit_price: 310.1"), "unit_price"),  # a float is not exact money
        (('code: "2183"', 'code: "2121"'), "2121"),
        (("id: soc-shared", "id: pc-standard"), "pc-standard"),
        (
            (
                '{up_to: "200", unit_price: "95.00"}',
                '{up_to: "200", unit_price: "95.00"}, {up_to: "100", unit_price: "1"}',
            ),
            "tiers",
        ),
        (('index_from: "2026"\n    index: "1.032"', 'index_from: "2025"\n    index: "1.032"'), "2025"),
        (("valid_from: 2027-01-01", "valid_from: 2026-10-02"), "valid_from"),
    ],
)
def test_a_wrong_catalogue_names_the_file_line_and_field(
    tmp_path: Path, change: tuple[str, str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert CATALOGUE.count(change[0]) == 1
    text = CATALOGUE.replace(*change)
    line = CATALOGUE[: CATALOGUE.index(change[0])].count("\n") + 1  # the line changed
    path = tmp_path / "catalogue.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = run(["catalogue", "validate", str(path)], capsys)
    assert code == 1
    shown = out + err
    assert "Traceback" not in shown
    mistakes = [x for x in shown.splitlines() if x.startswith(f"{path}:{line}:")]
    assert len(mistakes) == 1, shown
    assert words in mistakes[0], shown


def test_a_billing_command_refuses_a_wrong_catalogue_in_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "catalogue.yaml"
    path.write_text(
        CATALOGUE.replace("meter: daily_max, unit: GiB", "meter: weekly, unit: GiB"), encoding="utf-8"
    )
    code, _, err = run(["billing", "--catalogue", str(path), "run", "--period", "2026-10"], capsys)
    assert code == 1
    # The storage-file service is on line 9.
    assert f"{path}:9:" in err and "meter" in err and "Traceback" not in err


def test_a_price_list_without_a_price_for_a_service_names_the_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A price list covers every service of the catalogue or names it under retired:.
    text = CATALOGUE.replace(
        '      print-page: {model: per_unit, unit_price: "12.34", minimum: "500.50"}\n', ""
    )
    path = tmp_path / "catalogue.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = run(["catalogue", "validate", str(path)], capsys)
    assert code == 1
    mistakes = [x for x in (out + err).splitlines() if x.startswith(f"{path}:") and "print-page" in x]
    # The 2026 list, and the 2027 list indexed from it; 2026.2 sets its own price.
    assert len(mistakes) == 2, out + err
    assert "2026" in mistakes[0] and "2027" in mistakes[1]
