"""Every adapter shipped with matchusage implements its port (the protocols in ``protocols``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from matchusage.memory import InMemoryBillingProvider, InMemoryRepository, InMemorySnapshotStore
from matchusage.protocols import (
    BillingProvider,
    CheckedOrganizations,
    MatchRepository,
    SnapshotStore,
)
from matchusage.sql import SQLRepository, SQLSnapshotStore


@pytest.mark.parametrize(
    ("make", "port"),
    [
        (InMemoryRepository, MatchRepository),
        (lambda: SQLRepository(sa.create_engine("sqlite://")), MatchRepository),
        (InMemoryRepository, CheckedOrganizations),
        (lambda: SQLRepository(sa.create_engine("sqlite://")), CheckedOrganizations),
        (InMemoryBillingProvider, BillingProvider),
        (InMemorySnapshotStore, SnapshotStore),
        (lambda: SQLSnapshotStore(sa.create_engine("sqlite://")), SnapshotStore),
    ],
    ids=[
        "memory-repository",
        "sql-repository",
        "memory-checked-organizations",
        "sql-checked-organizations",
        "memory-provider",
        "memory-store",
        "sql-store",
    ],
)
def test_adapters_implement_their_ports(make: Callable[[], object], port: type) -> None:
    assert isinstance(make(), port)
