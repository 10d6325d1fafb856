"""The database side of a mapping: SQLAlchemy tables, the recommended indexes, the instant type."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from .._time import UTC, is_aware
from ..exceptions import InvalidRecordError, RepositoryError
from ._mapping import SchemaMapping


class Instant(sa.types.TypeDecorator[datetime]):
    """An instant stored in UTC: ``timestamptz`` on PostgreSQL, sortable text on SQLite.

    Values bound to the database must be aware; they are converted to UTC.
    On SQLite the text is fixed-width ISO 8601 in UTC, so that comparing the
    strings compares the instants: ``2024-01-31 23:00:00.000000+00:00``, or
    without the ``+00:00`` when the mapping declares naive UTC columns (the
    form SQLAlchemy's own ``DateTime`` writes on SQLite).

    Values read back are aware UTC datetimes. A naive value is returned as is
    unless *naive_utc* is set, and text that is no instant at all as text, so
    that the record it belongs to can reject it by name.
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
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value  # type: ignore[no-any-return]  # rejected by the record it belongs to
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


class Id(sa.types.TypeDecorator[str]):
    """An id: text in Python, the column's own type (text or integer) in the database.

    Integer id columns (``bigint`` ids of Django or Rails apps) are compared
    with integer parameters, so their indexes serve the queries; their
    values come back as decimal strings. Only canonical decimal strings
    (``"17"``, not ``"017"``) are ids of an integer column.
    """

    impl = sa.String
    cache_ok = True

    def __init__(self, integer: bool = False) -> None:
        super().__init__()
        self.integer = integer

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        return dialect.type_descriptor(sa.BigInteger() if self.integer else sa.String())

    def fits(self, value: object) -> bool:
        """Whether *value* can be an id of the column: any string, or a decimal one if integer."""
        if not isinstance(value, str):
            return False
        return not self.integer or _decimal(value) is not None

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or not self.integer:
            return value
        number = _decimal(value) if isinstance(value, str) else None
        if number is None:
            raise InvalidRecordError("SQL parameter", "id", value, DECIMAL_ID)
        return number

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)


DECIMAL_ID = "the decimal string of an integer (the id column holds integers)"


def _decimal(text: str) -> int | None:
    """The integer whose canonical decimal string is *text*, or ``None``."""
    if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 20:
        return None
    number = int(text)
    return number if str(number) == text and -(2**63) <= number < 2**63 else None


def is_integer_id(column: sa.ColumnElement[Any]) -> bool:
    """Whether *column* is an id column holding integers."""
    return isinstance(column.type, Id) and column.type.integer


def fits(column: sa.ColumnElement[Any], value: object) -> bool:
    """Whether *value* can be an id in *column* (any string in a text column)."""
    return column.type.fits(value) if isinstance(column.type, Id) else isinstance(value, str)


_MAX_NAME_BYTES = 63
"""PostgreSQL's limit on identifiers (MySQL's is 64; SQLite has none)."""


def index_name(table: str, purpose: str) -> str:
    """``ix_<table>_<purpose>``, shortened with a hash of *table* to fit 63 bytes."""
    name = f"ix_{table}_{purpose}"
    if len(name.encode()) <= _MAX_NAME_BYTES:
        return name
    digest = hashlib.sha256(table.encode()).hexdigest()[:8]
    room = _MAX_NAME_BYTES - len(f"ix__{digest}_{purpose}".encode())
    # Cut on a character boundary: a name must stay valid UTF-8.
    head = table.encode()[:room].decode(errors="ignore")
    return f"ix_{head}_{digest}_{purpose}"


@attrs.frozen
class Tables:
    """The SQLAlchemy tables of a mapping; missing optional columns are ``None``.

    Two records of the mapping may name the same table (programs kept on
    the organizations table): they then share one `sa.Table`.
    """

    metadata: sa.MetaData
    organizations: sa.Table
    programs: sa.Table
    users: sa.Table
    matches: sa.Table
    participants: sa.Table | None
    indexes: tuple[sa.Index, ...]
    unique_match_ids: bool = False
    """Whether the catalog shows a primary key or unique index on exactly the match id column.

    Without one (a view, an application table without a constraint), reading
    and counting check that the rows sharing a match id agree (see
    [`RowMapper.ambiguous`][matchusage.sql._rows.RowMapper.ambiguous])."""


@attrs.frozen
class _Column:
    """A column a mapping record wants; built once per table even if two records want it."""

    name: str | None
    type: Any
    primary_key: bool = False
    references: sa.Column[Any] | None = None
    options: dict[str, Any] = attrs.Factory(dict)


def _table(
    metadata: sa.MetaData, tables: dict[str, sa.Table], name: str, *wanted: _Column
) -> sa.Table:
    """Table *name*, created, or extended by the columns it lacks if another record made it."""
    table = tables.get(name)
    shared = table is not None
    if table is None:
        table = tables[name] = sa.Table(name, metadata)
    for spec in wanted:
        if spec.name is None or spec.name in table.c:
            continue
        arguments: list[Any] = []
        if spec.references is not None and spec.references.table is not table:
            arguments.append(sa.ForeignKey(spec.references))
        table.append_column(
            sa.Column(
                spec.name,
                spec.type,
                *arguments,
                primary_key=spec.primary_key and not shared,
                **spec.options,
            )
        )
    return table


def build_tables(
    mapping: SchemaMapping,
    integer_ids: frozenset[tuple[str, str]] = frozenset(),
    *,
    unique_match_ids: bool = False,
) -> Tables:
    """The tables and recommended indexes of *mapping*.

    Id columns are text unless ``(table, column)`` is in *integer_ids* (found
    by reading the database's catalog). The indexes let both halves of the
    overlap query, ``program_id = ? AND ended_at IS NULL AND started_at < ?``
    (ongoing matches) and ``program_id = ? AND ended_at > ?`` (ended ones),
    read an index range instead of the whole matches table.
    """
    metadata = sa.MetaData(schema=mapping.schema)
    tables: dict[str, sa.Table] = {}
    o, p, u, m = mapping.organizations, mapping.programs, mapping.users, mapping.matches
    j = mapping.participants
    instant = Instant(mapping.naive_utc)

    def id_of(table: str, column: str) -> Id:
        return Id((table, column) in integer_ids)

    def text(name: str | None, **options: Any) -> _Column:
        return _Column(name, sa.String, options={"nullable": True, **options})

    organizations = _table(
        metadata,
        tables,
        o.table,
        _Column(o.id, id_of(o.table, o.id), primary_key=True),
        text(o.name, nullable=False, server_default=""),
        _Column(o.timezone, sa.String, options={"nullable": False}),
        _Column(o.cycle_anchor, instant, options={"nullable": False}),
        text(o.cycle_unit, nullable=False, server_default="month"),
        _Column(o.cycle_every, sa.Integer, options={"nullable": False}),
    )
    programs = _table(
        metadata,
        tables,
        p.table,
        _Column(p.id, id_of(p.table, p.id), primary_key=True),
        _Column(
            p.organization_id,
            id_of(p.table, p.organization_id),
            references=organizations.c[o.id],
            options={"nullable": False},
        ),
        text(p.name, nullable=False, server_default=""),
    )
    users = _table(
        metadata,
        tables,
        u.table,
        _Column(u.id, id_of(u.table, u.id), primary_key=True),
        text(u.name, nullable=False, server_default=""),
        text(u.email),
    )
    matches = _table(
        metadata,
        tables,
        m.table,
        _Column(m.id, id_of(m.table, m.id), primary_key=True),
        _Column(
            m.program_id,
            id_of(m.table, m.program_id),
            references=programs.c[p.id],
            options={"nullable": False},
        ),
        _Column(m.started_at, instant, options={"nullable": False}),
        _Column(m.ended_at, instant),
        *(_Column(name, id_of(m.table, name)) for name in (m.mentor, m.mentee) if name),
    )
    # Programs kept on the organizations table need no index of their own: the
    # primary key serves (and an Index binds to its table when constructed).
    indexes = (
        []
        if programs is organizations
        else [sa.Index(index_name(p.table, "organization"), programs.c[p.organization_id])]
    )
    indexes += [
        sa.Index(index_name(m.table, "started"), matches.c[m.program_id], matches.c[m.started_at]),
        sa.Index(
            index_name(m.table, "ended"),
            matches.c[m.program_id],
            matches.c[m.ended_at],
            matches.c[m.started_at],
        ),
    ]
    participants = None
    if j is not None:
        participants = _table(
            metadata,
            tables,
            j.table,
            _Column(
                j.match_id, id_of(j.table, j.match_id), primary_key=True, references=matches.c[m.id]
            ),
            _Column(j.user_id, id_of(j.table, j.user_id), primary_key=True),
            text(j.role),
        )
        if j.role:
            # The primary key leads from a match to its users, but counting also checks
            # each participant's role: with the role in an index too, the rows are read
            # from the index alone (an index-only scan) instead of from the table.
            indexes.append(
                sa.Index(
                    index_name(j.table, "role"),
                    participants.c[j.match_id],
                    participants.c[j.user_id],
                    participants.c[j.role],
                )
            )
    return Tables(
        metadata,
        organizations,
        programs,
        users,
        matches,
        participants,
        tuple(indexes),
        unique_match_ids,
    )


def id_columns(mapping: SchemaMapping) -> dict[str, list[str]]:
    """The id columns of each mapped table: those that may hold integers."""
    o, p, u, m, j = (
        mapping.organizations,
        mapping.programs,
        mapping.users,
        mapping.matches,
        mapping.participants,
    )
    found: dict[str, list[str]] = {}
    tables: list[tuple[str, list[str | None]]] = [
        (o.table, [o.id]),
        (p.table, [p.id, p.organization_id]),
        (u.table, [u.id]),
        (m.table, [m.id, m.program_id, m.mentor, m.mentee]),
    ]
    if j is not None:
        tables.append((j.table, [j.match_id, j.user_id]))
    for table, names in tables:
        found.setdefault(table, []).extend(name for name in names if name)
    return found


def integer_ids(
    connection: sa.Connection, mapping: SchemaMapping, what: str
) -> frozenset[tuple[str, str]]:
    """The ``(table, column)`` id columns holding integers, read from the database's catalog.

    Also refuses what would make counts silently wrong or errors obscure:
    a missing table (named, with the record it holds), and, on PostgreSQL,
    instant columns whose time zone awareness contradicts ``naive_utc``
    (the server would convert between the two with the session's zone).

    Raises:
        matchusage.exceptions.RepositoryError: A mapped table does not exist
            (the users table may be missing: only ``users()`` reads it); the
            message names *what* failed and the table.
        matchusage.exceptions.InvalidRecordError: ``naive_utc`` contradicts a column.
    """
    inspector = sa.inspect(connection)
    o, m = mapping.organizations, mapping.matches
    instants = {o.table: [o.cycle_anchor], m.table: [m.started_at, m.ended_at]}
    found: set[tuple[str, str]] = set()
    for table, names in id_columns(mapping).items():
        try:
            types = {c["name"]: c["type"] for c in inspector.get_columns(table, mapping.schema)}
        except sa.exc.NoSuchTableError as error:
            if table == mapping.users.table:
                continue
            where = table if mapping.schema is None else f"{mapping.schema}.{table}"
            raise RepositoryError(f"{what} failed: table {where!r} does not exist") from error
        found.update((table, name) for name in names if isinstance(types.get(name), sa.Integer))
        if connection.dialect.name == "postgresql":
            for name in instants.get(table, []):
                _check_awareness(types.get(name), f"{table}.{name}", mapping, connection.dialect)
    return frozenset(found)


def unique_match_ids(connection: sa.Connection, mapping: SchemaMapping) -> bool:
    """Whether the catalog guarantees one row per match id (primary key or unique index).

    Only a constraint or index on exactly the id column counts: one on
    ``(id, other)`` allows two rows of an id, and so does a partial unique
    index. A view has neither, so it is never trusted.
    """
    inspector = sa.inspect(connection)
    table, schema, key = mapping.matches.table, mapping.schema, [mapping.matches.id]
    if inspector.get_pk_constraint(table, schema).get("constrained_columns") == key:
        return True
    if any(c["column_names"] == key for c in inspector.get_unique_constraints(table, schema)):
        return True
    return any(
        index["unique"]
        and index["column_names"] == key
        and not any(
            k.endswith("_where") and v is not None
            for k, v in index.get("dialect_options", {}).items()
        )
        for index in inspector.get_indexes(table, schema)
    )


def _check_awareness(kind: object, column: str, mapping: SchemaMapping, dialect: Dialect) -> None:
    aware = getattr(kind, "timezone", None)
    if isinstance(kind, sa.DateTime) and aware == mapping.naive_utc:
        raise InvalidRecordError(
            "SchemaMapping",
            "naive_utc",
            mapping.naive_utc,
            f"{not mapping.naive_utc} because column {column} is {kind.compile(dialect=dialect)}",
        )
