"""The SQL snapshot store passes the snapshot store contract, and guards its rows.

Every test runs on the shared ``sql_engine`` fixture: a fresh SQLite database
file, and a fresh schema on the test session's throwaway PostgreSQL server.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from matchusage.billing import UsageSnapshot, fingerprint
from matchusage.exceptions import CorruptSnapshotError, RepositoryError, SnapshotConflictError
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
    """Two closers on different machines: the first snapshot wins, the second is told so."""
    other = SQLSnapshotStore(sql_engine)
    first = SnapshotStoreContract.snapshot(users=("ann",))
    assert sql_store.add(first) == first
    with pytest.raises(
        SnapshotConflictError, match="users only in the new snapshot: 'bob'"
    ) as conflict:
        other.add(SnapshotStoreContract.snapshot(users=("ann", "bob")))
    assert first == conflict.value.stored
    assert other.add(first) == first


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


KEY = b"operator secret"


class TestKeyedSQLSnapshotStore(SnapshotStoreContract):
    """The whole contract holds with keyed (HMAC) fingerprints."""

    @pytest.fixture
    def store(self, sql_engine: sa.Engine) -> SQLSnapshotStore:
        store = SQLSnapshotStore(sql_engine, fingerprint_key=KEY)
        store.create_schema()
        return store


def forge(engine: sa.Engine, store: SQLSnapshotStore, snapshot: UsageSnapshot) -> None:
    """Edit a stored snapshot's users and recompute its plain SHA-256 fingerprint."""
    content = snapshot.canonical().replace('"bob"', '"zed"')
    with engine.begin() as connection:
        connection.execute(
            store.snapshots_table.update().values(content=content, fingerprint=fingerprint(content))
        )


def test_unkeyed_fingerprints_miss_a_forged_row(sql_engine: sa.Engine) -> None:
    """Why keys exist: editing content and fingerprint together passes a plain SHA-256."""
    store = SQLSnapshotStore(sql_engine)
    store.create_schema()
    snapshot = store.add(SnapshotStoreContract.snapshot())
    forge(sql_engine, store, snapshot)
    assert ("ann", "zed") == store.snapshots(snapshot.organization_id)[0].user_ids


@pytest.mark.parametrize("reader_key", [KEY, b"another key", None], ids=["same", "other", "none"])
def test_a_keyed_store_refuses_forged_rows_and_other_keys(
    sql_engine: sa.Engine, reader_key: bytes | None
) -> None:
    writer = SQLSnapshotStore(sql_engine, fingerprint_key=KEY)
    writer.create_schema()
    snapshot = writer.add(SnapshotStoreContract.snapshot())
    reader = SQLSnapshotStore(sql_engine, fingerprint_key=reader_key)
    if reader_key != KEY:  # written under another key, or read without one
        with pytest.raises(CorruptSnapshotError):
            reader.get(snapshot.organization_id, snapshot.period)
    forge(sql_engine, writer, snapshot)
    if reader_key is not None:  # a forged plain fingerprint is never a valid HMAC
        with pytest.raises(CorruptSnapshotError, match="is not the HMAC-SHA256"):
            reader.get(snapshot.organization_id, snapshot.period)


@pytest.mark.parametrize("key", [None, KEY], ids=["sha256", "hmac"])
@pytest.mark.parametrize(
    ("column", "value"),
    [("quantity", 1), ("reference", "INV-forged"), ("reported_at_us", 0), ("fingerprint", "x")],
)
def test_an_altered_report_record_is_refused(
    sql_engine: sa.Engine, key: bytes | None, column: str, value: object
) -> None:
    """Report records are fingerprinted like snapshots: an edited one is never read back."""
    store = SQLSnapshotStore(sql_engine, fingerprint_key=key)
    store.create_schema()
    snapshot = store.add(SnapshotStoreContract.snapshot())
    store.record_report(SnapshotStoreContract.report(snapshot))
    with sql_engine.begin() as connection:
        connection.execute(store.reports_table.update().values({column: value}))
    with pytest.raises(CorruptSnapshotError, match="Report record of 'org-1'"):
        store.report(snapshot.organization_id, snapshot.period)
