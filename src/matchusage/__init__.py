"""matchusage: which users were active in this billing period?

A pure, storage-agnostic engine for per-active-user billing of mentoring
programs. See https://matchusage.readthedocs.io/ for the guide.
"""

from __future__ import annotations

from . import billing, exceptions, protocols
from ._batch import batch_active_users, batch_counts, batch_periods
from ._columnar import MatchColumns, columnar_active_users, columnar_counts
from ._explain import Explanation, Overlap, explain
from ._export import (
    BASIS_COLUMN,
    EXPORT_COLUMNS,
    ExportRow,
    export_csv,
    export_jsonl,
    export_rows,
    neutralise,
)
from ._html._usage import render_usage_html
from ._loading import load_directory, load_matches, load_organization, load_programs, load_users
from ._model import Match, Organization, Program, Role, User
from ._periods import BillingCycle, BillingPeriod, CycleUnit
from ._report import BillingState, CurrentUsage, PeriodUsage, UsageReport, usage_report
from ._source import OrganizationMatches
from ._usage import (
    active_users,
    active_users_by_period,
    current_active_matches,
    current_active_users,
)

__all__ = [
    "BillingCycle",
    "BillingPeriod",
    "BillingState",
    "CurrentUsage",
    "CycleUnit",
    "Explanation",
    "ExportRow",
    "Match",
    "MatchColumns",
    "Organization",
    "OrganizationMatches",
    "Overlap",
    "PeriodUsage",
    "Program",
    "Role",
    "UsageReport",
    "User",
    "BASIS_COLUMN",
    "EXPORT_COLUMNS",
    "active_users",
    "active_users_by_period",
    "batch_active_users",
    "batch_counts",
    "batch_periods",
    "columnar_active_users",
    "columnar_counts",
    "current_active_matches",
    "current_active_users",
    "explain",
    "export_csv",
    "export_jsonl",
    "export_rows",
    "load_directory",
    "load_matches",
    "load_organization",
    "load_programs",
    "load_users",
    "neutralise",
    "render_usage_html",
    "usage_report",
    "billing",
    "exceptions",
    "protocols",
]

# Billing names lived at the top level in 0.1; they moved to `matchusage.billing` and keep
# working from here, with a DeprecationWarning, until 0.2.
_MOVED_TO_BILLING = frozenset(
    {
        "Address",
        "Adjustment",
        "BillingDetails",
        "BillingFailure",
        "BillingPortal",
        "BillingRunSummary",
        "CloseResult",
        "CloseStatus",
        "DocumentFormat",
        "DocumentKind",
        "Invoice",
        "InvoiceDocument",
        "InvoiceLine",
        "InvoiceStatus",
        "MatchEvidence",
        "PaymentMethod",
        "Plan",
        "PriceTier",
        "ReportedUsage",
        "TierMode",
        "UsageSnapshot",
        "billing_portal",
        "billing_run",
        "close_period",
        "due_periods",
        "minor_units",
        "reconcile",
        "round_money",
        "usage_idempotency_key",
    }
)


def __getattr__(name: str) -> object:
    if name == "__version__":
        # From the installed metadata, on first use: importlib.metadata is not light.
        from ._version import version

        return version()
    if name in _MOVED_TO_BILLING:
        import warnings

        warnings.warn(
            f"matchusage.{name} moved to matchusage.billing.{name}; the old name goes away in 0.2",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(billing, name)
    raise AttributeError(f"module 'matchusage' has no attribute {name!r}")
