"""Matches handed over as columns: each organization's window, read for the columnar engine.

One row per participant of every match overlapping an organization's
window (its first period's start to its last period's end):
``(organization code, start, end, user id)``. Each row is its own "match"
for the columnar engine, which ORs a user's periods per organization, so the
counts are those of the matches themselves.

The windows travel as rows (an ``unnest`` of bound arrays on PostgreSQL, a
``VALUES`` list elsewhere) that carry each organization's code, so that
only the matches of its own window are read and no organization id crosses
the wire per row.

On PostgreSQL, with pyarrow and numpy installed, the server packs each column
into one ``bytea`` value: the codes and instants in their binary send form
(big-endian integers; instants in microseconds since 2000), the user ids as
UTF-8 separated by the byte ``0xFF``, which UTF-8 never contains. One row of
values crosses the wire, in PostgreSQL's binary format, on the repository's
own connection, and numpy and pyarrow turn them into columns without a Python
step per row. (``COPY ... TO STDOUT`` sends one message per row, and psycopg
spends more per message than the server spends packing; see the page
"Counting in the database".) When the windows hold a large share of the
matches, the statement reads the tables whole with hash joins, in two halves
on two connections at one snapshot (see `_Reader.packed`). Elsewhere the
rows are fetched and converted in Python.

A match that reading it as a [`Match`][matchusage.Match] refuses (see
[`RowMapper.refused`][matchusage.sql._rows.RowMapper.refused]: an end before
its start, a participant row without a user, an unknown role, ...) is not
counted: its rows are flagged, and its organization is reported as refused,
so that the caller can read that organization's matches as objects and
raise the error that names it.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as postgresql_types

from .._columnar import MatchColumns
from .._periods import BillingPeriod
from .._time import FOREVER, to_micros
from ._bound import bound_rows
from ._mapping import SchemaMapping
from ._plan import reads_large_share, use_plan
from ._rows import RowMapper
from ._schema import Instant, Tables, fits

_POSTGRESQL_EPOCH_US = 946_684_800_000_000
"""2000-01-01 in microseconds since 1970-01-01: the zero of PostgreSQL's binary instants."""

_ONGOING = (FOREVER - _POSTGRESQL_EPOCH_US).to_bytes(8, "big")
"""The end of an ongoing match as a binary instant: `MatchColumns.ONGOING` once unpacked."""

_SEPARATOR = b"\xff"
"""Between two user ids in their packed column: a byte that UTF-8 never contains."""

_VALUES_ROWS = 1000
"""Windows per ``VALUES`` list outside PostgreSQL: four bound parameters a row."""

_SPLIT_PAGES = 2_000
"""From this many pages (16 MB) of the largest table on, two connections read a half each."""


@attrs.frozen
class FetchedColumns:
    """The columns read for some organizations, and those a refused match keeps out.

    Attributes:
        columns: One row per participant of every match in each window.
        refused: The organizations with a stored match in their window that
            reading it as a [`Match`][matchusage.Match] refuses. Their rows
            are left out of *columns*.
    """

    columns: MatchColumns
    refused: frozenset[str]


def packed_available(connection: sa.Connection) -> bool:
    """Whether the fast path applies: PostgreSQL, with pyarrow and numpy installed."""
    return connection.dialect.name == "postgresql" and all(
        importlib.util.find_spec(name) is not None for name in ("pyarrow", "numpy")
    )


def fetch_columns(
    connection: sa.Connection,
    mapping: SchemaMapping,
    tables: Tables,
    periods: Mapping[str, Sequence[BillingPeriod]],
    *,
    user_ids: bool = True,
) -> FetchedColumns:
    """The participant rows of the matches overlapping each organization's *periods*.

    Without *user_ids*, on the fast path, users are anonymous integer codes:
    enough to count them, and cheaper than labelling hundreds of thousands.
    """
    reader = _Reader(mapping, tables)
    windows = reader.windows(periods)
    if packed_available(connection):
        return reader.packed(connection, windows, user_ids)
    return reader.rows(connection, windows)


@attrs.frozen
class _Reader:
    """Builds and runs the statements that read the windows' rows."""

    mapping: SchemaMapping
    tables: Tables

    @property
    def _organization(self) -> sa.Column[Any]:
        return self.tables.programs.c[self.mapping.programs.organization_id]

    def windows(self, periods: Mapping[str, Sequence[BillingPeriod]]) -> list[tuple[Any, ...]]:
        """``(organization id, code, first start, last end)`` of each organization with periods.

        An id that cannot be in the mapped column (a non-decimal id for an
        integer column) has no matches, and no window.
        """
        found: list[tuple[Any, ...]] = []
        for key, value in periods.items():
            if value and fits(self._organization, key):
                first = min(value, key=lambda p: p._start_us).start
                last = max(value, key=lambda p: p._end_us).end
                found.append((key, len(found), first, last))
        return found

    def _windows_table(self, rows: Sequence[tuple[Any, ...]], postgresql: bool) -> sa.FromClause:
        instant = Instant(self.mapping.naive_utc)
        columns: list[sa.ColumnClause[Any]] = [
            sa.column("organization_id", self._organization.type),
            sa.column("code", sa.Integer),
            sa.column("window_start", instant),
            sa.column("window_end", instant),
        ]
        return bound_rows("windows", columns, rows, postgresql)

    def candidates(self, windows: sa.FromClause, dialect: str, part: Any = None) -> sa.Subquery:
        """``(code, started_at, ended_at, user_id, refused)``: one row per participant.

        Every match of an organization's programs overlapping its window,
        by the rule [`matches`][matchusage.sql.SQLRepository.matches] reads
        them with, so that a match it would refuse is among them, flagged.
        Only the rows meeting *part*, if given.
        """
        t, mm, pp = self.tables, self.mapping.matches, self.mapping.programs
        m, g = t.matches, t.programs
        started, ended = m.c[mm.started_at], m.c[mm.ended_at]
        w = windows.c
        in_window = sa.and_(
            m.c[mm.program_id] == g.c[pp.id],
            started < w.window_end,
            sa.or_(ended.is_(None), ended > w.window_start),
        )
        joined = windows.join(g, g.c[pp.organization_id] == w.organization_id).join(m, in_window)
        j = self.mapping.participants
        # (user, role, condition for a row to be someone) of each source of users
        sources: list[tuple[sa.Column[Any], sa.Column[Any] | None, list[Any]]]
        if t.participants is not None and j is not None:
            p = t.participants
            joined = joined.join(p, p.c[j.match_id] == m.c[mm.id])
            # A participant row without a user is refused, like reading it as a Match.
            sources = [(p.c[j.user_id], p.c[j.role] if j.role else None, [])]
        else:
            assert mm.mentor is not None  # checked by SchemaMapping
            assert mm.mentee is not None
            # A NULL mentor or mentee is no one.
            sources = [(m.c[n], None, [m.c[n].is_not(None)]) for n in (mm.mentor, mm.mentee)]
        mapper = RowMapper(self.mapping, self.tables)
        selects = []
        for user, role, present in sources:
            refused = sa.case((mapper.refused(dialect, user, role), 1), else_=0)
            selects.append(
                sa.select(
                    w.code.label("code"),
                    started.label("started_at"),
                    ended.label("ended_at"),
                    user.label("user_id"),
                    refused.label("refused"),
                )
                .select_from(joined)
                .where(*present, *mapper.known_organization(), *([] if part is None else [part]))
            )
        return (selects[0] if len(selects) == 1 else sa.union_all(*selects)).subquery("candidates")

    # -- PostgreSQL: columns packed by the server -------------------------------------------

    def packed(
        self, connection: sa.Connection, windows: list[tuple[Any, ...]], user_ids: bool
    ) -> FetchedColumns:
        """The rows of *windows*, each column packed by the server into one ``bytea``.

        A large table is read in two halves (by physical position) on two
        connections at once, at the same snapshot: PostgreSQL runs one
        statement on one core, and this statement (a join and an aggregate)
        has no parallel plan.
        """
        keys = [row[0] for row in windows]
        if not windows:
            return _unpacked([], keys, user_ids)
        bulk = reads_large_share(connection, self.mapping, self.tables, windows)
        halves = self._halves(connection) if bulk else None
        other = _same_snapshot(connection) if halves else None
        if other is None:
            return _unpacked([self._packed_rows(connection, windows, bulk)], keys, user_ids)
        assert halves is not None
        with other, ThreadPoolExecutor(max_workers=1) as pool:
            later = pool.submit(self._packed_rows, other, windows, bulk, halves[1])
            first = self._packed_rows(connection, windows, bulk, halves[0])
            return _unpacked([first, later.result()], keys, user_ids)

    def _halves(self, connection: sa.Connection) -> tuple[Any, Any] | None:
        """Conditions on the rows of the first and of the second half of the largest table.

        ``None`` when the table is small enough for one statement, or the
        server cannot scan a range of pages (before PostgreSQL 14), or is a
        standby (which cannot share its snapshot).
        """
        table = self.tables.participants
        if table is None or self.mapping.participants is None:
            table = self.tables.matches
        name = connection.dialect.identifier_preparer.format_table(table)
        pages, version, recovering = connection.execute(
            sa.select(
                sa.func.pg_relation_size(sa.cast(name, postgresql_types.REGCLASS))
                / sa.cast(sa.func.current_setting("block_size"), sa.BigInteger),
                sa.cast(sa.func.current_setting("server_version_num"), sa.Integer),
                sa.func.pg_is_in_recovery(),
            )
        ).one()
        if pages < _SPLIT_PAGES or version < 140000 or recovering:
            return None
        # The page numbers are integers: written into the statement, not bound.
        position: sa.ColumnClause[Any] = sa.column("ctid", _selectable=table)
        middle: sa.ColumnClause[Any] = sa.literal_column(f"'({pages // 2},0)'::tid")
        return position < middle, position >= middle

    def _packed_rows(
        self,
        connection: sa.Connection,
        windows: list[tuple[Any, ...]],
        bulk: bool,
        part: Any = None,
    ) -> tuple[bytes, ...]:
        """The packed columns of the rows of *windows* (that meet the condition *part*).

        With *bulk*, the statement reads the tables whole (see `reads_large_share`).
        """
        c = self.candidates(self._windows_table(windows, postgresql=True), "postgresql", part)
        send = "timestamp_send" if self.mapping.naive_utc else "timestamptz_send"

        def instant(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bytes]:
            packed: sa.ColumnElement[bytes] = getattr(sa.func, send)(column, type_=sa.LargeBinary)
            return packed

        def pack(value: sa.ColumnElement[Any], separator: bytes = b"") -> sa.ColumnElement[bytes]:
            # Every aggregate of one query reads the rows in the same order.
            return sa.func.string_agg(
                value, sa.literal(separator, sa.LargeBinary), type_=sa.LargeBinary
            )

        code = sa.func.int4send(c.c.code, type_=sa.LargeBinary)
        user = sa.func.convert_to(
            sa.func.coalesce(sa.cast(c.c.user_id, sa.Text), ""), "UTF8", type_=sa.LargeBinary
        )
        statement = sa.select(
            pack(code),
            pack(instant(c.c.started_at)),
            pack(sa.func.coalesce(instant(c.c.ended_at), sa.literal(_ONGOING, sa.LargeBinary))),
            pack(user, _SEPARATOR),
            pack(code).filter(c.c.refused == 1),
        )
        use_plan(connection, bulk)
        row = _execute_binary(connection, statement)
        return tuple(b"" if value is None else bytes(value) for value in row)

    # -- elsewhere: rows converted in Python --------------------------------------------------

    def rows(self, connection: sa.Connection, windows: list[tuple[Any, ...]]) -> FetchedColumns:
        """The rows of *windows*, fetched through SQLAlchemy, instants converted in Python."""
        keys = [row[0] for row in windows]
        found: list[tuple[int, Any, Any, Any]] = []
        refused: set[str] = set()
        for first in range(0, len(windows), _VALUES_ROWS):
            share = windows[first : first + _VALUES_ROWS]
            c = self.candidates(
                self._windows_table(share, postgresql=False), connection.dialect.name
            ).c
            statement = sa.select(c.code, c.started_at, c.ended_at, c.user_id, c.refused)
            for code, started, ended, user, bad in connection.execute(statement):
                if bad:
                    refused.add(keys[code])
                else:
                    found.append((code, started, ended, user))
        kept = [row for row in found if keys[row[0]] not in refused]
        columns = MatchColumns(
            [to_micros(row[1]) for row in kept],
            [FOREVER if row[2] is None else to_micros(row[2]) for row in kept],
            [row[0] for row in kept],
            range(len(kept)),
            [row[3] for row in kept],
            organization_ids=keys,
        )
        return FetchedColumns(columns, frozenset(refused))


def _same_snapshot(connection: sa.Connection) -> sa.Connection | None:
    """Another connection of the engine, in a transaction that sees what *connection* sees.

    ``None`` unless *connection* is in a ``REPEATABLE READ`` transaction (whose
    one snapshot its statements share) and the engine's pool has a
    connection to spare right now: waiting for one could mean waiting for
    *connection* itself.
    """
    pool = connection.engine.pool
    spare = isinstance(pool, sa.pool.NullPool) or (
        isinstance(pool, sa.pool.QueuePool)
        and (pool.checkedin() > 0 or pool.checkedout() < pool.size())
    )
    if not spare or connection.get_isolation_level() != "REPEATABLE READ":
        return None
    snapshot = connection.execute(sa.select(sa.func.pg_export_snapshot())).scalar_one()
    if not re.fullmatch(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?", snapshot):
        return None
    try:
        other = connection.engine.connect()
    except sa.exc.TimeoutError:
        # Another thread took the spare connection since the look above: one statement then.
        return None
    other = other.execution_options(isolation_level="REPEATABLE READ")
    try:
        # The first statement of its transaction; the snapshot's name is checked above.
        other.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
    except BaseException:
        other.close()
        raise
    return other


def _execute_binary(connection: sa.Connection, statement: sa.Select[Any]) -> sa.Row[Any]:
    """The one row of *statement*, in PostgreSQL's binary format where the driver has it.

    In the text format a ``bytea`` value travels as hexadecimal digits: twice
    the bytes, encoded by the server and decoded by the client.
    """

    def binary(conn: Any, cursor: Any, *_: Any) -> None:
        if hasattr(cursor, "format"):  # psycopg 3
            from psycopg import pq

            cursor.format = pq.Format.BINARY

    sa.event.listen(connection, "before_cursor_execute", binary)
    try:
        return connection.execute(statement).one()
    finally:
        sa.event.remove(connection, "before_cursor_execute", binary)


def _unpacked(halves: list[tuple[bytes, ...]], keys: list[Any], user_ids: bool) -> FetchedColumns:
    """The columns of the packed values of one statement, or of two halves, in order."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    codes, started, ended, _, refused_codes = (
        b"".join(half[n] for half in halves) for n in range(5)
    )
    # Each half's ids each end with the separator: the offsets are then
    # contiguous, and the dictionary's labels lose it when decoded.
    users = b"".join(half[3] + _SEPARATOR for half in halves if half[0])
    code = np.frombuffer(codes, ">i4").astype(np.intp)
    refused = np.unique(np.frombuffer(refused_codes, ">i4")).tolist()

    def instants(blob: bytes) -> Any:
        values = np.frombuffer(blob, ">i8").astype(np.int64)
        # 'infinity' (the largest value) would overflow: it is never, like ONGOING.
        np.minimum(values, FOREVER - _POSTGRESQL_EPOCH_US, out=values)
        values += _POSTGRESQL_EPOCH_US
        return values

    data = np.frombuffer(users, np.uint8)
    ends = np.flatnonzero(data == _SEPARATOR[0])
    assert ends.size == code.size, "one user id per row"
    offsets = np.zeros(code.size + 1, np.int64)
    offsets[1:] = ends + 1
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    binary = pa.Array.from_buffers(pa.large_binary(), code.size, buffers)
    start, end = instants(started), instants(ended)
    if refused:
        kept = ~np.isin(code, refused)
        code, start, end = code[kept], start[kept], end[kept]
        bits = pa.py_buffer(np.packbits(kept, bitorder="little"))
        binary = binary.filter(pa.Array.from_buffers(pa.bool_(), kept.size, [None, bits]))
    user = pc.dictionary_encode(binary)
    indices = user.indices  # int32; read directly (to_numpy would import pandas)
    user_codes = np.frombuffer(
        indices.buffers()[1], np.int32, count=len(indices), offset=indices.offset * 4
    )
    labels = None
    if user_ids:
        labels = [label[:-1].decode() for label in user.dictionary.to_pylist()]
    columns = MatchColumns(
        start,
        end,
        code,
        np.arange(code.size),
        user_codes,
        organization_ids=keys,
        user_ids=labels,
    )
    return FetchedColumns(columns, frozenset(keys[n] for n in refused))
