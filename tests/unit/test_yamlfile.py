"""The one YAML loader: lines from 1, duplicate keys, no aliases, a size limit, numbers as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from chargeback import yamlfile


def test_lines_are_counted_from_1_and_each_key_has_its_own() -> None:
    doc = yamlfile.parse("a: 1\nb:\n  - x: 2\n    y: [3, 4]\n", "f.yaml")
    assert doc.data == {"a": 1, "b": [{"x": 2, "y": [3, 4]}]}
    assert doc.lines == {(): 1, ("a",): 1, ("b",): 2, ("b", 0): 3, ("b", 0, "x"): 3, ("b", 0, "y"): 4,
                         ("b", 0, "y", 0): 4, ("b", 0, "y", 1): 4}  # fmt: skip
    assert (doc.line_of(("b", 0, "z")), doc.line_of(("c",)), doc.duplicates) == (3, 1, [])


def test_numbers_keep_the_text_they_were_written_as() -> None:
    data = yamlfile.parse("a: 180.50\nb: 1_000\nc: 010\nd: 0x10\ne: -7\n", "f.yaml").data
    assert isinstance(data["a"], yamlfile.WrittenFloat) and data["a"].written == "180.50"
    assert (data["b"], data["c"], data["d"], data["e"]) == ("1_000", 10, "0x10", -7)


def test_duplicate_keys_are_listed_with_both_lines() -> None:
    doc = yamlfile.parse("a: 1\nb: 2\na: 3\nb: 4\n", "f.yaml")
    assert doc.duplicates == [
        (3, "a: written twice (first at line 1); keep one"),
        (4, "b: written twice (first at line 2); keep one"),
    ]


def test_every_yaml_file_of_the_product_refuses_duplicates_aliases_and_big_files(tmp_path: Path) -> None:
    from billing_jobs.reports.budget import BudgetError, load_budgets
    from collectors.mapping import MappingError, load_mapping

    mapping = tmp_path / "mapping.yaml"
    mapping.write_text('municipality: "2183"\ncost_centres: {BUF: BUF}\ncost_centres: {KS: KS}\n')
    with pytest.raises(MappingError) as info:
        load_mapping(mapping)
    assert str(info.value) == f"{mapping}:3: cost_centres: written twice (first at line 2); keep one"

    budgets = tmp_path / "budgets.yaml"
    budgets.write_text('year: 2026\nbase: &b {pc-standard: "1.00"}\nbudgets: {"2183": *b}\n')
    with pytest.raises(BudgetError) as info:
        load_budgets(budgets)
    assert str(info.value) == (
        f"{budgets}:3: not valid YAML: aliases (*b) are not allowed; write the values out in full (column 19)"
    )

    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (yamlfile.MAX_BYTES + 1))
    with pytest.raises(yamlfile.YamlFileError) as info2:
        yamlfile.load(big)
    assert str(info2.value) == (
        f"{big}: the file is 5.0 MB, more than the 5 MB a YAML file may be; is it the right file?"
    )


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: Bollnäs\n".encode("latin-1"))
    with pytest.raises(yamlfile.YamlFileError) as info:
        yamlfile.load(path)
    assert str(info.value) == f"{path}: not UTF-8 text (byte 12)"
