"""The domain records: users, programs, organizations and matches."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from types import MappingProxyType
from typing import Any

import attrs

from ._periods import BillingCycle
from ._time import FOREVER, is_aware, time_zone, to_micros
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


def _freeze_participants(value: Iterable[str]) -> frozenset[str]:
    # A bare string is iterable too; freezing it would bill its characters.
    if isinstance(value, (str, bytes)):
        return value  # type: ignore[return-value]  # rejected by the validator
    try:
        return frozenset(value)
    except TypeError:
        return value  # type: ignore[return-value]  # rejected by the validator


def _freeze_roles(value: object) -> Mapping[str, Role]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        return value  # type: ignore[return-value]  # rejected by the validator
    try:
        return MappingProxyType({user: Role(role) for user, role in value.items()})
    except ValueError:
        return value  # rejected by the validator


@attrs.frozen
class Match:
    """A pairing of users inside a program over the half-open span ``[started_at, ended_at)``.

    A match with no ``ended_at`` is *ongoing*. Every participant of a match
    that overlaps a billing period by a positive amount is active in that
    period.

    Attributes:
        id: The match's unique id.
        program_id: The program the match belongs to.
        participants: The ids of the users in the match (one mentor and one
            mentee, or more for a group match); stored as a frozenset.
        started_at: When the match started (timezone-aware).
        ended_at: When the match ended (timezone-aware), or ``None`` if ongoing.
        roles: Optional role of each participant, keyed by user id.

    Raises:
        matchusage.exceptions.InvalidMatchError: A field has a bad value; the
            message names the match id, the field and the value.
    """

    id: str
    program_id: str
    participants: frozenset[str] = attrs.field(converter=_freeze_participants)
    # Equality goes by the span's instants, like BillingPeriod's: Python's
    # datetime equality ignores fold within a zone and fails across zones for
    # a repeated wall time.
    started_at: datetime = attrs.field(eq=False)
    ended_at: datetime | None = attrs.field(default=None, eq=False)
    roles: Mapping[str, Role] = attrs.field(
        default=None, converter=_freeze_roles, kw_only=True, hash=False
    )
    # The span as UTC microseconds, computed once so the sweep compares ints.
    _start_us: int = attrs.field(init=False, repr=False)
    _end_us: int = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._validate()
        start = to_micros(self.started_at)
        end = FOREVER if self.ended_at is None else to_micros(self.ended_at)
        object.__setattr__(self, "_start_us", start)
        object.__setattr__(self, "_end_us", end)

    def _validate(self) -> None:
        def bad(field: str, value: object, expected: str) -> InvalidMatchError:
            return InvalidMatchError(self.id, field, value, expected)

        if not isinstance(self.id, str) or not self.id:
            raise bad("id", self.id, "a non-empty string")
        if not isinstance(self.program_id, str) or not self.program_id:
            raise bad("program_id", self.program_id, "a non-empty string")
        people = self.participants
        if not isinstance(people, frozenset) or not all(isinstance(p, str) and p for p in people):
            raise bad("participants", people, "a collection of non-empty user id strings")
        if not people:
            raise bad("participants", people, "at least one user id")
        if not is_aware(self.started_at):
            raise bad("started_at", self.started_at, "a timezone-aware datetime")
        if self.ended_at is not None:
            if not is_aware(self.ended_at):
                raise bad("ended_at", self.ended_at, "a timezone-aware datetime or None")
            if self.ended_at < self.started_at:
                raise bad(
                    "ended_at",
                    self.ended_at,
                    f"at or after started_at ({self.started_at.isoformat()})",
                )
        if not isinstance(self.roles, MappingProxyType):
            raise bad("roles", self.roles, "a mapping of user id to 'mentor', 'mentee' or 'other'")
        strangers = self.roles.keys() - people
        if strangers:
            raise bad(
                "roles",
                dict(self.roles),
                f"roles of participants only ({sorted(strangers)} are not)",
            )

    @property
    def is_ongoing(self) -> bool:
        """Whether the match has not ended."""
        return self.ended_at is None

    def role_of(self, user_id: str) -> Role | None:
        """The role of *user_id* in this match, or ``None`` if none was given."""
        return self.roles.get(user_id)

    def is_active_at(self, instant: datetime) -> bool:
        """Whether the match is current at *instant*: ``started_at <= instant < ended_at``."""
        at = to_micros(instant)
        return self._start_us <= at < self._end_us
