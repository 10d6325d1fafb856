"""Counting pushed into the database: the periods travel as rows, only counts or ids return."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs
import sqlalchemy as sa

from .._periods import BillingPeriod
from ._bound import bound_rows
from ._mapping import SchemaMapping
from ._plan import reads_large_share, use_plan
from ._rows import RowMapper
from ._schema import Instant, Tables, fits, is_integer_id

T = TypeVar("T")


@attrs.frozen
class Tally(Generic[T]):
    """What a counting statement found: a result per organization and period, and the refused.

    Attributes:
        results: Organization id -> period -> result (zeros and empty sets included).
        refused: The organizations with a stored match that reading it as a
            [`Match`][matchusage.Match] refuses (see
            [`RowMapper.refused`][matchusage.sql._rows.RowMapper.refused]); their
            results are incomplete and must not be used.
    """

    results: dict[str, dict[BillingPeriod, T]]
    refused: frozenset[str]


@attrs.define
class Pushdown:
    """Builds and runs the counting statements of a mapping.

    Each statement joins the periods (sent as rows) to the candidate matches
    of the window and their participants; see the "Counting in the database"
    page for its shape.
    """

    mapping: SchemaMapping
    tables: Tables
    # Period rows per VALUES list outside PostgreSQL: at five bound parameters
    # a row, under SQLite's limit of 32,766.
    values_rows: int = 1000

    def collect(
        self, connection: sa.Connection, periods: Mapping[str, Sequence[BillingPeriod]]
    ) -> Tally[frozenset[str]]:
        found = {key: {period: set[str]() for period in value} for key, value in periods.items()}
        refused: set[str] = set()
        for key, period, user_id in self.users_rows(connection, periods, None, refused):
            found[key][period].add(user_id)
        results = {
            key: {period: frozenset(users) for period, users in value.items()}
            for key, value in found.items()
        }
        return Tally(results, frozenset(refused))

    def count(
        self,
        connection: sa.Connection,
        periods: Mapping[str, Sequence[BillingPeriod]],
        program_id: str | None = None,
    ) -> Tally[int]:
        counts = {key: dict.fromkeys(value, 0) for key, value in periods.items()}
        refused: set[str] = set()
        for hits, keys in self._hits(connection, periods, program_id):
            statement = sa.select(hits.c.k, sa.func.count(sa.distinct(hits.c.user_id)))
            for k, number in connection.execute(statement.group_by(hits.c.k)):
                key, period = keys[k]
                if period is None:
                    refused.add(key)
                else:
                    counts[key][period] = number
        return Tally(counts, frozenset(refused))

    def users_rows(
        self,
        connection: sa.Connection,
        periods: Mapping[str, Sequence[BillingPeriod]],
        program_id: str | None,
        refused: set[str],
    ) -> Iterator[tuple[str, BillingPeriod, str]]:
        """``(organization id, period, user id)`` rows, ordered by period row then user id.

        The organizations with a refused row are added to *refused*, and
        their rows left out. Span rows come first (in the first shares, see
        [`shares`][matchusage.sql._pushdown.Pushdown.shares]), so an
        organization is refused before any of its rows is yielded.
        """
        for hits, keys in self._hits(connection, periods, program_id):
            # Ordered by id as text, as in memory, also for an integer column.
            text = hits.c.user_id
            if is_integer_id(hits.c.user_id):
                text = sa.cast(hits.c.user_id, sa.String).label("user_text")
            statement = (
                sa.select(hits.c.k, hits.c.user_id, text).distinct().order_by(hits.c.k, text)
            )
            # Per statement: Connection.execution_options() would change the connection.
            rows = connection.execute(statement, execution_options={"yield_per": 10_000})
            for k, user_id, _ in rows:
                key, period = keys[k]
                if period is None:
                    refused.add(key)
                elif key not in refused:
                    yield key, period, user_id

    def _hits(
        self,
        connection: sa.Connection,
        periods: Mapping[str, Sequence[BillingPeriod]],
        program_id: str | None,
    ) -> Iterator[tuple[sa.Subquery, list[tuple[str, BillingPeriod | None]]]]:
        """The ``(k, user_id)`` rows of every user in a match overlapping row *k*'s span.

        Row *k* is a period of an organization, or the span of all its
        periods, which only refused rows meet (see `shares`): an
        organization has a refused match in its window if its span row has a
        hit. Yields subqueries, one per share of the rows, with the
        ``(organization id, period)`` each *k* stands for (``None`` for a span).
        """
        keys = period_keys(periods)
        labels: list[tuple[str, BillingPeriod | None]] = [(key, None) for key in _spans(keys)]
        labels += keys
        for source, share in self.shares(connection, labels, program_id):
            if connection.dialect.name == "postgresql":  # one share: every row
                large = reads_large_share(connection, self.mapping, self.tables, share, program_id)
                use_plan(connection, large)
            yield self._hits_query(source, share, program_id, connection.dialect.name), labels

    def shares(
        self,
        connection: sa.Connection,
        labels: Sequence[tuple[str, BillingPeriod | None]],
        program_id: str | None = None,
    ) -> Iterator[tuple[sa.CTE, list[tuple[Any, ...]]]]:
        """The rows ``(organization_id, k, start, end, span)`` as CTEs, share by share.

        Row *k* is ``labels[k]``: a period of an organization, or (with
        ``span`` 1, period ``None``) the window from the first start to the
        last end of the organization's periods, the window
        [`matches`][matchusage.sql.SQLRepository.matches] reads them over.
        Shares come in the order of *k*. Nothing is written, so counting works
        on a read-only connection (a hot standby, a read-only role):
        PostgreSQL receives every row in one statement as five bound arrays;
        other databases receive up to `values_rows` rows per statement as a
        ``VALUES`` list, under every engine's limit on bound parameters. Ids
        that cannot be in the mapped columns (a non-decimal id for an integer
        column) match nothing.
        """
        program = self.tables.matches.c[self.mapping.matches.program_id]
        if program_id is not None and not fits(program, program_id):
            return
        organization = self.tables.programs.c[self.mapping.programs.organization_id]
        spans = _spans([(key, period) for key, period in labels if period is not None])
        rows = [
            (key, k, *((period.start, period.end, 0) if period else (*spans[key], 1)))
            for k, (key, period) in enumerate(labels)
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
        """The period rows as a CTE (columns: see `shares`)."""
        instant = Instant(self.mapping.naive_utc)
        columns: list[sa.ColumnClause[Any]] = [
            sa.column("organization_id", organization),
            sa.column("k", sa.Integer),
            sa.column("period_start", instant),
            sa.column("period_end", instant),
            sa.column("span", sa.Integer),
        ]
        bound = bound_rows("periods", columns, rows, postgresql)
        return bound if isinstance(bound, sa.CTE) else sa.select(*bound.c).cte("periods")

    def _hits_query(
        self,
        periods: sa.FromClause,
        rows: Sequence[tuple[Any, ...]],
        program_id: str | None,
        dialect: str,
    ) -> sa.Subquery:
        """The hits subquery of one share (see `_hits`)."""
        candidates = self.candidates(periods, rows, program_id, dialect)
        c, p = candidates.c, periods.c
        # Each candidate meets the periods it overlaps by a positive amount,
        # and a refused one its organization's span too. (Reading matches
        # meets one ending before it starts by the same comparisons.)
        on = sa.and_(
            c.organization_id == p.organization_id,
            c.started_at < p.period_end,
            sa.or_(c.ended_at.is_(None), c.ended_at > p.period_start),
            sa.or_(p.span == 0, c.refused.is_not(None)),
        )
        return sa.select(p.k, c.user_id).select_from(periods.join(candidates, on)).subquery("hits")

    def candidates(
        self,
        periods: sa.FromClause,
        rows: Sequence[tuple[Any, ...]],
        program_id: str | None,
        dialect: str,
    ) -> sa.Subquery:
        """``(organization_id, started_at, ended_at, user_id, refused)`` of the window's matches.

        The window runs from the first start to the last end of *rows* (see
        `shares`), for the organizations of *periods*; one row per
        participant. ``refused`` is 1 on the rows of a match that
        reading it as a [`Match`][matchusage.Match] refuses
        ([`RowMapper.refused`][matchusage.sql._rows.RowMapper.refused] on
        the connection's *dialect*), ``NULL`` on the others. Such rows are
        kept even where they would count no one (a zero-length match, a
        participant row without a user), so that counting refuses what
        reading the matches over each organization's span refuses.
        """
        t, mm, pp = self.tables, self.mapping.matches, self.mapping.programs
        m, g = t.matches, t.programs
        started, ended = m.c[mm.started_at], m.c[mm.ended_at]
        first, last = min(row[2] for row in rows), max(row[3] for row in rows)
        # First the candidates: every (organization, start, end, user) of a
        # match in the whole window, each match joined to its participants
        # once. Ongoing and ended matches are read separately: without an OR,
        # each half reads one range of the (program, ended_at, started_at)
        # index. Zero-length matches overlap nothing and are left out here,
        # unless refused.
        organizations = sa.select(periods.c.organization_id)
        j = self.mapping.participants
        # (user, role, participants table, its match id column) per source of users
        users: list[tuple[Any, Any, sa.Table | None, Any]]
        if t.participants is not None and j is not None:
            p = t.participants
            role = p.c[j.role] if j.role else None
            users = [(p.c[j.user_id], role, p, p.c[j.match_id])]
        else:
            assert mm.mentor is not None  # checked by SchemaMapping
            assert mm.mentee is not None
            users = [(m.c[mm.mentor], None, None, None), (m.c[mm.mentee], None, None, None)]
        mapper = RowMapper(self.mapping, t)
        known = mapper.known_organization()
        selects = []
        for user, role, table, match_id in users:
            refused = mapper.refused(dialect, user, role)
            halves = [
                [ended.is_(None), started < last],
                [ended > first, started < last, sa.or_(ended > started, refused)],
            ]
            if program_id is not None:
                halves = [[*half, m.c[mm.program_id] == program_id] for half in halves]
            # A NULL mentor or mentee is no one; a participant row without a user is refused.
            present = [] if table is not None else [user.is_not(None)]
            for half in halves:
                source = m.join(g, g.c[pp.id] == m.c[mm.program_id])
                if table is not None and match_id is not None:
                    source = source.join(table, match_id == m.c[mm.id])
                selects.append(
                    sa.select(
                        g.c[pp.organization_id].label("organization_id"),
                        started.label("started_at"),
                        ended.label("ended_at"),
                        user.label("user_id"),
                        sa.case((refused, 1), else_=sa.null()).label("refused"),
                    )
                    .select_from(source)
                    .where(g.c[pp.organization_id].in_(organizations), *half, *present, *known)
                )
        return sa.union_all(*selects).subquery("candidates")


def _spans(keys: Sequence[tuple[str, BillingPeriod]]) -> dict[str, tuple[datetime, datetime]]:
    """Each organization's window: its periods' first start and last end."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for key, period in keys:
        start, end = spans.get(key, (period.start, period.end))
        spans[key] = (min(start, period.start), max(end, period.end))
    return spans


def period_keys(periods: Mapping[str, Sequence[BillingPeriod]]) -> list[tuple[str, BillingPeriod]]:
    """Every distinct ``(organization id, period)`` pair, in order: the period rows."""
    return list(dict.fromkeys((key, p) for key, value in periods.items() for p in value))
