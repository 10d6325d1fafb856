"""Pricing: rounding per currency, per-user prices, tiers and minimum quantities."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from matchusage.billing import Plan, PriceTier, TierMode, minor_units, round_money
from matchusage.exceptions import InvalidRecordError

D = Decimal


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.125", "EUR", "0.13"),
        ("0.124", "EUR", "0.12"),
        ("2.5", "JPY", "3"),
        ("0.5", "JPY", "1"),
        ("1.0005", "KWD", "1.001"),
        ("10", "USD", "10.00"),
        ("7.005", "XYZ", "7.01"),
    ],
    ids=[
        "eur-half-up",
        "eur-down",
        "jpy-half-up-not-even",
        "jpy-half",
        "kwd-3",
        "usd-pad",
        "other",
    ],
)
def test_round_money_is_half_up_to_the_minor_unit(
    amount: str, currency: str, expected: str
) -> None:
    assert D(expected) == round_money(D(amount), currency)
    assert str(D(expected)) == str(round_money(D(amount), currency))


@pytest.mark.parametrize(
    ("currency", "expected"), [("JPY", 0), ("KRW", 0), ("USD", 2), ("EUR", 2), ("KWD", 3)]
)
def test_minor_units(currency: str, expected: int) -> None:
    assert expected == minor_units(currency)


@pytest.mark.parametrize("currency", ["eur", "EURO", "", 978], ids=repr)
def test_bad_currency(currency: object) -> None:
    with pytest.raises(InvalidRecordError, match="'currency' must be an ISO 4217 code"):
        Plan("Team", "1", currency)  # type: ignore[arg-type]


GRADUATED = (PriceTier(10, "6"), PriceTier(50, "5", flat_fee="10"))
FLAT = (PriceTier(10, "5.00", flat_fee="20.00"), PriceTier(50, "4.00", flat_fee="10.00"))


@pytest.mark.parametrize(
    ("plan", "quantity", "expected"),
    [
        (Plan("p", "4.50", "EUR"), 3, "13.50"),
        (Plan("p", "4.50", "EUR"), 0, "0.00"),
        (Plan("p", "4.50", "EUR", minimum_quantity=5), 3, "22.50"),
        (Plan("p", "4.50", "EUR", minimum_quantity=5), 7, "31.50"),
        (Plan("p", "4", "EUR", tiers=GRADUATED), 0, "0.00"),
        (Plan("p", "4", "EUR", tiers=GRADUATED), 10, "60.00"),
        (Plan("p", "4", "EUR", tiers=GRADUATED), 11, "75.00"),
        (Plan("p", "4", "EUR", tiers=GRADUATED), 60, "310.00"),
        (Plan("p", "4", "EUR", tiers=GRADUATED, tier_mode="volume"), 10, "60.00"),
        (Plan("p", "4", "EUR", tiers=GRADUATED, tier_mode="volume"), 11, "65.00"),
        (Plan("p", "4", "EUR", tiers=GRADUATED, tier_mode="volume"), 60, "240.00"),
        (Plan("p", "4", "EUR", tiers=GRADUATED, tier_mode="volume"), 0, "0.00"),
        (Plan("p", "333.333", "JPY"), 1, "333"),
        (Plan("p", "333.5", "JPY"), 3, "1001"),
        (Plan("p", "100", "JPY", tiers=(PriceTier(5, "150.5"),), tier_mode="volume"), 3, "452"),
        (Plan("p", "0.005", "USD"), 1, "0.01"),
        (Plan("p", "10", "USD", minimum_quantity=5), 0, "50.00"),
        (Plan("p", "4", "EUR", tiers=GRADUATED, minimum_quantity=15), 3, "95.00"),
        (Plan("p", "3", "EUR", tiers=FLAT), 11, "84.00"),
        (Plan("p", "3", "EUR", tiers=FLAT, tier_mode="volume"), 10, "70.00"),
        (Plan("p", "3", "EUR", tiers=FLAT, tier_mode="volume"), 11, "54.00"),
    ],
    ids=[
        "per-user",
        "nobody",
        "minimum-applies",
        "above-minimum",
        "graduated-nobody",
        "graduated-first-tier-full",
        "graduated-into-second-tier-with-flat-fee",
        "graduated-beyond-tiers-at-unit-price",
        "volume-first-tier",
        "volume-second-tier-with-flat-fee",
        "volume-beyond-tiers",
        "volume-nobody",
        "jpy-no-decimals",
        "jpy-total-rounds-half-up",
        "volume-jpy-rounds-half-up",
        "usd-half-cent-up",
        "minimum-with-nobody",
        "minimum-then-graduated",
        "graduated-flat-fee-per-tier-entered",
        "volume-flat-fee-of-its-tier",
        "volume-flat-fee-of-the-next-tier",
    ],
)
def test_plan_amount(plan: Plan, quantity: int, expected: str) -> None:
    assert D(expected) == plan.amount(quantity)


def test_lines_say_what_they_bill() -> None:
    lines = Plan("p", "4", "EUR", tiers=GRADUATED, minimum_quantity=12).lines(3)
    assert [
        ("Active users (minimum 12) 1-10", 10, D("60.00")),
        ("Active users (minimum 12) 11-50", 2, D("10.00")),
        ("Flat fee 11-50", 1, D("10.00")),
    ] == [(line.description, line.quantity, line.amount) for line in lines]


def test_the_open_ended_last_tier_carries_a_flat_fee() -> None:
    """Like Stripe's ``up_to: inf`` tier: its price and fee apply to every user above."""
    tiers = (PriceTier(10, "6"), PriceTier(None, "5", flat_fee="99"))
    graduated = Plan("p", "1000", "EUR", tiers=tiers)
    volume = Plan("p", "1000", "EUR", tiers=tiers, tier_mode="volume")

    assert [
        ("Active users 1-10", 10, D("60.00")),
        ("Active users above 10", 5, D("25.00")),
        ("Flat fee above 10", 1, D("99.00")),
    ] == [(line.description, line.quantity, line.amount) for line in graduated.lines(15)]
    assert [
        ("Active users", 15, D("75.00")),
        ("Flat fee above 10", 1, D("99.00")),
    ] == [(line.description, line.quantity, line.amount) for line in volume.lines(15)]
    assert D("60.00") == graduated.amount(10)


cents = st.integers(0, 10_000).map(lambda n: D(n).scaleb(-2))


@st.composite
def tiered_plans(draw: st.DrawFn, mode: TierMode) -> Plan:
    bounds: list[int | None] = sorted(draw(st.sets(st.integers(1, 60), max_size=4)))
    if not bounds or draw(st.booleans()):
        bounds.append(None)  # the open-ended last tier
    tiers = [PriceTier(bound, draw(cents), draw(cents)) for bound in bounds]
    return Plan(
        "p",
        draw(cents),
        "EUR",
        tiers=tiers,
        tier_mode=mode,
        minimum_quantity=draw(st.integers(0, 20)),
    )


@given(tiered_plans(TierMode.GRADUATED), st.integers(0, 100))
@example(Plan("p", "1", "EUR", tiers=[PriceTier(1, "2", "3")]), 0)
@example(Plan("p", "1", "EUR", tiers=[PriceTier(None, "2", "3")]), 0)
@example(Plan("p", "1", "EUR", tiers=[PriceTier(1, "2"), PriceTier(None, "2", "3")]), 2)
def test_graduated_matches_pricing_each_user_by_its_tier(plan: Plan, quantity: int) -> None:
    billed = max(quantity, plan.minimum_quantity)
    expected = D(0)
    for user in range(1, billed + 1):
        tier = next((t for t in plan.tiers if t.up_to is None or user <= t.up_to), None)
        expected += plan.unit_price if tier is None else tier.unit_price
    low = 0
    for tier in plan.tiers:  # a tier's flat fee is due once billing reaches into it
        if billed > low:
            expected += tier.flat_fee
        low = billed if tier.up_to is None else tier.up_to
    assert expected == plan.amount(quantity)


@given(tiered_plans(TierMode.VOLUME), st.integers(0, 100))
def test_volume_prices_every_user_by_one_tier(plan: Plan, quantity: int) -> None:
    billed = max(quantity, plan.minimum_quantity)
    tier = next((t for t in plan.tiers if t.up_to is None or billed <= t.up_to), None)
    if tier is None:
        expected = billed * plan.unit_price
    else:
        expected = billed * tier.unit_price + (tier.flat_fee if billed else D(0))
    assert expected == plan.amount(quantity)


@given(
    st.integers(0, 10**6).map(lambda n: D(n).scaleb(-3)),
    st.sampled_from(["JPY", "EUR", "KWD"]),
    st.integers(0, 500),
)
def test_lines_add_up_and_are_rounded(price: Decimal, currency: str, quantity: int) -> None:
    plan = Plan("p", price, currency, tiers=[PriceTier(7, price + 1, "0.0049")])
    lines = plan.lines(quantity)
    assert plan.amount(quantity) == sum(line.amount for line in lines)
    exponents = {line.amount.as_tuple().exponent for line in lines}
    assert {-minor_units(currency)} == exponents


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"unit_price": 4.5}, "unit_price"),
        ({"unit_price": "-1"}, "unit_price"),
        ({"unit_price": "NaN"}, "unit_price"),
        ({"unit_price": "abc"}, "unit_price"),
        ({"minimum_quantity": -1}, "minimum_quantity"),
        ({"tiers": [PriceTier(10, "1"), PriceTier(10, "1")]}, "tiers"),
        ({"tiers": ["10"]}, "tiers"),
        ({"tiers": [PriceTier(None, "1"), PriceTier(10, "1")]}, "tiers"),
        ({"name": ""}, "name"),
    ],
    ids=[
        "float",
        "negative",
        "nan",
        "text",
        "minimum",
        "tiers-not-increasing",
        "not-a-tier",
        "open-ended-tier-not-last",
        "name",
    ],
)
def test_bad_plans_are_refused(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"name": "Team", "unit_price": "4", "currency": "EUR"}
    arguments.update(kwargs)
    with pytest.raises(InvalidRecordError, match=f"'{field}' must be"):
        Plan(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("up_to", [0, -1, 1.5, True], ids=repr)
def test_tier_bounds_are_positive_integers(up_to: object) -> None:
    with pytest.raises(InvalidRecordError, match="'up_to' must be a positive integer, or None"):
        PriceTier(up_to, "1")  # type: ignore[arg-type]


@pytest.mark.parametrize("quantity", [-1, 1.0, None], ids=repr)
def test_quantity_must_be_a_count(quantity: object) -> None:
    with pytest.raises(InvalidRecordError, match="'quantity' must be a non-negative integer"):
        Plan("p", "1", "EUR").lines(quantity)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("price", "quantity"), [("1", 10**30), ("1e999999999999", 10**9)], ids=["quantity", "price"]
)
def test_an_amount_too_large_for_money_is_an_invalid_record(price: str, quantity: int) -> None:
    with pytest.raises(InvalidRecordError, match="'amount' must be an amount of at most 28 digits"):
        Plan("p", price, "EUR").lines(quantity)
