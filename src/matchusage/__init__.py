"""matchusage: which users were active in this billing period?

A pure, storage-agnostic engine for per-active-user billing of mentoring
programs. See https://matchusage.readthedocs.io/ for the guide.
"""

from __future__ import annotations

from . import exceptions, protocols
from ._batch import batch_active_users, batch_counts, batch_periods
from ._columnar import MatchColumns, columnar_active_users, columnar_counts
from ._model import Match, Organization, Program, Role, User
from ._periods import BillingCycle, BillingPeriod, CycleUnit
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
    "CycleUnit",
    "Match",
    "MatchColumns",
    "Organization",
    "OrganizationMatches",
    "Program",
    "Role",
    "User",
    "active_users",
    "active_users_by_period",
    "batch_active_users",
    "batch_counts",
    "batch_periods",
    "columnar_active_users",
    "columnar_counts",
    "current_active_matches",
    "current_active_users",
    "exceptions",
    "protocols",
]
