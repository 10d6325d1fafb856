"""A Stripe customer's billing details and default payment method, both ways."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..billing._values import Address, BillingDetails, PaymentMethod
from ..exceptions import InvalidRecordError

# Maximum lengths in Stripe's API specification (customer name 256, email 512, other
# strings 5000): refused here, clearly, rather than by Stripe halfway through a change.
_LIMITS = {"name": 256, "email": 512}
_DEFAULT_LIMIT = 5000

# Payment method types whose details carry the last four digits of an account.
_ACCOUNT_TYPES = ("sepa_debit", "us_bank_account", "bacs_debit", "au_becs_debit", "acss_debit")


def _limit(field: str, value: str | None) -> None:
    limit = _LIMITS.get(field, _DEFAULT_LIMIT)
    if value is not None and len(value) > limit:
        raise InvalidRecordError(
            "StripeBillingProvider", field, value, f"at most {limit} characters (Stripe's limit)"
        )


def address_param(address: Address | None) -> dict[str, str] | str:
    """The ``address`` parameter of a customer update; ``""`` unsets it."""
    if address is None:
        return ""
    fields = {
        "line1": address.line1,
        "line2": address.line2,
        "city": address.city,
        "postal_code": address.postal_code,
        "state": address.region,
        "country": address.country,
    }
    for field, value in fields.items():
        _limit(field, value)
    return fields


def shipping_param(details: BillingDetails) -> dict[str, Any] | str:
    """The ``shipping`` parameter of a customer update; ``""`` unsets it."""
    if details.shipping_address is None:
        return ""
    _limit("shipping_name", details.shipping_name)
    _limit("shipping_phone", details.shipping_phone)
    return {
        "name": details.shipping_name or details.name,
        "phone": details.shipping_phone or "",
        "address": address_param(details.shipping_address),
    }


def _address(raw: Mapping[str, Any] | None) -> Address | None:
    if not raw or not raw.get("line1") or not raw.get("city") or not raw.get("country"):
        return None
    return Address(
        raw["line1"],
        raw["city"],
        raw.get("postal_code") or "",
        raw["country"],
        line2=raw.get("line2") or "",
        region=raw.get("state") or "",
    )


def _tax_id(customer: Mapping[str, Any]) -> str | None:
    tax_ids = customer.get("tax_ids")
    data = tax_ids.get("data") if isinstance(tax_ids, Mapping) else None
    return str(data[0]["value"]) if data else None


def details_from_customer(customer: Mapping[str, Any]) -> BillingDetails | None:
    """The customer's [`BillingDetails`][matchusage.billing.BillingDetails], or ``None``.

    ``None`` when the customer has no name or no email: invoices need both.
    """
    name, email = customer.get("name"), customer.get("email")
    if not name or not email:
        return None
    shipping = customer.get("shipping") or {}
    shipping_address = _address(shipping.get("address"))
    return BillingDetails(
        name,
        email,
        _address(customer.get("address")),
        shipping_address,
        _tax_id(customer),
        shipping_name=(shipping.get("name") or None) if shipping_address else None,
        shipping_phone=(shipping.get("phone") or None) if shipping_address else None,
    )


def payment_method_from_stripe(method: Mapping[str, Any] | None) -> PaymentMethod | None:
    """A Stripe PaymentMethod as the portal shows it: brand or type, last four, expiry."""
    if not method:
        return None
    kind = method.get("type")
    if kind == "card":
        card = method["card"]
        return PaymentMethod(
            card.get("display_brand") or card["brand"],
            card["last4"],
            card.get("exp_month"),
            card.get("exp_year"),
        )
    if kind in _ACCOUNT_TYPES and method.get(kind, {}).get("last4"):
        return PaymentMethod(kind, method[kind]["last4"])
    return None
