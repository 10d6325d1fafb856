"""The in-memory snapshot store."""

from __future__ import annotations

import attrs

from .._periods import BillingPeriod
from ..billing._snapshots import UsageSnapshot, require_same
from ..billing._values import ReportedUsage
from ..exceptions import InvalidRecordError, UnknownRecordError

_Key = tuple[str, BillingPeriod]


@attrs.define
class InMemorySnapshotStore:
    """A [`SnapshotStore`][matchusage.protocols.SnapshotStore] kept in memory.

    Snapshots and report records are written once: the same write again
    returns what is stored, a different one raises
    [`SnapshotConflictError`][matchusage.exceptions.SnapshotConflictError].
    """

    _snapshots: dict[_Key, UsageSnapshot] = attrs.field(factory=dict, init=False)
    _reports: dict[_Key, ReportedUsage] = attrs.field(factory=dict, init=False)
    _starts: dict[str, BillingPeriod] = attrs.field(factory=dict, init=False)

    def add(self, snapshot: UsageSnapshot) -> UsageSnapshot:
        """Store *snapshot* unless its period has one; return the stored snapshot.

        Raises:
            matchusage.exceptions.SnapshotConflictError: A different snapshot
                of the period is stored.
        """
        if not isinstance(snapshot, UsageSnapshot):
            raise InvalidRecordError("SnapshotStore.add", "snapshot", snapshot, "a UsageSnapshot")
        key = (snapshot.organization_id, snapshot.period)
        return require_same(self._snapshots.setdefault(key, snapshot), snapshot)

    def get(self, organization_id: str, period: BillingPeriod) -> UsageSnapshot | None:
        """The snapshot of an organization's period, if taken."""
        return self._snapshots.get((organization_id, period))

    def snapshots(self, organization_id: str) -> list[UsageSnapshot]:
        """The organization's snapshots, oldest period first."""
        found = [s for (org, _), s in self._snapshots.items() if org == organization_id]
        found.sort(key=lambda s: s.period)
        return found

    def record_report(self, report: ReportedUsage) -> ReportedUsage:
        """Record a report of a snapshot's period (the first record stays).

        Raises:
            matchusage.exceptions.SnapshotConflictError: A different report of
                the period is recorded.
        """
        if not isinstance(report, ReportedUsage):
            raise InvalidRecordError(
                "SnapshotStore.record_report", "report", report, "a ReportedUsage"
            )
        key = (report.organization_id, report.period)
        if key not in self._snapshots:
            raise UnknownRecordError(
                "snapshot",
                str(report.period),
                context=f"Organization {report.organization_id!r}",
                hint="add the snapshot before recording its report",
            )
        return require_same(self._reports.setdefault(key, report), report)

    def report(self, organization_id: str, period: BillingPeriod) -> ReportedUsage | None:
        """The recorded report of an organization's period, if any."""
        return self._reports.get((organization_id, period))

    def start_billing(self, organization_id: str, period: BillingPeriod) -> BillingPeriod:
        """Record the organization's first billable period (the first record stays)."""
        if not isinstance(period, BillingPeriod):
            raise InvalidRecordError(
                "SnapshotStore.start_billing", "period", period, "a BillingPeriod"
            )
        return self._starts.setdefault(organization_id, period)

    def billing_start(self, organization_id: str) -> BillingPeriod | None:
        """The organization's recorded first billable period, if any."""
        return self._starts.get(organization_id)
