"""Stripe test helpers: a local Stripe API server, accounts on it, and a faulty network."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import stripe

from matchusage.stripe import StripeBillingProvider

SERVER = Path(__file__).with_name("_localstripe_server.py")


def require_localstripe() -> None:
    """Skip without localstripe, but fail under ``CI=true``: CI must run these tests."""
    if importlib.util.find_spec("localstripe") is None:
        message = 'localstripe is not installed (pip install -e ".[test]")'
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def local_server() -> Iterator[str]:
    """A patched localstripe process on 127.0.0.1; yields its API base address."""
    require_localstripe()
    process = subprocess.Popen(
        [sys.executable, str(SERVER)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        if not first:
            raise RuntimeError(f"the local Stripe server exited with {process.wait()}")
        yield f"http://127.0.0.1:{json.loads(first)['port']}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


class Crash(BaseException):
    """The process dies: nothing catches it, as nothing survives a killed process."""


class FaultyHTTP(stripe.RequestsClient):
    """The SDK's HTTP client, counting calls and failing where a test says.

    Attributes:
        calls: The requests made, as ``"METHOD /path"``.
        crash_after: Die right after this many requests got their answer.
        lose_answers: Answer this many requests with a network error *after*
            the server handled them (the create happened, the answer was lost).
        fail_before: Fail this many requests with a network error before sending.
        forget_keys: Send a fresh Idempotency-Key on every request, as if Stripe
            had forgotten the first one (it keeps them for 24 hours).
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.crash_after: int | None = None
        self.lose_answers = 0
        self.fail_before = 0
        self.rate_limited = 0
        self.forget_keys = False

    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        headers = dict(headers or {})
        if self.forget_keys and "Idempotency-Key" in headers:
            headers["Idempotency-Key"] = secrets.token_hex(16)
        if self.fail_before:
            self.fail_before -= 1
            raise stripe.APIConnectionError("connection refused (injected)", should_retry=True)
        if self.rate_limited:
            self.rate_limited -= 1
            body = {
                "error": {
                    "type": "invalid_request_error",
                    "code": "rate_limit",
                    "message": "Too many requests (injected)",
                }
            }
            return json.dumps(body).encode(), 429, {"request-id": "req_injected"}
        answer = super().request(method, url, headers, post_data)
        self.calls.append(f"{method.upper()} {url.split('/v1/', 1)[1].split('?')[0]}")
        if self.lose_answers:
            self.lose_answers -= 1
            raise stripe.APIConnectionError("connection reset (injected)", should_retry=True)
        if self.crash_after is not None and len(self.calls) >= self.crash_after:
            self.crash_after = None
            raise Crash(f"crashed after {self.calls[-1]}")
        return answer


def client(api_base: str, http: stripe.HTTPClient | None = None, retries: int = 0) -> Any:
    return stripe.StripeClient(
        "sk_test_matchusage",
        base_addresses={"api": api_base},
        max_network_retries=retries,
        http_client=http or stripe.RequestsClient(),
    )


class Account:
    """Set-up on a Stripe account, as a platform's admin would do it (not the adapter)."""

    def __init__(self, stripe_client: Any) -> None:
        self.client = stripe_client

    def customer(
        self,
        organization_id: str | None = None,
        *,
        name: str = "Acme GmbH",
        email: str = "billing@acme.example",
        card: str | None = "pm_card_visa",
        **params: Any,
    ) -> str:
        metadata = {"matchusage_organization_id": organization_id} if organization_id else {}
        customer = self.client.v1.customers.create(
            params={"name": name, "email": email, "metadata": metadata, **params}
        )
        if card:
            method = self.client.v1.payment_methods.attach(card, params={"customer": customer.id})
            self.client.v1.customers.update(
                customer.id, params={"invoice_settings": {"default_payment_method": method.id}}
            )
        return str(customer.id)

    def price(self, currency: str = "eur", *, name: str = "Team", **params: Any) -> str:
        """A recurring monthly price (created through the Plans API, which Stripe keeps)."""
        product = self.client.v1.products.create(params={"name": name})
        plan = self.client.v1.plans.create(
            params={"currency": currency, "interval": "month", "product": product.id, **params}
        )
        return str(plan.id)

    def subscribe(self, customer_id: str, price_id: str) -> str:
        subscription = self.client.v1.subscriptions.create(
            params={"customer": customer_id, "items": [{"plan": price_id, "quantity": 1}]}
        )
        return str(subscription.id)

    def provider(
        self, customers: Mapping[str, str] | None, **options: Any
    ) -> StripeBillingProvider:
        options.setdefault("document_format", "text")
        return StripeBillingProvider(self.client, customers=customers, **options)
