"""The database side of a mapping: SQLAlchemy tables, the recommended indexes, the instant type."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from .._time import UTC, is_aware
from ..exceptions import InvalidRecordError
from ._mapping import SchemaMapping


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
    o, p, u, m = mapping.organizations, mapping.programs, mapping.users, mapping.matches
    j = mapping.participants
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
