"""The billing portal page's data."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from matchusage import BillingCycle, BillingPeriod, Organization
from matchusage.billing import (
    Address,
    BillingDetails,
    DocumentKind,
    InvoiceStatus,
    PaymentMethod,
    Plan,
    billing_portal,
)
from matchusage.exceptions import InvalidRecordError, UnknownRecordError
from matchusage.memory import InMemoryBillingProvider

BERLIN = ZoneInfo("Europe/Berlin")
ORG = Organization(
    "acme", "Acme", "Europe/Berlin", BillingCycle.monthly(datetime(2024, 1, 15, tzinfo=BERLIN))
)
NOW = datetime(2024, 3, 20, 12, tzinfo=BERLIN)
DETAILS = BillingDetails("Acme GmbH", "billing@acme.example")


TEAM = Plan("Team", "4", "EUR")


def provider(plan: Plan = TEAM) -> InMemoryBillingProvider:
    billing = InMemoryBillingProvider(clock=lambda: NOW, document_format="text")
    billing.subscribe(
        "acme", plan, billing_details=DETAILS, payment_method=PaymentMethod("visa", "4242", 2, 2024)
    )
    return billing


def test_renewal_is_the_end_of_the_current_period_in_the_organizations_zone() -> None:
    portal = billing_portal(provider(), ORG, now=NOW)
    expected = BillingPeriod(
        datetime(2024, 3, 15, tzinfo=BERLIN), datetime(2024, 4, 15, tzinfo=BERLIN)
    )
    assert (expected, expected.end) == (portal.current_period, portal.renews_at)
    assert "2024-04-15T00:00:00+02:00" == portal.renews_at.isoformat()


def test_the_providers_renewal_wins() -> None:
    renews = datetime(2024, 12, 31, tzinfo=BERLIN)
    portal = billing_portal(provider(Plan("Annual", "40", "EUR", "year", renews)), ORG, now=NOW)
    assert renews == portal.renews_at


def test_everything_the_page_shows() -> None:
    billing = provider()
    for index, quantity in [(0, 5), (1, 7)]:
        billing.report_usage("acme", ORG.cycle.period(index), quantity, idempotency_key=f"k{index}")
    billing.mark_paid("acme", "INV-000001", at=NOW)
    portal = billing_portal(billing, ORG, now=NOW)
    assert ("Team", "visa", "4242", "02/2024", "Acme GmbH") == (
        portal.plan.name,
        portal.payment_method.brand,  # type: ignore[union-attr]
        portal.payment_method.last4,  # type: ignore[union-attr]
        portal.payment_method.expiry,  # type: ignore[union-attr]
        portal.billing_details.name,  # type: ignore[union-attr]
    )
    assert [("INV-000002", InvoiceStatus.OPEN), ("INV-000001", InvoiceStatus.PAID)] == [
        (invoice.number, invoice.status) for invoice in portal.invoices
    ]
    assert ["INV-000002"] == [invoice.number for invoice in portal.open_invoices]
    assert portal.payment_method_expired


@pytest.mark.parametrize(
    ("method", "expired"),
    [(None, True), (PaymentMethod("visa", "4242", 3, 2024), False)],
    ids=["none-on-file", "valid-through-this-month"],
)
def test_payment_method_expiry(method: PaymentMethod | None, expired: bool) -> None:
    billing = provider()
    billing.set_payment_method("acme", method)
    assert expired == billing_portal(billing, ORG, now=NOW).payment_method_expired


def test_unknown_customer() -> None:
    with pytest.raises(UnknownRecordError):
        billing_portal(InMemoryBillingProvider(), ORG, now=NOW)


def test_naive_now() -> None:
    with pytest.raises(InvalidRecordError, match="'now'"):
        billing_portal(provider(), ORG, now=NOW.replace(tzinfo=None) + timedelta(0))


def test_the_page_shows_addresses_tax_id_plan_terms_and_each_invoices_documents() -> None:
    address = Address("1 Main St", "Berlin", "10115", "DE")
    shipping = Address("2 Dock Rd", "Hamburg", "20457", "DE")
    details = BillingDetails("Acme GmbH", "billing@acme.example", address, shipping, "DE123")
    billing = InMemoryBillingProvider(clock=lambda: NOW, document_format="html")
    billing.subscribe("acme", TEAM, billing_details=details)
    january, february = ORG.cycle.period(0), ORG.cycle.period(1)
    first = billing.report_usage("acme", january, 3, idempotency_key="jan").reference
    second = billing.report_usage("acme", february, 5, idempotency_key="feb").reference
    billing.mark_paid("acme", first, at=NOW)

    portal = billing_portal(billing, ORG, now=NOW)

    assert ("Team", Decimal("4"), "EUR", "month") == (
        portal.plan.name,
        portal.plan.unit_price,
        portal.plan.currency,
        portal.plan.interval,
    )
    assert (address, shipping, "billing@acme.example", "DE123") == (
        portal.billing_details.address,  # type: ignore[union-attr]
        portal.billing_details.shipping_address,  # type: ignore[union-attr]
        portal.billing_details.email,  # type: ignore[union-attr]
        portal.billing_details.tax_id,  # type: ignore[union-attr]
    )
    assert [
        (second, february, 5, (DocumentKind.INVOICE,)),
        (first, january, 3, (DocumentKind.INVOICE, DocumentKind.RECEIPT)),
    ] == [(i.number, i.period, i.quantity, tuple(i.documents)) for i in portal.invoices]
    invoice, receipt = (billing.invoice_document("acme", first, kind) for kind in DocumentKind)
    assert invoice.file_name != receipt.file_name
