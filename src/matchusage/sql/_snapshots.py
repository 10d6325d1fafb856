"""The SQL snapshot store: snapshots and report records in two tables of their own."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .._periods import BillingPeriod
from .._time import from_micros, to_micros
from ..billing._snapshots import (
    UsageSnapshot,
    check_fingerprint,
    fingerprint,
    report_canonical,
    require_same,
)
from ..billing._values import ReportedUsage
from ..exceptions import CorruptSnapshotError, InvalidRecordError, UnknownRecordError
from ._errors import database_errors

_LONGEST_TABLE = "usage_snapshots"
_MAX_NAME_BYTES = 63
"""PostgreSQL's limit on identifiers: a longer table name would be cut silently."""


def _key_columns() -> list[sa.Column[Any]]:
    # Unbounded text, as in SQLRepository: any organization id stored there fits here.
    return [
        sa.Column("organization_id", sa.String, primary_key=True),
        sa.Column("period_start_us", sa.BigInteger, primary_key=True),
        sa.Column("period_end_us", sa.BigInteger, primary_key=True),
    ]


class SQLSnapshotStore:
    """A [`SnapshotStore`][matchusage.protocols.SnapshotStore] in any SQLAlchemy database.

    Three tables, ``<prefix>usage_snapshots`` and ``<prefix>usage_reports``,
    keyed by organization and period (as UTC microseconds), and
    ``<prefix>billing_starts``, each organization's first billable period. A snapshot is
    stored as its canonical JSON with its fingerprint, and a report record
    with its own; both are checked on every read. Given a *fingerprint_key*
    (a secret the operator keeps outside the database), the fingerprints are
    HMAC-SHA256 under it, so a record edited together with its fingerprint is
    caught too, as is one written without the key. Writing the same snapshot
    or report again returns the stored one; a different one raises
    [`SnapshotConflictError`][matchusage.exceptions.SnapshotConflictError].
    Writes rely on the primary keys, so concurrent closers of the same
    period (even on different machines) end with one snapshot and one report
    record. Instants read back are in UTC. A database failure
    raises [`RepositoryError`][matchusage.exceptions.RepositoryError] with
    the database's error as its cause.

    ```python
    store = SQLSnapshotStore(sqlalchemy.create_engine("postgresql+psycopg://..."))
    store.create_schema()  # once, or let your migrations create store.metadata
    ```

    Organization ids are unbounded text, like the ids
    [`SQLRepository`][matchusage.sql.SQLRepository] stores.

    Args:
        engine: The database.
        table_prefix: Prefix of the table names (at most 48 bytes in UTF-8, so
            that the names fit PostgreSQL's 63).
        fingerprint_key: The key of keyed (HMAC) fingerprints, or ``None``
            for plain SHA-256 ones. Records written under one setting are
            refused under another.

    Raises:
        matchusage.exceptions.InvalidRecordError: The prefix is too long.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        table_prefix: str = "matchusage_",
        fingerprint_key: bytes | None = None,
    ) -> None:
        room = _MAX_NAME_BYTES - len(_LONGEST_TABLE)
        if not isinstance(table_prefix, str) or len(table_prefix.encode()) > room:
            raise InvalidRecordError(
                "SQLSnapshotStore", "table_prefix", table_prefix, f"text of at most {room} bytes"
            )
        self.engine = engine
        self._key_bytes = fingerprint_key
        self.metadata = sa.MetaData()
        self.snapshots_table = sa.Table(
            f"{table_prefix}usage_snapshots",
            self.metadata,
            *_key_columns(),
            sa.Column("user_count", sa.Integer, nullable=False),
            sa.Column("fingerprint", sa.String(80), nullable=False),
            sa.Column("computed_at_us", sa.BigInteger, nullable=False),
            sa.Column("content", sa.Text, nullable=False),
        )
        self.reports_table = sa.Table(
            f"{table_prefix}usage_reports",
            self.metadata,
            *_key_columns(),
            sa.Column("quantity", sa.Integer, nullable=False),
            sa.Column("idempotency_key", sa.Text, nullable=False),
            sa.Column("reference", sa.Text, nullable=False),
            sa.Column("reported_at_us", sa.BigInteger, nullable=False),
            sa.Column("fingerprint", sa.String(80), nullable=False),
            sa.ForeignKeyConstraint(
                ["organization_id", "period_start_us", "period_end_us"],
                [
                    self.snapshots_table.c.organization_id,
                    self.snapshots_table.c.period_start_us,
                    self.snapshots_table.c.period_end_us,
                ],
            ),
        )

        self.starts_table = sa.Table(
            f"{table_prefix}billing_starts",
            self.metadata,
            sa.Column("organization_id", sa.String, primary_key=True),
            sa.Column("period_start_us", sa.BigInteger, nullable=False),
            sa.Column("period_end_us", sa.BigInteger, nullable=False),
        )

    def create_schema(self) -> None:
        """Create the tables if they do not exist."""
        with database_errors("SnapshotStore.create_schema", writing=True):
            self.metadata.create_all(self.engine)

    @staticmethod
    def _key(organization_id: str, period: BillingPeriod) -> dict[str, Any]:
        return {
            "organization_id": organization_id,
            "period_start_us": to_micros(period.start),
            "period_end_us": to_micros(period.end),
        }

    def _where(self, table: sa.Table, organization_id: str, period: BillingPeriod) -> Any:
        key = self._key(organization_id, period)
        return sa.and_(*(table.c[name] == value for name, value in key.items()))

    def add(self, snapshot: UsageSnapshot) -> UsageSnapshot:
        """Store *snapshot* unless its period has one; return the stored snapshot."""
        if not isinstance(snapshot, UsageSnapshot):
            raise InvalidRecordError("SnapshotStore.add", "snapshot", snapshot, "a UsageSnapshot")
        row = self._key(snapshot.organization_id, snapshot.period) | {
            "user_count": snapshot.count,
            "fingerprint": fingerprint(snapshot.canonical(), self._key_bytes),
            "computed_at_us": to_micros(snapshot.computed_at),
            "content": snapshot.canonical(),
        }
        with database_errors("SnapshotStore.add", writing=True):
            try:
                with self.engine.begin() as connection:
                    connection.execute(self.snapshots_table.insert(), row)
            except sa.exc.IntegrityError:
                pass  # a snapshot of the period exists: it wins
        stored = self.get(snapshot.organization_id, snapshot.period)
        assert stored is not None  # inserted, or there already
        return require_same(stored, snapshot)

    def _snapshot(self, row: Any) -> UsageSnapshot:
        snapshot = UsageSnapshot.from_canonical(
            row.content,
            computed_at=from_micros(row.computed_at_us),
            fingerprint=row.fingerprint,
            key=self._key_bytes,
        )
        if self._key(snapshot.organization_id, snapshot.period) != {
            "organization_id": row.organization_id,
            "period_start_us": row.period_start_us,
            "period_end_us": row.period_end_us,
        }:
            raise CorruptSnapshotError(
                f"the snapshot stored for {row.organization_id!r} at "
                f"[{row.period_start_us}, {row.period_end_us}) is of another organization "
                "or period"
            )
        return snapshot

    def get(self, organization_id: str, period: BillingPeriod) -> UsageSnapshot | None:
        """The snapshot of an organization's period, if taken."""
        table = self.snapshots_table
        with database_errors("SnapshotStore.get"), self.engine.connect() as connection:
            row = connection.execute(
                sa.select(table).where(self._where(table, organization_id, period))
            ).first()
        return None if row is None else self._snapshot(row)

    def snapshots(self, organization_id: str) -> list[UsageSnapshot]:
        """The organization's snapshots, oldest period first."""
        table = self.snapshots_table
        with database_errors("SnapshotStore.snapshots"), self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(table)
                .where(table.c.organization_id == organization_id)
                .order_by(table.c.period_start_us, table.c.period_end_us)
            ).all()
        return [self._snapshot(row) for row in rows]

    def record_report(self, report: ReportedUsage) -> ReportedUsage:
        """Record a report of a snapshot's period (the first record stays)."""
        if not isinstance(report, ReportedUsage):
            raise InvalidRecordError(
                "SnapshotStore.record_report", "report", report, "a ReportedUsage"
            )
        key = self._key(report.organization_id, report.period)
        with database_errors("SnapshotStore.record_report", writing=True):
            try:
                with self.engine.begin() as connection:
                    self._require_snapshot(connection, report)
                    connection.execute(
                        self.reports_table.insert(),
                        key
                        | {
                            "quantity": report.quantity,
                            "idempotency_key": report.idempotency_key,
                            "reference": report.reference,
                            "reported_at_us": to_micros(report.reported_at),
                            "fingerprint": fingerprint(report_canonical(report), self._key_bytes),
                        },
                    )
            except sa.exc.IntegrityError:
                pass  # recorded already: the first record stays
        stored = self.report(report.organization_id, report.period)
        assert stored is not None
        return require_same(stored, report)

    def _require_snapshot(self, connection: Connection, report: ReportedUsage) -> None:
        table = self.snapshots_table
        found = connection.execute(
            sa.select(table.c.organization_id).where(
                self._where(table, report.organization_id, report.period)
            )
        ).first()
        if found is None:
            raise UnknownRecordError(
                "snapshot",
                str(report.period),
                context=f"Organization {report.organization_id!r}",
                hint="add the snapshot before recording its report",
            )

    def report(self, organization_id: str, period: BillingPeriod) -> ReportedUsage | None:
        """The recorded report of an organization's period, if any."""
        table = self.reports_table
        with database_errors("SnapshotStore.report"), self.engine.connect() as connection:
            row = connection.execute(
                sa.select(table).where(self._where(table, organization_id, period))
            ).first()
        if row is None:
            return None
        report = ReportedUsage(
            organization_id=row.organization_id,
            period=BillingPeriod(from_micros(row.period_start_us), from_micros(row.period_end_us)),
            quantity=row.quantity,
            idempotency_key=row.idempotency_key,
            reference=row.reference,
            reported_at=from_micros(row.reported_at_us),
        )
        what = f"Report record of {report.organization_id!r} for {report.period}"
        check_fingerprint(what, report_canonical(report), row.fingerprint, self._key_bytes)
        return report

    def start_billing(self, organization_id: str, period: BillingPeriod) -> BillingPeriod:
        """Record the organization's first billable period (the first record stays)."""
        if not isinstance(period, BillingPeriod):
            raise InvalidRecordError(
                "SnapshotStore.start_billing", "period", period, "a BillingPeriod"
            )
        with database_errors("SnapshotStore.start_billing", writing=True):
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        self.starts_table.insert(), self._key(organization_id, period)
                    )
            except sa.exc.IntegrityError:
                pass  # recorded already: the first record stays
        stored = self.billing_start(organization_id)
        assert stored is not None
        return stored

    def billing_start(self, organization_id: str) -> BillingPeriod | None:
        """The organization's recorded first billable period, if any."""
        table = self.starts_table
        with database_errors("SnapshotStore.billing_start"), self.engine.connect() as connection:
            row = connection.execute(
                sa.select(table).where(table.c.organization_id == organization_id)
            ).first()
        if row is None:
            return None
        return BillingPeriod(from_micros(row.period_start_us), from_micros(row.period_end_us))
