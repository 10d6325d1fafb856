"""Why was this user billed? Explanations of a user's activity in a period."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings

import matchusage
from matchusage import BillingCycle, BillingPeriod, Match, explain, usage_report
from matchusage.exceptions import InvalidPeriodError, InvalidRecordError
from matchusage.testing import oracle
from matchusage.testing import strategies as mst

UTC = timezone.utc
MARCH = BillingPeriod(datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC))


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


@settings(max_examples=80)
@given(mst.match_lists(), mst.billing_periods())
def test_explanation_is_non_empty_exactly_for_active_users(
    matches: list[Match], period: BillingPeriod
) -> None:
    active = matchusage.active_users(matches, period)
    for user in sorted({u for m in matches for u in m.participants} | {"nobody"}):
        found = explain(matches, user, period)
        assert (user in active) == bool(found) == found.is_active
        expected = oracle.evidence(matches, user, period)
        assert [m.id for m in expected] == list(found.match_ids)


@settings(max_examples=80)
@given(mst.match_lists(), mst.billing_periods())
def test_overlaps_are_the_matches_clipped_to_the_period(
    matches: list[Match], period: BillingPeriod
) -> None:
    for user in {u for m in matches for u in m.participants}:
        for overlap in explain(matches, user, period):
            match = overlap.match
            assert max(match.started_at, period.start) == overlap.start
            if match.ended_at is None:
                assert overlap.end is None
            else:
                assert min(match.ended_at, period.end) == overlap.end
                assert overlap.start < overlap.end
            assert overlap.start.tzinfo is period.start.tzinfo


@settings(max_examples=40)
@given(mst.match_lists(), mst.billing_cycles(), mst.aware_datetimes())
def test_report_explains_with_the_same_data(
    matches: list[Match], cycle: BillingCycle, now: datetime
) -> None:
    """The report's own explanations equal the standalone ones, for every counted user."""
    report = usage_report(matches, cycle, now=now, periods=2)
    for usage in report.periods:
        for user in usage.users:
            assert explain(matches, user, usage.period) == report.explain(user, usage.period)


def test_named_example() -> None:
    matches = [
        Match("m2", "p2", {"ann", "cyd"}, at(3, 20)),
        Match("m1", "p1", {"ann", "bob"}, at(1, 10), at(3, 5)),
        Match("m0", "p1", {"ann"}, at(1, 1), at(2, 1)),  # before March: not evidence
    ]
    found = explain(matches, "ann", MARCH)
    assert ("m1", "m2") == found.match_ids
    assert ("p1", "p2") == found.program_ids
    assert [(at(3, 1), at(3, 5)), (at(3, 20), None)] == [(o.start, o.end) for o in found]
    assert at(3, 1) == found.active_from
    assert MARCH.end == found.active_until  # the ongoing match runs to the period's end
    assert 2 == len(found)


def test_inactive_user_has_an_empty_explanation() -> None:
    found = explain([Match("m1", "p1", {"ann"}, at(1, 1), at(3, 1))], "ann", MARCH)
    assert not found
    assert (None, None) == (found.active_from, found.active_until)


def test_overlaps_are_written_in_the_periods_time_zone() -> None:
    zone = ZoneInfo("Europe/Berlin")
    period = BillingPeriod(datetime(2024, 3, 1, tzinfo=zone), datetime(2024, 4, 1, tzinfo=zone))
    found = explain([Match("m1", "p1", {"ann"}, at(3, 2, 12), at(3, 31, 12))], "ann", period)
    overlap = found.overlaps[0]
    assert (timedelta(hours=1), timedelta(hours=2)) == (
        overlap.start.utcoffset(),
        overlap.end.utcoffset() if overlap.end else None,
    )
    assert (at(3, 2, 12), at(3, 31, 12)) == (overlap.start, overlap.end)


def test_open_period_is_explained_up_to_now() -> None:
    cycle = BillingCycle.monthly(at(1, 1))
    now = at(3, 10)
    matches = [
        Match("m1", "p1", {"ann"}, at(3, 2), at(3, 4)),
        Match("m2", "p1", {"ann"}, at(3, 20)),  # after now
    ]
    report = usage_report(matches, cycle, now=now, periods=1)
    assert ("m1",) == report.explain("ann", report.current.period).match_ids
    with pytest.raises(InvalidPeriodError):
        report.explain("ann", cycle.period_containing(at(1, 10)))


@pytest.mark.parametrize("user_id", ["", None, 3], ids=["empty", "none", "int"])
def test_bad_user_id(user_id: object) -> None:
    with pytest.raises(InvalidRecordError, match="'user_id'"):
        explain([], user_id, MARCH)  # type: ignore[arg-type]
