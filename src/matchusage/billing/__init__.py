"""Billing: what a billing provider is told and shows, and closing periods exactly once.

The counting API at the top of [`matchusage`][matchusage] decides *who* is active; this
package turns those counts into money and documents:

- provider values: plans and price tiers, invoices and their documents, payment methods,
  billing details, reported usage;
- pricing: tiered (graduated and volume) invoice lines in each currency's minor units;
- the billing portal: the admin's view of plan, renewal, payment method and invoices,
  and [`render_portal_html`][matchusage.billing.render_portal_html], its HTML page;
- closing periods: snapshots of who was billed, [`close_period`][matchusage.billing.close_period]
  and [`billing_run`][matchusage.billing.billing_run] (exactly once per organization and
  period), and [`reconcile`][matchusage.billing.reconcile] for late edits.

Providers implement [`BillingProvider`][matchusage.protocols.BillingProvider];
[`matchusage.memory.InMemoryBillingProvider`][matchusage.memory.InMemoryBillingProvider] is the
embedded one.
"""

from __future__ import annotations

from ._close import (
    Adjustment,
    BillingFailure,
    BillingRunSummary,
    CloseResult,
    CloseStatus,
    billing_run,
    close_period,
    due_periods,
    reconcile,
    usage_idempotency_key,
)
from ._documents import DocumentFormat
from ._portal import BillingPortal, billing_portal
from ._portal_html import default_document_url, render_portal_html
from ._pricing import InvoiceLine, PriceTier, TierMode, minor_units, round_money
from ._snapshots import MatchEvidence, UsageSnapshot, fingerprint
from ._values import (
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

__all__ = [
    # Provider values
    "Address",
    "BillingDetails",
    "DocumentFormat",
    "DocumentKind",
    "Invoice",
    "InvoiceDocument",
    "InvoiceStatus",
    "PaymentMethod",
    "Plan",
    "ReportedUsage",
    # Pricing
    "InvoiceLine",
    "PriceTier",
    "TierMode",
    "minor_units",
    "round_money",
    # The billing portal
    "BillingPortal",
    "billing_portal",
    "default_document_url",
    "render_portal_html",
    # Closing periods
    "Adjustment",
    "BillingFailure",
    "BillingRunSummary",
    "CloseResult",
    "CloseStatus",
    "MatchEvidence",
    "UsageSnapshot",
    "billing_run",
    "close_period",
    "due_periods",
    "fingerprint",
    "reconcile",
    "usage_idempotency_key",
]
