"""Usage reports: the last closed periods and the open one, from one sweep."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matchusage
from matchusage import BillingCycle, BillingPeriod, Match, UsageReport, usage_report
from matchusage.exceptions import DuplicateMatchError, InvalidRecordError, MatchUsageError
from matchusage.memory import InMemoryRepository
from matchusage.testing import oracle
from matchusage.testing import strategies as mst

UTC = timezone.utc
CYCLE = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))
NOW = datetime(2024, 5, 10, 12, tzinfo=UTC)


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


def match(
    match_id: str,
    people: set[str],
    start: datetime,
    end: datetime | None = None,
    program: str = "p1",
) -> Match:
    return Match(match_id, program, people, start, end)


def period(month: int) -> BillingPeriod:
    return CYCLE.period_containing(at(month, 1))


class Case(NamedTuple):
    """Generated matches and a report of their last *count* closed periods at *now*."""

    matches: list[Match]
    cycle: BillingCycle
    now: datetime
    count: int

    @property
    def report(self) -> UsageReport:
        return usage_report(self.matches, self.cycle, now=self.now, periods=self.count)


reports = st.builds(
    Case, mst.match_lists(), mst.billing_cycles(), mst.aware_datetimes(), st.integers(0, 4)
)


@settings(max_examples=60)
@given(reports)
def test_counts_equal_the_core_engine(
    case: Case,
) -> None:
    """Each closed period's users are active_users_by_period's, and the oracle's."""
    matches, cycle, now, count = case
    report = case.report

    expected_periods = cycle.closed_periods(before=now, count=count)
    by_period = matchusage.active_users_by_period(matches, expected_periods)
    assert expected_periods == [usage.period for usage in report.periods]
    assert by_period == {usage.period: usage.users for usage in report.periods}
    for usage in report.periods:
        assert oracle.active_users(matches, usage.period) == usage.users
        assert len(usage.users) == usage.count


@settings(max_examples=60)
@given(reports)
def test_new_and_dropped_follow_consecutive_periods(
    case: Case,
) -> None:
    """new = this - previous, dropped = previous - this, also for the oldest period."""
    matches, cycle, now, count = case
    report = case.report
    all_periods = cycle.closed_periods(before=now, count=count + 1)
    users = [oracle.active_users(matches, p) for p in all_periods]
    for index, usage in enumerate(report.periods):
        previous, this = users[index], users[index + 1]
        assert (this - previous, previous - this) == (usage.new, usage.dropped)


@settings(max_examples=60)
@given(reports)
def test_programs_and_attribution(case: Case) -> None:
    """Per-program users are distinct within a program; attribution partitions the total."""
    matches, report = case.matches, case.report
    for usage in report.periods:
        programs = {m.program_id for m in matches}
        expected = {
            program: oracle.active_users(
                [m for m in matches if m.program_id == program], usage.period
            )
            for program in programs
        }
        assert {k: v for k, v in expected.items() if v} == dict(usage.by_program)
        shares = list(usage.attributed.values())
        assert usage.count == sum(len(share) for share in shares)
        assert usage.users == frozenset().union(*shares)
        for program, share in usage.attributed.items():
            assert share <= usage.by_program[program]
        assert oracle.attributed_users(matches, usage.period) == dict(usage.attributed)
        assert list(usage.attributed) == sorted(usage.attributed)
        assert list(usage.by_program) == sorted(usage.by_program)


@settings(max_examples=60)
@given(mst.match_lists(), mst.billing_cycles(), mst.aware_datetimes())
def test_current_period_figures(matches: list[Match], cycle: BillingCycle, now: datetime) -> None:
    """So far, right now, and current matches per program agree with the core and oracle."""
    current = usage_report(matches, cycle, now=now, periods=0).current
    assert cycle.period_containing(now) == current.period
    so_far = {
        user
        for m in matches
        if oracle.overlaps(m, current.period.start, now + timedelta(microseconds=1))
        for user in m.participants
    }
    assert so_far == current.users_so_far
    assert matchusage.current_active_users(matches, at=now) == current.current_users
    assert current.current_users <= current.users_so_far
    flat = sorted((m for ms in current.current_matches.values() for m in ms), key=lambda m: m.id)
    assert matchusage.current_active_matches(matches, at=now) == flat
    for program, found in current.current_matches.items():
        assert all(m.program_id == program for m in found)


@settings(max_examples=30)
@given(reports)
def test_a_repository_source_gives_the_same_report(
    case: Case,
) -> None:
    matches, cycle, now, count = case
    repository = InMemoryRepository()
    organization = matchusage.Organization("org", "Org", "UTC", BillingCycle.monthly(NOW))
    programs = [matchusage.Program(p, "org") for p in ("p1", "p2", "p3")]
    repository.add(organization, *programs, *matches)
    source = matchusage.OrganizationMatches(repository, "org")
    assert case.report == usage_report(source, cycle, now=now, periods=count)


class CountingSource:
    """A MatchSource that counts its window queries."""

    def __init__(self, matches: list[Match]) -> None:
        self.matches = matches
        self.windows: list[tuple[datetime, datetime]] = []

    def matches_overlapping(self, start: datetime, end: datetime) -> list[Match]:
        self.windows.append((start, end))
        return self.matches


def test_one_sweep_and_one_fetch_for_the_whole_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report asks the source once and sweeps once, for every period together."""
    from matchusage import _report

    sweeps = []
    real = _report.sweep

    def counting(matches: object, periods: object) -> object:
        sweeps.append(periods)
        return real(matches, periods)  # type: ignore[arg-type]

    monkeypatch.setattr(_report, "sweep", counting)
    source = CountingSource([match("m1", {"a", "b"}, at(1, 5))])
    report = usage_report(source, CYCLE, now=NOW, periods=3)
    report.explain("a", report.periods[0].period)

    assert 1 == len(sweeps)
    assert [(at(1, 1), NOW + timedelta(microseconds=1))] == source.windows


def test_example_mid_period_end_is_billed_for_that_period_only() -> None:
    matches = [
        match("m1", {"ann", "bob"}, at(1, 10), at(3, 5)),
        match("m2", {"ann", "cyd"}, at(2, 1)),
    ]
    report = usage_report(matches, CYCLE, now=NOW, periods=3)
    assert [period(2), period(3), period(4)] == [u.period for u in report.periods]
    assert [{"ann", "bob", "cyd"}, {"ann", "bob", "cyd"}, {"ann", "cyd"}] == [
        set(u.users) for u in report.periods
    ]
    assert [{"cyd"}, set(), set()] == [set(u.new) for u in report.periods]
    assert [set(), set(), {"bob"}] == [set(u.dropped) for u in report.periods]


@pytest.mark.parametrize(
    ("matches", "expected"),
    [
        pytest.param(
            [
                match("m1", {"ann", "bob"}, at(1, 5), program="zeta"),
                match("m2", {"ann", "cyd"}, at(2, 1), program="alpha"),
            ],
            {"zeta": {"ann", "bob"}, "alpha": {"cyd"}},
            id="earliest-match-wins",
        ),
        pytest.param(
            [
                match("m1", {"ann", "bob"}, at(2, 3), program="zeta"),
                match("m2", {"ann", "cyd"}, at(2, 3), program="alpha"),
            ],
            {"alpha": {"ann", "cyd"}, "zeta": {"bob"}},
            id="same-start-smallest-program-id-wins",
        ),
    ],
)
def test_attribution_rule(matches: list[Match], expected: dict[str, set[str]]) -> None:
    usage = usage_report(matches, CYCLE, now=at(3, 1), periods=1).periods[0]
    assert expected == {k: set(v) for k, v in usage.attributed.items()}
    assert {"alpha": 2, "zeta": 2} == {k: len(v) for k, v in usage.by_program.items()}
    assert 3 == usage.count


def test_current_figures_are_distinct() -> None:
    """Active so far, in a match now, and current matches per program differ when they should."""
    matches = [
        match("ended", {"ann", "bob"}, at(4, 20), at(5, 3)),  # active so far, not now
        match("now", {"ann", "cyd"}, at(5, 1), program="p2"),
        match("later", {"dan", "eve"}, at(5, 11)),  # starts after now: not counted
        match("at-now", {"fay"}, NOW),
    ]
    current = usage_report(matches, CYCLE, now=NOW, periods=0).current
    assert {"ann", "bob", "cyd", "fay"} == current.users_so_far
    assert {"ann", "cyd", "fay"} == current.current_users
    assert {"p1": ("at-now",), "p2": ("now",)} == {
        k: tuple(m.id for m in v) for k, v in current.current_matches.items()
    }
    assert {"p1": {"fay"}, "p2": {"ann", "cyd"}} == current.current_users_by_program


def test_default_is_six_closed_periods() -> None:
    report = usage_report([], CYCLE, now=NOW)

    assert CYCLE.closed_periods(before=NOW, count=6) == [u.period for u in report.periods]


def test_now_exactly_on_a_boundary_closes_the_period_ending_there() -> None:
    report = usage_report([], CYCLE, now=at(5, 1), periods=2)

    assert [at(4, 1), at(5, 1)] == [u.period.end for u in report.periods]
    assert at(5, 1) == report.current.period.start


def test_a_match_ending_exactly_now_is_active_so_far_but_not_current() -> None:
    current = usage_report([match("e", {"yan"}, at(5, 2), NOW)], CYCLE, now=NOW).current

    assert (frozenset({"yan"}), frozenset(), {}) == (
        current.users_so_far,
        current.current_users,
        dict(current.current_matches),
    )


def test_a_report_reads_an_iterator_of_matches_once() -> None:
    matches = [match("m1", {"a", "b"}, at(1, 5)), match("m2", {"c"}, at(4, 20))]

    assert usage_report(matches, CYCLE, now=NOW) == usage_report(iter(matches), CYCLE, now=NOW)


def test_usage_looks_up_a_closed_period() -> None:
    report = usage_report([], CYCLE, now=NOW, periods=2)
    assert report.periods[1] == report.usage(period(4))
    with pytest.raises(matchusage.exceptions.InvalidPeriodError, match="closed periods"):
        report.usage(period(1))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param({"now": datetime(2024, 5, 1)}, InvalidRecordError, "'now'", id="naive-now"),
        pytest.param({"now": NOW, "periods": -1}, InvalidRecordError, "'periods'", id="negative"),
        pytest.param({"now": NOW, "periods": 1.5}, InvalidRecordError, "'periods'", id="float"),
        pytest.param({"now": NOW, "periods": True}, InvalidRecordError, "'periods'", id="bool"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, object], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        usage_report([], CYCLE, **kwargs)  # type: ignore[arg-type]


def test_duplicate_match_ids_are_rejected() -> None:
    twice = [match("m1", {"a"}, at(1, 1)), match("m1", {"b"}, at(2, 1))]
    with pytest.raises(DuplicateMatchError, match="'m1'"):
        usage_report(twice, CYCLE, now=NOW)


def test_periods_reaching_before_the_year_1_are_a_matchusage_error() -> None:
    cycle = BillingCycle.monthly(datetime(2024, 1, 15, tzinfo=timezone.utc))

    with pytest.raises(MatchUsageError, match="year 1 to 9999"):
        usage_report([], cycle, now=datetime(2024, 3, 1, tzinfo=timezone.utc), periods=2**63)
