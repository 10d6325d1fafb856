"""Which tables and columns hold the records: the public mapping values."""

from __future__ import annotations

from typing import Any

import attrs

from ..exceptions import InvalidRecordError

_MAPPING = "SchemaMapping"


def _identifier(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidRecordError(
            type(instance).__name__, attribute.name, value, "a non-empty table or column name"
        )


def _optional(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _identifier(instance, attribute, value)


@attrs.frozen
class OrganizationTable:
    """Where organizations live.

    Attributes:
        table: The table name.
        id: Column of the organization id (text).
        name: Column of the display name, or ``None`` (names read as ``""``).
        timezone: Column of the IANA time zone name.
        cycle_anchor: Column of the billing anchor instant (stored in UTC;
            it is read back in the organization's time zone).
        cycle_unit: Column holding ``"month"`` or ``"week"``, or ``None`` if
            every organization is billed by the month.
        cycle_every: Column of the number of units per period, or ``None``
            if every period is one unit long.
    """

    table: str = attrs.field(default="matchusage_organizations", validator=_identifier)
    id: str = attrs.field(default="id", validator=_identifier)
    name: str | None = attrs.field(default="name", validator=_optional)
    timezone: str = attrs.field(default="timezone", validator=_identifier)
    cycle_anchor: str = attrs.field(default="cycle_anchor", validator=_identifier)
    cycle_unit: str | None = attrs.field(default="cycle_unit", validator=_optional)
    cycle_every: str | None = attrs.field(default="cycle_every", validator=_optional)


@attrs.frozen
class ProgramTable:
    """Where programs live.

    Attributes:
        table: The table name.
        id: Column of the program id.
        organization_id: Column of the id of the organization that runs it.
        name: Column of the display name, or ``None``.
    """

    table: str = attrs.field(default="matchusage_programs", validator=_identifier)
    id: str = attrs.field(default="id", validator=_identifier)
    organization_id: str = attrs.field(default="organization_id", validator=_identifier)
    name: str | None = attrs.field(default="name", validator=_optional)


@attrs.frozen
class UserTable:
    """Where users live.

    Attributes:
        table: The table name.
        id: Column of the user id.
        name: Column of the display name, or ``None``.
        email: Column of the email address, or ``None``.
    """

    table: str = attrs.field(default="matchusage_users", validator=_identifier)
    id: str = attrs.field(default="id", validator=_identifier)
    name: str | None = attrs.field(default="name", validator=_optional)
    email: str | None = attrs.field(default="email", validator=_optional)


@attrs.frozen
class MatchTable:
    """Where matches live.

    Participants are either rows of a [`ParticipantTable`][matchusage.sql.ParticipantTable]
    (one-to-many, any number of users per match) or two columns of this
    table, *mentor* and *mentee*, holding user ids (a ``NULL`` one is left
    out).

    Attributes:
        table: The table name.
        id: Column of the match id.
        program_id: Column of the program id.
        started_at: Column of the start instant.
        ended_at: Column of the end instant; ``NULL`` while the match is ongoing.
        mentor: Column of the mentor's user id, for the pair layout.
        mentee: Column of the mentee's user id, for the pair layout.
    """

    table: str = attrs.field(default="matchusage_matches", validator=_identifier)
    id: str = attrs.field(default="id", validator=_identifier)
    program_id: str = attrs.field(default="program_id", validator=_identifier)
    started_at: str = attrs.field(default="started_at", validator=_identifier)
    ended_at: str = attrs.field(default="ended_at", validator=_identifier)
    mentor: str | None = attrs.field(default=None, validator=_optional)
    mentee: str | None = attrs.field(default=None, validator=_optional)

    @property
    def has_pair(self) -> bool:
        """Whether participants are the *mentor* and *mentee* columns."""
        return self.mentor is not None or self.mentee is not None


@attrs.frozen
class ParticipantTable:
    """Where the participants of matches live: one row per user and match.

    Attributes:
        table: The table name.
        match_id: Column of the match id.
        user_id: Column of the user id.
        role: Column of the role (``"mentor"``, ``"mentee"``, ``"other"`` or
            ``NULL``), or ``None`` if the table has no role.
    """

    table: str = attrs.field(default="matchusage_participants", validator=_identifier)
    match_id: str = attrs.field(default="match_id", validator=_identifier)
    user_id: str = attrs.field(default="user_id", validator=_identifier)
    role: str | None = attrs.field(default="role", validator=_optional)


def _check_layout(instance: SchemaMapping, attribute: attrs.Attribute[Any], value: object) -> None:
    matches = instance.matches
    if matches.has_pair:
        if matches.mentor is None or matches.mentee is None:
            raise InvalidRecordError(
                _MAPPING, "matches", matches, "both mentor and mentee columns, or neither"
            )
        if value is not None:
            raise InvalidRecordError(
                _MAPPING, "participants", value, "None when matches has mentor/mentee columns"
            )
    elif not isinstance(value, ParticipantTable):
        raise InvalidRecordError(
            _MAPPING,
            "participants",
            value,
            "a ParticipantTable, or mentor and mentee columns on the matches table",
        )


def _default_participants(mapping: SchemaMapping) -> ParticipantTable | None:
    return None if mapping.matches.has_pair else ParticipantTable()


@attrs.frozen
class SchemaMapping:
    """Which tables and columns hold matchusage's records.

    The default mapping is the schema
    [`SQLRepository.create_schema`][matchusage.sql.SQLRepository.create_schema]
    creates. To read an application's existing tables, name them:

    ```python
    SchemaMapping(matches=MatchTable("mentorships", mentor="mentor_id", mentee="mentee_id"))
    ```

    Attributes:
        organizations: Where organizations live.
        programs: Where programs live.
        users: Where users live.
        matches: Where matches live.
        participants: Where participants live; ``None`` (the default then)
            when the matches table has mentor and mentee columns.
        schema: The database schema (PostgreSQL namespace) of every table, or
            ``None`` for the default one.
        naive_utc: Declare that the instant columns hold naive UTC values
            (``timestamp without time zone`` on PostgreSQL, text without an
            offset on SQLite). Without it, a naive value read from the
            database is an error: matchusage never guesses a time zone.

    Raises:
        matchusage.exceptions.InvalidRecordError: A name is empty, or the
            participant layout is ambiguous.
    """

    organizations: OrganizationTable = attrs.field(factory=OrganizationTable)
    programs: ProgramTable = attrs.field(factory=ProgramTable)
    users: UserTable = attrs.field(factory=UserTable)
    matches: MatchTable = attrs.field(factory=MatchTable)
    participants: ParticipantTable | None = attrs.field(
        default=attrs.Factory(_default_participants, takes_self=True), validator=_check_layout
    )
    schema: str | None = None
    naive_utc: bool = False
