"""Matches handed over as columns: each organization's window, read for the columnar engine.

One row per participant of every match overlapping an organization's
periods: ``(organization id, start, end, user id)``. Each row is its own
"match" for the columnar engine, which ORs a user's periods per organization,
so the counts are those of the matches themselves.

On PostgreSQL, with pyarrow installed, the server packs each column into one
``bytea`` value with ``string_agg``: the instants in their binary send form
(big-endian microseconds since 2000), the ids as their UTF-8 bytes with a
separate column of lengths. One row of five values crosses the wire on the
repository's own connection, and numpy and pyarrow turn them into columns
without a Python loop per row. (A ``COPY ... TO STDOUT`` through psycopg
returns one message per row, each a Python call: slower than counting in the
database; ADBC reads as fast but needs a connection of its own. See the page
"Counting in the database".) Elsewhere the rows are fetched and converted in
Python, which is slower than counting in the database.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from .._columnar import MatchColumns
from .._periods import BillingPeriod
from .._time import FOREVER, to_micros
from ._pushdown import Pushdown

_POSTGRESQL_EPOCH_US = 946_684_800_000_000
"""2000-01-01 in microseconds since 1970-01-01: the zero of PostgreSQL's binary instants."""

_ONGOING = (2**63 - 1).to_bytes(8, "big")
"""The binary form of ``'infinity'``, standing in for the end of an ongoing match."""


def packed_available(connection: sa.Connection) -> bool:
    """Whether the fast path applies: PostgreSQL, with pyarrow and numpy installed."""
    return connection.dialect.name == "postgresql" and all(
        importlib.util.find_spec(name) is not None for name in ("pyarrow", "numpy")
    )


def fetch_columns(
    connection: sa.Connection,
    pushdown: Pushdown,
    keys: Sequence[tuple[str, BillingPeriod]],
    *,
    user_ids: bool = True,
) -> MatchColumns:
    """The participant rows of the matches overlapping the periods *keys*, as columns.

    Without *user_ids*, on the fast path, users are anonymous integer codes:
    enough to count them, and cheaper than labelling hundreds of thousands.
    """
    packed = packed_available(connection)
    blobs: list[tuple[bytes, ...]] = []
    rows = _Rows()
    for source, share in pushdown.shares(connection, keys):
        checked = connection.dialect.name == "sqlite"
        candidates = pushdown.candidates(source, share, None, checked)
        if packed:
            blobs.append(_packed(connection, pushdown, candidates))
        else:
            rows.fetch(connection, pushdown, candidates)
    if packed:
        return _unpacked(blobs, user_ids)
    return MatchColumns(
        rows.starts, rows.ends, rows.organizations, list(range(len(rows.users))), rows.users
    )


def _packed(
    connection: sa.Connection, pushdown: Pushdown, candidates: sa.Subquery
) -> tuple[bytes, ...]:
    """The candidates' columns, each packed by the server into one ``bytea``."""
    send = "timestamp_send" if pushdown.mapping.naive_utc else "timestamptz_send"

    def instant(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bytes]:
        packed: sa.ColumnElement[bytes] = getattr(sa.func, send)(column, type_=sa.LargeBinary)
        return packed

    def utf8(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bytes]:
        return sa.func.convert_to(sa.cast(column, sa.Text), "UTF8", type_=sa.LargeBinary)

    ongoing = sa.literal(_ONGOING, sa.LargeBinary)
    # Each value computed once: OFFSET 0 keeps the planner from copying the
    # expressions into the aggregates that read them twice.
    rows = (
        sa.select(
            instant(candidates.c.started_at).label("started"),
            sa.func.coalesce(instant(candidates.c.ended_at), ongoing).label("ended"),
            utf8(candidates.c.organization_id).label("organization"),
            utf8(candidates.c.user_id).label("user"),
        )
        .offset(0)
        .subquery("rows")
    )

    def pack(value: sa.ColumnElement[Any]) -> sa.ColumnElement[bytes]:
        # Every aggregate of one query reads the rows in the same order.
        empty = sa.literal(b"", sa.LargeBinary)
        return sa.func.string_agg(value, empty, type_=sa.LargeBinary)

    def lengths(column: sa.ColumnElement[bytes]) -> sa.ColumnElement[bytes]:
        return sa.func.int4send(sa.func.octet_length(column), type_=sa.LargeBinary)

    statement = sa.select(
        pack(rows.c.started),
        pack(rows.c.ended),
        pack(lengths(rows.c.organization)),
        pack(rows.c.organization),
        pack(lengths(rows.c.user)),
        pack(rows.c.user),
    )
    row = connection.execute(statement).one()
    return tuple(b"" if value is None else bytes(value) for value in row)


def _unpacked(blobs: list[tuple[bytes, ...]], user_ids: bool) -> MatchColumns:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = [b"".join(part) for part in zip(*blobs, strict=True)] if blobs else [b""] * 6
    started, ended, organization_lengths, organizations, user_lengths, users = parts

    def instants(blob: bytes) -> Any:
        values = np.frombuffer(blob, ">i8").astype(np.int64)
        ongoing = values == np.iinfo(np.int64).max
        return np.where(ongoing, FOREVER, values + _POSTGRESQL_EPOCH_US)

    def encoded(lengths: bytes, data: bytes) -> Any:
        sizes = np.frombuffer(lengths, ">i4").astype(np.int64)
        offsets = np.zeros(len(sizes) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        ids = pa.LargeStringArray.from_buffers(
            len(sizes), pa.py_buffer(offsets), pa.py_buffer(data)
        )
        return pc.dictionary_encode(ids)

    organization = encoded(organization_lengths, organizations)
    user = encoded(user_lengths, users)
    return MatchColumns(
        instants(started),
        instants(ended),
        organization.indices.to_numpy(),
        np.arange(len(user)),
        user.indices.to_numpy(),
        organization_ids=organization.dictionary.to_pylist(),
        user_ids=user.dictionary.to_pylist() if user_ids else None,
    )


@attrs.define
class _Rows:
    """Candidate rows fetched through SQLAlchemy, instants converted in Python."""

    starts: list[int] = attrs.Factory(list)
    ends: list[int] = attrs.Factory(list)
    organizations: list[str] = attrs.Factory(list)
    users: list[str] = attrs.Factory(list)

    def fetch(self, connection: sa.Connection, pushdown: Pushdown, candidates: sa.Subquery) -> None:
        malformed = [candidates.c.malformed] if "malformed" in candidates.c else []
        statement = sa.select(
            candidates.c.organization_id,
            candidates.c.started_at,
            candidates.c.ended_at,
            candidates.c.user_id,
            *malformed,
        )
        for organization, started, ended, user, *bad in connection.execute(statement):
            if any(bad):
                pushdown.reject_malformed(connection, bad)
            self.organizations.append(organization)
            self.starts.append(to_micros(started))
            self.ends.append(FOREVER if ended is None else to_micros(ended))
            self.users.append(user)
