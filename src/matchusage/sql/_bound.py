"""Rows sent with a statement, as a table it can join: nothing is written to the database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as postgresql_types


def bound_rows(
    name: str,
    columns: Sequence[sa.ColumnClause[Any]],
    rows: Sequence[tuple[Any, ...]],
    postgresql: bool,
) -> sa.FromClause:
    """*rows* as a table called *name* with *columns*, every value a bound parameter.

    PostgreSQL receives one bound array per column, which ``unnest`` turns
    back into rows: any number of rows in one statement. Other databases
    receive a ``VALUES`` list, so the caller keeps *rows* under the engine's
    limit on bound parameters.
    """
    if not postgresql:
        return sa.values(*columns, name=name).data(list(rows)).cte(name)
    arrays = [
        sa.cast(
            sa.bindparam(
                f"{name}_{column.name}",
                [row[n] for row in rows],
                type_=postgresql_types.ARRAY(column.type),
            ),
            postgresql_types.ARRAY(column.type),
        )
        for n, column in enumerate(columns)
    ]
    return sa.func.unnest(*arrays).table_valued(*columns).render_derived(name)
