"""Brute-force oracles for the counting rules, written as plainly as the spec."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from matchusage import BillingPeriod, Match


def overlaps(match: Match, start: datetime, end: datetime) -> bool:
    """Whether *match* overlaps ``[start, end)`` by a positive amount."""
    match_end = match.ended_at
    later_start = max(match.started_at, start)
    earlier_end = end if match_end is None else min(match_end, end)
    return later_start < earlier_end


def active(matches: Iterable[Match], period: BillingPeriod) -> frozenset[str]:
    """Users with a match overlapping *period*."""
    return frozenset(
        user for m in matches if overlaps(m, period.start, period.end) for user in m.participants
    )


def current(matches: Iterable[Match], at: datetime) -> list[Match]:
    """Matches with ``started_at <= at < ended_at`` (or ongoing)."""
    return [m for m in matches if m.started_at <= at and (m.ended_at is None or at < m.ended_at)]


def attributed(matches: Iterable[Match], period: BillingPeriod) -> dict[str, frozenset[str]]:
    """Each active user under the program of their earliest-starting overlapping match.

    On a tie of start instants, the smallest program id wins.
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
