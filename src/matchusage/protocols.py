"""The ports of matchusage: protocols that storage and billing adapters implement."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from ._model import Match, Organization, Program, User

__all__ = ["MatchRepository", "MatchSource"]


@runtime_checkable
class MatchSource(Protocol):
    """Anything that can hand over the matches overlapping a time window.

    Every reporting entry point accepts either a plain iterable of
    [`Match`][matchusage.Match] objects or a `MatchSource`; with a source, the
    entry point asks only for the window it needs, so a database-backed
    source never loads matches that cannot count.
    """

    def matches_overlapping(self, start: datetime, end: datetime) -> Iterable[Match]:
        """Return the matches whose span overlaps ``[start, end)`` by a positive amount.

        Returning more matches than that is allowed (they are filtered out),
        returning fewer is not. Match ids must be unique.
        """
        ...


@runtime_checkable
class MatchRepository(Protocol):
    """Read access to an application's organizations, programs, users and matches.

    matchusage never owns the data: an application implements this port over
    its own storage (or uses [`InMemoryRepository`][matchusage.memory.InMemoryRepository]
    or the SQL adapter). Every method is used by a caller in the library.
    """

    def organizations(self) -> Iterable[Organization]:
        """Return every organization, ordered by id (the billing batch walks them all)."""
        ...

    def organization(self, organization_id: str) -> Organization:
        """Return one organization.

        Raises:
            matchusage.exceptions.UnknownRecordError: No organization has that id.
        """
        ...

    def programs(self, organization_id: str) -> Sequence[Program]:
        """Return the programs of an organization, ordered by id.

        Raises:
            matchusage.exceptions.UnknownRecordError: No organization has that id.
        """
        ...

    def matches(
        self,
        organization_id: str,
        *,
        start: datetime,
        end: datetime,
        program_id: str | None = None,
    ) -> Iterable[Match]:
        """Return the matches of an organization that overlap ``[start, end)``.

        A match overlaps when ``started_at < end`` and it is ongoing or
        ``ended_at > start``; zero-length matches may be returned or not
        (they never count). With *program_id*, only that program's matches.

        Raises:
            matchusage.exceptions.UnknownRecordError: No organization has that id.
        """
        ...

    def users(self, user_ids: Iterable[str]) -> Mapping[str, User]:
        """Return the users with the given ids that exist, keyed by id."""
        ...
