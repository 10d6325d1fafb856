"""The interval sweep: which users are active in which billing periods.

The cost is O(N log P + output) for N matches and P periods, never N x P:
the period boundaries are sorted once into elementary segments, each match
is placed by two binary searches into the range of segments it overlaps, and
matches with the same segment range share one bucket. A period's users are
the union of the participants of the buckets whose range meets the period's,
computed with C-level set unions.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, repeat
from operator import attrgetter
from typing import Any, Protocol

from ._model import Match
from ._periods import BillingPeriod
from .exceptions import DuplicateMatchError, InvalidPeriodError

_participants = attrgetter("_people")
_match_id = attrgetter("id")
_start_us = attrgetter("_start_us")


def check_unique_ids(matches: Sequence[Match]) -> None:
    """Raise [`DuplicateMatchError`][matchusage.exceptions.DuplicateMatchError] on a repeated id."""
    if len(set(map(_match_id, matches))) == len(matches):
        return
    seen: set[str] = set()
    for match_id in map(_match_id, matches):
        if match_id in seen:
            raise DuplicateMatchError(match_id)
        seen.add(match_id)


def check_periods(periods: Iterable[BillingPeriod]) -> tuple[BillingPeriod, ...]:
    """The periods as a tuple, each checked to be a `BillingPeriod`."""
    periods = tuple(periods)
    for period in periods:
        if not isinstance(period, BillingPeriod):
            raise InvalidPeriodError("periods", "period", period, "a BillingPeriod")
    return periods


class Evidence(Protocol):
    """What explanations and exports read: the matches behind each user's activity."""

    def evidence(self, user_id: str, period: BillingPeriod) -> list[Match]:
        """The matches of *user_id* overlapping *period*, by start then id."""

    def evidence_by_period(
        self, periods: Sequence[BillingPeriod]
    ) -> Iterator[Iterator[tuple[str, list[Match]]]]:
        """For each of *periods* in turn, its active users by id, each with their evidence."""

    def spans_by_period(
        self, periods: Sequence[BillingPeriod]
    ) -> Iterator[Iterable[tuple[str, Sequence[Any]]]]:
        """What `evidence_by_period` gives, with matches as light as an export needs.

        Each item has ``id``, ``program_id``, ``started_at``, ``ended_at``,
        ``_start_us`` and ``_end_us``, like a `Match`.
        """


class Sweep:
    """The outcome of one sweep of matches over periods.

    Holds, for every period, the matches overlapping it, so that active users,
    counts and the evidence behind each user come from the same single pass.
    The caller validates the input once (see `_usage.sweep`): periods are
    `BillingPeriod`s and match ids are unique.
    """

    __slots__ = ("_bucket_union", "_buckets", "_by_user", "_span", "_users", "periods")

    def __init__(self, matches: Iterable[Match], periods: Iterable[BillingPeriod]) -> None:
        self.periods = tuple(periods)
        bounds = sorted({p._start_us for p in self.periods} | {p._end_us for p in self.periods})
        self._span = {
            p: (bisect_left(bounds, p._start_us), bisect_left(bounds, p._end_us))
            for p in self.periods
        }
        self._buckets = _place(matches, bounds)
        self._users: dict[BillingPeriod, frozenset[str]] = {}
        self._bucket_union: dict[tuple[int, int], frozenset[str]] = {}
        self._by_user: dict[str, list[tuple[int, int, Match]]] | None = None

    def _ranges_meeting(self, period: BillingPeriod) -> Iterable[tuple[int, int]]:
        first, stop = self._span[period]
        return (key for key in self._buckets if key[0] < stop and key[1] > first)

    def users(self, period: BillingPeriod) -> frozenset[str]:
        """The ids of the users active in *period* (one of the swept periods)."""
        users = self._users.get(period)
        if users is None:
            # Copying the largest set first and merging the rest into it is about
            # twice as fast as growing an empty set.
            parts = sorted(map(self._bucket_users, self._ranges_meeting(period)), key=len)
            users = parts.pop().union(*parts) if parts else frozenset()
            self._users[period] = users
        return users

    def by_period(self) -> dict[BillingPeriod, frozenset[str]]:
        """The active users of every swept period, in the order the periods were given."""
        return {period: self.users(period) for period in self.periods}

    def _bucket_users(self, key: tuple[int, int]) -> frozenset[str]:
        users = self._bucket_union.get(key)
        if users is None:
            users = self._bucket_union[key] = frozenset().union(
                *map(_participants, self._buckets[key])
            )
        return users

    def matches(self, period: BillingPeriod) -> list[Match]:
        """The matches overlapping *period* by a positive amount, ordered by id."""
        found = [m for key in self._ranges_meeting(period) for m in self._buckets[key]]
        found.sort(key=_match_id)
        return found

    def evidence(self, user_id: str, period: BillingPeriod) -> list[Match]:
        """The matches of *user_id* overlapping *period*, by start then id.

        Empty exactly when the user is not active in the period.
        """
        if self._by_user is None:
            by_user: dict[str, list[tuple[int, int, Match]]] = defaultdict(list)
            for (first, stop), bucket in self._buckets.items():
                for match in bucket:
                    for user in match._people:
                        by_user[user].append((first, stop, match))
            self._by_user = dict(by_user)
        first, stop = self._span[period]
        found = [m for a, b, m in self._by_user.get(user_id, ()) if a < stop and b > first]
        found.sort(key=lambda m: (m._start_us, m.id))
        return found

    def groups(self, periods: Sequence[BillingPeriod]) -> list[tuple[list[int], list[Match]]]:
        """The matches overlapping any of *periods*, grouped by the periods they overlap.

        Each group is a pair: the indices (into *periods*) of the periods its
        matches overlap by a positive amount, and those matches. A match is
        in at most one group; matches in the same group need no further
        check against these periods.
        """
        spans = [self._span[period] for period in periods]
        found = []
        for (first, stop), bucket in self._buckets.items():
            hit = [index for index, (a, b) in enumerate(spans) if first < b and stop > a]
            if hit:
                found.append((hit, bucket))
        return found

    def evidence_by_period(
        self, periods: Sequence[BillingPeriod]
    ) -> Iterator[Iterator[tuple[str, list[Match]]]]:
        """For each of *periods* in turn, its active users by id, each with their evidence.

        A user's evidence is the list ``evidence(user_id, period)`` gives:
        their matches overlapping the period, by start then id. Each period
        is sorted on its own, when the caller asks for it, so memory holds one
        period's (participant, match) entries at a time, however many periods
        and rows an export writes. No per-user list outlives its row.
        """
        groups = self.groups(periods)
        for position in range(len(periods)):
            members = [match for hit, bucket in groups if position in hit for match in bucket]
            members.sort(key=_match_id)
            members.sort(key=_start_us)  # stable: by start, then id
            yield self._period_runs(members)

    def spans_by_period(
        self, periods: Sequence[BillingPeriod]
    ) -> Iterator[Iterable[tuple[str, Sequence[Any]]]]:
        """The same as `evidence_by_period`: `Match` objects are what an export reads."""
        return self.evidence_by_period(periods)

    def _period_runs(self, members: list[Match]) -> Iterator[tuple[str, list[Match]]]:
        """The runs of one period, sorted by participant (stable: then by start and id)."""
        sizes = list(map(len, map(_participants, members)))
        users = list(chain.from_iterable(map(_participants, members)))
        entries = list(chain.from_iterable(map(repeat, members, sizes)))
        del members, sizes
        rank = sorted(range(len(users)), key=users.__getitem__)
        users = list(map(users.__getitem__, rank))
        entries = list(map(entries.__getitem__, rank))
        del rank
        yield from self._runs(users, entries)

    @staticmethod
    def _runs(users: Iterable[str], matches: list[Match]) -> Iterator[tuple[str, list[Match]]]:
        """Each run of equal *users* with its slice of *matches* (the two align)."""
        first = 0
        for user, count in Counter(users).items():
            yield user, matches[first : first + count]
            first += count


def _place(matches: Iterable[Match], bounds: list[int]) -> dict[tuple[int, int], list[Match]]:
    """Bucket the matches by the range of elementary segments they overlap.

    Segment ``i`` is ``[bounds[i], bounds[i + 1])``; a match ``[s, e)``
    overlaps segments ``first .. stop - 1``. Matches overlapping none (outside
    every period, or zero-length) are dropped.
    """
    buckets: dict[tuple[int, int], list[Match]] = {}
    if not bounds:
        return buckets
    low, high, last = bounds[0], bounds[-1], len(bounds) - 1
    for match in matches:
        start = match._start_us
        end = match._end_us
        if end <= low or start >= high or end <= start:
            continue
        first = 0 if start <= low else bisect_right(bounds, start) - 1
        stop = last if end >= high else bisect_left(bounds, end)
        key = (first, stop)
        bucket = buckets.get(key)
        if bucket is None:
            buckets[key] = [match]
        else:
            bucket.append(match)
    return buckets
