"""Properties of pricing that must hold for every input (hypothesis)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from billing_jobs.pricing import Usage, price_amount, price_period, split_largest_remainder
from chargeback.catalogue import PerUnit, index_price, load_catalogue
from chargeback.period import Period

CATALOGUE = load_catalogue(Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml")
amounts = st.integers(min_value=0, max_value=10**12).map(lambda ore: Decimal(ore) / 100)
weights = st.dictionaries(
    st.text(alphabet="ABCDEFGHIJ", min_size=1, max_size=3),
    st.integers(min_value=0, max_value=10**9).map(lambda n: Decimal(n) / 10**6),
    min_size=1,
    max_size=12,
).filter(lambda w: sum(w.values()) > 0)
quantities = st.integers(min_value=0, max_value=10**10).map(lambda n: Decimal(n) / 10**6)


@given(amounts, weights)
def test_splits_add_up_exactly_and_never_go_negative(total: Decimal, w: dict[str, Decimal]) -> None:
    parts = split_largest_remainder(total, w)
    assert sum(parts.values()) == total
    assert all(p >= 0 and p == p.quantize(Decimal("0.01")) for p in parts.values())
    assert set(parts) == set(w)


@given(amounts, weights)
def test_each_part_is_within_one_ore_of_its_exact_share(total: Decimal, w: dict[str, Decimal]) -> None:
    parts = split_largest_remainder(total, w)
    weight_sum = sum(w.values())
    for key, part in parts.items():
        assert abs(part - total * w[key] / weight_sum) < Decimal("0.01")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["BUF", "SOC", "KS"]),
            st.sampled_from(["pc-standard", "ticket-incident", "storage-file", "m365-e3"]),
            quantities,
        ),
        max_size=12,
    )
)
def test_repricing_is_deterministic_and_lines_add_up(rows: list[tuple[str, str, Decimal]]) -> None:
    usage = [Usage("2183", cc, service, q) for cc, service, q in rows]
    first = price_period(CATALOGUE, Period(2026, 10), usage, ["2183"])
    again = price_period(CATALOGUE, Period(2026, 10), list(reversed(usage)), ["2183"])
    assert first == again
    for line in first:
        assert line.vat_amount == (line.amount * line.vat_rate).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
        assert line.quantity > 0 or line.amount > 0


@given(
    st.integers(min_value=0, max_value=10**8).map(lambda n: Decimal(n) / 100),
    st.integers(min_value=900, max_value=1200).map(lambda n: Decimal(n) / 1000),
    quantities,
)
def test_indexing_then_pricing_is_rounded_price_times_quantity(
    unit_price: Decimal, index: Decimal, quantity: Decimal
) -> None:
    indexed = index_price(PerUnit(model="per_unit", unit_price=unit_price), index)
    assert isinstance(indexed, PerUnit)
    expected_price = (unit_price * index).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert indexed.unit_price == expected_price
    assert price_amount(indexed, quantity) == (quantity * expected_price).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
