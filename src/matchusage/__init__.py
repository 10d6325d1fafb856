"""matchusage: which users were active in this billing period?

A pure, storage-agnostic engine for per-active-user billing of mentoring
programs. See https://matchusage.readthedocs.io/ for the guide.
"""

from __future__ import annotations

from . import exceptions, protocols
from ._billing import (
    Address,
    BillingDetails,
    DocumentKind,
    Invoice,
    InvoiceDocument,
    InvoiceStatus,
    PaymentMethod,
    Plan,
    UsageReport,
)
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
from ._model import Match, Organization, Program, Role, User
from ._periods import BillingCycle, BillingPeriod, CycleUnit
from ._portal import BillingPortal, billing_portal
from ._pricing import InvoiceLine, PriceTier, TierMode, minor_units, round_money
from ._snapshots import MatchEvidence, UsageSnapshot
from ._source import OrganizationMatches
from ._usage import (
    active_users,
    active_users_by_period,
    current_active_matches,
    current_active_users,
)

__all__ = [
    "Address",
    "Adjustment",
    "BillingCycle",
    "BillingDetails",
    "BillingFailure",
    "BillingPeriod",
    "BillingPortal",
    "BillingRunSummary",
    "CloseResult",
    "CloseStatus",
    "CycleUnit",
    "DocumentFormat",
    "DocumentKind",
    "Invoice",
    "InvoiceDocument",
    "InvoiceLine",
    "InvoiceStatus",
    "Match",
    "MatchEvidence",
    "Organization",
    "OrganizationMatches",
    "PaymentMethod",
    "Plan",
    "PriceTier",
    "Program",
    "Role",
    "TierMode",
    "UsageReport",
    "UsageSnapshot",
    "User",
    "active_users",
    "active_users_by_period",
    "billing_portal",
    "billing_run",
    "close_period",
    "current_active_matches",
    "current_active_users",
    "due_periods",
    "minor_units",
    "reconcile",
    "round_money",
    "usage_idempotency_key",
    "exceptions",
    "protocols",
]
