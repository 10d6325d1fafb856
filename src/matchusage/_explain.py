"""Why was this user billed? The matches behind a user's activity in a period."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import attrs

from ._columnar import MatchColumns, _use_numpy, matches_of_columns
from ._model import Match
from ._periods import BillingPeriod
from ._sweep import Evidence, check_periods
from ._usage import Matches, sweep
from .exceptions import InvalidRecordError


@attrs.frozen
class Overlap:
    """One match of a user and the part of it that falls inside a billing period.

    The overlap is the half-open span ``[start, end)``: the match's span
    clipped to the period, written in the period's time zone.

    Attributes:
        match: The match.
        start: The later of the match's start and the period's start.
        end: The earlier of the match's end and the period's end, or ``None``
            when the match is ongoing (it has no ``ended_at``): an ongoing
            match that overlaps a period runs on to the period's end, and
            beyond it for as long as the match lasts, so its overlap is open.
    """

    match: Match
    start: datetime
    end: datetime | None

    @property
    def match_id(self) -> str:
        """The id of the match."""
        return self.match.id

    @property
    def program_id(self) -> str:
        """The program of the match."""
        return self.match.program_id


@attrs.frozen
class Explanation:
    """The evidence that a user is active (or not) in a billing period.

    It lists every match of the user that overlaps the period by a positive
    amount, ordered by match start, then match id. A user is active in the
    period exactly when the explanation is non-empty (``bool(explanation)``).

    Attributes:
        user_id: The user explained.
        period: The billing period.
        overlaps: One [`Overlap`][matchusage.Overlap] per match.
    """

    user_id: str
    period: BillingPeriod
    overlaps: tuple[Overlap, ...]

    def __bool__(self) -> bool:
        return bool(self.overlaps)

    def __len__(self) -> int:
        return len(self.overlaps)

    def __iter__(self) -> Iterator[Overlap]:
        return iter(self.overlaps)

    @property
    def is_active(self) -> bool:
        """Whether the user is active in the period (some match overlaps it)."""
        return bool(self.overlaps)

    @property
    def match_ids(self) -> tuple[str, ...]:
        """The ids of the overlapping matches, in the order of ``overlaps``."""
        return tuple(overlap.match.id for overlap in self.overlaps)

    @property
    def program_ids(self) -> tuple[str, ...]:
        """The distinct programs of the overlapping matches, sorted."""
        return tuple(sorted({overlap.program_id for overlap in self.overlaps}))

    @property
    def active_from(self) -> datetime | None:
        """The first instant the user is active in the period (``None`` if inactive)."""
        return min((o.start for o in self.overlaps), default=None)

    @property
    def active_until(self) -> datetime | None:
        """When the user's last overlap ends (exclusive), at most the period's end.

        An ongoing match counts as lasting to the period's end. ``None`` if the
        user is inactive.
        """
        if not self.overlaps:
            return None
        ends = [self.period.end if o.end is None else o.end for o in self.overlaps]
        return max(ends)


def explanation(found: Evidence, user_id: str, period: BillingPeriod) -> Explanation:
    """The [`Explanation`][matchusage.Explanation] of *user_id* in *period* from a sweep.

    *period* must be one of the sweep's periods.
    """
    zone = period.start.tzinfo
    overlaps = []
    for match in found.evidence(user_id, period):
        # The period's bounds are already in its zone; only a match's own bound
        # inside the period needs converting.
        start = (
            period.start
            if match._start_us <= period._start_us
            else match.started_at.astimezone(zone)
        )
        end = None
        if match.ended_at is not None:
            end = period.end if match._end_us >= period._end_us else match.ended_at.astimezone(zone)
        overlaps.append(Overlap(match, start, end))
    return Explanation(user_id, period, tuple(overlaps))


def explain(matches: Matches | MatchColumns, user_id: str, period: BillingPeriod) -> Explanation:
    """Why *user_id* is (or is not) active in *period*: the matches that make them so.

    Uses the same sweep as [`active_users`][matchusage.active_users], so a user
    is active exactly when the explanation is non-empty.

    Args:
        matches: The matches to consider (or a [`MatchSource`][matchusage.protocols.MatchSource]),
            or [`MatchColumns`][matchusage.MatchColumns] with match ids and programs.
        user_id: The user to explain.
        period: The billing period.

    Returns:
        Every match of the user overlapping the period, with its overlap
        clipped to the period.

    Raises:
        matchusage.exceptions.InvalidRecordError: *user_id* is not a non-empty string.
        matchusage.exceptions.DuplicateMatchError: Two matches share an id.
    """
    if not isinstance(user_id, str) or not user_id:
        raise InvalidRecordError("explain", "user_id", user_id, "a non-empty string")
    if isinstance(matches, MatchColumns):
        if _use_numpy("auto"):
            from ._columnar_report import ColumnEvidence, ReportColumns

            check_periods([period])
            return explanation(ColumnEvidence(ReportColumns(matches), [period]), user_id, period)
        matches = matches_of_columns(matches)
    return explanation(sweep(matches, [period]), user_id, period)
