"""The SQL match repository: the public class, its connections, reads and writes.

Converting rows is `_rows`' job, building tables `_schema`'s, counting in the
database `_pushdown`'s; this module ties them to an engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import groupby
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa

from .._batch import batch_periods
from .._model import Match, Organization, Program, User
from .._periods import BillingPeriod
from .._sweep import check_periods
from .._time import require_aware
from ..exceptions import DuplicateMatchError, InvalidRecordError, UnknownRecordError
from ._errors import database_errors
from ._mapping import SchemaMapping
from ._pushdown import Pushdown
from ._rows import RowMapper
from ._schema import Tables, build_tables

Tally = TypeVar("Tally", bound=Mapping[str, Mapping[BillingPeriod, Any]])

_CHUNK = 900
"""Ids per ``IN (...)`` list: well under every engine's bound-parameter limit."""

Records = Organization | Program | User | Match


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for first in range(0, len(items), _CHUNK):
        yield items[first : first + _CHUNK]


@attrs.define
class SQLRepository:
    """A [`MatchRepository`][matchusage.protocols.MatchRepository] over SQL tables.

    Works on any database SQLAlchemy 2 reaches; SQLite is the embedded
    default, PostgreSQL the server it is tested on. With the default
    [`SchemaMapping`][matchusage.sql.SchemaMapping] it uses its own tables
    (see [`create_schema`][matchusage.sql.SQLRepository.create_schema]); with
    an explicit mapping it reads an application's existing tables and never
    changes them unless asked to write.

    Besides the port's methods it counts active users **inside the
    database**: one SQL statement for many periods, or for the closed
    periods of every organization at once, without loading match rows.
    Those counts equal the in-memory engine's on every input.

    Every value travels as a bound parameter and every identifier from the
    mapping is quoted by SQLAlchemy. A database error raises
    [`RepositoryError`][matchusage.exceptions.RepositoryError] with the
    database's error as its cause; a failed write is rolled back whole.

    Attributes:
        engine: A SQLAlchemy engine, e.g. ``sqlalchemy.create_engine("sqlite:///usage.db")``.
        mapping: Which tables and columns hold the records.
    """

    engine: sa.Engine
    mapping: SchemaMapping = attrs.field(factory=SchemaMapping)
    _tables: Tables = attrs.field(init=False)
    _rows: RowMapper = attrs.field(init=False, repr=False)
    _pushdown: Pushdown = attrs.field(init=False, repr=False)
    _columns_checked: bool = attrs.field(default=False, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._tables = build_tables(self.mapping)
        self._rows = RowMapper(self.mapping, self._tables)
        self._pushdown = Pushdown(self.mapping, self._tables)

    # -- schema -------------------------------------------------------------------------

    def create_schema(self) -> None:
        """Create the mapped tables and the recommended indexes that do not exist yet.

        Existing tables are left as they are, but the indexes are added to
        them too. The indexes are listed on the
        [Counting inside the database](../counting-in-the-database.md#indexes) page.
        """
        with self._writing("create_schema") as connection:
            self._tables.metadata.create_all(connection, checkfirst=True)
            for index in self._tables.indexes:
                index.create(connection, checkfirst=True)
        self._columns_checked = True

    def create_indexes(self) -> None:
        """Create only the recommended indexes that do not exist yet (for existing tables)."""
        with self._writing("create_indexes") as connection:
            for index in self._tables.indexes:
                index.create(connection, checkfirst=True)

    @contextmanager
    def _reading(self, what: str) -> Iterator[sa.Connection]:
        with database_errors(what), self.engine.connect() as connection:
            self._check_columns(connection)
            yield connection

    @contextmanager
    def _writing(self, what: str) -> Iterator[sa.Connection]:
        with database_errors(what, writing=True), self.engine.begin() as connection:
            yield connection

    def _check_columns(self, connection: sa.Connection) -> None:
        """Refuse to compare aware instants with naive columns, or the reverse.

        PostgreSQL would silently convert between the two using the
        session's time zone, and every count would be off by its offset.
        """
        if self._columns_checked or connection.dialect.name != "postgresql":
            return
        inspector = sa.inspect(connection)
        o, m = self.mapping.organizations, self.mapping.matches
        for table, names in ((o.table, [o.cycle_anchor]), (m.table, [m.started_at, m.ended_at])):
            types = {
                c["name"]: c["type"] for c in inspector.get_columns(table, self.mapping.schema)
            }
            for name in names:
                kind = types.get(name)
                aware = getattr(kind, "timezone", None)
                if isinstance(kind, sa.DateTime) and aware == self.mapping.naive_utc:
                    raise InvalidRecordError(
                        "SchemaMapping",
                        "naive_utc",
                        self.mapping.naive_utc,
                        f"{not self.mapping.naive_utc} because column {table}.{name} "
                        f"is {kind.compile(dialect=connection.dialect)}",
                    )
        self._columns_checked = True

    # -- the port -----------------------------------------------------------------------

    def organizations(self) -> list[Organization]:
        """Every organization, ordered by id."""
        table = self._tables.organizations
        with self._reading("organizations") as connection:
            rows = connection.execute(
                sa.select(table).order_by(table.c[self.mapping.organizations.id])
            )
            return [self._rows.organization(row._mapping) for row in rows]

    def organization(self, organization_id: str) -> Organization:
        """One organization, by id.

        Raises:
            matchusage.exceptions.UnknownRecordError: No organization has that id.
        """
        with self._reading("organization") as connection:
            return self._rows.organization(self._organization_row(connection, organization_id))

    def _organization_row(self, connection: sa.Connection, organization_id: str) -> Any:
        table = self._tables.organizations
        row = connection.execute(
            sa.select(table).where(table.c[self.mapping.organizations.id] == organization_id)
        ).first()
        if row is None:
            raise UnknownRecordError("organization", organization_id)
        return row._mapping

    def programs(self, organization_id: str) -> list[Program]:
        """The programs of an organization, ordered by id.

        Raises:
            matchusage.exceptions.UnknownRecordError: No organization has that id.
        """
        p = self.mapping.programs
        table = self._tables.programs
        with self._reading("programs") as connection:
            self._organization_row(connection, organization_id)
            return [
                self._rows.program(row)
                for row in connection.execute(
                    sa.select(*self._columns(table, p.id, p.organization_id, p.name))
                    .where(table.c[p.organization_id] == organization_id)
                    .order_by(table.c[p.id])
                )
            ]

    @staticmethod
    def _columns(table: sa.Table, *names: str | None) -> list[sa.ColumnElement[Any]]:
        """The named columns of *table*; ``NULL`` for an unmapped (``None``) one."""
        return [sa.null() if name is None else table.c[name] for name in names]

    def users(self, user_ids: Iterable[str]) -> dict[str, User]:
        """The known users among *user_ids*, keyed by id."""
        u = self.mapping.users
        table = self._tables.users
        wanted = sorted(set(user_ids))
        found: dict[str, User] = {}
        columns = self._columns(table, u.id, u.name, u.email)
        with self._reading("users") as connection:
            for chunk in _chunks(wanted):
                rows = connection.execute(sa.select(*columns).where(table.c[u.id].in_(chunk)))
                for row in rows:
                    user = self._rows.user(row)
                    found[user.id] = user
        return found

    def matches(
        self,
        organization_id: str,
        *,
        start: datetime,
        end: datetime,
        program_id: str | None = None,
    ) -> list[Match]:
        """The matches of an organization overlapping ``[start, end)``, ordered by id.

        Read in one statement; a match without any participant (no
        participant row, or ``NULL`` mentor and mentee) is left out, as
        it has no one to count.

        Raises:
            matchusage.exceptions.UnknownRecordError: No organization has that id.
            matchusage.exceptions.InvalidMatchError: A stored match is invalid
                (naive instants without ``naive_utc``, an unknown role, ...).
            matchusage.exceptions.RepositoryError: The database failed.
        """
        require_aware(start, "matches", "start", InvalidRecordError)
        require_aware(end, "matches", "end", InvalidRecordError)
        t, mm = self._tables, self.mapping.matches
        m, g = t.matches, t.programs
        columns = [
            m.c[mm.id].label("id"),
            m.c[mm.program_id].label("program_id"),
            m.c[mm.started_at].label("started_at"),
            m.c[mm.ended_at].label("ended_at"),
        ]
        joined = m.join(g, g.c[self.mapping.programs.id] == m.c[mm.program_id])
        conditions = [
            g.c[self.mapping.programs.organization_id] == organization_id,
            m.c[mm.started_at] < end,
            sa.or_(m.c[mm.ended_at].is_(None), m.c[mm.ended_at] > start),
        ]
        if program_id is not None:
            conditions.append(m.c[mm.program_id] == program_id)
        j = self.mapping.participants
        if t.participants is not None and j is not None:
            joined = joined.join(t.participants, t.participants.c[j.match_id] == m.c[mm.id])
            columns += [
                t.participants.c[j.user_id].label("a"),
                (t.participants.c[j.role] if j.role else sa.null()).label("b"),
            ]
            order = [m.c[mm.id], t.participants.c[j.user_id]]
        else:
            assert mm.mentor is not None  # checked by SchemaMapping
            assert mm.mentee is not None
            columns += [m.c[mm.mentor].label("a"), m.c[mm.mentee].label("b")]
            conditions.append(sa.or_(m.c[mm.mentor].is_not(None), m.c[mm.mentee].is_not(None)))
            order = [m.c[mm.id]]
        statement = sa.select(*columns).select_from(joined).where(*conditions).order_by(*order)
        with self._reading("matches") as connection:
            rows = connection.execute(statement).all()
            if not rows:
                self._organization_row(connection, organization_id)
        return [self._rows.match(list(group)) for _, group in groupby(rows, key=lambda r: r.id)]

    # -- writing ------------------------------------------------------------------------

    def add(self, *records: Records) -> None:
        """Insert organizations, programs, users and matches, in one transaction.

        Records are checked first, as by
        [`InMemoryRepository.add`][matchusage.memory.InMemoryRepository.add];
        if any is rejected, or the database refuses one (an id already
        stored, say), nothing is written.

        Raises:
            matchusage.exceptions.UnknownRecordError: A program's organization
                or a match's program is unknown.
            matchusage.exceptions.DuplicateMatchError: A match id is already taken.
            matchusage.exceptions.InvalidMatchError: A match does not fit the
                mapping (a group match in mentor/mentee columns).
            matchusage.exceptions.RepositoryError: The database failed.
        """
        kinds: dict[type, list[Any]] = {Organization: [], Program: [], User: [], Match: []}
        for record in records:
            if type(record) not in kinds:
                raise InvalidRecordError(
                    "SQLRepository.add", "record", record, "an Organization, Program, User or Match"
                )
            kinds[type(record)].append(record)
        organizations: list[Organization] = kinds[Organization]
        programs: list[Program] = kinds[Program]
        matches: list[Match] = kinds[Match]
        rows = {
            "organizations": [self._rows.organization_values(o) for o in organizations],
            "programs": [self._rows.program_values(p) for p in programs],
            "users": [self._rows.user_values(u) for u in kinds[User]],
            "matches": [self._rows.match_values(m) for m in matches],
        }
        with self._writing("add") as connection:
            known_orgs = {o.id for o in organizations} | self._existing(
                connection, "organizations", [p.organization_id for p in programs]
            )
            for program in programs:
                if program.organization_id not in known_orgs:
                    raise UnknownRecordError(
                        "organization", program.organization_id, context=f"Program {program.id!r}"
                    )
            known_programs = {p.id for p in programs} | self._existing(
                connection, "programs", [m.program_id for m in matches]
            )
            taken = self._existing(connection, "matches", [m.id for m in matches])
            for match in matches:
                if match.program_id not in known_programs:
                    raise UnknownRecordError(
                        "program", match.program_id, context=f"Match {match.id!r}"
                    )
                if match.id in taken:
                    raise DuplicateMatchError(match.id)
                taken.add(match.id)
            for name, values in rows.items():
                if values:
                    connection.execute(getattr(self._tables, name).insert(), values)
            self._insert_participants(connection, matches)

    def save_match(self, match: Match) -> None:
        """Insert *match*, or replace the match with the same id (e.g. to end it).

        Raises:
            matchusage.exceptions.UnknownRecordError: The match's program is unknown.
            matchusage.exceptions.RepositoryError: The database failed.
        """
        values = self._rows.match_values(match)
        mm, t = self.mapping.matches, self._tables
        with self._writing("save_match") as connection:
            if not self._existing(connection, "programs", [match.program_id]):
                raise UnknownRecordError("program", match.program_id, context=f"Match {match.id!r}")
            if t.participants is not None and self.mapping.participants is not None:
                column = t.participants.c[self.mapping.participants.match_id]
                connection.execute(t.participants.delete().where(column == match.id))
            connection.execute(t.matches.delete().where(t.matches.c[mm.id] == match.id))
            connection.execute(t.matches.insert(), [values])
            self._insert_participants(connection, [match])

    def _existing(self, connection: sa.Connection, name: str, ids: Iterable[str]) -> set[str]:
        table: sa.Table = getattr(self._tables, name)
        column = table.c[getattr(self.mapping, name).id]
        found: set[str] = set()
        for chunk in _chunks(sorted(set(ids))):
            found.update(connection.scalars(sa.select(column).where(column.in_(chunk))))
        return found

    def _insert_participants(self, connection: sa.Connection, matches: Sequence[Match]) -> None:
        rows = self._rows.participant_values(matches)
        if rows and self._tables.participants is not None:
            connection.execute(self._tables.participants.insert(), rows)

    # -- counting in the database -------------------------------------------------------

    def count_active_users(
        self,
        organization_id: str,
        periods: Iterable[BillingPeriod],
        *,
        program_id: str | None = None,
    ) -> dict[BillingPeriod, int]:
        """The number of active users of an organization in each period, in one statement.

        Equal to ``{p: len(users) for p, users in active_users_by_period(...).items()}``
        computed in memory, but the database does the counting.

        Args:
            organization_id: The organization.
            periods: Any billing periods.
            program_id: Only this program's matches, if given.

        Returns:
            Each period's count, in the order the periods were given.

        Raises:
            matchusage.exceptions.UnknownRecordError: No organization has that id.
            matchusage.exceptions.RepositoryError: The database failed.
        """
        periods = check_periods(periods)
        with self._reading("count_active_users") as connection:
            counts = self._pushdown.count(connection, {organization_id: periods}, program_id)
            self._require_organizations(connection, counts)
        return counts.get(organization_id, {})

    def active_users_by_period(
        self,
        organization_id: str,
        periods: Iterable[BillingPeriod],
        *,
        program_id: str | None = None,
    ) -> dict[BillingPeriod, frozenset[str]]:
        """The ids of an organization's active users in each period, selected by the database.

        Equal to [`matchusage.active_users_by_period`][matchusage.active_users_by_period]
        over [`OrganizationMatches`][matchusage.OrganizationMatches], but only
        the ids travel, never the matches.

        Raises:
            matchusage.exceptions.UnknownRecordError: No organization has that id.
            matchusage.exceptions.RepositoryError: The database failed.
        """
        periods = check_periods(periods)
        found: dict[BillingPeriod, set[str]] = {period: set() for period in periods}
        for period, user_id in self._iter_users(organization_id, periods, program_id):
            found[period].add(user_id)
        return {period: frozenset(users) for period, users in found.items()}

    def iter_active_users(
        self,
        organization_id: str,
        periods: Iterable[BillingPeriod],
        *,
        program_id: str | None = None,
    ) -> Iterator[tuple[BillingPeriod, str]]:
        """Stream ``(period, user id)`` pairs, ordered by period then user id, from one statement.

        Rows are fetched in batches through a server-side cursor where the
        driver has one, so an export of millions of ids runs in constant
        memory. If the database fails mid-stream, the pairs already yielded
        stay yielded and [`RepositoryError`][matchusage.exceptions.RepositoryError]
        is raised; collect with
        [`active_users_by_period`][matchusage.sql.SQLRepository.active_users_by_period]
        for all or nothing.
        """
        return self._iter_users(organization_id, check_periods(periods), program_id)

    def _iter_users(
        self, organization_id: str, periods: Sequence[BillingPeriod], program_id: str | None
    ) -> Iterator[tuple[BillingPeriod, str]]:
        if not periods:
            return
        with self._reading("active users") as connection:
            found = False
            for _, period, user_id in self._pushdown.users_rows(
                connection, {organization_id: periods}, program_id
            ):
                found = True
                yield period, user_id
            if not found:
                self._organization_row(connection, organization_id)

    def count_by_organization(
        self, periods: Mapping[str, Iterable[BillingPeriod]]
    ) -> dict[str, dict[BillingPeriod, int]]:
        """Count the active users of many organizations, each over its own periods, at once.

        One statement counts every (organization, period) pair.

        Args:
            periods: For each organization id, its billing periods.

        Returns:
            For each organization, each period's count (zero included).

        Raises:
            matchusage.exceptions.UnknownRecordError: An organization is unknown.
            matchusage.exceptions.RepositoryError: The database failed.
        """
        return self._by_organization("count_by_organization", periods, self._pushdown.count)

    def active_users_by_organization(
        self, periods: Mapping[str, Iterable[BillingPeriod]]
    ) -> dict[str, dict[BillingPeriod, frozenset[str]]]:
        """The active user ids of many organizations, each over its own periods, in one statement.

        Raises:
            matchusage.exceptions.UnknownRecordError: An organization is unknown.
            matchusage.exceptions.RepositoryError: The database failed.
        """
        collect = self._pushdown.collect
        return self._by_organization("active_users_by_organization", periods, collect)

    def _by_organization(
        self,
        what: str,
        periods: Mapping[str, Iterable[BillingPeriod]],
        tally: Callable[[sa.Connection, Mapping[str, Sequence[BillingPeriod]]], Tally],
    ) -> Tally:
        """*tally* over the given periods of organizations that must all exist."""
        checked = {key: check_periods(value) for key, value in periods.items()}
        with self._reading(what) as connection:
            found = tally(connection, checked)
            self._require_organizations(connection, found)
            return found

    def _closed_periods(self, before: datetime, count: int) -> dict[str, list[BillingPeriod]]:
        """The last *count* closed periods of every organization, as ``batch_periods`` gives."""
        require_aware(before, "SQLRepository", "before", InvalidRecordError)
        return batch_periods(self.organizations(), now=before, count=count)

    def count_closed_periods(
        self, *, before: datetime, count: int = 6
    ) -> dict[str, dict[BillingPeriod, int]]:
        """The usage report of every organization: counts of its last *count* closed periods.

        The periods are computed in Python from each organization's cycle
        (anchor and time zone) and sent to the database as rows; one
        statement counts them all.

        Returns:
            Organization id -> period -> number of active users.
        """
        periods = self._closed_periods(before, count)
        with self._reading("count_closed_periods") as connection:
            return self._pushdown.count(connection, periods)

    def active_users_closed_periods(
        self, *, before: datetime, count: int = 6
    ) -> dict[str, dict[BillingPeriod, frozenset[str]]]:
        """The active user ids of every organization in its last *count* closed periods.

        Returns:
            Organization id -> period -> ids of the active users.
        """
        periods = self._closed_periods(before, count)
        with self._reading("active_users_closed_periods") as connection:
            return self._pushdown.collect(connection, periods)

    def _require_organizations(
        self, connection: sa.Connection, found: Mapping[str, Mapping[BillingPeriod, Any]]
    ) -> None:
        """Raise if an organization is unknown, given what the counting *found* for each.

        An organization with an active user in any period exists, so only the
        others are looked up: counting stays one statement whenever every
        organization had some activity.
        """
        idle = [key for key, value in found.items() if not any(value.values())]
        missing = set(idle) - self._existing(connection, "organizations", idle)
        if missing:
            raise UnknownRecordError("organization", min(missing))
