"""In-memory implementations of every matchusage port: the embedded defaults.

They are complete implementations, not mocks: the library's own tests use
them, and so can yours.
"""

from __future__ import annotations

from ._billing import InMemoryBillingProvider
from ._repository import InMemoryRepository
from ._snapshots import InMemorySnapshotStore

__all__ = ["InMemoryBillingProvider", "InMemoryRepository", "InMemorySnapshotStore"]
