"""The domain records: users, programs, organizations and matches."""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Any

import attrs

from ._periods import BillingCycle
from ._time import FOREVER, from_micros, time_zone, to_micros
from .exceptions import InvalidCycleError, InvalidMatchError, InvalidRecordError


class Role(str, enum.Enum):
    """The part a participant plays in a match.

    Roles are informative only: every participant counts as one active user,
    whatever their role.
    """

    MENTOR = "mentor"
    MENTEE = "mentee"
    OTHER = "other"


def _check_id(record: str, field: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidRecordError(record, field, value, "a non-empty string")


def _validate_id(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_id(type(instance).__name__, attribute.name, value)


@attrs.frozen
class User:
    """A person who can take part in matches.

    Attributes:
        id: The user's unique id.
        name: Display name, used in exports.
        email: Email address, used in exports.
    """

    id: str = attrs.field(validator=_validate_id)
    name: str = ""
    email: str | None = None


@attrs.frozen
class Program:
    """A mentoring program of an organization; matches are made inside a program.

    Attributes:
        id: The program's unique id.
        organization_id: The organization that runs the program.
        name: Display name.
    """

    id: str = attrs.field(validator=_validate_id)
    organization_id: str = attrs.field(validator=_validate_id)
    name: str = ""


@attrs.frozen
class Organization:
    """The billed customer: it runs programs and has one billing cycle.

    Attributes:
        id: The organization's unique id.
        name: Display name.
        timezone: IANA time zone name, e.g. ``"Europe/Paris"``.
        cycle: The subscription's billing cycle. Its anchor must be in
            *timezone* (or in a fixed offset) so that periods follow the
            organization's local calendar.
    """

    id: str = attrs.field(validator=_validate_id)
    name: str
    timezone: str
    cycle: BillingCycle

    def __attrs_post_init__(self) -> None:
        time_zone(self.timezone, f"Organization {self.id!r}", "timezone")
        key = getattr(self.cycle.timezone, "key", None)
        if key is not None and key != self.timezone:
            raise InvalidCycleError(
                f"Organization {self.id!r}",
                "cycle",
                self.cycle,
                f"a cycle anchored in the organization's time zone {self.timezone!r}",
            )

    @property
    def tzinfo(self) -> tzinfo:
        """The organization's time zone as a `tzinfo`."""
        return time_zone(self.timezone, f"Organization {self.id!r}", "timezone")


_NO_ROLES: Mapping[str, Role] = MappingProxyType({})
_ROLES_EXPECTED = "a mapping of user id to 'mentor', 'mentee' or 'other'"


def _people(match_id: object, value: object) -> tuple[str, ...]:
    """The distinct participants as a tuple of interned ids, in the order given."""
    # A bare string is iterable too; accepting it would bill its characters.
    if isinstance(value, (str, bytes)):
        raise InvalidMatchError(match_id, "participants", value, _PEOPLE_EXPECTED)
    items: Iterable[object]
    if type(value) in _COLLECTIONS:
        items = value  # type: ignore[assignment]  # checked just above
    else:
        try:
            items = tuple(value)  # type: ignore[arg-type]
        except TypeError:
            raise InvalidMatchError(match_id, "participants", value, _PEOPLE_EXPECTED) from None
    try:
        people = tuple(map(_intern, items))  # type: ignore[arg-type]
    except TypeError:  # an id that is not a plain str
        if not all(isinstance(person, str) for person in items):
            raise InvalidMatchError(
                match_id, "participants", _frozen(tuple(items)), _PEOPLE_EXPECTED
            ) from None
        people = tuple(_intern(str(person)) for person in items)
    if not people:
        raise InvalidMatchError(match_id, "participants", frozenset(), "at least one user id")
    if "" in people:
        raise InvalidMatchError(match_id, "participants", _frozen(people), _PEOPLE_EXPECTED)
    size = len(people)
    if (size > 2 or (size == 2 and people[0] == people[1])) and len(set(people)) != size:
        people = tuple(dict.fromkeys(people))
    return people


_COLLECTIONS = frozenset({list, tuple, set, frozenset})
_PEOPLE_EXPECTED = "a collection of non-empty user id strings"
_intern = sys.intern


def _frozen(people: tuple[object, ...]) -> frozenset[object]:
    try:
        return frozenset(people)
    except TypeError:  # an unhashable member: show it as given
        return people  # type: ignore[return-value]


def _roles(match_id: object, value: object, people: tuple[str, ...]) -> Mapping[str, Role]:
    if value is None:
        return _NO_ROLES
    if not isinstance(value, Mapping):
        raise InvalidMatchError(match_id, "roles", value, _ROLES_EXPECTED)
    if not value:
        return _NO_ROLES
    try:
        roles = {user: Role(role) for user, role in value.items()}
    except ValueError:
        raise InvalidMatchError(match_id, "roles", value, _ROLES_EXPECTED) from None
    strangers = roles.keys() - set(people)
    if strangers:
        raise InvalidMatchError(
            match_id,
            "roles",
            dict(roles),
            f"roles of participants only ({sorted(strangers)} are not)",
        )
    return MappingProxyType({_intern(user): role for user, role in roles.items()})


class Match:
    """A pairing of users inside a program over the half-open span ``[started_at, ended_at)``.

    A match with no ``ended_at`` is *ongoing*. Every participant of a match
    that overlaps a billing period by a positive amount is active in that
    period.

    Matches are immutable, compare equal when their id, program,
    participants, roles and span (as instants) are equal, and hash
    accordingly (roles aside).

    Attributes:
        id: The match's unique id.
        program_id: The program the match belongs to.
        participants: The ids of the users in the match (one mentor and one
            mentee, or more for a group match), as a frozenset.
        started_at: When the match started (timezone-aware).
        ended_at: When the match ended (timezone-aware), or ``None`` if ongoing.
        roles: Optional role of each participant, keyed by user id.

    Raises:
        matchusage.exceptions.InvalidMatchError: A field has a bad value; the
            message names the match id, the field and the value.
    """

    # Light on purpose (millions are built from files): participants are a
    # tuple of interned ids, the span is kept as UTC microseconds for the
    # sweep, matches without roles share one empty mapping, and a match built
    # from checked columns makes its datetimes only when they are read. The
    # public fields are read-only properties over these slots.
    __slots__ = (
        "_end_us",
        "_ended",
        "_id",
        "_people",
        "_program_id",
        "_roles",
        "_start_us",
        "_started",
        "_zones",
    )

    _id: str
    _program_id: str
    _people: tuple[str, ...]
    _start_us: int
    _end_us: int
    _started: datetime | None
    _ended: datetime | None
    _zones: tuple[tzinfo, tzinfo] | None
    _roles: Mapping[str, Role]

    def __init__(
        self,
        id: str,
        program_id: str,
        participants: Iterable[str],
        started_at: datetime,
        ended_at: datetime | None = None,
        *,
        roles: Mapping[str, Role | str] | None = None,
    ) -> None:
        if not isinstance(id, str) or not id:
            raise InvalidMatchError(id, "id", id, "a non-empty string")
        if not isinstance(program_id, str) or not program_id:
            raise InvalidMatchError(id, "program_id", program_id, "a non-empty string")
        people = _people(id, participants)
        if not isinstance(started_at, datetime) or started_at.utcoffset() is None:
            raise InvalidMatchError(id, "started_at", started_at, "a timezone-aware datetime")
        start = _micros(started_at)
        if ended_at is None:
            end = FOREVER
        else:
            if not isinstance(ended_at, datetime) or ended_at.utcoffset() is None:
                expected = "a timezone-aware datetime or None"
                raise InvalidMatchError(id, "ended_at", ended_at, expected)
            end = _micros(ended_at)
            if end < start:
                expected = f"at or after started_at ({started_at.isoformat()})"
                raise InvalidMatchError(id, "ended_at", ended_at, expected)
        self._id = id
        self._program_id = _intern(str(program_id))
        self._people = people
        self._start_us = start
        self._end_us = end
        self._started = started_at
        self._ended = ended_at
        self._zones = None
        self._roles = _NO_ROLES if roles is None else _roles(id, roles, people)

    @classmethod
    def _trusted(
        cls,
        id: str,
        program_id: str,
        people: tuple[str, ...],
        start_us: int,
        end_us: int,
        zones: tuple[tzinfo, tzinfo],
        roles: Mapping[str, Role] = _NO_ROLES,
    ) -> Match:
        """A match from a row already checked (by the loaders' column checks).

        *people* are distinct non-empty ids, ``start_us <= end_us`` (``FOREVER``
        for an ongoing match), *zones* the time zones (or fixed offsets) of its
        start and end, whose datetimes are made only when read; *roles* a
        read-only mapping of some of *people*.
        """
        match = _new(cls)
        match._id = id
        match._program_id = program_id
        match._people = people
        match._start_us = start_us
        match._end_us = end_us
        match._started = None
        match._ended = None
        match._zones = zones
        match._roles = roles
        return match

    @property
    def id(self) -> str:
        """The match's unique id."""
        return self._id

    @property
    def program_id(self) -> str:
        """The program the match belongs to."""
        return self._program_id

    @property
    def participants(self) -> frozenset[str]:
        """The ids of the users in the match."""
        return frozenset(self._people)

    @property
    def started_at(self) -> datetime:
        """When the match started (timezone-aware)."""
        started = self._started
        if started is None:
            assert self._zones is not None  # built by _trusted
            started = self._started = from_micros(self._start_us).astimezone(self._zones[0])
        return started

    @property
    def ended_at(self) -> datetime | None:
        """When the match ended (timezone-aware), or ``None`` if ongoing."""
        ended = self._ended
        if ended is None and self._zones is not None and self._end_us != FOREVER:
            ended = self._ended = from_micros(self._end_us).astimezone(self._zones[1])
        return ended

    @property
    def roles(self) -> Mapping[str, Role]:
        """The role of each participant that has one, keyed by user id (read-only)."""
        return self._roles

    @property
    def is_ongoing(self) -> bool:
        """Whether the match has not ended."""
        return self._end_us == FOREVER

    def role_of(self, user_id: str) -> Role | None:
        """The role of *user_id* in this match, or ``None`` if none was given."""
        return self._roles.get(user_id)

    def is_active_at(self, instant: datetime) -> bool:
        """Whether the match is current at *instant*: ``started_at <= instant < ended_at``."""
        at = to_micros(instant)
        return self._start_us <= at < self._end_us

    def _key(self) -> tuple[object, ...]:
        return (self._id, self._program_id, frozenset(self._people), self._start_us, self._end_us)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Match)
        # Equality goes by the span's instants, like BillingPeriod's: Python's
        # datetime equality ignores fold within a zone and fails across zones
        # for a repeated wall time.
        return self._key() == other._key() and dict(self._roles) == dict(other._roles)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild,
            (
                self._id,
                self._program_id,
                self._people,
                self.started_at,
                self.ended_at,
                dict(self._roles),
            ),
        )

    def __repr__(self) -> str:
        return (
            f"Match(id={self._id!r}, program_id={self._program_id!r}, "
            f"participants={self.participants!r}, started_at={self.started_at!r}, "
            f"ended_at={self.ended_at!r}, roles={self._roles!r})"
        )


_new = object.__new__
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _micros(instant: datetime) -> int:
    """`to_micros`, with one integer division for a plain datetime (most of them)."""
    if type(instant) is datetime:
        return (instant - _EPOCH) // _MICROSECOND
    return to_micros(instant)  # subclasses (pendulum) subtract to their own timedelta types


def _rebuild(
    id: str,
    program_id: str,
    people: tuple[str, ...],
    started_at: datetime,
    ended_at: datetime | None,
    roles: dict[str, Role],
) -> Match:
    return Match(id, program_id, people, started_at, ended_at, roles=roles)
