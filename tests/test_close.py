"""Closing periods exactly once, billing runs and reconciliation.

Failures are injected at every step of a close (before and after each call
to the snapshot store and the provider); running the close again must end
in the same state as a run that never failed, with each period reported
exactly once. A Hypothesis state machine interleaves edits, closes, crashes,
retries and reconciliations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from matchusage import BillingCycle, BillingPeriod, Match, Organization, Program
from matchusage.billing import (
    Adjustment,
    CloseStatus,
    Plan,
    billing_run,
    close_period,
    due_periods,
    reconcile,
    usage_idempotency_key,
)
from matchusage.exceptions import (
    InvalidPeriodError,
    InvalidRecordError,
    PeriodNotClosedError,
    UnknownRecordError,
    UsageConflictError,
)
from matchusage.memory import InMemoryBillingProvider, InMemoryRepository, InMemorySnapshotStore
from matchusage.protocols import SnapshotStore
from matchusage.sql import SQLRepository, SQLSnapshotStore
from matchusage.testing import oracle

UTC = timezone.utc
ANCHOR = datetime(2024, 1, 1, tzinfo=UTC)
CYCLE = BillingCycle.monthly(ANCHOR)
JANUARY, FEBRUARY, MARCH, APRIL = (CYCLE.period(i) for i in range(4))
PLAN = Plan("Team", "4", "EUR")


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


def organization(org_id: str = "acme", anchor: datetime = ANCHOR) -> Organization:
    return Organization(org_id, org_id.title(), "UTC", BillingCycle.monthly(anchor))


def world(*org_ids: str) -> InMemoryRepository:
    """Each organization: ann+bob (Jan 5-20), ann+cyd (from Jan 25), dan+eve (Feb 3-10)."""
    repository = InMemoryRepository()
    for org_id in org_ids or ("acme",):
        repository.add(organization(org_id), Program(f"{org_id}-p", org_id))
        repository.add(
            Match(f"{org_id}-m1", f"{org_id}-p", {"ann", "bob"}, at(1, 5), at(1, 20)),
            Match(f"{org_id}-m2", f"{org_id}-p", {"ann", "cyd"}, at(1, 25)),
            Match(f"{org_id}-m3", f"{org_id}-p", {"dan", "eve"}, at(2, 3), at(2, 10)),
        )
    return repository


ISSUED = datetime(2024, 3, 2, tzinfo=UTC)


def provider(*org_ids: str) -> InMemoryBillingProvider:
    billing = InMemoryBillingProvider(clock=lambda: ISSUED, document_format="text")
    for org_id in org_ids or ("acme",):
        billing.subscribe(org_id, PLAN)
    return billing


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Makes empty snapshot stores: in memory, or each in a fresh SQLite file."""
    engines: list[sa.Engine] = []

    def make() -> SnapshotStore:
        if request.param == "memory":
            return InMemorySnapshotStore()
        engine = sa.create_engine(f"sqlite:///{tmp_path / f'store-{len(engines)}.db'}")
        engines.append(engine)
        store = SQLSnapshotStore(engine)
        store.create_schema()
        return store

    yield make
    for engine in engines:
        engine.dispose()


# -- one period


def test_close_snapshots_reports_and_records(make_store: Callable[[], SnapshotStore]) -> None:
    repository, billing, store = world(), provider(), make_store()
    result = close_period(repository, billing, store, organization(), JANUARY, now=at(2, 1))
    assert CloseStatus.CLOSED == result.status
    assert ("ann", "bob", "cyd") == result.snapshot.user_ids
    assert ["acme-m1", "acme-m2"] == [e.match_id for e in result.snapshot.evidence["ann"]]
    assert (3, usage_idempotency_key("acme", JANUARY)) == (
        result.report.quantity,
        result.report.idempotency_key,
    )
    assert result.snapshot == store.get("acme", JANUARY)
    assert result.report == store.report("acme", JANUARY)
    [invoice] = billing.invoices("acme")
    assert (JANUARY, 3, result.report.reference) == (
        invoice.period,
        invoice.quantity,
        invoice.number,
    )


def test_closing_again_changes_nothing(make_store: Callable[[], SnapshotStore]) -> None:
    repository, billing, store = world(), provider(), make_store()
    first = close_period(repository, billing, store, organization(), JANUARY, now=at(2, 1))
    repository.save_match(Match("late", "acme-p", {"zed"}, at(1, 2), at(1, 3)))
    again = close_period(repository, billing, store, organization(), JANUARY, now=at(2, 9))
    assert CloseStatus.ALREADY_CLOSED == again.status
    assert (first.snapshot, first.report) == (again.snapshot, again.report)
    assert 1 == len(billing.invoices("acme"))


@pytest.mark.parametrize(
    ("now", "grace"),
    [
        (JANUARY.start, timedelta(0)),
        (JANUARY.end - timedelta(microseconds=1), timedelta(0)),
        (JANUARY.end, timedelta(days=2)),
        (JANUARY.end + timedelta(days=2) - timedelta(microseconds=1), timedelta(days=2)),
    ],
    ids=["at-start", "before-end", "in-grace", "last-instant-of-grace"],
)
def test_an_open_period_is_refused(now: datetime, grace: timedelta) -> None:
    repository, billing, store = world(), provider(), InMemorySnapshotStore()
    with pytest.raises(PeriodNotClosedError, match="still open") as info:
        close_period(repository, billing, store, organization(), JANUARY, now=now, grace=grace)
    assert JANUARY.end + grace == info.value.closes_at
    assert (None, []) == (store.get("acme", JANUARY), billing.invoices("acme"))


def test_now_may_be_given_positionally_after_the_period() -> None:
    result = close_period(
        world(), provider(), InMemorySnapshotStore(), organization(), JANUARY, at(2, 2)
    )

    assert (CloseStatus.CLOSED, at(2, 2)) == (result.status, result.snapshot.computed_at)


def test_closes_on_the_sql_repository_and_store(sql_engine: sa.Engine) -> None:
    repository = SQLRepository(sql_engine)
    repository.create_schema()
    repository.add(*world().organizations(), *world().programs("acme"))
    repository.add(*world().matches("acme", start=JANUARY.start, end=APRIL.end))
    store = SQLSnapshotStore(sql_engine)
    store.create_schema()
    billing = provider()
    first = close_period(repository, billing, store, organization(), JANUARY, now=at(2, 1))
    again = close_period(repository, billing, store, organization(), JANUARY, now=at(2, 2))

    assert (CloseStatus.CLOSED, CloseStatus.ALREADY_CLOSED) == (first.status, again.status)
    assert (first.snapshot, 3) == (
        store.get("acme", JANUARY),
        store.report("acme", JANUARY).quantity,
    )
    assert 1 == len(billing.invoices("acme"))


@pytest.mark.parametrize("late", [False, True], ids=["same-data", "changed-data"])
def test_a_lost_snapshot_store_never_bills_a_period_twice(late: bool) -> None:
    """The provider's idempotency key, not the store, is the last line of defence."""
    repository, billing = world(), provider()
    first = close_period(
        repository, billing, InMemorySnapshotStore(), organization(), JANUARY, now=at(2, 1)
    )
    if late:
        repository.save_match(Match("late", "acme-p", {"zed"}, at(1, 2), at(1, 3)))
        with pytest.raises(UsageConflictError):
            close_period(
                repository, billing, InMemorySnapshotStore(), organization(), JANUARY, now=at(2, 2)
            )
    else:
        again = close_period(
            repository, billing, InMemorySnapshotStore(), organization(), JANUARY, now=at(2, 2)
        )
        assert (CloseStatus.CLOSED, first.report) == (again.status, again.report)
    assert [(JANUARY, 3)] == [(i.period, i.quantity) for i in billing.invoices("acme")]


def test_grace_ends_exactly() -> None:
    result = close_period(
        world(),
        provider(),
        InMemorySnapshotStore(),
        organization(),
        JANUARY,
        now=JANUARY.end + timedelta(days=2),
        grace=timedelta(days=2),
    )
    assert CloseStatus.CLOSED == result.status


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"now": datetime(2024, 3, 1)}, InvalidRecordError, "now"),
        ({"grace": timedelta(-1)}, InvalidRecordError, "grace"),
        ({"grace": 3600}, InvalidRecordError, "grace"),
        ({"period": BillingPeriod(at(1, 2), at(2, 2))}, InvalidPeriodError, "period"),
        ({"period": "2024-01"}, InvalidPeriodError, "period"),
        ({"organization": "acme"}, InvalidRecordError, "organization"),
    ],
    ids=[
        "naive-now",
        "negative-grace",
        "grace-not-timedelta",
        "not-a-cycle-period",
        "period-type",
        "organization-type",
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], field: str) -> None:
    arguments: dict[str, Any] = {"organization": organization(), "period": JANUARY, "now": at(3, 1)}
    arguments.update(kwargs)
    billing = provider()
    with pytest.raises(error, match=f"'{field}' must be"):
        close_period(world(), billing, InMemorySnapshotStore(), **arguments)
    assert [] == billing.invoices("acme")


# -- crashes at every step


class Crash(Exception):
    """An injected failure: the process died here."""


class Flaky:
    """Wraps an adapter and crashes once, before or after one call to *method*."""

    def __init__(self, inner: Any, method: str | None, when: str) -> None:
        self.inner, self.method, self.when, self.armed = inner, method, when, True

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name != self.method:
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.armed and self.when == "before":
                self.armed = False
                raise Crash(f"before {name}")
            result = value(*args, **kwargs)
            if self.armed and self.when == "after":
                self.armed = False
                raise Crash(f"after {name}")
            return result

        return call


STEPS = [
    ("store", "get", "before"),
    ("store", "add", "before"),
    ("store", "add", "after"),
    ("store", "report", "before"),
    ("provider", "report_usage", "before"),
    ("provider", "report_usage", "after"),
    ("store", "record_report", "before"),
    ("store", "record_report", "after"),
]
STEP_IDS = [f"{when}-{target}.{method}" for target, method, when in STEPS]


def flaky(step: tuple[str, str, str] | None, store: Any, billing: Any) -> tuple[Any, Any]:
    if step is None:
        return store, billing
    target, method, when = step
    if target == "store":
        return Flaky(store, method, when), billing
    return store, Flaky(billing, method, when)


def end_state(store: SnapshotStore, billing: InMemoryBillingProvider) -> tuple[Any, ...]:
    snapshot = store.get("acme", JANUARY)
    return (
        snapshot,
        None if snapshot is None else snapshot.fingerprint,
        store.report("acme", JANUARY),
        billing.invoices("acme"),
        billing.usage_reports(),
    )


@pytest.mark.parametrize("step", STEPS, ids=STEP_IDS)
def test_a_crash_then_a_rerun_ends_as_if_nothing_failed(
    step: tuple[str, str, str], make_store: Callable[[], SnapshotStore]
) -> None:
    clean_store, clean_billing = make_store(), provider()
    close_period(world(), clean_billing, clean_store, organization(), JANUARY, now=at(2, 1))

    repository, store, billing = world(), make_store(), provider()
    crashing_store, crashing_billing = flaky(step, store, billing)
    with pytest.raises(Crash):
        close_period(
            repository, crashing_billing, crashing_store, organization(), JANUARY, now=at(2, 1)
        )
    result = close_period(repository, billing, store, organization(), JANUARY, now=at(2, 1))

    assert end_state(clean_store, clean_billing) == end_state(store, billing)
    assert 1 == len(billing.usage_reports())
    expected = CloseStatus.ALREADY_CLOSED if step[1:] == ("record_report", "after") else None
    assert result.status is (expected or CloseStatus.CLOSED)


def test_a_retry_bills_the_snapshot_even_if_data_changed(
    make_store: Callable[[], SnapshotStore],
) -> None:
    """A crash after the snapshot: late data does not change what is billed."""
    repository, store, billing = world(), make_store(), provider()
    with pytest.raises(Crash):
        close_period(
            repository,
            billing,
            Flaky(store, "add", "after"),
            organization(),
            JANUARY,
            now=at(2, 1),
        )
    repository.save_match(Match("late", "acme-p", {"zed"}, at(1, 2), at(1, 3)))
    result = close_period(repository, billing, store, organization(), JANUARY, now=at(2, 2))
    assert (3, 3) == (result.report.quantity, billing.invoices("acme")[0].quantity)
    assert {"zed"} == reconcile(repository, store, organization(), JANUARY, now=at(2, 2)).added


# -- reconciliation


def changes(adjustment: Adjustment) -> tuple[frozenset[str], frozenset[str], int, bool]:
    return (
        adjustment.added,
        adjustment.removed,
        adjustment.quantity_difference,
        adjustment.has_changes,
    )


def test_reconcile_reports_the_difference_and_touches_nothing() -> None:
    repository, store, billing = world(), InMemorySnapshotStore(), provider()
    closed = close_period(repository, billing, store, organization(), JANUARY, now=at(2, 1))
    repository.save_match(Match("late", "acme-p", {"zed", "ann"}, at(1, 2), at(1, 3)))
    repository.save_match(Match("acme-m2", "acme-p", {"ann", "cyd"}, at(2, 1)))  # backdated
    adjustment = reconcile(repository, store, organization(), JANUARY, now=at(3, 1))
    assert ({"zed"}, {"cyd"}, 0, True) == changes(adjustment)
    assert closed.snapshot == adjustment.snapshot == store.get("acme", JANUARY)
    assert closed.snapshot.fingerprint == adjustment.snapshot.fingerprint
    assert ("ann", "bob", "zed") == adjustment.recomputed.user_ids
    assert 1 == len(billing.invoices("acme"))


def test_reconcile_without_changes() -> None:
    repository, store = world(), InMemorySnapshotStore()
    close_period(repository, provider(), store, organization(), JANUARY, now=at(2, 1))
    adjustment = reconcile(repository, store, organization(), JANUARY, now=at(3, 1))
    assert (set(), set(), 0, False) == changes(adjustment)


def test_reconcile_needs_a_closed_period() -> None:
    with pytest.raises(UnknownRecordError, match="close it first") as info:
        reconcile(world(), InMemorySnapshotStore(), organization(), JANUARY, now=at(3, 1))
    assert ("snapshot", str(JANUARY), "Organization 'acme'") == (
        info.value.kind,
        info.value.record_id,
        info.value.context,
    )


# -- billing runs


def test_billing_run_closes_every_organization_and_records_failures() -> None:
    repository = world("acme", "globex", "initech")
    billing = provider("acme", "initech")  # globex has no customer at the provider
    store = InMemorySnapshotStore()
    summary = billing_run(repository, billing, store, now=at(3, 2))
    assert [("acme", FEBRUARY, 4), ("initech", FEBRUARY, 4)] == [
        (r.organization_id, r.period, r.report.quantity) for r in summary.closed
    ]
    [failure] = summary.failed
    assert ("globex", FEBRUARY) == (failure.organization_id, failure.period)
    assert failure.reason.startswith("UnknownRecordError: ")
    assert isinstance(failure.error, UnknownRecordError)
    assert (False, ()) == (summary.ok, summary.already_closed)


def test_billing_run_again_finds_everything_closed() -> None:
    repository, billing, store = world("acme", "initech"), provider("acme", "initech"), None
    store = InMemorySnapshotStore()
    billing_run(repository, billing, store, now=at(3, 2))
    again = billing_run(repository, billing, store, now=at(3, 9))
    assert ((), [("acme", FEBRUARY), ("initech", FEBRUARY)], True) == (
        again.closed,
        [(r.organization_id, r.period) for r in again.already_closed],
        again.ok,
    )
    assert 2 == len(billing.usage_reports())


def test_billing_run_catches_up_skipped_periods() -> None:
    repository, billing, store = world(), provider(), InMemorySnapshotStore()
    billing_run(repository, billing, store, now=at(2, 2))
    summary = billing_run(repository, billing, store, now=at(5, 2))
    assert [FEBRUARY, MARCH, APRIL] == [r.period for r in summary.closed]


def test_billing_run_finishes_a_crashed_close() -> None:
    repository, billing, store = world(), provider(), InMemorySnapshotStore()
    crashed = billing_run(
        repository, billing, Flaky(store, "record_report", "before"), now=at(2, 2)
    )
    assert ["Crash: before record_report"] == [f.reason for f in crashed.failed]
    summary = billing_run(repository, billing, store, now=at(3, 2))
    assert [JANUARY, FEBRUARY] == [r.period for r in summary.closed]
    assert [JANUARY, FEBRUARY] == [r.period for r in billing.usage_reports()]


def test_a_failing_organization_waits_for_the_next_run() -> None:
    """Periods are reported in order: after a failure, the organization's later periods wait."""
    repository, billing, store = world(), provider(), InMemorySnapshotStore()
    crashed = billing_run(
        repository, Flaky(billing, "report_usage", "before"), store, now=at(3, 2), backfill=2
    )
    assert ([], [JANUARY]) == (
        [r.period for r in crashed.closed],
        [f.period for f in crashed.failed],
    )
    assert [JANUARY] == [s.period for s in store.snapshots("acme")]


def test_billing_run_for_some_organizations() -> None:
    repository, billing, store = world("acme", "globex"), provider("acme"), InMemorySnapshotStore()
    summary = billing_run(
        repository, billing, store, now=at(3, 2), organizations=[organization("acme")]
    )
    assert (["acme"], True) == ([r.organization_id for r in summary.closed], summary.ok)


@pytest.mark.parametrize(
    ("now", "grace", "backfill", "expected"),
    [
        (at(3, 2), timedelta(0), 1, [FEBRUARY]),
        (at(3, 2), timedelta(0), 2, [JANUARY, FEBRUARY]),
        (at(3, 2), timedelta(0), 9, [JANUARY, FEBRUARY]),
        (at(3, 2), timedelta(0), 0, []),
        (at(3, 1), timedelta(0), 1, [FEBRUARY]),
        (at(3, 1), timedelta(days=1), 1, [JANUARY]),
        (at(1, 15), timedelta(0), 1, []),
    ],
    ids=[
        "last",
        "two",
        "not-before-the-anchor",
        "none",
        "at-the-boundary",
        "grace",
        "first-period-open",
    ],
)
def test_due_periods_of_a_new_organization(
    now: datetime, grace: timedelta, backfill: int, expected: list[BillingPeriod]
) -> None:
    store = InMemorySnapshotStore()
    assert expected == due_periods(organization(), store, now=now, grace=grace, backfill=backfill)


@pytest.mark.parametrize(
    ("adapter", "method"),
    [("repository", "matches"), ("store", "add"), ("provider", "report_usage")],
    ids=["repository-down", "store-write-fails", "provider-down"],
)
def test_a_new_organizations_first_period_is_billed_even_if_its_first_close_fails(
    adapter: str, method: str, make_store: Callable[[], SnapshotStore]
) -> None:
    """The first run remembers where billing starts: a later run bills from there, once."""
    adapters: dict[str, Any] = {
        "repository": world(),
        "store": make_store(),
        "provider": provider(),
    }
    failing = {**adapters, adapter: Flaky(adapters[adapter], method, "before")}

    first = billing_run(failing["repository"], failing["provider"], failing["store"], now=at(2, 2))
    later = billing_run(
        adapters["repository"], adapters["provider"], adapters["store"], now=at(4, 2)
    )
    again = billing_run(
        adapters["repository"], adapters["provider"], adapters["store"], now=at(4, 3)
    )

    assert [JANUARY] == [failure.period for failure in first.failed]
    assert [JANUARY, FEBRUARY, MARCH] == [result.period for result in later.closed]
    assert ([], [MARCH]) == (
        [r.period for r in again.closed],
        [r.period for r in again.already_closed],
    )
    invoiced = [invoice.period for invoice in adapters["provider"].invoices("acme")]
    assert [JANUARY, FEBRUARY, MARCH] == sorted(invoiced)
    assert JANUARY == adapters["store"].billing_start("acme")


def test_periods_before_the_first_billable_one_are_never_due() -> None:
    store = InMemorySnapshotStore()
    store.start_billing("acme", FEBRUARY)
    assert [FEBRUARY, MARCH] == due_periods(organization(), store, now=at(4, 2), backfill=3)


def test_a_gap_between_snapshots_is_due() -> None:
    repository, billing, store = world(), provider(), InMemorySnapshotStore()
    for period in (JANUARY, MARCH):
        close_period(repository, billing, store, organization(), period, now=at(4, 2))
    assert [FEBRUARY] == due_periods(organization(), store, now=at(4, 2), backfill=0)


def test_bad_backfill() -> None:
    with pytest.raises(InvalidRecordError, match="'backfill' must be a non-negative integer"):
        due_periods(organization(), InMemorySnapshotStore(), now=at(3, 1), backfill=-1)


# -- random interleavings


USERS = [f"u{n}" for n in range(6)]
PERIODS = [CYCLE.period(i) for i in range(5)]
HOURS = 24 * 160


class ClosingMachine(RuleBasedStateMachine):
    """Edits, closes with injected crashes, retries and reconciliations, in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.repository = InMemoryRepository()
        self.repository.add(organization(), Program("p", "acme"))
        self.matches: dict[str, Match] = {}
        self.store = InMemorySnapshotStore()
        self.now = ANCHOR
        self.billing = InMemoryBillingProvider(clock=lambda: self.now, document_format="text")
        self.billing.subscribe("acme", PLAN)
        self.billed_at_close: dict[BillingPeriod, frozenset[str]] = {}

    def _active(self, period: BillingPeriod) -> frozenset[str]:
        return oracle.active_users(self.matches.values(), period)

    @rule(
        people=st.sets(st.sampled_from(USERS), min_size=1, max_size=3),
        start=st.integers(0, HOURS),
        length=st.none() | st.integers(0, 24 * 40),
    )
    def add_match(self, people: set[str], start: int, length: int | None) -> None:
        started = ANCHOR + timedelta(hours=start)
        ended = None if length is None else started + timedelta(hours=length)
        match = Match(f"m{len(self.matches)}", "p", people, started, ended)
        self.repository.save_match(match)
        self.matches[match.id] = match

    @rule(data=st.data(), end=st.none() | st.integers(0, HOURS))
    def edit_match(self, data: st.DataObject, end: int | None) -> None:
        """End a match, reopen it or move its end, possibly into a closed period."""
        if not self.matches:
            return
        match = self.matches[data.draw(st.sampled_from(sorted(self.matches)))]
        ended = None if end is None else max(match.started_at, ANCHOR + timedelta(hours=end))
        edited = Match(match.id, "p", match.participants, match.started_at, ended)
        self.repository.save_match(edited)
        self.matches[match.id] = edited

    @rule(days=st.integers(1, 60))
    def advance(self, days: int) -> None:
        self.now += timedelta(days=days)

    def _pick_period(self, data: st.DataObject) -> BillingPeriod:
        """Mostly a closed period (to close, retry or reconcile), sometimes the open one."""
        closed = [p for p in PERIODS if p.end <= self.now]
        return data.draw(st.sampled_from(closed + PERIODS[len(closed) : len(closed) + 1]))

    @rule(data=st.data(), step=st.none() | st.sampled_from(STEPS))
    def close(self, data: st.DataObject, step: tuple[str, str, str] | None) -> None:
        period = self._pick_period(data)
        if self.now < period.end:
            with pytest.raises(PeriodNotClosedError):
                close_period(
                    self.repository, self.billing, self.store, organization(), period, now=self.now
                )
            return
        if self.store.get("acme", period) is None:
            expected = self._active(period)
        else:
            expected = self.billed_at_close[period]
        store, billing = flaky(step, self.store, self.billing)
        try:
            result = close_period(
                self.repository, billing, store, organization(), period, now=self.now
            )
        except Crash:
            pass
        else:
            assert expected == set(result.snapshot.user_ids)
            assert len(expected) == result.report.quantity
        snapshot = self.store.get("acme", period)
        if snapshot is not None:
            assert expected == set(snapshot.user_ids)
            self.billed_at_close[period] = expected

    @rule(step=st.none() | st.sampled_from(STEPS))
    def run_billing(self, step: tuple[str, str, str] | None) -> None:
        """The scheduled job: closes (or finishes) every closed period, possibly crashing."""
        expected = {
            period: self.billed_at_close.get(period, self._active(period))
            for period in PERIODS
            if period.end <= self.now
        }
        store, billing = flaky(step, self.store, self.billing)
        summary = billing_run(self.repository, billing, store, now=self.now)
        for period, users in expected.items():
            snapshot = self.store.get("acme", period)
            if snapshot is not None:
                assert users == set(snapshot.user_ids)
                self.billed_at_close[period] = users
        # Every closed period since the first billable one (recorded by the first run that
        # found periods due, or the oldest snapshot), however many runs crashed before.
        taken = [s.period for s in self.store.snapshots("acme")]
        starts = [p for p in (self.store.billing_start("acme"), *taken[:1]) if p is not None]
        if step is None:
            assert summary.ok
            assert bool(starts) == bool(expected)  # a start is recorded once a period is due
            first = min(starts, default=None)
            assert all(self.store.report("acme", p) for p in expected if first and p >= first)

    @rule(data=st.data())
    def reconcile(self, data: st.DataObject) -> None:
        period = self._pick_period(data)
        if period not in self.billed_at_close:
            with pytest.raises(UnknownRecordError):
                reconcile(self.repository, self.store, organization(), period, now=self.now)
            return
        adjustment = reconcile(self.repository, self.store, organization(), period, now=self.now)
        billed, current = self.billed_at_close[period], self._active(period)
        assert (current - billed, billed - current) == (adjustment.added, adjustment.removed)
        assert len(current) - len(billed) == adjustment.quantity_difference

    @invariant()
    def each_period_is_billed_at_most_once_with_its_snapshot(self) -> None:
        invoices = self.billing.invoices("acme")
        assert len({i.period for i in invoices}) == len(invoices)
        for invoice in invoices:
            snapshot = self.store.get("acme", invoice.period)
            assert snapshot is not None
            assert snapshot.count == invoice.quantity

    @invariant()
    def every_recorded_report_was_billed_once(self) -> None:
        billed = {i.period: i for i in self.billing.invoices("acme")}
        for period in self.billed_at_close:
            report = self.store.report("acme", period)
            if report is not None:
                assert billed[period].number == report.reference
                assert len(self.billed_at_close[period]) == report.quantity


TestClosingMachine = ClosingMachine.TestCase
TestClosingMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
