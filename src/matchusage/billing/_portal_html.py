"""The billing portal as one self-contained HTML page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from .._html._environment import render, safe_href
from .._labels import Labels
from .._model import Organization
from ..exceptions import InvalidRecordError
from ._portal import BillingPortal
from ._values import DocumentKind, Invoice, InvoiceStatus, Plan

DocumentURL = Callable[[Invoice, DocumentKind], str]


def default_document_url(invoice: Invoice, kind: DocumentKind) -> str:
    """``invoices/<number>/<kind>``, relative to the page: ``invoices/INV-000001/receipt``."""
    return f"invoices/{quote(invoice.number, safe='')}/{kind.value}"


def render_portal_html(
    portal: BillingPortal,
    *,
    organization: Organization | None = None,
    document_url: DocumentURL = default_document_url,
) -> str:
    """The billing portal as one self-contained HTML page, readable without JavaScript.

    The page shows the plan, its price and the renewal date; the payment
    method on file (brand, last four digits, expiry, and whether it has
    expired); the billing and shipping details; and the invoice history,
    newest first, each invoice with a link to download it and, once it is
    paid, its receipt. Instants are shown in the time zone of the
    organization's billing cycle.

    The links point wherever the embedding app serves the documents (from
    [`invoice_document`][matchusage.protocols.BillingProvider.invoice_document],
    say): *document_url* builds each one. Every text from data is escaped,
    stripped of control and bidi override characters, isolated with
    ``<bdi>`` and wrapped when too long. Needs Jinja2:
    ``pip install "matchusage[html]"``.

    Args:
        portal: A [`BillingPortal`][matchusage.billing.BillingPortal].
        organization: The organization, for the page's title.
        document_url: Builds the link of an invoice's document; the default
            gives ``invoices/<number>/invoice`` and ``invoices/<number>/receipt``
            (the number URL-quoted), relative to the page.

    Returns:
        The page, as a string (write it with ``encoding="utf-8"``).

    Raises:
        matchusage.exceptions.InvalidRecordError: *portal* is not a portal, or
            *document_url* gives a URL that is not relative, http(s) or mailto.
    """
    if not isinstance(portal, BillingPortal):
        raise InvalidRecordError("render_portal_html", "portal", portal, "a BillingPortal")
    zone = portal.current_period.start.tzinfo
    assert zone is not None  # periods are aware
    labels = Labels(zone, [portal.current_period, *(i.period for i in portal.invoices)], ())
    name = None if organization is None else organization.name
    method = portal.payment_method
    details = portal.billing_details
    return render(
        "portal.html.j2",
        title=f"{name}: billing" if name else "Billing",
        organization=name,
        as_of=labels.instant(portal.as_of),
        as_of_iso=portal.as_of.isoformat(),
        zone=str(zone),
        plan=_plan(portal.plan),
        current_period=labels.period(portal.current_period),
        renews=_date(portal.renews_at, zone),
        renews_iso=portal.renews_at.isoformat(),
        payment=None
        if method is None
        else {"brand": method.brand, "last4": method.last4, "expiry": method.expiry},
        expired=portal.payment_method_expired,
        details=None
        if details is None
        else {
            "name": details.name,
            "email": details.email,
            "tax_id": details.tax_id,
            "address": details.address.lines() if details.address else [],
            "shipping": details.shipping_address.lines() if details.shipping_address else [],
            "shipping_name": details.shipping_name,
            "shipping_phone": details.shipping_phone,
        },
        invoices=[_invoice(invoice, zone, labels, document_url) for invoice in portal.invoices],
    )


# How each status is shown: green once paid, orange while it is owed, grey when it is not.
_TONES = {
    InvoiceStatus.DRAFT: "muted",
    InvoiceStatus.OPEN: "changed",
    InvoiceStatus.PAID: "ok",
    InvoiceStatus.VOID: "muted",
    InvoiceStatus.UNCOLLECTIBLE: "changed",
}


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:,} {currency}"


def _date(instant: datetime, zone: tzinfo) -> str:
    return instant.astimezone(zone).strftime("%Y-%m-%d")


def _plan(plan: Plan) -> dict[str, Any]:
    price = f"{_money(plan.unit_price, plan.currency)} per active user per {plan.interval}"
    tiers = []
    low = 1
    for tier in plan.tiers:
        users = f"users {low}+" if tier.up_to is None else f"users {low}-{tier.up_to}"
        text = f"{users}: {_money(tier.unit_price, plan.currency)} each"
        if tier.flat_fee:
            text += f" + {_money(tier.flat_fee, plan.currency)}"
        tiers.append(text)
        low = low if tier.up_to is None else tier.up_to + 1
    if tiers and plan.tiers[-1].up_to is not None:
        price = f"{_money(plan.unit_price, plan.currency)} per active user above {low - 1}"
    elif tiers:
        price = "by tier"
    minimum = f"{plan.minimum_quantity} active users" if plan.minimum_quantity else None
    return {
        "name": plan.name,
        "price": price,
        "tiers": tiers,
        "tier_mode": plan.tier_mode.value,
        "minimum": minimum,
    }


def _invoice(
    invoice: Invoice, zone: tzinfo, labels: Labels, document_url: DocumentURL
) -> dict[str, Any]:
    def href(kind: DocumentKind) -> str:
        return safe_href(document_url(invoice, kind), "render_portal_html", "document_url")

    receipt = DocumentKind.RECEIPT in invoice.documents
    return {
        "number": invoice.number,
        "period": labels.period(invoice.period),
        "issued": _date(invoice.issued_at, zone),
        "issued_iso": invoice.issued_at.isoformat(),
        "quantity": invoice.quantity,
        "amount": _money(invoice.amount, invoice.currency),
        "status": invoice.status.value,
        "tone": _TONES[invoice.status],
        "invoice_href": href(DocumentKind.INVOICE),
        "receipt_href": href(DocumentKind.RECEIPT) if receipt else None,
    }
