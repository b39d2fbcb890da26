"""The SQL the ClickHouse adapter emits: literals and URLs, checked on the exact text."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from chargeback.clickhouse import Target, check_identifier, literal, parse_url, render


def test_render_escapes_every_kind_of_value() -> None:
    sql = render(
        "SELECT %(s)s, %(n)s, %(d)s, %(day)s, %(ts)s, %(ids)s, %(arr)s, %(none)s",
        {
            "s": "it's a \\ test",
            "n": 42,
            "d": Decimal("1.500000"),
            "day": date(2026, 10, 31),
            "ts": datetime(2026, 11, 1, 0, 30, tzinfo=ZoneInfo("Europe/Stockholm")),
            "ids": ("a", "b"),
            "arr": ["x"],
            "none": None,
        },
    )
    assert sql == (
        "SELECT 'it\\'s a \\\\ test', 42, 1.500000, toDate('2026-10-31'), "
        "toDateTime('2026-10-31 23:30:00', 'UTC'), ('a', 'b'), ['x'], NULL"
    )


def test_render_without_params_leaves_percent_signs_alone() -> None:
    assert render("SELECT '100%(x)s'", None) == "SELECT '100%(x)s'"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        literal(datetime(2026, 10, 1))  # noqa: DTZ001 - the point of the test


def test_floats_are_not_literals() -> None:
    with pytest.raises(TypeError, match="cannot render float"):
        literal(0.1)


def test_sets_render_sorted_for_stable_sql() -> None:
    assert literal({"b", "a"}) == "('a', 'b')"
    assert literal(datetime(2026, 1, 1, tzinfo=UTC)) == "toDateTime('2026-01-01 00:00:00', 'UTC')"


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("chdb:var/chdb", Target(backend="chdb", path=Path("var/chdb"))),
        ("chdb:///srv/chdb", Target(backend="chdb", path=Path("/srv/chdb"))),
        ("clickhouse://127.0.0.1:9001", Target(backend="server", host="127.0.0.1", port=9001)),
        (
            "clickhouse://analyst:s%40cret@ch.example:9440",
            Target(backend="server", host="ch.example", port=9440, user="analyst", password="s@cret"),
        ),
        ("clickhouse://ch", Target(backend="server", host="ch", port=9000)),
    ],
)
def test_parse_url(url: str, target: Target) -> None:
    assert parse_url(url) == target


@pytest.mark.parametrize("url", ["http://ch:8123", "chdb:", "mysql://x"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


def test_identifiers_are_checked() -> None:
    assert check_identifier("usage_events") == "usage_events"
    with pytest.raises(ValueError, match="not a plain identifier"):
        check_identifier("t; DROP TABLE x")
