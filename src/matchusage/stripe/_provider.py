"""`StripeBillingProvider`: the billing port over Stripe's API."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import stripe

from .._periods import BillingPeriod
from ..billing._changes import check_report, details_to_change, payment_method_reference
from ..billing._documents import DocumentFormat, render_document
from ..billing._values import (
    Address,
    BillingDetails,
    DocumentKind,
    Invoice,
    InvoiceDocument,
    PaymentMethod,
    Plan,
    ReportedUsage,
)
from ..exceptions import DocumentUnavailableError, InvalidRecordError, UnknownRecordError
from ._customers import CustomerDirectory
from ._details import (
    address_param,
    details_from_customer,
    payment_method_from_stripe,
    shipping_param,
)
from ._errors import retrying, stripe_errors
from ._files import download
from ._invoices import age, invoice_from_stripe, invoice_lines, usage_invoices
from ._metadata import check_metadata_value
from ._objects import plain
from ._prices import CURRENT_STATUSES, instant, plan_from_price
from ._usage import CollectionMethod, UsageInvoices

T = TypeVar("T")


@attrs.define
class StripeBillingProvider:
    """A [`BillingProvider`][matchusage.protocols.BillingProvider] over Stripe.

    Each organization is a Stripe customer (see *customers*) with one
    subscription, whose price is the organization's
    [`Plan`][matchusage.billing.Plan] and whose current period gives the
    renewal. Each reported period becomes one Stripe invoice of its own,
    with one invoice item per priced line, billed in arrears; the idempotency
    key, organization, period and quantity are written into the invoice's
    metadata and looked up before anything is created, so a report is billed
    once however often (and however much later) it is retried. See the guide
    "Billing with Stripe".

    Stripe's errors become matchusage's (see
    [`BillingProviderError`][matchusage.exceptions.BillingProviderError]);
    an unreachable or rate-limiting Stripe is retried with exponential backoff.

    Attributes:
        client: The Stripe client (``stripe.StripeClient``) with the secret key.
            Its ``max_network_retries`` retries single requests (with Stripe's
            Idempotency-Key); matchusage's metadata lookup keeps duplicates out
            even where a retried create is repeated.
        customers: Organization id to Stripe customer id. Without it, the
            customer is found by its metadata ``matchusage_organization_id``
            through Customer Search (which can lag a minute behind new customers).
        collection_method: ``"charge_automatically"`` (the default payment
            method is charged) or ``"send_invoice"`` (Stripe emails the invoice).
        days_until_due: Days to pay a sent invoice; required with ``"send_invoice"``.
        stripe_documents: Offer the PDF Stripe renders itself (the invoice's
            ``invoice_pdf``, downloaded on request) as the invoice document when
            the invoice has one; otherwise, and for receipts, matchusage renders
            the document from Stripe's data.
        document_format: The format of documents matchusage renders.
        issuer: The name printed at the top of documents matchusage renders.
        attempts: How often an operation is tried while Stripe is unavailable.
        timeout: The most seconds spent retrying one operation.
    """

    client: stripe.StripeClient
    customers: Mapping[str, str] | None = attrs.field(default=None, kw_only=True)
    collection_method: CollectionMethod = attrs.field(default="charge_automatically", kw_only=True)
    days_until_due: int | None = attrs.field(default=None, kw_only=True)
    stripe_documents: bool = attrs.field(default=True, kw_only=True)
    document_format: DocumentFormat = attrs.field(
        factory=DocumentFormat.default, converter=DocumentFormat, kw_only=True
    )
    issuer: str = attrs.field(default="matchusage", kw_only=True)
    attempts: int = attrs.field(default=4, kw_only=True)
    timeout: float = attrs.field(default=60.0, kw_only=True)
    _directory: CustomerDirectory = attrs.field(init=False)
    _usage: UsageInvoices = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.collection_method not in ("charge_automatically", "send_invoice"):
            raise InvalidRecordError(
                "StripeBillingProvider",
                "collection_method",
                self.collection_method,
                "'charge_automatically' or 'send_invoice'",
            )
        if (self.collection_method == "send_invoice") != (self.days_until_due is not None):
            raise InvalidRecordError(
                "StripeBillingProvider",
                "days_until_due",
                self.days_until_due,
                "given exactly when collection_method is 'send_invoice'",
            )
        self._directory = CustomerDirectory(self.client, self.customers)
        self._usage = UsageInvoices(self.client, self.collection_method, self.days_until_due)

    @classmethod
    def from_api_key(
        cls,
        api_key: str,
        *,
        api_base: str | None = None,
        max_network_retries: int = 2,
        **options: Any,
    ) -> StripeBillingProvider:
        """A provider with its own ``stripe.StripeClient``.

        Args:
            api_key: A secret key (``sk_test_...`` or ``sk_live_...``) or restricted key.
            api_base: Another API address (a local Stripe server in tests).
            max_network_retries: The SDK's retries of one request.
            **options: The provider's other attributes.
        """
        client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else {},
            max_network_retries=max_network_retries,
        )
        return cls(client, **options)

    def _run(self, operation: Callable[[], T]) -> T:
        return retrying(operation, attempts=self.attempts, timeout=self.timeout)

    def _customer(self, organization_id: str, *expand: str) -> Any:
        customer_id = self._directory.customer_id(organization_id)
        with stripe_errors():
            customer = plain(
                self.client.v1.customers.retrieve(
                    customer_id, params={"expand": list(expand)} if expand else None
                )
            )
        if customer.get("deleted"):
            raise UnknownRecordError(
                "organization",
                organization_id,
                context="StripeBillingProvider",
                hint=f"its Stripe customer {customer_id} was deleted",
            )
        return customer

    # -- account data

    def plan(self, organization_id: str) -> Plan:
        """The price of the customer's current subscription, with its renewal instant."""
        return self._run(lambda: self._plan(organization_id))

    def _plan(self, organization_id: str) -> Plan:
        customer = self._customer(organization_id)
        with stripe_errors():
            listed = self.client.v1.subscriptions.list(
                params={"customer": customer["id"], "status": "all", "limit": 100}
            )
            subscriptions = [plain(found) for found in listed.auto_paging_iter()]
        current = [found for found in subscriptions if found["status"] in CURRENT_STATUSES]
        if not current:
            raise UnknownRecordError(
                "plan",
                organization_id,
                context="StripeBillingProvider",
                hint=f"its Stripe customer {customer['id']} has no current subscription",
            )
        item = current[0]["items"]["data"][0]
        with stripe_errors():
            price = plain(
                self.client.v1.prices.retrieve(
                    item["price"]["id"], params={"expand": ["tiers", "product"]}
                )
            )
        product = price.get("product")
        name = product.get("name") if isinstance(product, Mapping) else None
        renewal = item.get("current_period_end")
        return plan_from_price(
            price,
            name=name or price.get("nickname") or price["id"],
            renews_at=instant(renewal)
            if renewal and not current[0].get("cancel_at_period_end")
            else None,
        )

    def payment_method(self, organization_id: str) -> PaymentMethod | None:
        """The customer's default payment method for invoices: brand, last four, expiry."""
        return self._run(lambda: self._payment_method(organization_id))

    def _payment_method(self, organization_id: str) -> PaymentMethod | None:
        customer = self._customer(organization_id, "invoice_settings.default_payment_method")
        return payment_method_from_stripe(
            customer["invoice_settings"].get("default_payment_method")
        )

    def billing_details(self, organization_id: str) -> BillingDetails | None:
        """The customer's name, email, address, shipping and first tax id."""
        return self._run(lambda: details_from_customer(self._customer(organization_id, "tax_ids")))

    # -- invoices

    def invoices(self, organization_id: str) -> list[Invoice]:
        """The usage invoices matchusage issued to the customer, newest first."""
        return self._run(lambda: [pair[1] for pair in self._invoices(organization_id)])

    def _invoices(self, organization_id: str) -> list[tuple[Any, Invoice]]:
        customer = self._customer(organization_id)
        pairs = [
            (raw, invoice_from_stripe(raw, organization_id, invoice_lines(self.client, raw)))
            for raw in usage_invoices(self.client, customer["id"])
        ]
        return sorted(pairs, key=lambda pair: age(pair[1]), reverse=True)

    def invoice_document(
        self, organization_id: str, invoice_number: str, kind: DocumentKind
    ) -> InvoiceDocument:
        """The invoice (Stripe's own PDF when it has one), or the receipt of a paid invoice.

        A document matchusage renders is addressed to the details Stripe froze
        on the invoice when it was finalized (a draft: the customer's current
        details).
        """
        kind = DocumentKind(kind)
        return self._run(lambda: self._document(organization_id, invoice_number, kind))

    def _document(
        self, organization_id: str, invoice_number: str, kind: DocumentKind
    ) -> InvoiceDocument:
        pairs = self._invoices(organization_id)
        found = [pair for pair in pairs if invoice_number in (pair[1].number, pair[0]["id"])]
        if not found:
            raise UnknownRecordError(
                "invoice", invoice_number, context=f"Organization {organization_id!r}"
            )
        raw, invoice = found[0]
        if kind not in invoice.documents:
            raise DocumentUnavailableError(
                f"Invoice {invoice.number!r} of {organization_id!r} has no {kind.value} "
                f"(status {invoice.status.value!r}; receipts exist once an invoice is paid)"
            )
        if kind is DocumentKind.INVOICE and self.stripe_documents and raw.get("invoice_pdf"):
            content, media_type = download(raw["invoice_pdf"], timeout=self.timeout)
            return InvoiceDocument(
                kind, invoice.number, content, media_type, f"{invoice.number}.pdf"
            )
        details = self._addressed_to(raw) or details_from_customer(
            self._customer(organization_id, "tax_ids")
        )
        return render_document(
            invoice, kind, details=details, issuer=self.issuer, format=self.document_format
        )

    @staticmethod
    def _addressed_to(raw: Mapping[str, Any]) -> BillingDetails | None:
        if raw.get("status") == "draft":
            return None
        return details_from_customer(
            {
                "name": raw.get("customer_name"),
                "email": raw.get("customer_email"),
                "address": raw.get("customer_address"),
                "shipping": raw.get("customer_shipping"),
                "tax_ids": {"data": raw.get("customer_tax_ids") or []},
            }
        )

    # -- usage

    def report_usage(
        self,
        organization_id: str,
        period: BillingPeriod,
        quantity: int,
        *,
        idempotency_key: str,
    ) -> ReportedUsage:
        """Bill *quantity* active users for *period* on an invoice of its own, once per key."""
        check_report(period, quantity, idempotency_key)
        check_metadata_value("idempotency_key", idempotency_key)
        check_metadata_value("organization_id", organization_id)

        def report() -> ReportedUsage:
            customer_id = self._directory.customer_id(organization_id)
            return self._usage.report(
                customer_id,
                organization_id,
                period,
                quantity,
                idempotency_key,
                plan=lambda: self._plan(organization_id),
            )

        return self._run(report)

    # -- admin changes

    def update_payment_method(self, organization_id: str, payment_method_id: str) -> PaymentMethod:
        """Attach a payment method collected by Stripe.js and make it the invoices' default."""
        reference = payment_method_reference(payment_method_id)
        return self._run(lambda: self._update_payment_method(organization_id, reference))

    def _update_payment_method(self, organization_id: str, reference: str) -> PaymentMethod:
        customer_id = self._directory.customer_id(organization_id)
        with stripe_errors():
            method = plain(self.client.v1.payment_methods.retrieve(reference))
            if method.get("customer") != customer_id:
                method = plain(
                    self.client.v1.payment_methods.attach(
                        method["id"], params={"customer": customer_id}
                    )
                )
            self.client.v1.customers.update(
                customer_id, params={"invoice_settings": {"default_payment_method": method["id"]}}
            )
        shown = self._payment_method(organization_id)
        if shown is None:
            raise InvalidRecordError(
                "update_payment_method",
                "payment_method_id",
                reference,
                "a card or bank account (other payment types have no last four digits)",
            )
        return shown

    def update_billing_address(
        self, organization_id: str, address: Address | None
    ) -> BillingDetails:
        """Replace the customer's address (``None`` removes it)."""

        def change() -> BillingDetails:
            customer = self._customer(organization_id, "tax_ids")
            details = details_to_change(organization_id, details_from_customer(customer))
            changed = details.with_address(address)
            self._update_customer(customer["id"], {"address": address_param(changed.address)})
            return self._read_back(organization_id)

        return self._run(change)

    def update_shipping(
        self,
        organization_id: str,
        address: Address | None,
        *,
        name: str | None = None,
        phone: str | None = None,
    ) -> BillingDetails:
        """Replace the customer's shipping name, address and phone (``None`` removes them)."""

        def change() -> BillingDetails:
            customer = self._customer(organization_id, "tax_ids")
            details = details_to_change(organization_id, details_from_customer(customer))
            changed = details.with_shipping(address, name=name, phone=phone)
            self._update_customer(customer["id"], {"shipping": shipping_param(changed)})
            return self._read_back(organization_id)

        return self._run(change)

    def _update_customer(self, customer_id: str, params: dict[str, Any]) -> None:
        with stripe_errors():
            self.client.v1.customers.update(customer_id, params=params)  # type: ignore[arg-type]

    def _read_back(self, organization_id: str) -> BillingDetails:
        details = details_from_customer(self._customer(organization_id, "tax_ids"))
        assert details is not None  # the change kept the name and email
        return details
