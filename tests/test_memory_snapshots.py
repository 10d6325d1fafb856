"""The in-memory snapshot store passes the snapshot store contract."""

from __future__ import annotations

import pytest

from matchusage.memory import InMemorySnapshotStore
from matchusage.testing.contracts import SnapshotStoreContract


class TestInMemorySnapshotStore(SnapshotStoreContract):
    @pytest.fixture
    def store(self) -> InMemorySnapshotStore:
        return InMemorySnapshotStore()


def test_rejects_what_is_not_a_snapshot() -> None:
    with pytest.raises(ValueError, match="'snapshot' must be a UsageSnapshot"):
        InMemorySnapshotStore().add("snapshot")  # type: ignore[arg-type]
