"""Brute-force oracles: the counting rules written as plainly as the spec.

Each function answers one counting question by looking at every match in
turn, with no index, sort or sweep. They are slow and obviously right, which
makes them the reference for property tests: compare what your code (or an
adapter that counts inside a database) returns with what the oracle says.

```python
from hypothesis import given
from matchusage import active_users
from matchusage.testing import oracle, strategies as mst

@given(mst.match_lists(), mst.billing_periods())
def test_my_count_agrees_with_the_oracle(matches, period):
    assert oracle.active_users(matches, period) == active_users(matches, period)
```

A match ``[started_at, ended_at)`` overlaps a window ``[start, end)`` when
they share a positive amount of time: a match ending exactly at the start of
the window, starting exactly at its end, or of zero length does not overlap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from .._model import Match
from .._periods import BillingPeriod

__all__ = ["active_users", "attributed_users", "current_matches", "evidence", "overlaps"]


def overlaps(match: Match, start: datetime, end: datetime) -> bool:
    """Whether *match* shares a positive amount of time with ``[start, end)``.

    Args:
        match: The match; an ongoing one (``ended_at`` is None) has no end.
        start: The window's first instant (aware).
        end: The instant just after the window (aware).

    Returns:
        True if the later of the two starts is before the earlier of the two ends.
    """
    later_start = max(match.started_at, start)
    earlier_end = end if match.ended_at is None else min(match.ended_at, end)
    return later_start < earlier_end


def active_users(matches: Iterable[Match], period: BillingPeriod) -> frozenset[str]:
    """The users with a match overlapping *period*: what billing counts.

    Args:
        matches: Every match to consider.
        period: The billing period.

    Returns:
        The ids of the participants of every overlapping match.
    """
    return frozenset(
        user for m in matches if overlaps(m, period.start, period.end) for user in m.participants
    )


def current_matches(matches: Iterable[Match], at: datetime) -> list[Match]:
    """The matches going on at *at*: started at or before it, not yet ended.

    Args:
        matches: Every match to consider.
        at: The instant (aware).

    Returns:
        The matches with ``started_at <= at < ended_at`` (or no end), in the given order.
    """
    return [m for m in matches if m.started_at <= at and (m.ended_at is None or at < m.ended_at)]


def attributed_users(
    matches: Iterable[Match], period: BillingPeriod
) -> Mapping[str, frozenset[str]]:
    """Each active user under one program: that of their earliest-starting overlapping match.

    On a tie of start instants, the smallest program id wins.

    Args:
        matches: Every match to consider.
        period: The billing period.

    Returns:
        The users of each program that has any, keyed by program id.
    """
    owner: dict[str, tuple[datetime, str]] = {}
    for m in matches:
        if overlaps(m, period.start, period.end):
            for user in m.participants:
                claim = (m.started_at, m.program_id)
                if user not in owner or claim < owner[user]:
                    owner[user] = claim
    shares: dict[str, set[str]] = {}
    for user, (_, program) in owner.items():
        shares.setdefault(program, set()).add(user)
    return {program: frozenset(users) for program, users in shares.items()}


def evidence(matches: Iterable[Match], user: str, period: BillingPeriod) -> list[Match]:
    """The matches that make *user* active in *period*.

    Args:
        matches: Every match to consider.
        user: The user's id.
        period: The billing period.

    Returns:
        The user's matches overlapping the period, ordered by start, then id.
    """
    found = [m for m in matches if user in m.participants and overlaps(m, period.start, period.end)]
    return sorted(found, key=lambda m: (m.started_at, m.id))
