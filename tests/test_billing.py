"""The billing values: payment methods, addresses, details, invoices, documents."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from matchusage import BillingPeriod
from matchusage.billing import (
    Address,
    BillingDetails,
    DocumentKind,
    Invoice,
    InvoiceDocument,
    InvoiceLine,
    InvoiceStatus,
    PaymentMethod,
    Plan,
)
from matchusage.exceptions import InvalidRecordError

UTC = timezone.utc
JANUARY = BillingPeriod(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))
ISSUED = datetime(2024, 2, 1, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        (("visa", "4242424242424242"), "last4"),
        (("visa", 4242424242424242), "last4"),
        (("visa", "4242 4242 4242 4242"), "last4"),
        (("visa", b"4242424242424242"), "last4"),
        (("visa", ["4242-4242-4242-4242"]), "last4"),
        ((4242424242424242, "4242"), "brand"),
        (("visa", "4242", 4242424242424242, 2030), "exp_month"),
        (("visa", "4242", 12, 4242424242424242), "exp_year"),
        (("visa", "4242", None, 4242424242424242), "exp_year"),
    ],
    ids=[
        "str",
        "int",
        "spaced",
        "bytes",
        "in-a-list",
        "as-brand",
        "as-month",
        "as-year",
        "as-lone-year",
    ],
)
def test_a_card_number_is_refused_and_never_repeated(
    arguments: tuple[object, ...], field: str
) -> None:
    """Whatever its type and field, the number reaches neither the message nor the value."""
    with pytest.raises(InvalidRecordError, match=f"'{field}' must be") as info:
        PaymentMethod(*arguments)  # type: ignore[arg-type]
    for text in (str(info.value), repr(info.value.value), str(info.value.value)):
        assert "42424242" not in text.replace(" ", "").replace("-", "")
    assert "<redacted, ending 4242>" in str(info.value)


@pytest.mark.parametrize("last4", ["424", "42a2", 4242, ""], ids=repr)
def test_last4_is_four_digits(last4: object) -> None:
    with pytest.raises(InvalidRecordError, match="'last4'"):
        PaymentMethod("visa", last4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("month", "year", "field"),
    [(13, 2030, "exp_month"), (0, 2030, "exp_month"), (1, 30, "exp_year"), (1, None, "exp_year")],
    ids=["month-13", "month-0", "two-digit-year", "year-missing"],
)
def test_expiry_is_checked(month: object, year: object, field: str) -> None:
    with pytest.raises(InvalidRecordError, match=f"'{field}'"):
        PaymentMethod("visa", "4242", month, year)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2027, 12, 31, 23, tzinfo=UTC), False),
        (datetime(2028, 1, 1, tzinfo=UTC), True),
        (datetime(2027, 1, 1, tzinfo=UTC), False),
    ],
    ids=["through-expiry-month", "after-expiry-month", "before"],
)
def test_card_works_through_its_expiry_month(at: datetime, expected: bool) -> None:
    card = PaymentMethod("visa", "4242", 12, 2027)
    assert (expected, "12/2027") == (card.is_expired(at), card.expiry)


def test_a_method_without_expiry_never_expires() -> None:
    debit = PaymentMethod("sepa_debit", "3000")
    assert (False, None) == (debit.is_expired(ISSUED), debit.expiry)


def test_address_lines() -> None:
    address = Address("1 Main St", "Springfield", "12345", "US", line2="Suite 5", region="IL")
    assert ["1 Main St", "Suite 5", "12345 Springfield", "IL", "US"] == address.lines()


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Address("1 Main St", "Springfield", "1", "usa"), "country"),
        (lambda: Address("", "Springfield", "1", "US"), "line1"),
        (lambda: BillingDetails("Acme", "not an email"), "email"),
        (lambda: BillingDetails("Acme", "a@b.example", address="1 Main St"), "address"),
        (lambda: BillingDetails("Acme", "a@b.example", tax_id=""), "tax_id"),
        (lambda: Plan("p", "1", "EUR", renews_at=datetime(2024, 1, 1)), "renews_at"),
    ],
    ids=["country", "line1", "email", "address-type", "empty-tax-id", "naive-renewal"],
)
def test_bad_details_are_refused(make: object, field: str) -> None:
    with pytest.raises(InvalidRecordError, match=f"'{field}' must be"):
        make()  # type: ignore[operator]


def invoice(**changes: object) -> Invoice:
    arguments: dict[str, object] = {
        "number": "INV-1",
        "organization_id": "acme",
        "issued_at": ISSUED,
        "period": JANUARY,
        "quantity": 2,
        "amount": Decimal("9.00"),
        "currency": "EUR",
        "lines": [InvoiceLine("Active users", 2, Decimal("4.50"), Decimal("9.00"))],
    }
    arguments.update(changes)
    return Invoice(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": Decimal("10.00")}, "amount"),
        ({"status": InvoiceStatus.PAID}, "paid_at"),
        ({"paid_at": ISSUED}, "paid_at"),
        ({"issued_at": datetime(2024, 2, 1)}, "issued_at"),
        ({"period": "2024-01"}, "period"),
        ({"quantity": -2}, "quantity"),
        ({"lines": ["9.00"]}, "lines"),
    ],
    ids=[
        "lines-do-not-add-up",
        "paid-without-date",
        "date-without-paid",
        "naive",
        "period",
        "quantity",
        "line-type",
    ],
)
def test_inconsistent_invoices_are_refused(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRecordError, match=f"'{field}' must be"):
        invoice(**changes)


def test_an_invoice_without_lines_states_its_amount() -> None:
    assert Decimal("12.34") == invoice(lines=(), amount="12.34").amount


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (InvoiceStatus.OPEN, (DocumentKind.INVOICE,)),
        (InvoiceStatus.VOID, (DocumentKind.INVOICE,)),
        (InvoiceStatus.PAID, (DocumentKind.INVOICE, DocumentKind.RECEIPT)),
    ],
    ids=lambda v: getattr(v, "value", None),
)
def test_receipts_exist_for_paid_invoices_only(
    status: InvoiceStatus, expected: tuple[DocumentKind, ...]
) -> None:
    paid_at = ISSUED if status is InvoiceStatus.PAID else None
    assert expected == invoice(status=status, paid_at=paid_at).documents


def test_document_repr_hides_the_bytes() -> None:
    document = InvoiceDocument("invoice", "INV-1", b"x" * 2000, "text/plain", "INV-1.txt")
    assert "<2000 bytes>" in repr(document)
    assert "xxxx" not in repr(document)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Address("Main St 1\nBox 3", "Berlin", "10115", "DE"), "line1"),
        (lambda: Address("Main St 1", "Berlin", "10115\x00", "DE"), "postal_code"),
        (lambda: Address("Main St 1", "Berlin", "10115", "DE", region=7), "region"),
        (lambda: BillingDetails("Acme\r\nBcc: x@y", "a@b.example"), "name"),
        (lambda: BillingDetails("Acme", "a@b.example", shipping_name="Ops"), "shipping_address"),
    ],
    ids=["newline", "nul", "not-text", "header-injection", "name-without-address"],
)
def test_addresses_and_names_are_single_lines(make: object, field: str) -> None:
    with pytest.raises(InvalidRecordError) as raised:
        make()  # type: ignore[operator]
    assert field == raised.value.field


def test_shipping_goes_to_the_billed_name_unless_named() -> None:
    address = Address("Dock Rd 2", "Hamburg", "20457", "DE")
    details = BillingDetails("Acme GmbH", "billing@acme.example")
    shipped = details.with_shipping(address)
    assert ("Acme GmbH", None) == (shipped.shipping_name, shipped.shipping_phone)
    named = details.with_shipping(address, name="Lager", phone="+49 40 1")
    assert ("Lager", "+49 40 1") == (named.shipping_name, named.shipping_phone)
    assert details == named.with_shipping(None)
