"""In-memory implementations of every matchusage port: the embedded defaults.

They are complete implementations, not mocks: the library's own tests use
them, and so can yours.
"""

from __future__ import annotations

from ._memory_billing import InMemoryBillingProvider
from ._memory_repository import InMemoryRepository
from ._memory_snapshots import InMemorySnapshotStore

__all__ = ["InMemoryBillingProvider", "InMemoryRepository", "InMemorySnapshotStore"]
