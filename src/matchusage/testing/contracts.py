"""Contract tests: base test classes that every adapter of a port subclasses.

Subclass one in your adapter's test module and supply the fixture it names;
pytest then runs every rule of the port against your adapter. The type
aliases name what the fixtures take and return, so that an adapter's tests
can be typed without reaching into private modules, and the records the
contracts use serve an adapter's own tests too.
"""

from __future__ import annotations

from ._billing_contract import BillingProviderContract
from ._checked_organizations_contract import CheckedOrganizationsContract
from ._repository_contract import (
    MakeRepository,
    MatchRepositoryContract,
    Record,
    example_records,
    matches_of,
)
from ._snapshot_contract import SnapshotStoreContract

__all__ = [
    "BillingProviderContract",
    "CheckedOrganizationsContract",
    "MakeRepository",
    "MatchRepositoryContract",
    "Record",
    "SnapshotStoreContract",
    "example_records",
    "matches_of",
]
