"""Stripe invoices as matchusage `Invoice`s, found by the metadata matchusage wrote."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import stripe

from .._periods import BillingPeriod
from ..billing._pricing import InvoiceLine
from ..billing._values import Invoice, InvoiceStatus
from ._errors import stripe_errors
from ._metadata import IDEMPOTENCY_KEY, PERIOD_END, PERIOD_START, QUANTITY
from ._objects import plain
from ._prices import from_minor, instant

_STATUSES = {status.value: status for status in InvoiceStatus}


def usage_invoices(client: stripe.StripeClient, customer_id: str) -> list[dict[str, Any]]:
    """Every invoice of the customer that bills reported usage, as Stripe lists them.

    Listing (not Search, which lags behind writes by up to a minute) sees an
    invoice the moment it exists: the exactly-once lookup relies on that.
    """
    with stripe_errors():
        page = client.v1.invoices.list(params={"customer": customer_id, "limit": 100})
        invoices = [plain(invoice) for invoice in page.auto_paging_iter()]
    return [invoice for invoice in invoices if (invoice.get("metadata") or {}).get(IDEMPOTENCY_KEY)]


def invoice_lines(client: stripe.StripeClient, invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
    """All lines of an invoice (the invoice embeds the first page only)."""
    embedded = invoice.get("lines") or {}
    if not embedded.get("has_more"):
        return list(embedded.get("data") or [])
    with stripe_errors():
        page = client.v1.invoices.line_items.list(invoice["id"], params={"limit": 100})
        return [plain(line) for line in page.auto_paging_iter()]


def period_of(metadata: Mapping[str, str]) -> BillingPeriod:
    """The billed period written into an invoice's metadata (ISO instants with offsets)."""
    return BillingPeriod(
        datetime.fromisoformat(metadata[PERIOD_START]),
        datetime.fromisoformat(metadata[PERIOD_END]),
    )


def issued_at(invoice: Mapping[str, Any]) -> datetime:
    """When the invoice was issued: finalized, or (a draft) created."""
    transitions = invoice.get("status_transitions") or {}
    return instant(transitions.get("finalized_at") or invoice["created"])


def number_of(invoice: Mapping[str, Any]) -> str:
    """Stripe's invoice number, given at finalization; a draft goes by its id."""
    return str(invoice.get("number") or invoice["id"])


def _line(raw: Mapping[str, Any], currency: str) -> InvoiceLine:
    quantity = int(raw.get("quantity") or 0)
    amount = from_minor(raw["amount"], currency)
    pricing = raw.get("pricing") or {}
    unit = pricing.get("unit_amount_decimal")
    if unit is not None:
        unit_price = from_minor(unit, currency)
    else:
        unit_price = amount / quantity if quantity else amount
    return InvoiceLine(raw.get("description") or "", quantity, unit_price, amount)


def _paid_at(invoice: Mapping[str, Any]) -> datetime:
    # Stripe marks an invoice of zero paid when it is finalized.
    transitions = invoice.get("status_transitions") or {}
    paid = transitions.get("paid_at")
    return instant(paid) if paid else issued_at(invoice)


def invoice_from_stripe(
    invoice: Mapping[str, Any], organization_id: str, lines: Iterable[Mapping[str, Any]]
) -> Invoice:
    """The [`Invoice`][matchusage.billing.Invoice] of a Stripe invoice matchusage issued.

    The lines are kept when they add up to the total (no tax, discount or
    customer balance applied); otherwise the invoice states its total only.
    """
    currency = str(invoice["currency"]).upper()
    metadata = invoice["metadata"]
    status = _STATUSES[invoice["status"]]
    total = from_minor(invoice["total"], currency)
    converted = tuple(_line(line, currency) for line in lines)
    if sum((line.amount for line in converted), Decimal(0)) != total:
        converted = ()
    return Invoice(
        number=number_of(invoice),
        organization_id=organization_id,
        issued_at=issued_at(invoice),
        period=period_of(metadata),
        quantity=int(metadata[QUANTITY]),
        amount=total,
        currency=currency,
        status=status,
        lines=converted,
        paid_at=_paid_at(invoice) if status is InvoiceStatus.PAID else None,
    )


def _natural(number: str) -> tuple[object, ...]:
    # "ACME-0010" after "ACME-0009", and "ACME-10000" after "ACME-9999".
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", number))


def age(invoice: Invoice) -> tuple[object, ...]:
    """The port's order of invoices: by issue instant, then number (sort newest first)."""
    return (invoice.issued_at, _natural(invoice.number))
