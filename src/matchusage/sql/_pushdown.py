"""Counting pushed into the database: the periods travel as rows, only counts or ids return."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as postgresql_types

from .._periods import BillingPeriod
from ..exceptions import InvalidMatchError
from ._mapping import SchemaMapping
from ._schema import Instant, Tables, fits, is_integer_id, sqlite_text_form


@attrs.define
class Pushdown:
    """Builds and runs the counting statements of a mapping.

    Each statement joins the periods (sent as rows) to the candidate matches
    of the window and their participants; see the "Counting in the database"
    page for its shape.
    """

    mapping: SchemaMapping
    tables: Tables
    # Period rows per VALUES list outside PostgreSQL: four bound parameters a
    # row stays under every engine's limit.
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
        for hits, keys in self._hits(connection, periods, program_id):
            statement = sa.select(
                hits.c.k,
                sa.func.count(sa.distinct(hits.c.user_id)),
                *_malformed_column(hits, sa.func.max),
            )
            rows = connection.execute(statement.group_by(hits.c.k)).all()
            for k, number, *malformed in rows:
                self.reject_malformed(connection, malformed)
                key, period = keys[k]
                counts[key][period] = number
        return counts

    def users_rows(
        self,
        connection: sa.Connection,
        periods: Mapping[str, Sequence[BillingPeriod]],
        program_id: str | None,
    ) -> Iterator[tuple[str, BillingPeriod, str]]:
        """``(organization id, period, user id)`` rows, ordered by period row then user id."""
        for hits, keys in self._hits(connection, periods, program_id):
            # Ordered by id as text, as in memory, also for an integer column.
            text = hits.c.user_id
            if is_integer_id(hits.c.user_id):
                text = sa.cast(hits.c.user_id, sa.String).label("user_text")
            statement = (
                sa.select(hits.c.k, hits.c.user_id, *_malformed_column(hits), text)
                .distinct()
                .order_by(hits.c.k, text)
            )
            # Per statement: Connection.execution_options() would change the connection.
            rows = connection.execute(statement, execution_options={"yield_per": 10_000})
            for k, user_id, *malformed, _ in rows:
                if any(malformed):
                    rows.close()
                    self.reject_malformed(connection, malformed)
                key, period = keys[k]
                yield key, period, user_id

    def _hits(
        self,
        connection: sa.Connection,
        periods: Mapping[str, Sequence[BillingPeriod]],
        program_id: str | None,
    ) -> Iterator[tuple[sa.Subquery, list[tuple[str, BillingPeriod]]]]:
        """The ``(k, user_id)`` rows of every user in a match overlapping period row *k*.

        Yields subqueries, one per share of the period rows (see
        [`shares`][matchusage.sql._pushdown.Pushdown.shares]), with the
        ``(organization id, period)`` each *k* stands for.
        """
        keys = period_keys(periods)
        checked = connection.dialect.name == "sqlite"
        for source, share in self.shares(connection, keys, program_id):
            yield self._hits_query(source, share, program_id, checked), keys

    def shares(
        self,
        connection: sa.Connection,
        keys: Sequence[tuple[str, BillingPeriod]],
        program_id: str | None = None,
    ) -> Iterator[tuple[sa.CTE, list[tuple[Any, ...]]]]:
        """The period rows ``(organization_id, k, start, end)`` as CTEs, share by share.

        Row *k* is ``keys[k]``; shares come in the order of *k*. Nothing is
        written, so counting works on a read-only connection (a hot standby,
        a read-only role): PostgreSQL receives every period row in one
        statement as four bound arrays; other databases receive up to
        `values_rows` rows per statement as a ``VALUES`` list, under every
        engine's limit on bound parameters. Ids that cannot be in the mapped
        columns (a non-decimal id for an integer column) match nothing.
        """
        program = self.tables.matches.c[self.mapping.matches.program_id]
        if program_id is not None and not fits(program, program_id):
            return
        organization = self.tables.programs.c[self.mapping.programs.organization_id]
        rows = [
            (key, k, period.start, period.end)
            for k, (key, period) in enumerate(keys)
            if fits(organization, key)
        ]
        postgresql = connection.dialect.name == "postgresql"
        size = max(len(rows) if postgresql else self.values_rows, 1)
        for first in range(0, len(rows), size):
            share = rows[first : first + size]
            yield self._periods(share, organization.type, postgresql), share

    def _periods(
        self, rows: Sequence[tuple[Any, ...]], organization: Any, postgresql: bool
    ) -> sa.CTE:
        """The period rows ``(organization_id, k, period_start, period_end)`` as a CTE."""
        instant = Instant(self.mapping.naive_utc)
        columns: list[sa.ColumnClause[Any]] = [
            sa.column("organization_id", organization),
            sa.column("k", sa.Integer),
            sa.column("period_start", instant),
            sa.column("period_end", instant),
        ]
        if not postgresql:
            return sa.values(*columns, name="periods").data(list(rows)).cte("periods")
        arrays = [
            sa.cast(
                sa.bindparam(
                    f"periods_{column.name}",
                    [row[n] for row in rows],
                    type_=postgresql_types.ARRAY(column.type),
                ),
                postgresql_types.ARRAY(column.type),
            )
            for n, column in enumerate(columns)
        ]
        unnested = sa.func.unnest(*arrays).table_valued(*columns).render_derived("periods")
        return sa.select(*unnested.c).cte("periods")

    def _hits_query(
        self,
        periods: sa.FromClause,
        rows: Sequence[tuple[Any, ...]],
        program_id: str | None,
        check_text: bool,
    ) -> sa.Subquery:
        """The hits subquery; with *check_text*, a ``malformed`` column flags bad instants."""
        candidates = self.candidates(periods, rows, program_id, check_text)
        # Each candidate meets the periods it overlaps by a positive amount.
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

    def candidates(
        self,
        periods: sa.FromClause,
        rows: Sequence[tuple[Any, ...]],
        program_id: str | None,
        check_text: bool,
    ) -> sa.Subquery:
        """``(organization_id, started_at, ended_at, user_id)`` of every match in the window.

        The window runs from the first period start to the last period end
        of *rows*, for the organizations of *periods*; one row per
        participant. With *check_text*, a ``malformed`` column flags bad
        instants.

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
        first, last = min(row[2] for row in rows), max(row[3] for row in rows)
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
        return sa.union_all(*selects).subquery("candidates")

    def reject_malformed(self, connection: sa.Connection, malformed: Sequence[Any]) -> None:
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


def period_keys(periods: Mapping[str, Sequence[BillingPeriod]]) -> list[tuple[str, BillingPeriod]]:
    """Every distinct ``(organization id, period)`` pair, in order: the period rows."""
    return list(dict.fromkeys((key, p) for key, value in periods.items() for p in value))
