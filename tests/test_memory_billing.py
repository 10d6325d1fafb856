"""The in-memory billing provider: the contract, pricing into invoices, documents, history."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from matchusage import BillingPeriod
from matchusage.billing import (
    Address,
    BillingDetails,
    DocumentFormat,
    DocumentKind,
    InvoiceStatus,
    PaymentMethod,
    Plan,
    PriceTier,
)
from matchusage.exceptions import InvalidRecordError, UnknownRecordError, UsageConflictError
from matchusage.memory import InMemoryBillingProvider
from matchusage.protocols import BillingProvider
from matchusage.testing.contracts import BillingProviderContract

NOW = datetime(2024, 6, 3, 8, 0, tzinfo=timezone.utc)
JANUARY = BillingPeriod(
    datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 2, 1, tzinfo=timezone.utc)
)
DETAILS = BillingDetails(
    "Acme <Mentoring> GmbH",
    "billing@acme.example",
    Address("Hauptstraße 1", "Berlin", "10115", "DE"),
    tax_id="DE123456789",
)
PLAN = Plan("Team", Decimal("4.50"), "EUR")


def provider(fmt: DocumentFormat = DocumentFormat.TEXT) -> InMemoryBillingProvider:
    billing = InMemoryBillingProvider(clock=lambda: NOW, document_format=fmt)
    billing.subscribe(
        "acme",
        PLAN,
        billing_details=DETAILS,
        payment_method=PaymentMethod("visa", "4242", 12, 2030),
    )
    return billing


class TestInMemoryBillingProvider(BillingProviderContract):
    @pytest.fixture(params=list(DocumentFormat), ids=lambda f: f.value)
    def provider(self, request: pytest.FixtureRequest, organization_id: str) -> BillingProvider:
        billing = InMemoryBillingProvider(clock=lambda: NOW, document_format=request.param)
        billing.subscribe(organization_id, PLAN, billing_details=DETAILS)
        return billing

    def pay(self, provider: BillingProvider, organization_id: str, invoice_number: str) -> None:
        assert isinstance(provider, InMemoryBillingProvider)
        provider.mark_paid(organization_id, invoice_number, at=NOW + timedelta(days=1))

    def payment_method_id(self, provider: BillingProvider, organization_id: str) -> str:
        assert isinstance(provider, InMemoryBillingProvider)
        return provider.tokenize_payment_method(PaymentMethod("mastercard", "4444", 3, 2031))


def test_invoice_prices_the_quantity_with_the_plan() -> None:
    billing = provider()
    report = billing.report_usage("acme", JANUARY, 3, idempotency_key="k")
    [invoice] = billing.invoices("acme")
    expected = ("INV-000001", NOW, Decimal("13.50"), "EUR", InvoiceStatus.OPEN, "INV-000001")
    assert expected == (
        invoice.number,
        invoice.issued_at,
        invoice.amount,
        invoice.currency,
        invoice.status,
        report.reference,
    )


def test_plan_change_prices_later_invoices_only() -> None:
    billing = provider()
    billing.report_usage("acme", JANUARY, 10, idempotency_key="k1")
    billing.subscribe("acme", Plan("Scale", "3", "EUR", tiers=[PriceTier(5, "5")]))
    billing.report_usage("acme", JANUARY, 10, idempotency_key="k2")
    assert [Decimal("40"), Decimal("45.00")] == [i.amount for i in billing.invoices("acme")]


def test_conflict_names_the_key_and_both_quantities() -> None:
    billing = provider()
    billing.report_usage("acme", JANUARY, 3, idempotency_key="jan")
    with pytest.raises(UsageConflictError, match=r"'jan'.*quantity 3; refusing quantity 4") as info:
        billing.report_usage("acme", JANUARY, 4, idempotency_key="jan")
    assert (info.value.idempotency_key, info.value.reported, info.value.attempted) == ("jan", 3, 4)


def test_a_key_belongs_to_one_organization() -> None:
    billing = provider()
    billing.subscribe("globex", PLAN)
    billing.report_usage("acme", JANUARY, 3, idempotency_key="shared")
    with pytest.raises(UsageConflictError, match="belongs to 'acme'"):
        billing.report_usage("globex", JANUARY, 3, idempotency_key="shared")
    assert billing.invoices("globex") == []


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("quantity", {"quantity": -1}),
        ("quantity", {"quantity": 2.0}),
        ("quantity", {"quantity": True}),
        ("period", {"period": "2024-01"}),
        ("idempotency_key", {"idempotency_key": ""}),
    ],
    ids=["negative", "float", "bool", "period-string", "empty-key"],
)
def test_bad_reports_are_refused(field: str, kwargs: dict[str, object]) -> None:
    billing = provider()
    arguments: dict[str, object] = {"quantity": 1, "period": JANUARY, "idempotency_key": "k"}
    arguments.update(kwargs)
    with pytest.raises(InvalidRecordError, match=repr(field)):
        billing.report_usage("acme", **arguments)  # type: ignore[arg-type]
    assert billing.invoices("acme") == []


def test_unknown_customer_report_bills_nothing() -> None:
    billing = provider()
    with pytest.raises(UnknownRecordError, match="'nobody'"):
        billing.report_usage("nobody", JANUARY, 1, idempotency_key="k")
    assert billing.usage_reports() == []


def test_naive_clock_is_refused() -> None:
    billing = InMemoryBillingProvider(clock=lambda: datetime(2024, 1, 1))
    billing.subscribe("acme", PLAN)
    with pytest.raises(InvalidRecordError, match="clock"):
        billing.report_usage("acme", JANUARY, 1, idempotency_key="k")


def test_mark_paid_is_idempotent_and_keeps_the_first_payment() -> None:
    billing = provider()
    billing.report_usage("acme", JANUARY, 1, idempotency_key="k")
    first = billing.mark_paid("acme", "INV-000001", at=NOW)
    assert first == billing.mark_paid("acme", "INV-000001", at=NOW + timedelta(days=3))
    assert (first.status, first.paid_at) == (InvoiceStatus.PAID, NOW)


def test_invoices_keep_the_details_they_were_issued_to() -> None:
    billing = provider()
    billing.report_usage("acme", JANUARY, 1, idempotency_key="k")
    billing.set_billing_details("acme", BillingDetails("Renamed Ltd", "x@acme.example"))
    text = billing.invoice_document("acme", "INV-000001", DocumentKind.INVOICE).content.decode()
    assert "Acme <Mentoring> GmbH" in text
    assert "Renamed Ltd" not in text


def test_text_invoice() -> None:
    billing = provider()
    billing.report_usage("acme", JANUARY, 3, idempotency_key="k")
    document = billing.invoice_document("acme", "INV-000001", DocumentKind.INVOICE)
    assert (document.media_type, document.file_name) == (
        "text/plain; charset=utf-8",
        "INV-000001.txt",
    )
    text = document.content.decode()
    for expected in [
        "Invoice INV-000001",
        "2024-01-01 00:00 UTC to 2024-02-01 00:00 UTC",
        "Hauptstraße 1",
        "DE123456789",
        "Active users",
        "Total due: 13.50 EUR",
    ]:
        assert expected in text


def test_html_receipt_escapes_and_shows_payment() -> None:
    billing = provider(DocumentFormat.HTML)
    billing.report_usage("acme", JANUARY, 3, idempotency_key="k")
    billing.mark_paid("acme", "INV-000001", at=NOW)
    document = billing.invoice_document("acme", "INV-000001", DocumentKind.RECEIPT)
    assert (document.media_type, document.file_name) == (
        "text/html; charset=utf-8",
        "INV-000001-receipt.html",
    )
    page = document.content.decode()
    assert "Acme &lt;Mentoring&gt; GmbH" in page
    assert "<Mentoring>" not in page
    assert "Amount paid: 13.50 EUR" in page
    assert "Paid on" in page


def test_pdf_documents_are_pdf_and_reproducible() -> None:
    pytest.importorskip("fpdf")
    billing = provider(DocumentFormat.PDF)
    billing.report_usage("acme", JANUARY, 3, idempotency_key="k")
    first = billing.invoice_document("acme", "INV-000001", DocumentKind.INVOICE)
    again = billing.invoice_document("acme", "INV-000001", DocumentKind.INVOICE)
    assert first.content.startswith(b"%PDF-")
    assert (first.media_type, first.file_name) == ("application/pdf", "INV-000001.pdf")
    assert first.content == again.content


def test_pdf_is_the_default_with_the_extra() -> None:
    pytest.importorskip("fpdf")
    assert InMemoryBillingProvider().document_format is DocumentFormat.PDF


def test_usage_reports_per_organization() -> None:
    billing = provider()
    billing.subscribe("globex", PLAN)
    billing.report_usage("acme", JANUARY, 1, idempotency_key="a")
    billing.report_usage("globex", JANUARY, 2, idempotency_key="g")
    assert [2] == [r.quantity for r in billing.usage_reports("globex")]
    assert 2 == len(billing.usage_reports())


def test_admin_changes_need_billing_details_first() -> None:
    billing = InMemoryBillingProvider(clock=lambda: NOW)
    billing.subscribe("acme", PLAN)
    address = Address("Hauptstraße 1", "Berlin", "10115", "DE")
    with pytest.raises(InvalidRecordError, match="billing_details"):
        billing.update_billing_address("acme", address)
    with pytest.raises(InvalidRecordError, match="billing_details"):
        billing.update_shipping("acme", address)
    assert billing.billing_details("acme") is None


def test_an_address_change_leaves_issued_invoices_addressed_as_they_were() -> None:
    billing = provider()
    billing.report_usage("acme", JANUARY, 2, idempotency_key="k")
    billing.update_billing_address("acme", Address("Neue Allee 9", "Potsdam", "14467", "DE"))
    [invoice] = billing.invoices("acme")
    text = billing.invoice_document("acme", invoice.number, DocumentKind.INVOICE).content.decode()
    assert ("Hauptstraße 1" in text, "Neue Allee 9" in text) == (True, False)


def test_tokenized_payment_methods_are_distinct_and_checked() -> None:
    billing = provider()
    first = billing.tokenize_payment_method(PaymentMethod("visa", "1111", 1, 2030))
    second = billing.tokenize_payment_method(PaymentMethod("amex", "0005", 2, 2031))
    assert first != second
    assert PaymentMethod("amex", "0005", 2, 2031) == billing.update_payment_method("acme", second)
    with pytest.raises(InvalidRecordError, match="method"):
        billing.tokenize_payment_method("4242424242424242")  # type: ignore[arg-type]
