"""matchusage: which users were active in this billing period?

A pure, storage-agnostic engine for per-active-user billing of mentoring
programs. See https://matchusage.readthedocs.io/ for the guide.
"""

from __future__ import annotations

from . import exceptions, protocols
from ._explain import Explanation, Overlap, explain
from ._export import EXPORT_COLUMNS, ExportRow, export_csv, export_jsonl, export_rows, neutralise
from ._loading import load_directory, load_matches, load_organization, load_programs, load_users
from ._model import Match, Organization, Program, Role, User
from ._periods import BillingCycle, BillingPeriod, CycleUnit
from ._report import CurrentUsage, PeriodUsage, UsageReport, usage_report
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
    "CurrentUsage",
    "CycleUnit",
    "Explanation",
    "ExportRow",
    "Match",
    "Organization",
    "OrganizationMatches",
    "Overlap",
    "PeriodUsage",
    "Program",
    "Role",
    "UsageReport",
    "User",
    "active_users",
    "active_users_by_period",
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
    "usage_report",
    "EXPORT_COLUMNS",
    "exceptions",
    "protocols",
]
