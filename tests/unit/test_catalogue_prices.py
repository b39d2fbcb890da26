"""``db sync-catalogue``'s rows of ``catalogue_prices``: every price of every list, indexing resolved."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from tests.unit.test_explain import CATALOGUE
from warehouse.migrations import PRICE_COLUMNS, price_rows

AT = datetime(2026, 11, 2, tzinfo=UTC)
D = Decimal


def test_every_price_of_every_list_with_its_model_and_index() -> None:
    rows = [dict(zip(PRICE_COLUMNS, r, strict=True)) for r in price_rows(CATALOGUE, AT)]
    assert [(r["price_list"], r["service"], r["model"]) for r in rows] == [
        ("2026", "m365-e3", "tiered_volume"),
        ("2026", "pc-standard", "per_unit"),
        ("2026", "soc-shared", "distributed"),
        ("2026", "storage-file", "package"),
        ("2026", "ticket-incident", "tiered_graduated"),
        ("2027", "m365-e3", "tiered_volume"),
        ("2027", "pc-standard", "per_unit"),
        ("2027", "soc-shared", "distributed"),
        ("2027", "storage-file", "package"),
        ("2027", "ticket-incident", "tiered_graduated"),
    ]
    pc_2027 = rows[6]
    assert pc_2027 == {
        "price_list": "2027",
        "valid_from": date(2027, 1, 1),
        "service": "pc-standard",
        "model": "per_unit",
        "unit_price": D("319.92"),  # 310.00 × 1.032, to öre
        "package_size": None,
        "package_price": None,
        "tiers": "",
        "flat_amount": None,
        "annual_amount": None,
        "distribution_key": "",
        "minimum": D("1032.00"),
        "index_from": "2026",
        "price_index": D("1.032"),
        "synced_at": AT,
    }
    assert rows[0]["tiers"] == '[{"up_to":"3","unit_price":"260.00"},{"up_to":null,"unit_price":"240.00"}]'
    assert (rows[2]["annual_amount"], rows[2]["distribution_key"], rows[2]["index_from"]) == (
        D("1200000.00"),
        "inhabitants",
        "",
    )
