"""The in-memory match repository: the embedded default and the reference fake."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime

import attrs

from .._model import Match, Organization, Program, User
from .._time import require_aware, to_micros
from ..exceptions import (
    DuplicateMatchError,
    DuplicateRecordError,
    InvalidRecordError,
    MatchUsageError,
    UnknownRecordError,
)


@attrs.define
class _TimeIndex:
    """One organization's matches, indexed so a window query skips what cannot overlap.

    Ended matches are kept sorted by end, ongoing ones by start: a window
    ``[start, end)`` reads the ended matches ending after *start* and the
    ongoing matches starting before *end*.
    """

    ended: list[tuple[int, str]] = attrs.Factory(list)
    ongoing: list[tuple[int, str]] = attrs.Factory(list)

    def add(self, match: Match) -> None:
        if match.is_ongoing:
            insort(self.ongoing, (match._start_us, match.id))
        else:
            insort(self.ended, (match._end_us, match.id))

    def remove(self, match: Match) -> None:
        keys, key = (
            (self.ongoing, (match._start_us, match.id))
            if match.is_ongoing
            else (self.ended, (match._end_us, match.id))
        )
        del keys[bisect_left(keys, key)]

    def overlapping(self, start: int, end: int) -> Iterator[str]:
        yield from (i for _, i in self.ended[bisect_right(self.ended, (start, "\U0010ffff")) :])
        yield from (i for _, i in self.ongoing[: bisect_left(self.ongoing, (end, ""))])


def _take(taken: set[str], kind: str, record_id: str) -> None:
    """Claim *record_id* among the *taken* ids of its kind, refusing one already taken."""
    if record_id in taken:
        raise DuplicateRecordError(kind, record_id)
    taken.add(record_id)


@attrs.define
class InMemoryRepository:
    """A [`MatchRepository`][matchusage.protocols.MatchRepository] kept in memory.

    Matches are indexed by organization and time, so a window query reads
    only the matches that can overlap the window. Writes are validated:
    a match must belong to a known program, and every id must be new (use
    [`save_match`][matchusage.memory.InMemoryRepository.save_match] to
    replace one).
    """

    _organizations: dict[str, Organization] = attrs.field(factory=dict, init=False)
    _programs: dict[str, Program] = attrs.field(factory=dict, init=False)
    _users: dict[str, User] = attrs.field(factory=dict, init=False)
    _matches: dict[str, Match] = attrs.field(factory=dict, init=False)
    _index: dict[str, _TimeIndex] = attrs.field(factory=dict, init=False)

    def add(self, *records: Organization | Program | User | Match) -> None:
        """Add organizations, programs, users and matches, in dependency order.

        All records are checked first; if any is rejected, none is added.
        Adding never replaces a record, even an identical one (use
        [`save_match`][matchusage.memory.InMemoryRepository.save_match] to
        replace a match).

        Raises:
            matchusage.exceptions.UnknownRecordError: A program's organization
                or a match's program is unknown.
            matchusage.exceptions.DuplicateRecordError: An organization,
                program or user id is already taken.
            matchusage.exceptions.DuplicateMatchError: A match id is already taken.
        """
        organizations = set(self._organizations)
        programs = set(self._programs)
        users = set(self._users)
        matches = set(self._matches)
        for record in records:
            if isinstance(record, Organization):
                _take(organizations, "organization", record.id)
            elif isinstance(record, Program):
                if record.organization_id not in organizations:
                    raise UnknownRecordError(
                        "organization", record.organization_id, context=f"Program {record.id!r}"
                    )
                _take(programs, "program", record.id)
            elif isinstance(record, User):
                _take(users, "user", record.id)
            elif isinstance(record, Match):
                if record.program_id not in programs:
                    raise UnknownRecordError(
                        "program", record.program_id, context=f"Match {record.id!r}"
                    )
                if record.id in matches:
                    raise DuplicateMatchError(record.id)
                matches.add(record.id)
            else:
                raise InvalidRecordError(
                    "InMemoryRepository.add",
                    "record",
                    record,
                    "an Organization, Program, User or Match",
                )
        for record in records:
            if isinstance(record, Organization):
                self._organizations[record.id] = record
                self._index.setdefault(record.id, _TimeIndex())
            elif isinstance(record, Program):
                self._programs[record.id] = record
            elif isinstance(record, User):
                self._users[record.id] = record
            else:
                self._store(record)

    def save_match(self, match: Match) -> None:
        """Insert *match*, or replace the match with the same id (e.g. to end it)."""
        if match.program_id not in self._programs:
            raise UnknownRecordError("program", match.program_id, context=f"Match {match.id!r}")
        old = self._matches.get(match.id)
        if old is not None:
            self._index_of(old).remove(old)
        self._store(match)

    def _store(self, match: Match) -> None:
        self._matches[match.id] = match
        self._index_of(match).add(match)

    def _index_of(self, match: Match) -> _TimeIndex:
        return self._index[self._programs[match.program_id].organization_id]

    def organizations(self) -> list[Organization]:
        """Every organization, ordered by id."""
        return [self._organizations[key] for key in sorted(self._organizations)]

    def checked_organizations(self) -> tuple[list[Organization], dict[str, MatchUsageError]]:
        """Every organization, ordered by id, and no failures (each was validated when made)."""
        return self.organizations(), {}

    def organization(self, organization_id: str) -> Organization:
        """One organization, by id."""
        try:
            return self._organizations[organization_id]
        except KeyError:
            raise UnknownRecordError("organization", organization_id) from None

    def programs(self, organization_id: str) -> Sequence[Program]:
        """The programs of an organization, ordered by id."""
        self.organization(organization_id)
        return sorted(
            (p for p in self._programs.values() if p.organization_id == organization_id),
            key=lambda p: p.id,
        )

    def matches(
        self,
        organization_id: str,
        *,
        start: datetime,
        end: datetime,
        program_id: str | None = None,
    ) -> list[Match]:
        """The matches of an organization overlapping ``[start, end)``, ordered by id."""
        self.organization(organization_id)
        window_start = to_micros(require_aware(start, "matches", "start", InvalidRecordError))
        window_end = to_micros(require_aware(end, "matches", "end", InvalidRecordError))
        found = []
        for match_id in self._index[organization_id].overlapping(window_start, window_end):
            match = self._matches[match_id]
            if (
                match._start_us < window_end
                and match._end_us > window_start
                and (program_id is None or match.program_id == program_id)
            ):
                found.append(match)
        found.sort(key=lambda m: m.id)
        return found

    def users(self, user_ids: Iterable[str]) -> Mapping[str, User]:
        """The known users among *user_ids*, keyed by id."""
        return {i: self._users[i] for i in user_ids if i in self._users}
