"""Stripe's answers as plain dictionaries: the mapping code reads data, not SDK objects."""

from __future__ import annotations

from typing import Any

import stripe


def plain(stripe_object: stripe.StripeObject) -> dict[str, Any]:
    """A Stripe object's data as nested dicts and lists (decimal fields stay `Decimal`)."""
    return stripe_object.to_dict()
