"""The billing portal's HTML page, read as HTML (and in Chromium in test_pages_in_browser.py)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings

from matchusage import BillingCycle, Organization
from matchusage.billing import (
    Address,
    BillingDetails,
    DocumentKind,
    Invoice,
    InvoiceStatus,
    PaymentMethod,
    Plan,
    PriceTier,
    billing_portal,
    default_document_url,
    render_portal_html,
)
from matchusage.exceptions import InvalidRecordError
from matchusage.memory import InMemoryBillingProvider
from matchusage.testing import strategies as mst

UTC = timezone.utc
CYCLE = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))
ACME = Organization("acme", "Acme", "UTC", CYCLE)
NOW = datetime(2024, 3, 10, tzinfo=UTC)


def provider(**customer: object) -> InMemoryBillingProvider:
    billing = InMemoryBillingProvider(clock=lambda: NOW, document_format="text")
    billing.subscribe("acme", customer.pop("plan", Plan("Team", "4", "EUR")), **customer)  # type: ignore[arg-type]
    return billing


def page_of(billing: InMemoryBillingProvider, **options: object) -> str:
    return render_portal_html(billing_portal(billing, ACME, now=NOW), organization=ACME, **options)  # type: ignore[arg-type]


def test_no_payment_method_and_no_details_say_so() -> None:
    page = page_of(provider())
    assert "No payment method on file." in page
    assert "No billing details given." in page
    assert "No invoices yet." in page


def test_an_expired_card_is_flagged() -> None:
    page = page_of(provider(payment_method=PaymentMethod("mastercard", "5555", 1, 2024)))
    assert re.search(r'data-field="expiry">01/2024</span> <span class="badge changed"', page)


def test_tiers_and_minimum_are_listed() -> None:
    plan = Plan(
        "Scale",
        "4",
        "EUR",
        tiers=[PriceTier(10, "6"), PriceTier(50, "5", flat_fee="10")],
        minimum_quantity=5,
    )
    page = page_of(provider(plan=plan))
    assert "users 1-10: 6 EUR each" in page
    assert "users 11-50: 5 EUR each + 10 EUR" in page
    assert "4 EUR per active user above 50" in page
    assert "5 active users" in page


def test_an_open_ended_last_tier() -> None:
    plan = Plan("Scale", "4", "EUR", tiers=[PriceTier(10, "6"), PriceTier(None, "5")])
    page = page_of(provider(plan=plan))
    assert "users 11+: 5 EUR each" in page
    assert "by tier" in page


def test_receipts_are_linked_once_paid_only() -> None:
    billing = provider()
    for index in range(2):
        billing.report_usage("acme", CYCLE.period(index), 3, idempotency_key=f"k{index}")
    billing.mark_paid("acme", "INV-000001", at=NOW)
    page = page_of(billing)
    assert re.findall(r'href="(invoices/[^"]+)"', page) == [
        "invoices/INV-000002/invoice",
        "invoices/INV-000001/invoice",
        "invoices/INV-000001/receipt",
    ]


def test_the_default_document_url_quotes_the_number() -> None:
    invoice = Invoice("INV 1/2?", "acme", NOW, CYCLE.period(0), 1, Decimal(4), "EUR")
    assert "invoices/INV%201%2F2%3F/receipt" == default_document_url(invoice, DocumentKind.RECEIPT)
    assert InvoiceStatus.OPEN is invoice.status


@pytest.mark.parametrize("url", ["javascript:alert(1)", " javascript:x", "vbscript:x"])
def test_an_unsafe_document_url_is_refused(url: str) -> None:
    billing = provider()
    billing.report_usage("acme", CYCLE.period(0), 3, idempotency_key="k")
    with pytest.raises(InvalidRecordError, match="document_url"):
        page_of(billing, document_url=lambda invoice, kind: url)


def test_not_a_portal_is_refused() -> None:
    with pytest.raises(InvalidRecordError, match="a BillingPortal"):
        render_portal_html("portal")  # type: ignore[arg-type]


@settings(max_examples=40)
@given(mst.hostile_markup())
def test_hostile_billing_details_are_text(name: str) -> None:
    # Billing details refuse control characters themselves; everything else must render safely.
    name = re.sub("[\x00-\x1f\x7f-\x9f]", "", name)
    name = name if name.strip() else f"x{name}"
    details = BillingDetails(name, "billing@acme.example", Address(name, name, "1", "DE"))
    details = details.with_shipping(Address(name, name, "2", "DE"), name=name, phone=name)
    page = page_of(provider(billing_details=details))
    assert "<script" not in page
    assert "<img" not in page
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", page)
    page.encode("utf-8")
