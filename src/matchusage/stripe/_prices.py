"""A Stripe subscription's price as a `Plan`: tiers, flat amounts, currency minor units."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ..billing._pricing import PriceTier, TierMode
from ..billing._values import Plan
from ..exceptions import InvalidRecordError

# Stripe's own minor units (docs.stripe.com/currencies): they differ from ISO 4217 for a
# few codes (ISK and UGX amounts, for one), and API amounts are always in Stripe's unit.
_ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
_THREE_DECIMAL = frozenset(("BHD", "JOD", "KWD", "OMR", "TND"))

# A subscription in these states is the one that bills (docs.stripe.com/billing/subscriptions).
CURRENT_STATUSES = ("active", "trialing", "past_due", "unpaid")


def stripe_exponent(currency: str) -> int:
    """How many decimals Stripe's integer amounts carry in *currency* (upper case)."""
    if currency in _ZERO_DECIMAL:
        return 0
    if currency in _THREE_DECIMAL:
        return 3
    return 2


def from_minor(amount: object, currency: str) -> Decimal:
    """A Stripe amount (integer or decimal string in minor units) as a `Decimal`."""
    return Decimal(str(amount)).scaleb(-stripe_exponent(currency))


def to_minor(amount: Decimal, currency: str) -> str:
    """*amount* in Stripe's minor units, as the decimal string ``*_decimal`` fields take."""
    minor = amount.scaleb(stripe_exponent(currency)).normalize()
    return format(minor, "f")


def instant(timestamp: int) -> datetime:
    """A Stripe Unix timestamp as an aware UTC instant."""
    return datetime.fromtimestamp(timestamp, timezone.utc)


def _unit(price: Mapping[str, Any], field: str) -> object:
    # Stripe gives both the integer and the *_decimal form; the decimal one is exact.
    decimal = price.get(f"{field}_decimal")
    return decimal if decimal is not None else (price.get(field) or 0)


def _interval(recurring: Mapping[str, Any] | None) -> str:
    if not recurring:
        return "one time"
    count = int(recurring.get("interval_count") or 1)
    interval = str(recurring["interval"])
    return interval if count == 1 else f"{count} {interval}s"


def _refuse(price: Mapping[str, Any], field: str, value: object, expected: str) -> None:
    raise InvalidRecordError(f"Stripe price {price.get('id')!r}", field, value, expected)


def plan_from_price(price: Mapping[str, Any], *, name: str, renews_at: datetime | None) -> Plan:
    """The [`Plan`][matchusage.billing.Plan] a Stripe price bills by.

    Per-unit prices become a unit price; tiered prices (``graduated`` or
    ``volume``, with flat amounts per tier) become
    [`PriceTier`][matchusage.billing.PriceTier]s, Stripe's open-ended last tier
    (``up_to: null``) an open-ended one. Prices matchusage cannot reproduce
    exactly (``transform_quantity``, customer-chosen amounts) are refused.
    """
    currency = str(price["currency"]).upper()
    if price.get("transform_quantity"):
        _refuse(price, "transform_quantity", price["transform_quantity"], "unset")
    if price.get("custom_unit_amount"):
        _refuse(price, "custom_unit_amount", price["custom_unit_amount"], "unset")
    interval = _interval(price.get("recurring"))
    if price.get("billing_scheme") != "tiered":
        return Plan(
            name,
            from_minor(_unit(price, "unit_amount"), currency),
            currency,
            interval=interval,
            renews_at=renews_at,
        )
    tiers = list(price.get("tiers") or [])
    if not tiers or tiers[-1].get("up_to") is not None:
        _refuse(price, "tiers", tiers, "tiers ending in an open-ended one (expand 'tiers')")
    converted = [
        PriceTier(
            _int_or_none(tier.get("up_to")),
            from_minor(_unit(tier, "unit_amount"), currency),
            from_minor(_unit(tier, "flat_amount"), currency),
        )
        for tier in tiers
    ]
    return Plan(
        name,
        # Every quantity falls in a tier; the open tier's price is the one shown per user.
        converted[-1].unit_price,
        currency,
        interval=interval,
        renews_at=renews_at,
        tiers=converted,
        tier_mode=TierMode(price.get("tiers_mode") or "graduated"),
    )


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(str(value))
