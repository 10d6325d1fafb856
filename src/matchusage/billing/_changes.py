"""What every billing provider validates the same way: usage reports and admin changes."""

from __future__ import annotations

import re

from .._periods import BillingPeriod
from ..exceptions import InvalidRecordError
from ._values import BillingDetails

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def payment_method_reference(value: object) -> str:
    """*value* if it can name a payment method at a provider: a non-empty single line."""
    if not isinstance(value, str) or not value.strip() or _CONTROL.search(value):
        raise InvalidRecordError(
            "update_payment_method",
            "payment_method_id",
            value,
            "the provider's id of a payment method (a non-empty single line)",
        )
    return value


def details_to_change(organization_id: str, details: BillingDetails | None) -> BillingDetails:
    """The details an address change applies to; an organization needs a name and email first."""
    if details is None:
        raise InvalidRecordError(
            f"Organization {organization_id!r}",
            "billing_details",
            None,
            "on file (a billing name and email) before an address can be set",
        )
    return details


def check_report(period: object, quantity: object, idempotency_key: object) -> None:
    """Refuse a usage report's bad arguments before anything is billed."""
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
        raise InvalidRecordError("report_usage", "quantity", quantity, "a non-negative integer")
    if not isinstance(period, BillingPeriod):
        raise InvalidRecordError("report_usage", "period", period, "a BillingPeriod")
    if not isinstance(idempotency_key, str) or not idempotency_key:
        raise InvalidRecordError(
            "report_usage", "idempotency_key", idempotency_key, "a non-empty string"
        )
