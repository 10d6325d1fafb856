"""Counting pushed into the database: the periods travel as rows, only counts or ids return."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
import sqlalchemy as sa

from .._periods import BillingPeriod
from ..exceptions import InvalidMatchError
from ._mapping import SchemaMapping
from ._schema import Instant, Tables, sqlite_text_form


@attrs.define
class Pushdown:
    """Builds and runs the counting statements of a mapping.

    Each statement joins the periods (sent as rows) to the candidate matches
    of the window and their participants; see the "Counting in the database"
    page for its shape.
    """

    mapping: SchemaMapping
    tables: Tables
    # Above this many (organization, period) rows the periods travel in a
    # temporary table instead of a VALUES list, to stay under the engines'
    # limits on bound parameters.
    values_rows: int = 1000

    def collect(
        self, connection: sa.Connection, periods: Mapping[str, Sequence[BillingPeriod]]
    ) -> dict[str, dict[BillingPeriod, frozenset[str]]]:
        found = {key: {period: set[str]() for period in value} for key, value in periods.items()}
        for key, period, user_id in self.users_rows(connection, periods, None):
            found[key][period].add(user_id)
        return {
            key: {period: frozenset(users) for period, users in value.items()}
            for key, value in found.items()
        }

    def count(
        self,
        connection: sa.Connection,
        periods: Mapping[str, Sequence[BillingPeriod]],
        program_id: str | None = None,
    ) -> dict[str, dict[BillingPeriod, int]]:
        counts = {key: dict.fromkeys(value, 0) for key, value in periods.items()}
        with self._hits(connection, periods, program_id) as (hits, keys):
            if hits is not None:
                statement = sa.select(
                    hits.c.k,
                    sa.func.count(sa.distinct(hits.c.user_id)),
                    *_malformed_column(hits, sa.func.max),
                )
                rows = connection.execute(statement.group_by(hits.c.k)).all()
                for k, number, *malformed in rows:
                    self._reject_malformed(connection, malformed)
                    key, period = keys[k]
                    counts[key][period] = number
        return counts

    def users_rows(
        self,
        connection: sa.Connection,
        periods: Mapping[str, Sequence[BillingPeriod]],
        program_id: str | None,
    ) -> Iterator[tuple[str, BillingPeriod, str]]:
        with self._hits(connection, periods, program_id) as (hits, keys):
            if hits is None:
                return
            statement = (
                sa.select(hits.c.k, hits.c.user_id, *_malformed_column(hits))
                .distinct()
                .order_by(hits.c.k, hits.c.user_id)
            )
            # Per statement: Connection.execution_options() would change the connection.
            rows = connection.execute(statement, execution_options={"yield_per": 10_000})
            for k, user_id, *malformed in rows:
                if any(malformed):
                    rows.close()
                    self._reject_malformed(connection, malformed)
                key, period = keys[k]
                yield key, period, user_id

    @contextmanager
    def _hits(
        self,
        connection: sa.Connection,
        periods: Mapping[str, Sequence[BillingPeriod]],
        program_id: str | None,
    ) -> Iterator[tuple[sa.Subquery | None, list[tuple[str, BillingPeriod]]]]:
        """The ``(k, user_id)`` rows of every user in a match overlapping period row *k*.

        Yields the subquery (``None`` when there are no periods) and the
        ``(organization id, period)`` each *k* stands for.
        """
        keys = list(dict.fromkeys((key, p) for key, value in periods.items() for p in value))
        if not keys:
            yield None, keys
            return
        instant = Instant(self.mapping.naive_utc)
        columns: list[sa.ColumnClause[Any]] = [
            sa.column("organization_id", sa.String),
            sa.column("k", sa.Integer),
            sa.column("period_start", instant),
            sa.column("period_end", instant),
        ]
        rows = [(key, k, p.start, p.end) for k, (key, p) in enumerate(keys)]
        temporary = None
        source: sa.FromClause
        if len(rows) <= self.values_rows:
            source = sa.values(*columns, name="periods").data(rows).cte("periods")
        else:
            temporary = sa.Table(
                f"matchusage_periods_{secrets.token_hex(6)}",
                sa.MetaData(),
                *(sa.Column(c.name, c.type) for c in columns),
                prefixes=["TEMPORARY"],
            )
            temporary.create(connection)
            names = [c.name for c in columns]
            connection.execute(
                temporary.insert(), [dict(zip(names, row, strict=True)) for row in rows]
            )
            source = temporary
        try:
            checked = connection.dialect.name == "sqlite"
            yield self._hits_query(source, keys, program_id, checked), keys
        finally:
            if temporary is not None:
                temporary.drop(connection)

    def _hits_query(
        self,
        periods: sa.FromClause,
        keys: Sequence[tuple[str, BillingPeriod]],
        program_id: str | None,
        check_text: bool,
    ) -> sa.Subquery:
        """The hits subquery; with *check_text*, a ``malformed`` column flags bad instants.

        On SQLite instants are text and the overlap rule compares strings,
        which is right only for the exact form the adapter writes. Each
        candidate carries its match id in ``malformed`` when its text has
        another form (a naive value where the mapping does not declare
        ``naive_utc``, another offset, another layout), so that counting
        refuses it instead of miscounting.
        """
        t, mm, pp = self.tables, self.mapping.matches, self.mapping.programs
        m, g = t.matches, t.programs
        started, ended = m.c[mm.started_at], m.c[mm.ended_at]
        first, last = min(p.start for _, p in keys), max(p.end for _, p in keys)
        # First the candidates: every (organization, start, end, user) of a
        # match in the whole window, each match joined to its participants
        # once. Ongoing and ended matches are read separately: without an OR,
        # each half reads one range of the (program, ended_at, started_at)
        # index. Zero-length matches overlap nothing and are left out here.
        organizations = sa.select(periods.c.organization_id)
        halves = [
            [ended.is_(None), started < last],
            [ended > first, started < last, ended > started],
        ]
        if program_id is not None:
            halves = [[*half, m.c[mm.program_id] == program_id] for half in halves]
        j = self.mapping.participants
        users: list[tuple[sa.Column[Any], sa.Table | None, sa.Column[Any] | None]]
        if t.participants is not None and j is not None:
            users = [(t.participants.c[j.user_id], t.participants, t.participants.c[j.match_id])]
        else:
            assert mm.mentor is not None  # checked by SchemaMapping
            assert mm.mentee is not None
            users = [(m.c[mm.mentor], None, None), (m.c[mm.mentee], None, None)]
        checks: list[sa.ColumnElement[Any]] = []
        if check_text:
            form = sqlite_text_form(self.mapping.naive_utc)
            start_text, end_text = (
                sa.type_coerce(started, sa.String),
                sa.type_coerce(ended, sa.String),
            )
            bad = sa.or_(
                start_text.not_like(form), sa.and_(ended.is_not(None), end_text.not_like(form))
            )
            checks.append(sa.case((bad, m.c[mm.id]), else_=sa.null()).label("malformed"))
        selects = []
        for half in halves:
            joined = m.join(g, g.c[pp.id] == m.c[mm.program_id])
            for user, table, match_id in users:
                source = joined
                if table is not None and match_id is not None:
                    source = joined.join(table, match_id == m.c[mm.id])
                selects.append(
                    sa.select(
                        g.c[pp.organization_id].label("organization_id"),
                        started.label("started_at"),
                        ended.label("ended_at"),
                        user.label("user_id"),
                        *checks,
                    )
                    .select_from(source)
                    .where(g.c[pp.organization_id].in_(organizations), *half, user.is_not(None))
                )
        candidates = sa.union_all(*selects).subquery("candidates")
        # Then each candidate meets the periods it overlaps by a positive amount.
        overlap = sa.and_(
            candidates.c.organization_id == periods.c.organization_id,
            candidates.c.started_at < periods.c.period_end,
            sa.or_(candidates.c.ended_at.is_(None), candidates.c.ended_at > periods.c.period_start),
        )
        malformed = [candidates.c.malformed] if check_text else []
        return (
            sa.select(periods.c.k, candidates.c.user_id, *malformed)
            .select_from(periods.join(candidates, overlap))
            .subquery("hits")
        )

    def _reject_malformed(self, connection: sa.Connection, malformed: Sequence[Any]) -> None:
        """Raise for the first match id in *malformed*, naming its bad field and text."""
        match_id = next((value for value in malformed if value is not None), None)
        if match_id is None:
            return
        mm, m = self.mapping.matches, self.tables.matches
        form = sqlite_text_form(self.mapping.naive_utc)
        started, ended = (
            sa.type_coerce(m.c[name], sa.String) for name in (mm.started_at, mm.ended_at)
        )
        row = connection.execute(
            sa.select(started, ended, started.not_like(form)).where(m.c[mm.id] == match_id)
        ).one()
        field, value = ("started_at", row[0]) if row[2] else ("ended_at", row[1])
        hint = "" if self.mapping.naive_utc else " (declare naive_utc=True if it holds naive UTC)"
        raise InvalidMatchError(
            match_id,
            field,
            value,
            f"UTC text of the form 'YYYY-MM-DD HH:MM:SS.ffffff{form[26:]}'{hint}",
        )


def _malformed_column(
    hits: sa.Subquery, aggregate: Callable[[Any], Any] | None = None
) -> list[Any]:
    """The hits' ``malformed`` column (aggregated), if the dialect has one."""
    if "malformed" not in hits.c:
        return []
    column = hits.c.malformed
    return [column if aggregate is None else aggregate(column)]
