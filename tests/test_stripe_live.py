"""The Stripe adapter against Stripe itself, in test mode: for whoever has a test key.

Runs only with ``STRIPE_TEST_API_KEY=sk_test_...`` in the environment, and never under
``CI=true`` (CI has no key and must not depend on Stripe being reachable). Every
customer it creates is deleted afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import stripe

from matchusage.billing import Plan, PriceTier, TierMode
from matchusage.protocols import BillingProvider
from matchusage.stripe import StripeBillingProvider
from matchusage.testing.contracts import BillingProviderContract

KEY = os.environ.get("STRIPE_TEST_API_KEY", "")
pytestmark = pytest.mark.skipif(
    os.environ.get("CI") == "true" or not KEY.startswith(("sk_test_", "rk_test_")),
    reason="set STRIPE_TEST_API_KEY to a test-mode key to run (never under CI)",
)


@pytest.fixture(scope="module")
def client() -> stripe.StripeClient:
    return stripe.StripeClient(KEY, max_network_retries=2)


@pytest.fixture
def customers(client: stripe.StripeClient) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for customer in made:
        client.v1.customers.delete(customer)


def _customer(client: stripe.StripeClient, made: list[str], price: dict[str, Any]) -> str:
    run = secrets.token_hex(4)
    customer = client.v1.customers.create(
        params={"name": f"matchusage live {run}", "email": f"live-{run}@example.com"}
    )
    made.append(customer.id)
    method = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": method.id}}
    )
    created = client.v1.prices.create(
        params={
            "currency": "eur",
            "recurring": {"interval": "month"},
            "product_data": {"name": "matchusage live"},
            **price,
        }  # type: ignore[typeddict-item]
    )
    client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": created.id}]}
    )
    return str(customer.id)


class TestStripeTestMode(BillingProviderContract):
    @pytest.fixture
    def provider(
        self, client: stripe.StripeClient, customers: list[str], organization_id: str
    ) -> BillingProvider:
        customer = _customer(client, customers, {"unit_amount": 450})
        return StripeBillingProvider(client, customers={organization_id: customer})

    def pay(self, provider: BillingProvider, organization_id: str, invoice_number: str) -> None:
        assert isinstance(provider, StripeBillingProvider)
        [invoice] = [
            i for i in provider.client.v1.invoices.list().data if i.number == invoice_number
        ]
        provider.client.v1.invoices.pay(invoice.id, params={"paid_out_of_band": True})

    def payment_method_id(self, provider: BillingProvider, organization_id: str) -> str:
        return "pm_card_mastercard"


def test_a_graduated_price_in_yen(client: stripe.StripeClient, customers: list[str]) -> None:
    tiers = [
        {"up_to": 5, "unit_amount": 700},
        {"up_to": "inf", "unit_amount": 500, "flat_amount": 300},
    ]
    customer = _customer(
        client,
        customers,
        {"currency": "jpy", "billing_scheme": "tiered", "tiers_mode": "graduated", "tiers": tiers},
    )
    plan = StripeBillingProvider(client, customers={"acme": customer}).plan("acme")
    expected = Plan(
        "matchusage live",
        "500",
        "JPY",
        interval="month",
        tiers=[PriceTier(5, "700"), PriceTier(None, "500", flat_fee="300")],
        tier_mode=TierMode.GRADUATED,
    )
    assert plan.renews_at is not None
    assert expected == attrs.evolve(plan, renews_at=None)
