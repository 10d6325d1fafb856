"""The in-memory billing provider: the reference implementation of the billing port."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import attrs

from .._periods import BillingPeriod
from .._time import UTC, require_aware
from ..billing._changes import check_report, details_to_change, payment_method_reference
from ..billing._documents import DocumentFormat, render_document
from ..billing._values import (
    Address,
    BillingDetails,
    DocumentKind,
    Invoice,
    InvoiceDocument,
    InvoiceStatus,
    PaymentMethod,
    Plan,
    ReportedUsage,
)
from ..exceptions import (
    DocumentUnavailableError,
    InvalidRecordError,
    UnknownRecordError,
    UsageConflictError,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@attrs.define
class _Customer:
    plan: Plan
    details: BillingDetails | None
    payment_method: PaymentMethod | None
    invoices: list[Invoice] = attrs.Factory(list)
    # Invoices are addressed to the details in force when they were issued.
    addressed_to: dict[str, BillingDetails | None] = attrs.Factory(dict)


def _check(record: str, field: str, value: object, kind: type, expected: str) -> None:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidRecordError(record, field, value, expected)


@attrs.define
class InMemoryBillingProvider:
    """A complete [`BillingProvider`][matchusage.protocols.BillingProvider] kept in memory.

    Reported usage becomes an invoice priced by the organization's
    [`Plan`][matchusage.billing.Plan] (per-user price, tiers, minimum quantity; each
    line rounded half-up to the currency's minor unit). Invoices and receipts
    render as PDF when the ``pdf`` extra is installed, as HTML otherwise (or
    in the *document_format* you choose). Each idempotency key bills once.

    Attributes:
        clock: Returns "now" (timezone-aware): when invoices are issued.
            Inject a fixed clock in tests.
        document_format: The format of invoice and receipt documents
            (default: PDF if fpdf2 is installed, else HTML).
        issuer: The name printed at the top of documents.
        invoice_prefix: Invoice numbers are ``"<prefix>-000001"``, ``"<prefix>-000002"``, ...
    """

    clock: Callable[[], datetime] = attrs.field(default=_utcnow, kw_only=True)
    document_format: DocumentFormat = attrs.field(
        factory=DocumentFormat.default, converter=DocumentFormat, kw_only=True
    )
    issuer: str = attrs.field(default="matchusage", kw_only=True)
    invoice_prefix: str = attrs.field(default="INV", kw_only=True)
    _customers: dict[str, _Customer] = attrs.field(factory=dict, init=False)
    _reports: dict[str, ReportedUsage] = attrs.field(factory=dict, init=False)
    _issued: int = attrs.field(default=0, init=False)
    _vault: dict[str, PaymentMethod] = attrs.field(factory=dict, init=False)

    # -- set-up, as an admin or the billing service's own UI would do it

    def subscribe(
        self,
        organization_id: str,
        plan: Plan,
        *,
        billing_details: BillingDetails | None = None,
        payment_method: PaymentMethod | None = None,
    ) -> None:
        """Make *organization_id* a customer on *plan* (or change its plan, keeping its history)."""
        _check("subscribe", "organization_id", organization_id, str, "an organization id")
        _check("subscribe", "plan", plan, Plan, "a Plan")
        customer = self._customers.get(organization_id)
        if customer is None:
            self._customers[organization_id] = _Customer(plan, billing_details, payment_method)
            return
        customer.plan = plan
        if billing_details is not None:
            customer.details = billing_details
        if payment_method is not None:
            customer.payment_method = payment_method

    def set_payment_method(self, organization_id: str, method: PaymentMethod | None) -> None:
        """Replace (or with ``None`` remove) the payment method on file."""
        self._customer(organization_id).payment_method = method

    def tokenize_payment_method(self, method: PaymentMethod) -> str:
        """Keep *method* as a billing service's secure form would; return its id.

        This stands in for the provider's own card form (Stripe.js and its
        ``pm_...`` ids): pass the id to
        [`update_payment_method`][matchusage.memory.InMemoryBillingProvider.update_payment_method].
        """
        _check("tokenize_payment_method", "method", method, PaymentMethod, "a PaymentMethod")
        reference = f"pm_memory_{len(self._vault) + 1:06d}"
        self._vault[reference] = method
        return reference

    def set_billing_details(self, organization_id: str, details: BillingDetails | None) -> None:
        """Replace the billing details; invoices already issued keep the old ones."""
        self._customer(organization_id).details = details

    def mark_paid(self, organization_id: str, invoice_number: str, *, at: datetime) -> Invoice:
        """Record the payment of an invoice at *at*; its receipt becomes available.

        Paying a paid invoice again changes nothing.

        Raises:
            matchusage.exceptions.UnknownRecordError: No such invoice.
        """
        require_aware(at, "mark_paid", "at", InvalidRecordError)
        invoices = self._customer(organization_id).invoices
        position, invoice = self._find(organization_id, invoice_number)
        if invoice.status is InvoiceStatus.PAID:
            return invoice
        paid = attrs.evolve(invoice, status=InvoiceStatus.PAID, paid_at=at)
        invoices[position] = paid
        return paid

    def usage_reports(self, organization_id: str | None = None) -> list[ReportedUsage]:
        """Every usage report accepted (of one organization, if given), in the order received."""
        return [
            report
            for report in self._reports.values()
            if organization_id is None or report.organization_id == organization_id
        ]

    # -- the BillingProvider port

    def plan(self, organization_id: str) -> Plan:
        """The organization's current plan."""
        return self._customer(organization_id).plan

    def payment_method(self, organization_id: str) -> PaymentMethod | None:
        """The payment method on file, if any."""
        return self._customer(organization_id).payment_method

    def billing_details(self, organization_id: str) -> BillingDetails | None:
        """The billing and shipping details, if given."""
        return self._customer(organization_id).details

    def update_payment_method(self, organization_id: str, payment_method_id: str) -> PaymentMethod:
        """Make a tokenized payment method the default; return it."""
        customer = self._customer(organization_id)
        reference = payment_method_reference(payment_method_id)
        try:
            method = self._vault[reference]
        except KeyError:
            raise UnknownRecordError(
                "payment method", reference, context="the billing provider"
            ) from None
        customer.payment_method = method
        return method

    def update_billing_address(
        self, organization_id: str, address: Address | None
    ) -> BillingDetails:
        """Replace the billing address; invoices already issued keep the old one."""
        customer = self._customer(organization_id)
        customer.details = details_to_change(organization_id, customer.details).with_address(
            address
        )
        return customer.details

    def update_shipping(
        self,
        organization_id: str,
        address: Address | None,
        *,
        name: str | None = None,
        phone: str | None = None,
    ) -> BillingDetails:
        """Replace the shipping information (the recipient defaults to the billed name)."""
        customer = self._customer(organization_id)
        customer.details = details_to_change(organization_id, customer.details).with_shipping(
            address, name=name, phone=phone
        )
        return customer.details

    def invoices(self, organization_id: str) -> list[Invoice]:
        """The organization's invoices, newest first."""
        return list(reversed(self._customer(organization_id).invoices))

    def invoice_document(
        self, organization_id: str, invoice_number: str, kind: DocumentKind
    ) -> InvoiceDocument:
        """The invoice, or the receipt of a paid invoice, rendered in the provider's format."""
        kind = DocumentKind(kind)
        _, invoice = self._find(organization_id, invoice_number)
        if kind not in invoice.documents:
            raise DocumentUnavailableError(
                f"Invoice {invoice_number!r} of {organization_id!r} has no {kind.value} "
                f"(status {invoice.status.value!r}; receipts exist once an invoice is paid)"
            )
        details = self._customer(organization_id).addressed_to.get(invoice_number)
        return render_document(
            invoice, kind, details=details, issuer=self.issuer, format=self.document_format
        )

    def report_usage(
        self,
        organization_id: str,
        period: BillingPeriod,
        quantity: int,
        *,
        idempotency_key: str,
    ) -> ReportedUsage:
        """Issue the invoice for *quantity* active users in *period*, once per key."""
        check_report(period, quantity, idempotency_key)
        earlier = self._reports.get(idempotency_key)
        if earlier is not None:
            return self._repeat(earlier, organization_id, period, quantity)
        customer = self._customer(organization_id)
        now = require_aware(self.clock(), "InMemoryBillingProvider", "clock()", InvalidRecordError)
        lines = customer.plan.lines(quantity)
        number = f"{self.invoice_prefix}-{self._issued + 1:06d}"
        invoice = Invoice(
            number=number,
            organization_id=organization_id,
            issued_at=now,
            period=period,
            quantity=quantity,
            amount=sum((line.amount for line in lines), Decimal(0)),
            currency=customer.plan.currency,
            lines=lines,
        )
        report = ReportedUsage(organization_id, period, quantity, idempotency_key, number, now)
        self._issued += 1
        customer.invoices.append(invoice)
        customer.addressed_to[number] = customer.details
        self._reports[idempotency_key] = report
        return report

    def _repeat(
        self, earlier: ReportedUsage, organization_id: str, period: BillingPeriod, quantity: int
    ) -> ReportedUsage:
        if earlier.organization_id != organization_id or earlier.period != period:
            raise UsageConflictError(
                earlier.idempotency_key,
                earlier.quantity,
                quantity,
                f" (the key belongs to {earlier.organization_id!r}, period {earlier.period})",
            )
        if earlier.quantity != quantity:
            raise UsageConflictError(earlier.idempotency_key, earlier.quantity, quantity)
        return earlier

    def _customer(self, organization_id: str) -> _Customer:
        try:
            return self._customers[organization_id]
        except (KeyError, TypeError):
            raise UnknownRecordError(
                "customer", organization_id, context="the billing provider"
            ) from None

    def _find(self, organization_id: str, invoice_number: str) -> tuple[int, Invoice]:
        for position, invoice in enumerate(self._customer(organization_id).invoices):
            if invoice.number == invoice_number:
                return position, invoice
        raise UnknownRecordError(
            "invoice", invoice_number, context=f"Organization {organization_id!r}"
        )
