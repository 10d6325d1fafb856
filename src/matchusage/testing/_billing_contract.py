"""The contract every billing provider adapter passes."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import attrs
import pytest

from .._periods import BillingCycle, BillingPeriod
from ..billing._values import (
    Address,
    BillingDetails,
    DocumentKind,
    Invoice,
    InvoiceDocument,
    InvoiceStatus,
    PaymentMethod,
    Plan,
)
from ..exceptions import (
    DocumentUnavailableError,
    InvalidRecordError,
    UnknownRecordError,
    UsageConflictError,
)
from ..protocols import BillingProvider

_CYCLE = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=timezone.utc))


class BillingProviderContract:
    """Tests any [`BillingProvider`][matchusage.protocols.BillingProvider] must pass.

    Subclass it in your adapter's tests and supply the `provider` fixture
    (a provider in which `organization_id` is a customer on some plan, with
    billing details (a name and an email) and no invoices yet, e.g. a fresh
    test-mode account). Override
    [`pay`][matchusage.testing.contracts.BillingProviderContract.pay] if the
    service can mark invoices paid in tests, and
    [`payment_method_id`][matchusage.testing.contracts.BillingProviderContract.payment_method_id]
    to hand over a payment method its secure form would have collected:

    ```python
    from matchusage.testing.contracts import BillingProviderContract

    class TestMyProvider(BillingProviderContract):
        @pytest.fixture
        def provider(self, organization_id):
            return MyProvider(test_account(customer=organization_id))
    ```
    """

    @pytest.fixture
    def provider(self) -> BillingProvider:
        """A provider where `organization_id` is a customer with no invoices."""
        raise NotImplementedError("subclasses supply the provider fixture")

    @pytest.fixture
    def organization_id(self) -> str:
        """The id of the provider's customer under test."""
        return "contract-org"

    def pay(self, provider: BillingProvider, organization_id: str, invoice_number: str) -> None:
        """Mark an invoice paid (override this; by default the receipt tests are skipped)."""
        pytest.skip("this provider cannot mark invoices paid in tests")

    def payment_method_id(self, provider: BillingProvider, organization_id: str) -> str:
        """A payment method id the provider accepts (override; by default those tests skip)."""
        pytest.skip("this provider cannot hand over a payment method in tests")

    @staticmethod
    def period(index: int) -> BillingPeriod:
        """A monthly billing period of 2024 (index 0 is January)."""
        return _CYCLE.period(index)

    @staticmethod
    def key(label: str) -> str:
        """A fresh idempotency key for one test."""
        return f"matchusage-contract:{label}"

    # -- account data

    def test_plan(self, provider: BillingProvider, organization_id: str) -> None:
        """The plan has a name, a non-negative unit price and a currency."""
        plan = provider.plan(organization_id)
        assert isinstance(plan, Plan)
        assert plan.unit_price >= 0
        assert len(plan.currency) == 3

    def test_payment_method(self, provider: BillingProvider, organization_id: str) -> None:
        """The payment method, if any, shows four digits only."""
        method = provider.payment_method(organization_id)
        assert method is None or isinstance(method, PaymentMethod)
        assert method is None or len(method.last4) == 4

    def test_billing_details(self, provider: BillingProvider, organization_id: str) -> None:
        """Billing details are a `BillingDetails` or ``None``."""
        details = provider.billing_details(organization_id)
        assert details is None or isinstance(details, BillingDetails)

    def test_unknown_organization(self, provider: BillingProvider) -> None:
        """An organization without a customer is an `UnknownRecordError`."""
        with pytest.raises(UnknownRecordError):
            provider.plan("matchusage-contract-no-such-organization")
        with pytest.raises(UnknownRecordError):
            provider.invoices("matchusage-contract-no-such-organization")

    # -- admin changes

    def test_update_payment_method(self, provider: BillingProvider, organization_id: str) -> None:
        """The new payment method becomes the one on file, shown by brand and last four."""
        method = provider.update_payment_method(
            organization_id, self.payment_method_id(provider, organization_id)
        )
        assert isinstance(method, PaymentMethod)
        assert method == provider.payment_method(organization_id)

    def test_unknown_payment_method(self, provider: BillingProvider, organization_id: str) -> None:
        """A payment method the provider does not know is an `UnknownRecordError`."""
        before = provider.payment_method(organization_id)
        with pytest.raises(UnknownRecordError):
            provider.update_payment_method(organization_id, "pm_matchusage_contract_missing")
        assert before == provider.payment_method(organization_id)

    @pytest.mark.parametrize("reference", ["", "   ", "pm_1\npm_2", 42, None])
    def test_bad_payment_method_id(
        self, provider: BillingProvider, organization_id: str, reference: object
    ) -> None:
        """A payment method id must be a non-empty single line."""
        with pytest.raises(InvalidRecordError):
            provider.update_payment_method(organization_id, reference)  # type: ignore[arg-type]

    @staticmethod
    def hostile_address() -> Address:
        """An address with quotes, markup, accents and non-Latin script (it must round-trip)."""
        return Address(
            'Rue de l\'Église 1 "Bâtiment B"',
            "Zürich",
            "8001",
            "CH",
            line2="c/o <script>alert(1)</script> & Söhne; DROP TABLE--",
            region="東京都 🏢",
        )

    def test_update_billing_address(self, provider: BillingProvider, organization_id: str) -> None:
        """The billing address is replaced, round-trips exactly, and can be removed."""
        before = provider.billing_details(organization_id)
        assert before is not None, "the contract's customer has billing details"
        details = provider.update_billing_address(organization_id, self.hostile_address())
        assert details == attrs.evolve(before, address=self.hostile_address())
        assert details == provider.billing_details(organization_id)
        removed = provider.update_billing_address(organization_id, None)
        assert (removed.address, removed.name) == (None, before.name)
        assert removed == provider.billing_details(organization_id)

    def test_update_shipping(self, provider: BillingProvider, organization_id: str) -> None:
        """Shipping goes to the billed name by default, or to a named recipient and phone."""
        before = provider.billing_details(organization_id)
        assert before is not None, "the contract's customer has billing details"
        address = self.hostile_address()
        details = provider.update_shipping(organization_id, address)
        assert (details.shipping_address, details.shipping_name, details.shipping_phone) == (
            address,
            before.name,
            None,
        )
        assert details == provider.billing_details(organization_id)
        recipient = ("O'Brien «Lager»", "+41 44 000 00 00")
        named = provider.update_shipping(
            organization_id, address, name=recipient[0], phone=recipient[1]
        )
        assert (named.shipping_name, named.shipping_phone) == recipient
        assert named == provider.billing_details(organization_id)
        cleared = provider.update_shipping(organization_id, None)
        assert cleared == attrs.evolve(
            named, shipping_address=None, shipping_name=None, shipping_phone=None
        )
        assert cleared == provider.billing_details(organization_id)

    @pytest.mark.parametrize(
        "change",
        [
            {"address": "Main Street 1, Springfield"},
            {"address": None, "name": "Nobody"},
            {"address": "shipping", "name": "Line\nbreak"},
            {"address": "shipping", "phone": "\x00"},
        ],
        ids=["not-an-address", "name-without-address", "control-in-name", "nul-in-phone"],
    )
    def test_bad_changes_change_nothing(
        self, provider: BillingProvider, organization_id: str, change: dict[str, object]
    ) -> None:
        """A bad address, name or phone is an `InvalidRecordError` and nothing changes."""
        before = provider.billing_details(organization_id)
        if change["address"] == "shipping":
            change = {**change, "address": self.hostile_address()}
        with pytest.raises(InvalidRecordError):
            provider.update_shipping(organization_id, **change)  # type: ignore[arg-type]
        with pytest.raises(InvalidRecordError):
            provider.update_billing_address(organization_id, "Main Street 1")  # type: ignore[arg-type]
        assert before == provider.billing_details(organization_id)

    def test_unknown_organization_changes_nothing(self, provider: BillingProvider) -> None:
        """Admin changes for an organization without a customer are `UnknownRecordError`s."""
        unknown = "matchusage-contract-no-such-organization"
        with pytest.raises(UnknownRecordError):
            provider.update_billing_address(unknown, self.hostile_address())
        with pytest.raises(UnknownRecordError):
            provider.update_shipping(unknown, None)

    # -- reporting usage

    def test_report_is_acknowledged(self, provider: BillingProvider, organization_id: str) -> None:
        """A report returns an acknowledgement of what was reported."""
        period = self.period(0)
        report = provider.report_usage(organization_id, period, 7, idempotency_key=self.key("a"))
        assert (report.organization_id, report.period, report.quantity, report.idempotency_key) == (
            organization_id,
            period,
            7,
            self.key("a"),
        )

    def test_report_issues_one_invoice(
        self, provider: BillingProvider, organization_id: str
    ) -> None:
        """A report bills the period's quantity in the plan's currency."""
        period = self.period(1)
        provider.report_usage(organization_id, period, 12, idempotency_key=self.key("b"))
        [invoice] = provider.invoices(organization_id)
        assert isinstance(invoice, Invoice)
        assert (invoice.period, invoice.quantity, invoice.currency) == (
            period,
            12,
            provider.plan(organization_id).currency,
        )
        assert invoice.amount >= Decimal(0)

    def test_same_key_same_quantity_is_a_no_op(
        self, provider: BillingProvider, organization_id: str
    ) -> None:
        """Reporting a key again with the same quantity bills nothing more."""
        period = self.period(2)
        first = provider.report_usage(organization_id, period, 5, idempotency_key=self.key("c"))
        again = provider.report_usage(organization_id, period, 5, idempotency_key=self.key("c"))
        assert first == again
        assert len(provider.invoices(organization_id)) == 1

    @pytest.mark.parametrize(
        ("quantity", "period_index"), [(6, 3), (5, 4)], ids=["other-quantity", "other-period"]
    )
    def test_same_key_different_report_conflicts(
        self, provider: BillingProvider, organization_id: str, quantity: int, period_index: int
    ) -> None:
        """Reusing a key for a different quantity or period is refused; nothing changes."""
        provider.report_usage(organization_id, self.period(3), 5, idempotency_key=self.key("d"))
        before = list(provider.invoices(organization_id))
        with pytest.raises(UsageConflictError):
            provider.report_usage(
                organization_id, self.period(period_index), quantity, idempotency_key=self.key("d")
            )
        assert before == list(provider.invoices(organization_id))

    def test_zero_usage(self, provider: BillingProvider, organization_id: str) -> None:
        """A period without active users can be reported."""
        report = provider.report_usage(
            organization_id, self.period(5), 0, idempotency_key=self.key("z")
        )
        assert report.quantity == 0

    def test_history_is_newest_first(self, provider: BillingProvider, organization_id: str) -> None:
        """Every key bills once, and the history lists the newest invoice first."""
        for index, label in enumerate(["h1", "h2", "h3"]):
            provider.report_usage(
                organization_id, self.period(index), index + 1, idempotency_key=self.key(label)
            )
        invoices = provider.invoices(organization_id)
        assert [i.quantity for i in invoices] == [3, 2, 1]
        assert len({i.number for i in invoices}) == 3
        assert all(invoice.status is InvoiceStatus.OPEN for invoice in invoices)

    # -- documents

    def _one_invoice(self, provider: BillingProvider, organization_id: str) -> Invoice:
        provider.report_usage(organization_id, self.period(6), 3, idempotency_key=self.key("doc"))
        return provider.invoices(organization_id)[0]

    def test_invoice_document(self, provider: BillingProvider, organization_id: str) -> None:
        """An invoice can be downloaded: bytes, a media type and a file name."""
        invoice = self._one_invoice(provider, organization_id)
        document = provider.invoice_document(organization_id, invoice.number, DocumentKind.INVOICE)
        assert isinstance(document, InvoiceDocument)
        assert (document.kind, document.invoice_number) == (DocumentKind.INVOICE, invoice.number)
        assert document.content
        assert "/" in document.media_type
        assert document.file_name

    def test_no_receipt_before_payment(
        self, provider: BillingProvider, organization_id: str
    ) -> None:
        """An unpaid invoice has no receipt."""
        invoice = self._one_invoice(provider, organization_id)
        assert DocumentKind.RECEIPT not in invoice.documents
        with pytest.raises(DocumentUnavailableError):
            provider.invoice_document(organization_id, invoice.number, DocumentKind.RECEIPT)

    def test_receipt_after_payment(self, provider: BillingProvider, organization_id: str) -> None:
        """A paid invoice says so, and its receipt can be downloaded."""
        invoice = self._one_invoice(provider, organization_id)
        self.pay(provider, organization_id, invoice.number)
        [paid] = [i for i in provider.invoices(organization_id) if i.number == invoice.number]
        assert paid.status is InvoiceStatus.PAID
        receipt = provider.invoice_document(organization_id, invoice.number, DocumentKind.RECEIPT)
        assert (receipt.kind, receipt.invoice_number) == (DocumentKind.RECEIPT, invoice.number)
        assert receipt.content

    def test_unknown_invoice(self, provider: BillingProvider, organization_id: str) -> None:
        """Asking for an invoice that does not exist is an `UnknownRecordError`."""
        with pytest.raises(UnknownRecordError):
            provider.invoice_document(organization_id, "no-such-invoice", DocumentKind.INVOICE)
