"""Where the records live: the table/column mapping, the SQLAlchemy tables and the instant type."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from .._time import UTC, is_aware
from ..exceptions import InvalidRecordError

_MAPPING = "SchemaMapping"


class Instant(sa.types.TypeDecorator[datetime]):
    """An instant stored in UTC: ``timestamptz`` on PostgreSQL, sortable text on SQLite.

    Values bound to the database must be aware; they are converted to UTC.
    On SQLite the text is fixed-width ISO 8601 in UTC, so that comparing the
    strings compares the instants: ``2024-01-31 23:00:00.000000+00:00``, or
    without the ``+00:00`` when the mapping declares naive UTC columns (the
    form SQLAlchemy's own ``DateTime`` writes on SQLite).

    Values read back are aware UTC datetimes. A naive value is returned as is
    unless *naive_utc* is set, so that the record it belongs to can reject it
    by name.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def __init__(self, naive_utc: bool = False) -> None:
        super().__init__()
        self.naive_utc = naive_utc

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(32))
        return dialect.type_descriptor(sa.DateTime(timezone=not self.naive_utc))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not is_aware(value):
            raise InvalidRecordError("SQL parameter", "instant", value, "a timezone-aware datetime")
        utc = value.astimezone(UTC)
        if dialect.name == "sqlite":
            text = utc.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
            return text if self.naive_utc else text + "+00:00"
        return utc.replace(tzinfo=None) if self.naive_utc else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if not isinstance(value, datetime):
            return value  # type: ignore[no-any-return]  # rejected by the record it belongs to
        if value.utcoffset() is None:
            return value.replace(tzinfo=UTC) if self.naive_utc else value
        return value.astimezone(UTC)


def sqlite_text_form(naive_utc: bool) -> str:
    """The ``LIKE`` pattern of the text `Instant` writes on SQLite.

    Comparing such strings compares the instants; text of any other form
    (another offset, a ``T`` separator, no microseconds) would compare wrongly.
    """
    return "____-__-__ __:__:__.______" + ("" if naive_utc else "+00:00")


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


@attrs.frozen
class Tables:
    """The SQLAlchemy tables of a mapping; missing optional columns are ``None``."""

    metadata: sa.MetaData
    organizations: sa.Table
    programs: sa.Table
    users: sa.Table
    matches: sa.Table
    participants: sa.Table | None
    indexes: tuple[sa.Index, ...]


def _text(name: str | None, **kwargs: Any) -> list[sa.Column[Any]]:
    return [] if name is None else [sa.Column(name, sa.String, **kwargs)]


def build_tables(mapping: SchemaMapping) -> Tables:
    """The tables and recommended indexes of *mapping*.

    The indexes let both halves of the overlap query, ``program_id = ? AND
    ended_at IS NULL AND started_at < ?`` (ongoing matches) and ``program_id
    = ? AND ended_at > ?`` (ended ones), read an index range instead of the
    whole matches table.
    """
    metadata = sa.MetaData(schema=mapping.schema)
    o, p, u, m, j = (mapping.organizations, mapping.programs, mapping.users, mapping.matches,
                     mapping.participants)  # fmt: skip
    instant = Instant(mapping.naive_utc)
    organizations = sa.Table(
        o.table,
        metadata,
        sa.Column(o.id, sa.String, primary_key=True),
        *_text(o.name, nullable=False, server_default=""),
        sa.Column(o.timezone, sa.String, nullable=False),
        sa.Column(o.cycle_anchor, instant, nullable=False),
        *_text(o.cycle_unit, nullable=False, server_default="month"),
        *([] if o.cycle_every is None else [sa.Column(o.cycle_every, sa.Integer, nullable=False)]),
    )
    programs = sa.Table(
        p.table,
        metadata,
        sa.Column(p.id, sa.String, primary_key=True),
        sa.Column(
            p.organization_id, sa.String, sa.ForeignKey(organizations.c[o.id]), nullable=False
        ),
        *_text(p.name, nullable=False, server_default=""),
    )
    users = sa.Table(
        u.table,
        metadata,
        sa.Column(u.id, sa.String, primary_key=True),
        *_text(u.name, nullable=False, server_default=""),
        *_text(u.email),
    )
    matches = sa.Table(
        m.table,
        metadata,
        sa.Column(m.id, sa.String, primary_key=True),
        sa.Column(m.program_id, sa.String, sa.ForeignKey(programs.c[p.id]), nullable=False),
        sa.Column(m.started_at, instant, nullable=False),
        sa.Column(m.ended_at, instant),
        *_text(m.mentor),
        *_text(m.mentee),
    )
    indexes = [
        sa.Index(f"ix_{p.table}_organization", programs.c[p.organization_id]),
        sa.Index(f"ix_{m.table}_started", matches.c[m.program_id], matches.c[m.started_at]),
        sa.Index(
            f"ix_{m.table}_ended",
            matches.c[m.program_id],
            matches.c[m.ended_at],
            matches.c[m.started_at],
        ),
    ]
    participants = None
    if j is not None:
        participants = sa.Table(
            j.table,
            metadata,
            sa.Column(j.match_id, sa.String, sa.ForeignKey(matches.c[m.id]), primary_key=True),
            sa.Column(j.user_id, sa.String, primary_key=True),
            *_text(j.role),
        )
    return Tables(metadata, organizations, programs, users, matches, participants, tuple(indexes))
