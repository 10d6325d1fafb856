"""Closing billing periods exactly once: snapshot, report, record; batch runs; reconciliation."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import cast

import attrs

from .. import _usage
from .._model import Match, Organization
from .._periods import BillingPeriod
from .._source import OrganizationMatches
from .._time import UTC, require_aware
from ..exceptions import (
    InvalidPeriodError,
    InvalidRecordError,
    MatchUsageError,
    PeriodNotClosedError,
    SnapshotConflictError,
    UnknownRecordError,
)
from ..protocols import BillingProvider, CheckedOrganizations, MatchRepository, SnapshotStore
from ._snapshots import MatchEvidence, UsageSnapshot
from ._values import ReportedUsage


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def usage_idempotency_key(organization_id: str, period: BillingPeriod) -> str:
    """The idempotency key a period's usage is reported under.

    Derived from the organization and the period's instants only (in UTC), so
    every run, on any machine, reports a period under the same key.

    ```pycon
    >>> from datetime import datetime, timezone
    >>> from matchusage import BillingPeriod
    >>> usage_idempotency_key("acme", BillingPeriod(
    ...     datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 2, 1, tzinfo=timezone.utc)))
    'matchusage-usage:acme:2024-01-01T00:00:00Z/2024-02-01T00:00:00Z'

    ```
    """
    return f"matchusage-usage:{organization_id}:{_utc(period.start)}/{_utc(period.end)}"


def take_snapshot(
    repository: MatchRepository, organization: Organization, period: BillingPeriod, *, now: datetime
) -> UsageSnapshot:
    """Compute (without storing) the usage snapshot of an organization's period as of *now*."""
    found = _usage.sweep(OrganizationMatches(repository, organization.id), [period])
    (evidence,) = found.evidence_by_period([period])
    return snapshot_of(organization.id, period, evidence, now=now)


def snapshot_of(
    organization_id: str,
    period: BillingPeriod,
    evidence: Iterable[tuple[str, Sequence[Match]]],
    *,
    now: datetime,
) -> UsageSnapshot:
    """The snapshot of a period from its users' evidence (each user with their matches)."""
    # A match gives the same evidence to each of its participants: made once per match.
    made: dict[str, MatchEvidence] = {}

    def of(match: Match) -> MatchEvidence:
        found = made.get(match.id)
        if found is None:
            found = made[match.id] = MatchEvidence.of(match)
        return found

    return UsageSnapshot(
        organization_id,
        period,
        {user: [of(match) for match in matches] for user, matches in evidence},
        computed_at=now,
    )


class CloseStatus(str, enum.Enum):
    """What [`close_period`][matchusage.billing.close_period] did."""

    CLOSED = "closed"
    """The usage was reported and the report recorded by this call."""
    ALREADY_CLOSED = "already closed"
    """An earlier call had already recorded the report; nothing was done."""


@attrs.frozen
class CloseResult:
    """The outcome of closing one period.

    Attributes:
        snapshot: The period's stored snapshot.
        report: The recorded report of its usage.
        status: Whether this call closed it or found it closed.
    """

    snapshot: UsageSnapshot
    report: ReportedUsage
    status: CloseStatus

    @property
    def organization_id(self) -> str:
        """The organization whose period was closed."""
        return self.snapshot.organization_id

    @property
    def period(self) -> BillingPeriod:
        """The closed period."""
        return self.snapshot.period


def _check_close_arguments(
    organization: Organization, period: BillingPeriod, now: datetime, grace: timedelta
) -> None:
    record = "close_period"
    if not isinstance(organization, Organization):
        raise InvalidRecordError(record, "organization", organization, "an Organization")
    if not isinstance(period, BillingPeriod):
        raise InvalidPeriodError(record, "period", period, "a BillingPeriod")
    require_aware(now, record, "now", InvalidRecordError)
    if not isinstance(grace, timedelta) or grace < timedelta(0):
        raise InvalidRecordError(record, "grace", grace, "a non-negative timedelta")
    if organization.cycle.period_containing(period.start) != period:
        raise InvalidPeriodError(
            f"Organization {organization.id!r}",
            "period",
            period,
            "one of the organization's billing periods",
        )


def close_period(
    repository: MatchRepository,
    provider: BillingProvider,
    snapshots: SnapshotStore,
    organization: Organization,
    period: BillingPeriod,
    now: datetime,
    *,
    grace: timedelta = timedelta(0),
) -> CloseResult:
    """Close a billing period: snapshot its usage, report the count once, record the report.

    The steps are ordered so that a run interrupted anywhere can simply be
    run again:

    1. The snapshot is taken only if the store has none for the period;
       otherwise the stored one is used, so the quantity never changes.
    2. If a report is recorded, the period is already closed: nothing happens.
    3. The snapshot's count is reported under
       [`usage_idempotency_key`][matchusage.billing.usage_idempotency_key]: a retry
       after a report whose acknowledgement was lost is a no-op at the provider.
    4. The provider's acknowledgement is recorded in the store.

    Args:
        repository: Where the organization's matches are read.
        provider: Where the usage is reported.
        snapshots: Where snapshots and report records are kept.
        organization: The organization billed.
        period: One of the organization's billing periods.
        now: The current instant (injected, never read from the clock).
        grace: How long after the period's end late data may still arrive;
            the period can be closed from ``period.end + grace`` on.

    Returns:
        The stored snapshot, the recorded report and whether this call closed the period.

    Raises:
        matchusage.exceptions.PeriodNotClosedError: ``now`` is before ``period.end + grace``.
        matchusage.exceptions.InvalidPeriodError: *period* is not one of the
            organization's billing periods.
        matchusage.exceptions.UsageConflictError: The provider holds a
            different quantity under the period's key.
    """
    _check_close_arguments(organization, period, now, grace)
    closes_at = period.end + grace
    if now < closes_at:
        raise PeriodNotClosedError(organization.id, period, closes_at)
    snapshot = snapshots.get(organization.id, period)
    if snapshot is None:
        snapshot = _store(snapshots, take_snapshot(repository, organization, period, now=now))
    report = snapshots.report(organization.id, period)
    if report is not None:
        return CloseResult(snapshot, report, CloseStatus.ALREADY_CLOSED)
    report = provider.report_usage(
        organization.id,
        period,
        snapshot.count,
        idempotency_key=usage_idempotency_key(organization.id, period),
    )
    return CloseResult(snapshot, snapshots.record_report(report), CloseStatus.CLOSED)


def _store(snapshots: SnapshotStore, snapshot: UsageSnapshot) -> UsageSnapshot:
    """Store *snapshot*; if a concurrent closer stored another of the period first, use that."""
    try:
        return snapshots.add(snapshot)
    except SnapshotConflictError as conflict:
        return cast(UsageSnapshot, conflict.stored)  # the first snapshot is the one billed


def due_periods(
    organization: Organization,
    snapshots: SnapshotStore,
    *,
    now: datetime,
    grace: timedelta = timedelta(0),
    backfill: int = 1,
) -> list[BillingPeriod]:
    """The periods a billing run closes (or checks) for one organization, oldest first.

    Every closed period since the organization's **first billable period**
    that was never reported is due: a period with no snapshot (a run that
    was skipped, or whose first close failed, is caught up) and a snapshot
    whose report was never recorded (a crashed run is finished). So are the
    last *backfill* closed periods, which a run that finds them reported
    counts as already closed.

    The first billable period is the one recorded in the store by the first
    billing run that found periods due (see
    [`SnapshotStore.start_billing`][matchusage.protocols.SnapshotStore.start_billing]),
    or the organization's oldest snapshot if that is older; an organization
    with neither starts with the last *backfill* closed periods. A period is
    closed when ``period.end + grace <= now``; periods before the cycle's
    anchor are never due, and neither is a period that overlaps a snapshot
    of another period (taken before the cycle changed).
    """
    return _due(organization, snapshots, now=now, grace=grace, backfill=backfill)[0]


def _due(
    organization: Organization,
    snapshots: SnapshotStore,
    *,
    now: datetime,
    grace: timedelta,
    backfill: int,
) -> tuple[list[BillingPeriod], BillingPeriod | None]:
    """`due_periods`, and the organization's recorded first billable period."""
    if not isinstance(backfill, int) or isinstance(backfill, bool) or backfill < 0:
        raise InvalidRecordError("billing_run", "backfill", backfill, "a non-negative integer")
    cycle = organization.cycle
    first_open = cycle.index_of(now - grace)
    recent = max(0, first_open - backfill)
    taken = snapshots.snapshots(organization.id)
    start = snapshots.billing_start(organization.id)
    starts = [cycle.index_of(p.start) for p in (start, taken[0].period if taken else None) if p]
    first = max(0, min(starts, default=recent))
    taken_periods = {snapshot.period for snapshot in taken}
    due = {
        snapshot.period
        for snapshot in taken
        if snapshots.report(organization.id, snapshot.period) is None
    }
    for index in range(min(first, recent), first_open):
        period = cycle.period(index)
        if period in taken_periods:
            if index >= recent:
                due.add(period)  # re-checked: found closed, or finished
        elif index >= first and not any(_overlap(period, p) for p in taken_periods):
            due.add(period)  # never closed, or its first close failed
    return sorted(due), start


def _overlap(a: BillingPeriod, b: BillingPeriod) -> bool:
    return a.start < b.end and b.start < a.end


@attrs.frozen
class BillingFailure:
    """An organization whose billing run failed, and why.

    Attributes:
        organization_id: The organization.
        period: The period being closed, or ``None`` if the failure came
            before any period (e.g. listing its snapshots).
        reason: The error, as text.
        error: The exception itself.
    """

    organization_id: str
    period: BillingPeriod | None
    reason: str
    error: BaseException = attrs.field(eq=False, repr=False)


@attrs.frozen
class BillingRunSummary:
    """What a [`billing_run`][matchusage.billing.billing_run] did.

    Attributes:
        closed: The periods closed by this run.
        already_closed: The due periods found closed already.
        failed: The organizations that failed, with the reasons.
    """

    closed: tuple[CloseResult, ...] = ()
    already_closed: tuple[CloseResult, ...] = ()
    failed: tuple[BillingFailure, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether no organization failed."""
        return not self.failed


def billing_run(
    repository: MatchRepository,
    provider: BillingProvider,
    snapshots: SnapshotStore,
    *,
    now: datetime,
    grace: timedelta = timedelta(0),
    backfill: int = 1,
    organizations: Iterable[Organization] | None = None,
) -> BillingRunSummary:
    """Close every organization's due periods: the scheduled billing job.

    For each organization, the [`due_periods`][matchusage.billing.due_periods] are
    closed oldest first with [`close_period`][matchusage.billing.close_period]. An
    organization that fails is recorded in the summary and the run goes on
    with the next one; its later periods wait for the next run, so periods
    are always reported in order. Running the job again is always safe.
    An organization the repository cannot even read (stored with a billing
    cycle of 0 months, say) fails alone too, with no period, when the
    repository implements [`CheckedOrganizations`][matchusage.protocols.CheckedOrganizations]
    (both bundled repositories do).

    Args:
        repository: Where organizations and matches are read.
        provider: Where usage is reported.
        snapshots: Where snapshots and report records are kept.
        now: The current instant.
        grace: The late-data window after each period's end.
        backfill: How many of the most recent closed periods every run checks;
            an organization billed for the first time starts with these, and
            every later period is billed in turn (see
            [`due_periods`][matchusage.billing.due_periods]).
        organizations: Only these organizations (default: all of the repository's).

    Returns:
        The periods closed, the ones already closed, and the failures.
    """
    require_aware(now, "billing_run", "now", InvalidRecordError)
    closed: list[CloseResult] = []
    already: list[CloseResult] = []
    failed: list[BillingFailure] = []
    targets, unreadable = _targets(repository, organizations)
    for organization_id, error in sorted(unreadable.items()):
        reason = f"{type(error).__name__}: {error}"
        failed.append(BillingFailure(organization_id, None, reason, error))
    for organization in targets:
        period: BillingPeriod | None = None
        try:
            due, start = _due(organization, snapshots, now=now, grace=grace, backfill=backfill)
            if due and start is None:
                # Remembered before the first close is tried: if it fails (the repository
                # or the provider is down), later runs still start from this period.
                snapshots.start_billing(organization.id, due[0])
            for period in due:
                result = close_period(
                    repository, provider, snapshots, organization, period, now=now, grace=grace
                )
                (closed if result.status is CloseStatus.CLOSED else already).append(result)
        except Exception as error:  # one organization's failure must not stop the others
            reason = f"{type(error).__name__}: {error}"
            failed.append(BillingFailure(organization.id, period, reason, error))
    return BillingRunSummary(tuple(closed), tuple(already), tuple(failed))


def _targets(
    repository: MatchRepository, organizations: Iterable[Organization] | None
) -> tuple[Iterable[Organization], Mapping[str, MatchUsageError]]:
    """The organizations to bill, and the stored ones too invalid to read (each failing alone)."""
    if organizations is not None:
        return organizations, {}
    if isinstance(repository, CheckedOrganizations):
        return repository.checked_organizations()
    return repository.organizations(), {}


def changes(
    billed: frozenset[str], active: frozenset[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """The users added since a period was billed, and the ones removed: an adjustment's sets."""
    return active - billed, billed - active


@attrs.frozen
class Adjustment:
    """How a closed period's usage differs now from its snapshot.

    Attributes:
        snapshot: The stored snapshot (what was billed).
        recomputed: The usage computed again from today's data (not stored).
        added: Users active now who were not in the snapshot.
        removed: Users in the snapshot who are no longer active.
        quantity_difference: ``recomputed.count - snapshot.count``: positive
            when the period was under-billed.
    """

    snapshot: UsageSnapshot
    recomputed: UsageSnapshot
    added: frozenset[str] = attrs.field(init=False)
    removed: frozenset[str] = attrs.field(init=False)
    quantity_difference: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        added, removed = changes(self.snapshot.users, self.recomputed.users)
        object.__setattr__(self, "added", added)
        object.__setattr__(self, "removed", removed)
        object.__setattr__(self, "quantity_difference", len(added) - len(removed))

    @property
    def has_changes(self) -> bool:
        """Whether any user was added or removed (a correction may be due)."""
        return bool(self.added or self.removed)


def reconcile(
    repository: MatchRepository,
    snapshots: SnapshotStore,
    organization: Organization,
    period: BillingPeriod,
    *,
    now: datetime,
) -> Adjustment:
    """Recompute a closed period and compare it with its snapshot, touching nothing.

    Late or backdated data (a match entered after the period was closed, an
    end date corrected) changes who *would* be active; the snapshot, and so
    the invoice, stays as it was. The adjustment tells the pipeline what to
    correct, e.g. with a credit note or an extra invoice line.

    Raises:
        matchusage.exceptions.UnknownRecordError: The period has no snapshot
            (it was never closed).
    """
    require_aware(now, "reconcile", "now", InvalidRecordError)
    snapshot = snapshots.get(organization.id, period)
    if snapshot is None:
        raise UnknownRecordError(
            "snapshot",
            str(period),
            context=f"Organization {organization.id!r}",
            hint="close it first",
        )
    return Adjustment(snapshot, take_snapshot(repository, organization, period, now=now))
