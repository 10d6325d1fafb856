"""Stripe's errors as matchusage's, and retrying the transient ones."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import stamina
import stripe

from ..exceptions import (
    BillingProviderError,
    MatchUsageError,
    PaymentDeclinedError,
    ProviderAuthenticationError,
    ProviderRequestError,
    ProviderUnavailableError,
    UnknownRecordError,
)

PROVIDER = "stripe"

T = TypeVar("T")


def translate(error: stripe.StripeError) -> MatchUsageError:
    """The matchusage error for a Stripe error (the caller chains it with ``from``)."""
    message = error.user_message or str(error) or type(error).__name__
    facts: dict[str, Any] = {
        "provider": PROVIDER,
        "request_id": error.request_id,
        "http_status": error.http_status,
        "code": error.code,
    }
    if isinstance(error, stripe.CardError):
        decline = getattr(error.error, "decline_code", None) if error.error else None
        return PaymentDeclinedError(message, decline_code=decline, **facts)
    if isinstance(error, stripe.RateLimitError):
        return ProviderUnavailableError(message, reason="rate_limited", **facts)
    if isinstance(error, stripe.APIConnectionError):
        return ProviderUnavailableError(message, reason="network", **facts)
    if isinstance(error, (stripe.AuthenticationError, stripe.PermissionError)):
        return ProviderAuthenticationError(message, **facts)
    if isinstance(error, stripe.InvalidRequestError):
        if error.code == "resource_missing" or error.http_status == 404:
            # Stripe names the missing id in its message: "No such customer: 'cus_123'".
            quoted = re.search(r"'([^']+)'", message)
            return UnknownRecordError(
                "Stripe object",
                quoted.group(1) if quoted else error.param,
                context=PROVIDER,
                hint=f"{message} (request {error.request_id})",
            )
        return ProviderRequestError(message, param=error.param, **facts)
    if isinstance(error, stripe.IdempotencyError):
        return ProviderRequestError(message, **facts)
    if isinstance(error, stripe.APIError) and (error.http_status or 500) >= 500:
        return ProviderUnavailableError(message, reason="server_error", **facts)
    return BillingProviderError(message, **facts)


@contextlib.contextmanager
def stripe_errors() -> Iterator[None]:
    """Raise Stripe's errors inside the block as matchusage errors, keeping the original."""
    try:
        yield
    except stripe.StripeError as error:
        raise translate(error) from error


def retrying(operation: Callable[[], T], *, attempts: int, timeout: float) -> T:
    """Run *operation*, again with backoff while Stripe is unavailable (network, 429, 5xx).

    Only whole operations that are safe to repeat are retried: reads, updates
    that set values, and usage reports (which look up before they create).
    """
    for attempt in stamina.retry_context(
        on=ProviderUnavailableError, attempts=attempts, timeout=timeout
    ):
        with attempt:
            return operation()
    raise AssertionError("stamina ends with a result or the last error")  # pragma: no cover
