"""Who is active: the public counting functions over matches or a match source."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from ._model import Match
from ._periods import BillingPeriod
from ._sweep import Sweep, check_periods, check_unique_ids
from ._time import require_aware
from .exceptions import InvalidRecordError
from .protocols import MatchSource

Matches = Iterable[Match] | MatchSource
"""What every entry point accepts: matches, or a source that fetches them by window."""

_INSTANT = timedelta(microseconds=1)


def fetch(matches: Matches, start: datetime, end: datetime) -> list[Match]:
    """The matches to consider for the window ``[start, end)``, as a list."""
    if isinstance(matches, MatchSource):
        return list(matches.matches_overlapping(start, end))
    return matches if isinstance(matches, list) else list(matches)


def sweep(matches: Matches, periods: Iterable[BillingPeriod]) -> Sweep:
    """One sweep of *matches* over *periods*, fetching only the window they span.

    Validates the input for the sweep: the periods, and the match ids' uniqueness.
    """
    periods = check_periods(periods)
    if not periods:
        return Sweep([], ())
    start = min(p.start for p in periods)
    end = max(p.end for p in periods)
    found = fetch(matches, start, end)
    check_unique_ids(found)
    return Sweep(found, periods)


def active_users(matches: Matches, period: BillingPeriod) -> frozenset[str]:
    """The ids of the users active in *period*.

    A user is active when they take part in at least one match that overlaps
    the period by a positive amount. Each person counts once, however many
    matches or programs they are in.

    Args:
        matches: The matches to consider (or a [`MatchSource`][matchusage.protocols.MatchSource]).
        period: The billing period.

    Raises:
        matchusage.exceptions.DuplicateMatchError: Two matches share an id.
    """
    return sweep(matches, [period]).users(period)


def active_users_by_period(
    matches: Matches, periods: Iterable[BillingPeriod]
) -> dict[BillingPeriod, frozenset[str]]:
    """The active users of each period, in one pass over the matches.

    Args:
        matches: The matches to consider (or a [`MatchSource`][matchusage.protocols.MatchSource]).
        periods: Any billing periods; they may overlap or leave gaps.

    Returns:
        A dict from each period to the ids of the users active in it, in the
        order the periods were given.

    Raises:
        matchusage.exceptions.DuplicateMatchError: Two matches share an id.
    """
    return sweep(matches, periods).by_period()


def current_active_matches(
    matches: Matches, *, at: datetime, program_id: str | None = None
) -> list[Match]:
    """The matches current at instant *at*: ``started_at <= at < ended_at`` (or ongoing).

    A match starting after *at* is not current yet; one ending exactly at
    *at* is over.

    Args:
        matches: The matches to consider (or a [`MatchSource`][matchusage.protocols.MatchSource]).
        at: The instant ("now"), timezone-aware.
        program_id: Only the matches of this program, if given.

    Returns:
        The current matches, ordered by id.

    Raises:
        matchusage.exceptions.InvalidRecordError: *at* is naive.
        matchusage.exceptions.DuplicateMatchError: Two matches share an id.
    """
    require_aware(at, "current_active_matches", "at", InvalidRecordError)
    # Current at *at* is overlapping the shortest period that starts at *at*.
    instant = BillingPeriod(at, at + _INSTANT)
    current = sweep(matches, [instant]).matches(instant)
    if program_id is None:
        return current
    return [match for match in current if match.program_id == program_id]


def current_active_users(
    matches: Matches, *, at: datetime, program_id: str | None = None
) -> frozenset[str]:
    """The ids of the users in a match current at *at* (optionally of one program).

    See [`current_active_matches`][matchusage.current_active_matches] for when
    a match is current.

    Raises:
        matchusage.exceptions.InvalidRecordError: *at* is naive.
        matchusage.exceptions.DuplicateMatchError: Two matches share an id.
    """
    require_aware(at, "current_active_users", "at", InvalidRecordError)
    return frozenset().union(
        *(m._people for m in current_active_matches(matches, at=at, program_id=program_id))
    )
