"""The SQL snapshot store passes the snapshot store contract, and guards its rows.

Every test runs on the shared ``sql_engine`` fixture: a fresh SQLite database
file, and a fresh schema on the test session's throwaway PostgreSQL server.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from matchusage.exceptions import CorruptSnapshotError, RepositoryError
from matchusage.sql import SQLSnapshotStore
from matchusage.testing.contracts import SnapshotStoreContract


@pytest.fixture
def sql_store(sql_engine: sa.Engine) -> SQLSnapshotStore:
    store = SQLSnapshotStore(sql_engine)
    store.create_schema()
    return store


class TestSQLSnapshotStore(SnapshotStoreContract):
    @pytest.fixture
    def store(self, sql_store: SQLSnapshotStore) -> SQLSnapshotStore:
        return sql_store


def test_create_schema_twice_is_harmless(sql_store: SQLSnapshotStore) -> None:
    sql_store.create_schema()
    assert sql_store.snapshots("org-1") == []


def test_table_prefix(sql_engine: sa.Engine) -> None:
    SQLSnapshotStore(sql_engine, table_prefix="billing_").create_schema()
    assert {"billing_usage_snapshots", "billing_usage_reports"} <= set(
        sa.inspect(sql_engine).get_table_names()
    )


def test_two_stores_on_one_database_share_the_first_snapshot(
    sql_engine: sa.Engine, sql_store: SQLSnapshotStore
) -> None:
    """Two closers on different machines: the first snapshot wins for both."""
    other = SQLSnapshotStore(sql_engine)
    first = SnapshotStoreContract.snapshot(users=("ann",))
    assert sql_store.add(first) == first
    assert other.add(SnapshotStoreContract.snapshot(users=("ann", "bob"))) == first


def test_instants_come_back_in_utc(sql_store: SQLSnapshotStore) -> None:
    snapshot = SnapshotStoreContract.snapshot()
    stored = sql_store.add(snapshot)
    assert stored.period.start.utcoffset() is not None
    assert stored.period.start.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert stored.period == snapshot.period


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("content", '{"format": 1}'),
        ("content", "not json"),
        ("fingerprint", "sha256:0000"),
        ("period_start_us", 0),
    ],
    ids=["incomplete-content", "not-json", "other-fingerprint", "moved-period"],
)
def test_altered_rows_are_detected(
    sql_engine: sa.Engine, sql_store: SQLSnapshotStore, column: str, value: object
) -> None:
    """A row edited in the database is refused on read, never silently billed."""
    snapshot = sql_store.add(SnapshotStoreContract.snapshot())
    with sql_engine.begin() as connection:
        connection.execute(sql_store.snapshots_table.update().values({column: value}))
    with pytest.raises(CorruptSnapshotError):
        sql_store.snapshots(snapshot.organization_id)


def test_a_database_failure_is_a_repository_error_with_its_cause(
    sql_engine: sa.Engine, sql_store: SQLSnapshotStore
) -> None:
    snapshot = SnapshotStoreContract.snapshot()
    sql_store.metadata.drop_all(sql_engine)

    with pytest.raises(RepositoryError, match=r"SnapshotStore\.get failed") as info:
        sql_store.get(snapshot.organization_id, snapshot.period)
    assert isinstance(info.value.__cause__, sa.exc.DBAPIError)
    with pytest.raises(RepositoryError, match=r"SnapshotStore\.add failed, nothing was written"):
        sql_store.add(snapshot)
