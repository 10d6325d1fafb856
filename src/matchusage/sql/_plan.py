"""How PostgreSQL reads the matches of some organizations: whole tables, or through the indexes.

The planner cannot tell how many matches each organization has: for one
large organization among many small ones it expects the average, and picks a
nested loop that looks every match up in the participants' index, several
times slower than hash joins over whole tables. Both ways of reading a batch
(counting in the database, reading columns) ask it the question it can
answer, and set the plan for their transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as postgresql_types
from sqlalchemy.ext.compiler import compiles

from ._mapping import SchemaMapping
from ._schema import Tables

_LARGE_SHARE = 0.1
"""From this share of the matches table on, a statement reads the tables whole."""

_WORK_MEM = "64MB"
"""Memory for the hash of the windows' matches, so the join stays in one pass."""


def reads_large_share(
    connection: sa.Connection,
    mapping: SchemaMapping,
    tables: Tables,
    windows: Sequence[tuple[Any, ...]],
    program_id: str | None = None,
) -> bool:
    """Whether the planner expects *windows* to hold a large share of the matches table.

    *windows* are rows ``(organization id, _, start, end, ...)``. The planner
    is asked (``EXPLAIN``) how many matches the organizations' programs (or
    only *program_id*) hold in the windows' span, where it uses its
    statistics of the program column.
    """
    pp, mm = mapping.programs, mapping.matches
    g, m = tables.programs, tables.matches
    organization, program = g.c[pp.organization_id], m.c[mm.program_id]
    keys = list(dict.fromkeys(row[0] for row in windows))
    which = [organization == _any("organizations", keys, organization)]
    if program_id is not None:
        which.append(g.c[pp.id] == program_id)
    programs = connection.execute(sa.select(g.c[pp.id]).where(*which)).scalars()
    started, ended = m.c[mm.started_at], m.c[mm.ended_at]
    first, last = min(row[2] for row in windows), max(row[3] for row in windows)
    estimate = connection.execute(
        _Explain(
            sa.select(sa.literal(1)).where(
                program == _any("programs", list(programs), program),
                started < sa.bindparam("last", last, type_=started.type),
                sa.or_(ended.is_(None), ended > sa.bindparam("first", first, type_=ended.type)),
            )
        )
    ).scalar_one()[0]["Plan"]["Plan Rows"]
    name = connection.dialect.identifier_preparer.format_table(m)
    total: float = connection.execute(
        sa.select(sa.column("reltuples"))
        .select_from(sa.table("pg_class"))
        .where(sa.column("oid") == sa.cast(name, postgresql_types.REGCLASS))
    ).scalar_one()
    return bool(total > 0 and estimate >= _LARGE_SHARE * total)


def use_plan(connection: sa.Connection, whole_tables: bool) -> None:
    """Set the plan for *connection*'s transaction: hashes in memory; no nested loops for
    *whole_tables* (see `reads_large_share`)."""
    settings = [sa.func.set_config("work_mem", _WORK_MEM, True)]
    if whole_tables:
        settings.append(sa.func.set_config("enable_nestloop", "off", True))
    connection.execute(sa.select(*settings))


def _any(name: str, values: list[Any], column: sa.ColumnElement[Any]) -> Any:
    """``ANY`` of *values* bound as one array of *column*'s type (one parameter, any length)."""
    array = postgresql_types.ARRAY(column.type)
    return sa.any_(sa.cast(sa.bindparam(name, values, type_=array), array))


class _Explain(sa.sql.expression.Executable, sa.sql.expression.ClauseElement):
    """``EXPLAIN (FORMAT JSON)`` of a statement, its parameters bound as the statement's."""

    inherit_cache = False

    def __init__(self, statement: sa.Select[Any]) -> None:
        self.statement = statement


@compiles(_Explain)
def _explain(element: _Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + str(compiler.process(element.statement, **kw))
