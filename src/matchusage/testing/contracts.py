"""Contract tests: base test classes that every adapter of a port subclasses.

Subclass one in your adapter's test module and supply the fixture it names;
pytest then runs every rule of the port against your adapter.
"""

from __future__ import annotations

from ._billing_contract import BillingProviderContract
from ._repository_contract import MatchRepositoryContract
from ._snapshot_contract import SnapshotStoreContract

__all__ = ["BillingProviderContract", "MatchRepositoryContract", "SnapshotStoreContract"]
