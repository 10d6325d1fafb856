"""The billing portal: everything the portal page shows for one organization."""

from __future__ import annotations

from datetime import datetime

import attrs

from .._model import Organization
from .._periods import BillingPeriod
from .._time import require_aware
from ..exceptions import InvalidRecordError
from ..protocols import BillingProvider
from ._values import BillingDetails, Invoice, PaymentMethod, Plan


@attrs.frozen
class BillingPortal:
    """The data of an organization's billing portal page, as of one instant.

    Build it with [`billing_portal`][matchusage.billing.billing_portal]. Documents
    are downloaded on demand with
    [`BillingProvider.invoice_document`][matchusage.protocols.BillingProvider.invoice_document];
    each invoice lists the ones it has in
    [`Invoice.documents`][matchusage.billing.Invoice.documents].

    Attributes:
        organization_id: The organization.
        as_of: The instant the page shows.
        plan: The current plan.
        current_period: The billing period containing *as_of*.
        renews_at: When the subscription renews next.
        payment_method: The payment method on file, if any.
        billing_details: Billing and shipping details, if any.
        invoices: The invoice history, newest first.
    """

    organization_id: str
    as_of: datetime
    plan: Plan
    current_period: BillingPeriod
    renews_at: datetime
    payment_method: PaymentMethod | None
    billing_details: BillingDetails | None
    invoices: tuple[Invoice, ...]

    @property
    def payment_method_expired(self) -> bool:
        """Whether the payment method on file has expired (or there is none)."""
        return self.payment_method is None or self.payment_method.is_expired(self.as_of)

    @property
    def open_invoices(self) -> tuple[Invoice, ...]:
        """The invoices awaiting payment, newest first."""
        return tuple(invoice for invoice in self.invoices if invoice.status.value == "open")


def billing_portal(
    provider: BillingProvider, organization: Organization, *, now: datetime
) -> BillingPortal:
    """Assemble an organization's billing portal page from its provider and billing cycle.

    The renewal instant is the plan's own
    [`renews_at`][matchusage.billing.Plan] when the provider gives one (it knows
    about trials, cancellations and plan changes); otherwise it is the end of
    the billing period containing *now* under the organization's cycle, i.e.
    the instant the next period starts, in the organization's time zone.

    Args:
        provider: The organization's billing provider.
        organization: The organization (its cycle gives the current period).
        now: The instant the page shows.

    Raises:
        matchusage.exceptions.UnknownRecordError: The provider has no such customer.
    """
    require_aware(now, "billing_portal", "now", InvalidRecordError)
    plan = provider.plan(organization.id)
    period = organization.cycle.period_containing(now)
    return BillingPortal(
        organization_id=organization.id,
        as_of=now,
        plan=plan,
        current_period=period,
        renews_at=plan.renews_at if plan.renews_at is not None else period.end,
        payment_method=provider.payment_method(organization.id),
        billing_details=provider.billing_details(organization.id),
        invoices=tuple(provider.invoices(organization.id)),
    )
