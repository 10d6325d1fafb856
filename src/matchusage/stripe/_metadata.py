"""What matchusage writes into Stripe metadata, and Stripe's limits on it."""

from __future__ import annotations

from ..exceptions import InvalidRecordError

# Keys on the customer, the per-period invoice and its invoice items. Stripe allows keys
# of up to 40 characters and values of up to 500 (docs.stripe.com/api/metadata).
ORGANIZATION = "matchusage_organization_id"
IDEMPOTENCY_KEY = "matchusage_idempotency_key"
PERIOD_START = "matchusage_period_start"
PERIOD_END = "matchusage_period_end"
QUANTITY = "matchusage_quantity"
LINE = "matchusage_line"

VALUE_LIMIT = 500


def check_metadata_value(field: str, value: str) -> str:
    """*value* if Stripe can store it as a metadata value, else a clear refusal."""
    if len(value) > VALUE_LIMIT:
        raise InvalidRecordError(
            "StripeBillingProvider",
            field,
            value,
            f"at most {VALUE_LIMIT} characters (Stripe's limit for metadata values)",
        )
    return value
