"""matchusage: which users were active in this billing period?

A pure, storage-agnostic engine for per-active-user billing of mentoring
programs. See https://matchusage.readthedocs.io/ for the guide.
"""

from __future__ import annotations

from . import exceptions, protocols
from ._batch import batch_active_users, batch_counts, batch_periods
from ._billing import (
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
from ._columnar import MatchColumns, columnar_active_users, columnar_counts
from ._documents import DocumentFormat
from ._explain import Explanation, Overlap, explain
from ._export import EXPORT_COLUMNS, ExportRow, export_csv, export_jsonl, export_rows, neutralise
from ._loading import load_directory, load_matches, load_organization, load_programs, load_users
from ._model import Match, Organization, Program, Role, User
from ._periods import BillingCycle, BillingPeriod, CycleUnit
from ._portal import BillingPortal, billing_portal
from ._pricing import InvoiceLine, PriceTier, TierMode, minor_units, round_money
from ._report import CurrentUsage, PeriodUsage, UsageReport, usage_report
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
    "CurrentUsage",
    "CycleUnit",
    "DocumentFormat",
    "DocumentKind",
    "Explanation",
    "ExportRow",
    "Invoice",
    "InvoiceDocument",
    "InvoiceLine",
    "InvoiceStatus",
    "Match",
    "MatchColumns",
    "MatchEvidence",
    "Organization",
    "OrganizationMatches",
    "Overlap",
    "PaymentMethod",
    "PeriodUsage",
    "Plan",
    "PriceTier",
    "Program",
    "ReportedUsage",
    "Role",
    "TierMode",
    "UsageReport",
    "UsageSnapshot",
    "User",
    "EXPORT_COLUMNS",
    "active_users",
    "active_users_by_period",
    "batch_active_users",
    "batch_counts",
    "batch_periods",
    "billing_portal",
    "billing_run",
    "close_period",
    "columnar_active_users",
    "columnar_counts",
    "current_active_matches",
    "current_active_users",
    "due_periods",
    "explain",
    "export_csv",
    "export_jsonl",
    "export_rows",
    "load_directory",
    "load_matches",
    "load_organization",
    "load_programs",
    "load_users",
    "minor_units",
    "neutralise",
    "reconcile",
    "round_money",
    "usage_idempotency_key",
    "usage_report",
    "exceptions",
    "protocols",
]
