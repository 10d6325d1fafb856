"""The sweep keeps the evidence behind every active user."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from matchusage import BillingPeriod, Match
from matchusage._sweep import Sweep
from matchusage.testing import oracle
from matchusage.testing import strategies as mst


@given(mst.match_lists(), st.lists(mst.billing_periods(), min_size=1, max_size=4))
def test_evidence_exists_exactly_for_active_users(
    matches: list[Match], periods: list[BillingPeriod]
) -> None:
    """A user has evidence in a period iff active; evidence is their overlapping matches."""
    sweep = Sweep(matches, periods)
    everyone = {user for m in matches for user in m.participants}
    for period in periods:
        for user in everyone:
            evidence = sweep.evidence(user, period)
            assert oracle.evidence(matches, user, period) == evidence
            assert bool(evidence) == (user in sweep.users(period))


@given(mst.match_lists(), mst.billing_periods())
def test_matches_of_a_period_are_those_overlapping_it(
    matches: list[Match], period: BillingPeriod
) -> None:
    sweep = Sweep(matches, [period])

    assert sorted(m.id for m in sweep.matches(period)) == sorted(
        m.id for m in matches if sweep.evidence(next(iter(m.participants)), period).count(m)
    )


@settings(max_examples=50)
@given(mst.match_lists(), st.lists(mst.billing_periods(), min_size=1, max_size=4))
def test_bulk_evidence_is_the_evidence_of_every_active_user(
    matches: list[Match], periods: list[BillingPeriod]
) -> None:
    """evidence_by_period gives, period by period and by user id, what evidence gives."""
    sweep = Sweep(matches, periods)
    found = [list(each) for each in sweep.evidence_by_period(periods)]
    expected = [
        [(user, sweep.evidence(user, period)) for user in sorted(sweep.users(period))]
        for period in periods
    ]
    assert expected == found


@settings(max_examples=50)
@given(mst.match_lists(), st.lists(mst.billing_periods(), min_size=1, max_size=4))
def test_groups_hold_each_overlapping_match_once(
    matches: list[Match], periods: list[BillingPeriod]
) -> None:
    """Each group's matches overlap exactly the periods the group names."""
    sweep = Sweep(matches, periods)
    groups = sweep.groups(periods)
    placed = [m.id for _, bucket in groups for m in bucket]
    assert len(placed) == len(set(placed))
    for hit, bucket in groups:
        for match in bucket:
            assert hit == [i for i, p in enumerate(periods) if match in sweep.matches(p)]
    assert sorted({m.id for p in periods for m in sweep.matches(p)}) == sorted(placed)
