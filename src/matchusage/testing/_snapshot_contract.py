"""The contract every snapshot store passes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import attrs
import pytest

from .._periods import BillingCycle, BillingPeriod
from ..billing._snapshots import MatchEvidence, UsageSnapshot
from ..billing._values import ReportedUsage
from ..exceptions import SnapshotConflictError, UnknownRecordError
from ..protocols import SnapshotStore

_ZONE = ZoneInfo("Europe/Berlin")
_CYCLE = BillingCycle.monthly(datetime(2024, 1, 31, 9, 30, tzinfo=_ZONE))


def _evidence(match_id: str, start: datetime, end: datetime | None = None) -> MatchEvidence:
    return MatchEvidence(match_id, "program-1", start, end)


class SnapshotStoreContract:
    """Tests any [`SnapshotStore`][matchusage.protocols.SnapshotStore] must pass.

    Subclass it and supply the `store` fixture: an empty store.
    """

    @pytest.fixture
    def store(self) -> SnapshotStore:
        """An empty snapshot store."""
        raise NotImplementedError("subclasses supply the store fixture")

    @staticmethod
    def snapshot(
        index: int = 0, organization_id: str = "org-1", users: tuple[str, ...] = ("ann", "bob")
    ) -> UsageSnapshot:
        """A snapshot of period *index* (monthly from 2024-01-31, Europe/Berlin)."""
        period = _CYCLE.period(index)
        start = period.start - timedelta(days=3)
        evidence = {
            user: [
                _evidence(f"m-{user}", start),
                _evidence(f"m-{user}-2", period.start, period.start + timedelta(hours=n + 1)),
            ]
            for n, user in enumerate(users)
        }
        return UsageSnapshot(organization_id, period, evidence, computed_at=period.end)

    @staticmethod
    def report(snapshot: UsageSnapshot, reference: str = "ref-1") -> ReportedUsage:
        """A report of *snapshot*'s usage."""
        return ReportedUsage(
            snapshot.organization_id,
            snapshot.period,
            snapshot.count,
            f"key:{snapshot.organization_id}:{snapshot.period}",
            reference,
            snapshot.computed_at + timedelta(minutes=1),
        )

    def test_empty(self, store: SnapshotStore) -> None:
        """An empty store has no snapshot and no report."""
        period = _CYCLE.period(0)
        assert (store.get("org-1", period), store.report("org-1", period)) == (None, None)
        assert list(store.snapshots("org-1")) == []

    def test_round_trip(self, store: SnapshotStore) -> None:
        """A stored snapshot reads back equal, with the same fingerprint and instants."""
        snapshot = self.snapshot()
        assert store.add(snapshot) == snapshot
        stored = store.get("org-1", snapshot.period)
        assert stored == snapshot
        assert stored is not None
        assert stored.fingerprint == snapshot.fingerprint
        assert stored.computed_at == snapshot.computed_at
        assert dict(stored.evidence) == dict(snapshot.evidence)

    def test_never_rewritten(self, store: SnapshotStore) -> None:
        """The same snapshot again returns the stored one; a different one is refused."""
        first = self.snapshot(users=("ann", "bob"))
        store.add(first)
        later = attrs.evolve(first, computed_at=first.computed_at + timedelta(days=1))
        assert store.add(later).computed_at == first.computed_at
        other = self.snapshot(users=("ann", "cyd", "dan"))
        with pytest.raises(SnapshotConflictError) as conflict:
            store.add(other)
        assert (first, other) == (conflict.value.stored, conflict.value.attempted)
        assert conflict.value.differences == (
            "users only in the new snapshot: 'cyd', 'dan'",
            "users only in the stored snapshot: 'bob'",
        )
        assert "a different UsageSnapshot of period" in str(conflict.value)
        assert store.get("org-1", first.period) == first

    def test_a_snapshot_with_other_evidence_is_refused(self, store: SnapshotStore) -> None:
        """The same users with other matches are a different snapshot too."""
        first = store.add(self.snapshot(users=("ann",)))
        other = UsageSnapshot(
            first.organization_id,
            first.period,
            {"ann": [_evidence("m-other", first.period.start)]},
            computed_at=first.computed_at,
        )
        with pytest.raises(SnapshotConflictError, match="different matches for: 'ann'"):
            store.add(other)

    def test_period_is_the_same_in_any_zone(self, store: SnapshotStore) -> None:
        """A period is found by its instants, whatever zone it is written in."""
        snapshot = self.snapshot()
        store.add(snapshot)
        utc = BillingPeriod(
            snapshot.period.start.astimezone(timezone.utc),
            snapshot.period.end.astimezone(timezone.utc),
        )
        assert store.get("org-1", utc) == snapshot

    def test_listing(self, store: SnapshotStore) -> None:
        """An organization's snapshots are listed oldest first, and only its own."""
        for index in (2, 0, 1):
            store.add(self.snapshot(index))
        store.add(self.snapshot(0, organization_id="org-2"))
        listed = store.snapshots("org-1")
        assert [s.period for s in listed] == [_CYCLE.period(i) for i in range(3)]

    def test_empty_snapshot(self, store: SnapshotStore) -> None:
        """A period with no active users is a snapshot too."""
        snapshot = self.snapshot(users=())
        store.add(snapshot)
        assert store.get("org-1", snapshot.period) == snapshot

    def test_unusual_ids(self, store: SnapshotStore) -> None:
        """Ids with quotes, separators and non-ASCII letters are kept as they are."""
        snapshot = self.snapshot(organization_id='Zoë\'s "org"/1', users=("ü:1", "a,b"))
        store.add(snapshot)
        assert store.get(snapshot.organization_id, snapshot.period) == snapshot

    def test_report_needs_a_snapshot(self, store: SnapshotStore) -> None:
        """A report cannot be recorded for a period without a snapshot."""
        with pytest.raises(UnknownRecordError):
            store.record_report(self.report(self.snapshot()))

    def test_report_round_trip(self, store: SnapshotStore) -> None:
        """A recorded report reads back equal."""
        snapshot = store.add(self.snapshot())
        report = self.report(snapshot)
        assert store.record_report(report) == report
        assert store.report("org-1", snapshot.period) == report

    def test_first_report_stays(self, store: SnapshotStore) -> None:
        """Recording the same report again returns it; a different one is refused."""
        snapshot = store.add(self.snapshot())
        first = store.record_report(self.report(snapshot, "ref-1"))
        assert store.record_report(self.report(snapshot, "ref-1")) == first
        with pytest.raises(SnapshotConflictError, match="reference 'ref-2' instead of 'ref-1'"):
            store.record_report(self.report(snapshot, "ref-2"))
        assert store.report("org-1", snapshot.period) == first

    def test_billing_start_is_written_once(self, store: SnapshotStore) -> None:
        """The first billable period recorded for an organization stays; others have none."""
        first, later = _CYCLE.period(3), _CYCLE.period(5)
        assert store.billing_start("org-1") is None
        assert store.start_billing("org-1", first) == first
        assert store.start_billing("org-1", later) == first
        assert store.billing_start("org-1") == first
        assert store.billing_start("org-2") is None
        utc = BillingPeriod(
            first.start.astimezone(timezone.utc), first.end.astimezone(timezone.utc)
        )
        assert store.billing_start("org-1") == utc
