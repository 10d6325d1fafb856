"""The counting rules: who is active in a period, and who is current."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from matchusage import (
    BillingCycle,
    BillingPeriod,
    Match,
    Organization,
    OrganizationMatches,
    Program,
    active_users,
    active_users_by_period,
    current_active_matches,
    current_active_users,
    explain,
    usage_report,
)
from matchusage.exceptions import DuplicateMatchError
from matchusage.memory import InMemoryRepository
from matchusage.testing import oracle
from matchusage.testing import strategies as mst

UTC = timezone.utc


def day(n: int) -> datetime:
    """Day *n* of 2024 (day 0 is January 1) at midnight UTC."""
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n)


def match(
    match_id: str, users: Iterable[str], start: int, end: int | None = None, program: str = "p"
) -> Match:
    return Match(
        id=match_id,
        program_id=program,
        participants=frozenset(users),
        started_at=day(start),
        ended_at=None if end is None else day(end),
    )


PERIOD = BillingPeriod(day(10), day(20))


class TestSpecExamples:
    def test_two_matches_of_two_people_are_four_users(self) -> None:
        matches = [match("m1", {"a", "b"}, 0), match("m2", {"c", "d"}, 0)]

        assert 4 == len(active_users(matches, PERIOD))

    def test_one_mentor_with_two_mentees_is_three_users(self) -> None:
        matches = [match("m1", {"mentor", "x"}, 0), match("m2", {"mentor", "y"}, 0)]

        assert frozenset({"mentor", "x", "y"}) == active_users(matches, PERIOD)

    def test_a_group_match_counts_every_participant_once(self) -> None:
        matches = [match("g1", {"mentor", "a", "b", "c"}, 0), match("m1", {"mentor", "a"}, 1)]

        assert 4 == len(active_users(matches, PERIOD))

    def test_a_user_in_two_programs_counts_once(self) -> None:
        matches = [
            match("m1", {"ann", "bob"}, 0, program="p1"),
            match("m2", {"ann", "cyd"}, 0, program="p2"),
        ]

        assert frozenset({"ann", "bob", "cyd"}) == active_users(matches, PERIOD)

    def test_ending_mid_period_bills_this_period_not_the_next(self) -> None:
        matches = [match("m1", {"ann", "bob"}, 0, 15)]
        following = BillingPeriod(day(20), day(30))

        assert {PERIOD: frozenset({"ann", "bob"}), following: frozenset()} == (
            active_users_by_period(matches, [PERIOD, following])
        )

    def test_another_match_keeps_a_user_in(self) -> None:
        matches = [match("m1", {"ann", "bob"}, 0, 15), match("m2", {"ann", "cyd"}, 12)]
        following = BillingPeriod(day(20), day(30))

        assert frozenset({"ann", "cyd"}) == active_users(matches, following)


MICROSECOND = timedelta(microseconds=1)
START, END = PERIOD.start, PERIOD.end


@pytest.mark.parametrize(
    ("started_at", "ended_at", "active"),
    [
        (day(0), START, False),
        (END, day(40), False),
        (END, None, False),
        (day(12), day(12), False),
        (START, START, False),
        (day(0), START + MICROSECOND, True),
        (END - MICROSECOND, None, True),
        (END - MICROSECOND, day(21), True),
        (START, END, True),
        (day(12), day(13), True),
        (day(0), day(40), True),
        (day(0), None, True),
        (day(0), day(15), True),
    ],
    ids=[
        "ends-exactly-at-start",
        "starts-exactly-at-end",
        "ongoing-from-the-end",
        "zero-length-inside",
        "zero-length-at-start",
        "one-microsecond-in",
        "last-microsecond-ongoing",
        "last-microsecond-then-ends",
        "exactly-the-period",
        "inside",
        "covers-the-period",
        "ongoing-from-before",
        "ends-mid-period",
    ],
)
def test_a_match_counts_when_it_overlaps_by_a_positive_amount(
    started_at: datetime, ended_at: datetime | None, active: bool
) -> None:
    found = Match("m1", "p", {"ann", "bob"}, started_at, ended_at)

    assert (found.participants if active else frozenset()) == active_users([found], PERIOD)


TWINS = [match("dup", {"ann"}, 12), match("dup", {"bob"}, 0, 5)]


@pytest.mark.parametrize(
    "call",
    [
        lambda: active_users(TWINS, PERIOD),
        lambda: active_users_by_period(TWINS, [PERIOD]),
        lambda: current_active_matches(TWINS, at=day(13)),
        lambda: current_active_users(TWINS, at=day(13)),
        lambda: usage_report(TWINS, BillingCycle.monthly(day(0)), now=day(90)),
        lambda: explain(TWINS, "ann", PERIOD),
        lambda: active_users([TWINS[0], TWINS[0]], PERIOD),
    ],
    ids=[
        "active-users",
        "by-period",
        "current-matches",
        "current-users",
        "usage-report",
        "explain",
        "same-object-twice",
    ],
)
def test_duplicate_match_ids_in_one_computation_are_an_error(call: Callable[[], object]) -> None:
    with pytest.raises(DuplicateMatchError) as info:
        call()

    assert isinstance(info.value, ValueError)
    assert "dup" == info.value.match_id
    assert "'dup'" in str(info.value)


def test_no_periods_is_an_empty_result() -> None:
    assert {} == active_users_by_period([match("m", {"u"}, 0)], [])


def test_active_users_by_period_keeps_the_given_periods_in_order() -> None:
    periods = BillingCycle.weekly(day(0)).closed_periods(before=day(60), count=4)[::-1]
    found = active_users_by_period([match("m", {"u"}, 0)], periods)

    assert periods == list(found)
    assert all(isinstance(users, frozenset) for users in found.values())


def test_accepts_any_iterable_once() -> None:
    matches = (m for m in [match("m1", {"a"}, 0), match("m2", {"b"}, 0, 5)])

    assert frozenset({"a"}) == active_users(matches, PERIOD)


class TestCurrent:
    matches = (
        match("m3", {"ann", "bob"}, 0),
        match("m1", {"ann", "cyd"}, 0, 15, program="q"),
        match("m2", {"dan", "eve"}, 20),
        match("m4", {"fay"}, 5, 5),
    )

    def test_current_matches_are_started_and_not_ended(self) -> None:
        assert ["m1", "m3"] == [m.id for m in current_active_matches(self.matches, at=day(12))]

    def test_a_match_ending_now_is_over_and_one_starting_now_is_current(self) -> None:
        assert ["m3"] == [m.id for m in current_active_matches(self.matches, at=day(15))]
        assert ["m2", "m3"] == [m.id for m in current_active_matches(self.matches, at=day(20))]

    def test_future_matches_are_not_current(self) -> None:
        assert frozenset({"ann", "bob"}) == current_active_users(self.matches, at=day(16))

    def test_per_program(self) -> None:
        assert frozenset({"ann", "cyd"}) == current_active_users(
            self.matches, at=day(12), program_id="q"
        )


NOW = day(12) + timedelta(hours=12)
CURRENT_CASES = {
    "started-now": (NOW, None, True),
    "ends-now": (day(1), NOW, False),
    "ends-a-microsecond-later": (day(1), NOW + MICROSECOND, True),
    "starts-in-the-future": (NOW + MICROSECOND, None, False),
    "ongoing": (day(-400), None, True),
    "zero-length-now": (NOW, NOW, False),
    "ended-before": (day(0), day(5), False),
}


@pytest.mark.parametrize(
    ("started_at", "ended_at", "current"), list(CURRENT_CASES.values()), ids=list(CURRENT_CASES)
)
def test_a_match_is_current_when_started_and_not_ended(
    started_at: datetime, ended_at: datetime | None, current: bool
) -> None:
    found = Match("m1", "p", {"ann", "bob"}, started_at, ended_at)

    assert ([found] if current else []) == current_active_matches([found], at=NOW)
    assert (found.participants if current else frozenset()) == current_active_users([found], at=NOW)


@given(mst.match_lists(), st.lists(mst.billing_periods(), max_size=6))
@example([match("z", {"u"}, 12, 12)], [PERIOD])
def test_sweep_equals_brute_force(matches: list[Match], periods: list[BillingPeriod]) -> None:
    """For any matches and periods (overlapping, gapped, repeated), the sweep is exact."""
    expected = {period: oracle.active_users(matches, period) for period in periods}

    assert expected == active_users_by_period(matches, periods)


@given(mst.match_lists(), mst.billing_periods(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_input_order(
    matches: list[Match], period: BillingPeriod, rng: random.Random
) -> None:
    shuffled = list(matches)
    rng.shuffle(shuffled)

    assert active_users(matches, period) == active_users(shuffled, period)


@given(mst.match_lists(), mst.billing_periods(), st.integers(1, 1_000_000))
def test_splitting_a_period_splits_its_users(
    matches: list[Match], period: BillingPeriod, cut: int
) -> None:
    """The users of two halves of a period together are exactly the users of the whole."""
    middle = period.start + (period.end - period.start) * (cut / 1_000_001)
    if not period.start < middle < period.end:
        return
    first, second = BillingPeriod(period.start, middle), BillingPeriod(middle, period.end)
    by_period = active_users_by_period(matches, [first, second, period])

    assert by_period[period] == by_period[first] | by_period[second]


@given(mst.match_lists(), mst.aware_datetimes())
def test_current_users_are_those_of_a_tiny_period(matches: list[Match], at: datetime) -> None:
    """Current at t equals active in [t, t + 1 microsecond)."""
    instant = BillingPeriod(at, at + timedelta(microseconds=1))

    assert active_users(matches, instant) == current_active_users(matches, at=at)


@given(mst.match_lists(), st.lists(mst.billing_periods(), min_size=1, max_size=4))
def test_a_repository_source_gives_the_same_answer(
    matches: list[Match], periods: list[BillingPeriod]
) -> None:
    """Counting through a repository's window query equals counting the plain list."""
    cycle = BillingCycle.monthly(day(0))
    repository = InMemoryRepository()
    repository.add(
        Organization("org", "Org", "UTC", cycle),
        *(Program(p, "org") for p in ("p1", "p2", "p3")),
        *matches,
    )
    source = OrganizationMatches(repository, "org")

    assert active_users_by_period(matches, periods) == active_users_by_period(source, periods)
    at = periods[0].start
    assert current_active_matches(matches, at=at) == current_active_matches(source, at=at)
    assert current_active_users(matches, at=at, program_id="p2") == current_active_users(
        OrganizationMatches(repository, "org", "p2"), at=at
    )
