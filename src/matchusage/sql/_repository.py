"""The SQL match repository: the public class, its connections, reads and writes.

Converting rows is `_rows`' job, building tables `_schema`'s, counting in the
database `_pushdown`'s; this module ties them to an engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import groupby
from typing import Any, Literal, TypeVar

import attrs
import sqlalchemy as sa

from .._batch import batch_periods
from .._columnar import MatchColumns, columnar_active_users, columnar_counts
from .._model import Match, Organization, Program, User
from .._periods import BillingPeriod
from .._source import OrganizationMatches
from .._sweep import check_periods
from .._time import require_aware
from .._usage import active_users_by_period
from ..exceptions import (
    DuplicateMatchError,
    DuplicateRecordError,
    InvalidRecordError,
    MatchUsageError,
    RepositoryError,
    UnknownRecordError,
)
from ._columns import FetchedColumns, fetch_columns, packed_available
from ._errors import database_errors
from ._mapping import SchemaMapping
from ._pushdown import Pushdown, Tally
from ._results import BatchResults
from ._rows import RowMapper
from ._schema import Tables, build_tables, fits, unique_match_ids
from ._schema import integer_ids as schema_integer_ids

T = TypeVar("T")

Plan = Mapping[str, Sequence[BillingPeriod]]
"""Organization id -> the periods to count it over."""

_CHUNK = 900
"""Ids per ``IN (...)`` list: well under every engine's bound-parameter limit."""

Records = Organization | Program | User | Match

_KINDS = {"organizations": "organization", "programs": "program", "users": "user"}
"""The record kind of each table ``add`` refuses existing ids in (matches have their own error)."""


Method = Literal["auto", "database", "columns"]
"""How a batch over every organization is counted: by the database, or by columns read out."""

Ways = tuple[
    Callable[[MatchColumns, Plan], Mapping[str, Mapping[BillingPeriod, T]]],
    Callable[[sa.Connection, Plan], Tally[T]],
    Callable[[frozenset[str]], T],
]
"""How to get results of type T: from the columns read out, by the database, and from the
users of an organization read back as objects."""


def _by_id(record: Organization | Program | Match) -> str:
    return record.id


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
    _prepared: bool = attrs.field(default=False, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._use_tables(build_tables(self.mapping))

    def _use_tables(self, tables: Tables) -> None:
        self._tables = tables
        self._rows = RowMapper(self.mapping, tables)
        self._pushdown = Pushdown(self.mapping, tables)

    # -- schema -------------------------------------------------------------------------

    def create_schema(self) -> None:
        """Create the mapped tables and the recommended indexes that do not exist yet.

        Existing tables are left as they are, but the indexes are added to
        them too. The indexes are listed on the
        [Counting inside the database](../counting-in-the-database.md#indexes) page.
        """
        with self._writing("create_schema", prepare=False) as connection:
            self._tables.metadata.create_all(connection, checkfirst=True)
            for index in self._tables.indexes:
                index.create(connection, checkfirst=True)
        self._prepared = False  # tables that existed may hold integer ids

    def create_indexes(self) -> None:
        """Create only the recommended indexes that do not exist yet (for existing tables)."""
        with self._writing("create_indexes", prepare=False) as connection:
            for index in self._tables.indexes:
                index.create(connection, checkfirst=True)

    @contextmanager
    def _reading(self, what: str, *, one_snapshot: bool = False) -> Iterator[sa.Connection]:
        """A connection to read with, inside `database_errors`.

        With *one_snapshot*, on PostgreSQL, its reads all see the database as
        it was at the first of them (a ``REPEATABLE READ`` transaction), so
        that a second connection can share that snapshot.
        """
        with database_errors(what), self.engine.connect() as connection:
            if one_snapshot and connection.dialect.name == "postgresql":
                connection.execution_options(isolation_level="REPEATABLE READ")
            self._prepare(connection, what)
            yield connection

    @contextmanager
    def _writing(self, what: str, *, prepare: bool = True) -> Iterator[sa.Connection]:
        with database_errors(what, writing=True), self.engine.begin() as connection:
            if prepare:
                self._prepare(connection, what)
            yield connection

    def _prepare(self, connection: sa.Connection, what: str) -> None:
        """On first use, read the catalog: integer id columns, missing tables, naive instants,
        and whether match ids are unique."""
        if self._prepared:
            return
        integer_ids = schema_integer_ids(connection, self.mapping, what)
        unique = unique_match_ids(connection, self.mapping)
        self._use_tables(build_tables(self.mapping, integer_ids, unique_match_ids=unique))
        self._prepared = True

    # -- the port -----------------------------------------------------------------------

    def organizations(self) -> list[Organization]:
        """Every organization, ordered by id.

        Raises:
            matchusage.exceptions.InvalidCycleError: A stored organization is
                invalid (a cycle of 0 units, an unknown zone); see
                [`checked_organizations`][matchusage.sql.SQLRepository.checked_organizations]
                to list the others anyway.
        """
        with self._reading("organizations") as connection:
            rows = connection.execute(sa.select(self._tables.organizations)).all()
        # Ordered by id as text, as in memory, whatever the column's type.
        return sorted((self._rows.organization(row._mapping) for row in rows), key=_by_id)

    def checked_organizations(self) -> tuple[list[Organization], dict[str, MatchUsageError]]:
        """The valid organizations ordered by id, and the error of each invalid stored row.

        One bad row (a cycle of 0 units or ``NULL``, an unknown zone) is
        reported under its id instead of stopping the list: this is how
        [`billing_run`][matchusage.billing.billing_run] bills the others.
        """
        with self._reading("organizations") as connection:
            return self._checked_organizations(connection)

    def _checked_organizations(
        self, connection: sa.Connection
    ) -> tuple[list[Organization], dict[str, MatchUsageError]]:
        table = self._tables.organizations
        key = table.c[self.mapping.organizations.id]
        organizations: list[Organization] = []
        failed: dict[str, MatchUsageError] = {}
        for row in connection.execute(sa.select(table)):
            try:
                organizations.append(self._rows.organization(row._mapping))
            except MatchUsageError as error:  # this organization only
                failed[row._mapping[key]] = error
        organizations.sort(key=_by_id)
        return organizations, failed

    def organization(self, organization_id: str) -> Organization:
        """One organization, by id.

        Raises:
            matchusage.exceptions.UnknownRecordError: No organization has that id.
        """
        with self._reading("organization") as connection:
            return self._rows.organization(self._organization_row(connection, organization_id))

    def _organization_row(self, connection: sa.Connection, organization_id: str) -> Any:
        table = self._tables.organizations
        column = table.c[self.mapping.organizations.id]
        row = None
        if fits(column, organization_id):
            row = connection.execute(sa.select(table).where(column == organization_id)).first()
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
            rows = connection.execute(
                sa.select(*self._columns(table, p.id, p.organization_id, p.name)).where(
                    table.c[p.organization_id] == organization_id
                )
            ).all()
        return sorted((self._rows.program(row) for row in rows), key=_by_id)

    @staticmethod
    def _columns(table: sa.Table, *names: str | None) -> list[sa.ColumnElement[Any]]:
        """The named columns of *table*; ``NULL`` for an unmapped (``None``) one."""
        return [sa.null() if name is None else table.c[name] for name in names]

    def users(self, user_ids: Iterable[str]) -> dict[str, User]:
        """The known users among *user_ids*, keyed by id."""
        u = self.mapping.users
        table = self._tables.users
        found: dict[str, User] = {}
        columns = self._columns(table, u.id, u.name, u.email)
        with self._reading("users") as connection:
            wanted = sorted(i for i in set(user_ids) if fits(self._tables.users.c[u.id], i))
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
                (naive instants without ``naive_utc``, an end before the
                start, a participant row without a user, an unknown role,
                on SQLite an instant's text in another form than the adapter
                writes, ...).
            matchusage.exceptions.RepositoryError: The database failed.
        """
        require_aware(start, "matches", "start", InvalidRecordError)
        require_aware(end, "matches", "end", InvalidRecordError)
        with self._reading("matches") as connection:
            statement = self._matches_statement(organization_id, start, end, program_id)
            rows = [] if statement is None else connection.execute(statement).all()
            if not rows:
                self._organization_row(connection, organization_id)
        found = [self._rows.match(list(group)) for _, group in groupby(rows, key=lambda r: r.id)]
        return sorted(found, key=_by_id)

    def _matches_statement(
        self, organization_id: str, start: datetime, end: datetime, program_id: str | None
    ) -> sa.Select[Any] | None:
        """The rows of the matches overlapping the window, grouped by match (``None``: none can)."""
        t, mm = self._tables, self.mapping.matches
        m, g = t.matches, t.programs
        columns = [
            m.c[mm.id].label("id"),
            m.c[mm.program_id].label("program_id"),
            m.c[mm.started_at].label("started_at"),
            m.c[mm.ended_at].label("ended_at"),
            *self._rows.checked_columns(self.engine.dialect.name),
        ]
        joined = m.join(g, g.c[self.mapping.programs.id] == m.c[mm.program_id])
        conditions = [
            g.c[self.mapping.programs.organization_id] == organization_id,
            m.c[mm.started_at] < end,
            sa.or_(m.c[mm.ended_at].is_(None), m.c[mm.ended_at] > start),
            *self._rows.known_organization(),
        ]
        if not fits(g.c[self.mapping.programs.organization_id], organization_id):
            return None
        if program_id is not None:
            if not fits(m.c[mm.program_id], program_id):
                return None
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
        return sa.select(*columns).select_from(joined).where(*conditions).order_by(*order)

    # -- writing ------------------------------------------------------------------------

    def add(self, *records: Records) -> None:
        """Insert organizations, programs, users and matches, in one transaction.

        Records are checked first, as by
        [`InMemoryRepository.add`][matchusage.memory.InMemoryRepository.add];
        if any is rejected, or the database refuses one, nothing is written.
        Adding never replaces a record, even an identical one.

        Raises:
            matchusage.exceptions.UnknownRecordError: A program's organization
                or a match's program is unknown.
            matchusage.exceptions.DuplicateRecordError: An organization,
                program or user id is already stored (or given twice).
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
        try:
            self._add(organizations, programs, kinds[User], matches)
        except RepositoryError as error:
            # Another writer may have stored one of the ids since they were
            # checked: that is a duplicate, not a database failure.
            written = {"organizations": organizations, "users": kinds[User], "matches": matches}
            if self._tables.programs is not self._tables.organizations:
                written["programs"] = programs  # otherwise no program row is written
            duplicate = self._taken_since(error, written)
            if duplicate is None:
                raise
            raise duplicate from error

    def _taken_since(
        self, error: RepositoryError, records: Mapping[str, Sequence[Records]]
    ) -> MatchUsageError | None:
        """The duplicate error of the first record now stored, if *error* is a refused insert.

        *records* are keyed by the table each is inserted in.
        """
        if not isinstance(error.__cause__, sa.exc.IntegrityError):
            return None
        with self._reading("add") as connection:
            for name, group in records.items():
                taken = self._existing(connection, name, [r.id for r in group])
                for record in group:
                    if record.id not in taken:
                        continue
                    if name == "matches":
                        return DuplicateMatchError(record.id)
                    return DuplicateRecordError(_KINDS[name], record.id)
        return None

    def _add(
        self,
        organizations: list[Organization],
        programs: list[Program],
        users: list[User],
        matches: list[Match],
    ) -> None:
        with self._writing("add") as connection:
            rows = {
                "organizations": [self._rows.organization_values(o) for o in organizations],
                "programs": [self._rows.program_values(p) for p in programs],
                "users": [self._rows.user_values(u) for u in users],
                "matches": [self._rows.match_values(m) for m in matches],
            }
            if self._tables.programs is self._tables.organizations:
                # Each organization is its own program: there is no row to write.
                self._check_own_programs(programs)
                rows["programs"] = []
            self._refuse_taken(connection, "organizations", organizations)
            if rows["programs"]:
                self._refuse_taken(connection, "programs", programs)
            self._refuse_taken(connection, "users", users)
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

    def _refuse_taken(
        self, connection: sa.Connection, name: str, records: Sequence[Organization | Program | User]
    ) -> None:
        """Refuse the first of *records* whose id is stored, or given twice."""
        taken = self._existing(connection, name, [r.id for r in records])
        for record in records:
            if record.id in taken:
                raise DuplicateRecordError(_KINDS[name], record.id)
            taken.add(record.id)

    @staticmethod
    def _check_own_programs(programs: list[Program]) -> None:
        for program in programs:
            if program.id != program.organization_id:
                raise InvalidRecordError(
                    f"Program {program.id!r}",
                    "id",
                    program.id,
                    f"its organization's id {program.organization_id!r} (the mapping keeps "
                    "programs on the organizations table: each organization is its own program)",
                )

    def save_match(self, match: Match) -> None:
        """Insert *match*, or replace the match with the same id (e.g. to end it).

        Unlike [`add`][matchusage.sql.SQLRepository.add], an existing id is
        not an error. If another writer inserts the same id at the same
        moment, the write is retried once and replaces theirs.

        Raises:
            matchusage.exceptions.UnknownRecordError: The match's program is unknown.
            matchusage.exceptions.RepositoryError: The database failed.
        """
        try:
            self._save_match(match)
        except RepositoryError as error:
            if self._taken_since(error, {"matches": [match]}) is None:
                raise
            self._save_match(match)

    def _save_match(self, match: Match) -> None:
        mm = self.mapping.matches
        with self._writing("save_match") as connection:
            values = self._rows.match_values(match)
            t = self._tables
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
        for chunk in _chunks(sorted(i for i in set(ids) if fits(column, i))):
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
            matchusage.exceptions.InvalidMatchError: A stored match in the
                window is invalid, as [`matches`][matchusage.sql.SQLRepository.matches]
                would raise it (an end before the start, a participant row
                without a user, an unknown role, ...).
            matchusage.exceptions.RepositoryError: The database failed.
        """
        periods = check_periods(periods)
        plan = {organization_id: periods}
        with self._reading("count_active_users") as connection:
            tally = self._pushdown.count(connection, plan, program_id)
            self._require_organizations(connection, tally.results)
        counts = self._counted(tally, plan, len, program_id=program_id)
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
            matchusage.exceptions.InvalidMatchError: A stored match in the
                window is invalid (as for
                [`count_active_users`][matchusage.sql.SQLRepository.count_active_users]).
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
        memory. A stored match that reading refuses (as for
        [`count_active_users`][matchusage.sql.SQLRepository.count_active_users])
        raises before the first pair. If the database fails mid-stream, the pairs already yielded
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
        refused: set[str] = set()
        with self._reading("active users") as connection:
            found = False
            for _, period, user_id in self._pushdown.users_rows(
                connection, {organization_id: periods}, program_id, refused
            ):
                found = True
                yield period, user_id
            if not found and not refused:
                self._organization_row(connection, organization_id)
        if refused:  # nothing was yielded: the refused rows came first
            users = self._read_back(organization_id, periods, program_id)
            for period, ids in users.items():
                for user_id in sorted(ids):
                    yield period, user_id

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
            matchusage.exceptions.UnknownRecordError: Organizations are
                unknown (the error names them all).
            matchusage.exceptions.InvalidMatchError: A stored match in an
                organization's window is invalid (as for
                [`count_active_users`][matchusage.sql.SQLRepository.count_active_users]);
                the first such organization, in the order given, raises.
            matchusage.exceptions.RepositoryError: The database failed.
        """
        checked = {key: check_periods(value) for key, value in periods.items()}
        with self._reading("count_by_organization") as connection:
            tally = self._pushdown.count(connection, checked)
            self._require_organizations(connection, tally.results)
        return self._counted(tally, checked, len)

    def active_users_by_organization(
        self, periods: Mapping[str, Iterable[BillingPeriod]]
    ) -> dict[str, dict[BillingPeriod, frozenset[str]]]:
        """The active user ids of many organizations, each over its own periods, in one statement.

        Raises:
            matchusage.exceptions.UnknownRecordError: Organizations are
                unknown (the error names them all).
            matchusage.exceptions.InvalidMatchError: A stored match in an
                organization's window is invalid (as for
                [`count_by_organization`][matchusage.sql.SQLRepository.count_by_organization]).
            matchusage.exceptions.RepositoryError: The database failed.
        """
        checked = {key: check_periods(value) for key, value in periods.items()}
        with self._reading("active_users_by_organization") as connection:
            tally = self._pushdown.collect(connection, checked)
            self._require_organizations(connection, tally.results)
        return self._counted(tally, checked, _same)

    def count_closed_periods(
        self, *, before: datetime, count: int = 6, method: Method = "auto"
    ) -> BatchResults[int]:
        """The usage report of every organization: counts of its last *count* closed periods.

        The periods are computed in Python from each organization's cycle
        (anchor and time zone). Then either the database counts (one
        statement for them all), or the matches of each organization's
        window come over as columns and the columnar engine counts: see
        *method*. An organization whose stored row is invalid (a cycle of 0
        units, an unknown zone), or with an invalid stored match in its
        window (as [`matches`][matchusage.sql.SQLRepository.matches] would
        raise it), is left out and listed in the result's ``failed``; the
        others are counted.

        Args:
            before: The instant ("now"): a period ending at or before it is closed.
            count: How many periods per organization.
            method: ``"database"`` (counted by the database), ``"columns"``
                (read as columns, counted by the columnar engine) or
                ``"auto"``: columns on PostgreSQL when pyarrow and numpy are
                installed, where that is faster; the database elsewhere.
                Results are identical.

        Returns:
            Organization id -> period -> number of active users, with the
            organizations that failed in ``failed``.
        """
        counting = (columnar_counts, self._pushdown.count, len)
        # Counts need no user ids: anonymous codes are cheaper to read.
        return self._closed_batch("count_closed_periods", before, count, method, counting, False)

    def active_users_closed_periods(
        self, *, before: datetime, count: int = 6, method: Method = "auto"
    ) -> BatchResults[frozenset[str]]:
        """The active user ids of every organization in its last *count* closed periods.

        Like [`count_closed_periods`][matchusage.sql.SQLRepository.count_closed_periods]
        (the same *method*s), an invalid organization fails alone.

        Returns:
            Organization id -> period -> ids of the active users, with the
            organizations that failed in ``failed``.
        """
        collecting = (columnar_active_users, self._pushdown.collect, _same)
        return self._closed_batch("active_users_closed_periods", before, count, method, collecting)

    def _closed_batch(
        self,
        what: str,
        before: datetime,
        count: int,
        method: Method,
        ways: Ways[T],
        user_ids: bool = True,
    ) -> BatchResults[T]:
        """Each organization's last *count* closed periods, by *method*; refused ones read back."""
        require_aware(before, "SQLRepository", "before", InvalidRecordError)
        with self._reading(what, one_snapshot=True) as connection:
            periods, failed = self._closed_periods(connection, before, count)
            found = self._tally(connection, periods, method, ways, user_ids)
        return self._read_back_refused(found.results, found.refused, periods, failed, ways[2])

    def _tally(
        self,
        connection: sa.Connection,
        plan: Plan,
        method: Method,
        ways: Ways[T],
        user_ids: bool,
    ) -> Tally[T]:
        """The results of *plan* by *method* (see `_closed_batch` for *ways*)."""
        from_columns, tally, _ = ways
        if not self._by_columns(connection, method):
            return tally(connection, plan)
        fetched = self._fetch_columns(connection, plan, user_ids=user_ids)
        found = from_columns(fetched.columns, plan)
        return Tally({key: dict(value) for key, value in found.items()}, fetched.refused)

    def _batch_counts(
        self, plan: Plan
    ) -> tuple[dict[str, dict[BillingPeriod, int]], dict[str, MatchUsageError]]:
        """[`batch_counts`][matchusage.batch_counts] over *plan*, by ``method="auto"``.

        Returns each organization's counts, and the error of each that
        failed, as the batch over objects would raise it (see `_batch`).
        """
        counting = (columnar_counts, self._pushdown.count, len)
        return self._batch("batch_counts", plan, counting, False)

    def _batch_active_users(
        self, plan: Plan
    ) -> tuple[dict[str, dict[BillingPeriod, frozenset[str]]], dict[str, MatchUsageError]]:
        """[`batch_active_users`][matchusage.batch_active_users] over *plan*, by ``"auto"``."""
        collecting = (columnar_active_users, self._pushdown.collect, _same)
        return self._batch("batch_active_users", plan, collecting, True)

    def _batch(
        self,
        what: str,
        plan: Plan,
        ways: Ways[T],
        user_ids: bool,
    ) -> tuple[dict[str, dict[BillingPeriod, T]], dict[str, MatchUsageError]]:
        """The batch over *plan* by the fastest method, failing each organization as reading
        its matches would.

        That is ``UnknownRecordError`` for an unknown organization (one with
        periods: reading no window looks nothing up), and the error reading
        the matches of an organization with a refused row raises.
        """
        plan = {key: check_periods(value) for key, value in plan.items()}
        with self._reading(what, one_snapshot=True) as connection:
            found = self._tally(connection, plan, "auto", ways, user_ids)
            counted = {k: v for k, v in found.results.items() if plan[k] and k not in found.refused}
            failed: dict[str, MatchUsageError] = {
                key: UnknownRecordError("organization", key)
                for key in self._unknown(connection, counted)
            }
        batch = self._read_back_refused(found.results, found.refused, plan, failed, ways[2])
        return {key: dict(value) for key, value in batch.items()}, failed

    def match_columns(self, periods: Mapping[str, Iterable[BillingPeriod]]) -> MatchColumns:
        """The matches of each organization that overlap its periods, as columns.

        The input of [`columnar_counts`][matchusage.columnar_counts] and
        [`columnar_active_users`][matchusage.columnar_active_users] (and so
        of [`batch_counts`][matchusage.batch_counts]) over these periods,
        with one row per participant: each row is its own match, which
        gives the same counts. On PostgreSQL with pyarrow and numpy
        installed the server packs each column into one binary value that
        numpy and pyarrow unpack (a large share of the tables in two halves,
        on two connections at one snapshot); elsewhere the rows are fetched
        one by one (slower than counting in the database). See "Counting in
        the database".

        Args:
            periods: Organization id -> the periods whose matches to read.

        Raises:
            matchusage.exceptions.UnknownRecordError: Organizations are
                unknown (the error names them all).
            matchusage.exceptions.InvalidMatchError: A stored match in an
                organization's window is invalid, as
                [`matches`][matchusage.sql.SQLRepository.matches] would raise
                it (the first such organization in the order given).
            matchusage.exceptions.RepositoryError: The database failed.
        """
        checked = {key: check_periods(value) for key, value in periods.items()}
        with self._reading("match_columns", one_snapshot=True) as connection:
            fetched = self._fetch_columns(connection, checked)
            self._require_organizations(connection, {key: {} for key in checked})
        for key in checked:
            if key in fetched.refused:
                self._read_back(key, checked[key])  # raises the error naming the match
        return fetched.columns

    def _fetch_columns(
        self,
        connection: sa.Connection,
        periods: Mapping[str, Sequence[BillingPeriod]],
        *,
        user_ids: bool = True,
    ) -> FetchedColumns:
        return fetch_columns(connection, self.mapping, self._tables, periods, user_ids=user_ids)

    @staticmethod
    def _by_columns(connection: sa.Connection, method: Method) -> bool:
        if method not in ("auto", "database", "columns"):
            raise InvalidRecordError(
                "SQLRepository", "method", method, "'auto', 'database' or 'columns'"
            )
        if method == "auto":
            return packed_available(connection)
        return method == "columns"

    def _closed_periods(
        self, connection: sa.Connection, before: datetime, count: int
    ) -> tuple[dict[str, list[BillingPeriod]], dict[str, MatchUsageError]]:
        """Each valid organization's closed periods, and the error of each invalid one."""
        organizations, failed = self._checked_organizations(connection)
        return batch_periods(organizations, now=before, count=count), failed

    def _unknown(
        self, connection: sa.Connection, found: Mapping[str, Mapping[BillingPeriod, Any]]
    ) -> list[str]:
        """The unknown organizations among those counting *found* something for, in order.

        An organization with an active user in any period exists, so only the
        others are looked up: counting stays one statement whenever every
        organization had some activity.
        """
        idle = [key for key, value in found.items() if not any(value.values())]
        known = self._existing(connection, "organizations", idle)
        return [key for key in idle if key not in known]

    def _require_organizations(
        self, connection: sa.Connection, found: Mapping[str, Mapping[BillingPeriod, Any]]
    ) -> None:
        """Raise, naming every unknown organization, if any is unknown (see `_unknown`)."""
        missing = self._unknown(connection, found)
        if missing:
            raise UnknownRecordError("organization", *missing)

    # -- refused rows: the object path decides ------------------------------------------

    def _read_back(
        self,
        organization_id: str,
        periods: Sequence[BillingPeriod],
        program_id: str | None = None,
    ) -> dict[BillingPeriod, frozenset[str]]:
        """One organization counted from its matches read as objects, as a generic batch does.

        Counting (in the database, or from columns read out) found a stored
        match there that reading refuses; reading raises the error that
        names it, exactly as [`OrganizationMatches`][matchusage.OrganizationMatches]
        would. Should the rows have been mended meanwhile, reading succeeds
        and its result stands.
        """
        source = OrganizationMatches(self, organization_id, program_id)
        return active_users_by_period(source, periods)

    def _counted(
        self,
        tally: Tally[T],
        plan: Plan,
        result: Callable[[frozenset[str]], T],
        *,
        program_id: str | None = None,
    ) -> dict[str, dict[BillingPeriod, T]]:
        """*tally*'s results; the first refused organization in plan order raises its error."""
        found = self._read_back_refused(
            tally.results, tally.refused, plan, {}, result, program_id=program_id
        )
        for error in found.failed.values():
            raise error
        return {key: dict(value) for key, value in found.items()}

    def _read_back_refused(
        self,
        found: Mapping[str, Mapping[BillingPeriod, T]],
        refused: frozenset[str],
        plan: Plan,
        failed: dict[str, MatchUsageError],
        result: Callable[[frozenset[str]], T],
        *,
        program_id: str | None = None,
    ) -> BatchResults[T]:
        """*found* as a batch, each *refused* organization read back, failing alone.

        Organizations already in *failed* are left out.
        """
        results = {key: value for key, value in found.items() if key not in failed}
        for key in plan:
            if key in refused and key not in failed:
                try:
                    users = self._read_back(key, plan[key], program_id)
                except MatchUsageError as error:  # this organization only
                    failed[key] = error
                    del results[key]
                else:
                    results[key] = {period: result(ids) for period, ids in users.items()}
        return BatchResults(results, failed)


def _same(users: frozenset[str]) -> frozenset[str]:
    return users
