"""The SQL adapter: the repository contract, counting in the database, mappings and safety.

Every test runs on SQLite and on the throwaway PostgreSQL server (the shared
``sql_engine`` fixture; the server's time zone is deliberately not UTC).

"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

import matchusage
from matchusage import (
    BillingCycle,
    BillingPeriod,
    Match,
    Organization,
    OrganizationMatches,
    Program,
    Role,
    User,
)
from matchusage.exceptions import (
    DuplicateMatchError,
    InvalidCycleError,
    InvalidMatchError,
    InvalidRecordError,
    RepositoryError,
    UnknownRecordError,
)
from matchusage.memory import InMemoryRepository
from matchusage.protocols import MatchRepository
from matchusage.sql import (
    MatchTable,
    OrganizationTable,
    ParticipantTable,
    ProgramTable,
    SchemaMapping,
    SQLRepository,
    UserTable,
)
from matchusage.testing import strategies as mst
from matchusage.testing.contracts import (
    CheckedOrganizationsContract,
    MakeRepository,
    MatchRepositoryContract,
    Record,
    example_records,
    matches_of,
)

UTC = timezone.utc
T0 = datetime(2024, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)
MONTHLY = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))
FEBRUARY, MARCH, APRIL = MONTHLY.period(1), MONTHLY.period(2), MONTHLY.period(3)


def at(month: int, day: int = 1, hour: int = 0) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Collect every SQL statement the engine sends to the database meanwhile."""
    seen: list[str] = []

    def keep(*args: Any) -> None:
        seen.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", keep)


@pytest.fixture
def repository(sql_engine: sa.Engine) -> SQLRepository:
    """A repository on its own schema, created."""
    repository = SQLRepository(sql_engine)
    repository.create_schema()
    return repository


def load(repository: SQLRepository, records: Sequence[Record]) -> SQLRepository:
    """Empty the repository's tables, then add *records*."""
    with repository.engine.begin() as connection:
        for table in reversed(repository._tables.metadata.sorted_tables):
            connection.execute(table.delete())
    repository.add(*records)
    return repository


class TestContract(MatchRepositoryContract, CheckedOrganizationsContract):
    """SQLRepository (default schema) meets the repository contracts on both databases."""

    @pytest.fixture
    def make_repository(self, repository: SQLRepository) -> MakeRepository:
        return lambda records: load(repository, records)

    def store_bad_organization(self, repository: MatchRepository, organization_id: str) -> None:
        """A cycle of 0 months: a row only the database can hold."""
        assert isinstance(repository, SQLRepository)
        table = repository._tables.organizations
        with repository.engine.begin() as connection:
            connection.execute(
                table.update().where(table.c.id == organization_id).values(cycle_every=0)
            )


# -- counting in the database: differential tests against the in-memory engine ------------


@given(
    records=mst.repository_records(),
    periods=st.lists(mst.billing_periods(), min_size=1, max_size=5),
    program=st.none() | st.sampled_from(["p1", "p2"]),
    in_shares=st.booleans(),
)
def test_pushdown_equals_the_engine(
    repository: SQLRepository,
    records: list[Record],
    periods: list[BillingPeriod],
    program: str | None,
    in_shares: bool,
) -> None:
    """Counts, ids and the streamed ids computed by SQL equal the in-memory sweep.

    The generated matches share boundaries with the periods, include ongoing,
    zero-length and group matches, and users in both programs of ``o1``.
    """
    load(repository, records)
    repository._pushdown.values_rows = 1 if in_shares else 1000
    scope = [m for m in matches_of(records, "o1") if program is None or m.program_id == program]
    expected = matchusage.active_users_by_period(scope, periods)

    counts = repository.count_active_users("o1", periods, program_id=program)
    users = repository.active_users_by_period("o1", periods, program_id=program)
    streamed = list(repository.iter_active_users("o1", periods, program_id=program))

    assert {p: len(u) for p, u in expected.items()} == counts
    assert list(expected) == list(counts)
    assert expected == users
    expected_pairs = sorted(
        ((p, u) for p, us in expected.items() for u in us),
        key=lambda pu: (periods.index(pu[0]), pu[1]),
    )
    assert expected_pairs == streamed


@given(
    records=mst.repository_records(),
    before=mst.aware_datetimes(),
    count=st.integers(0, 4),
    in_shares=st.booleans(),
)
def test_batch_equals_the_engine_for_every_organization(
    repository: SQLRepository,
    records: list[Record],
    before: datetime,
    count: int,
    in_shares: bool,
) -> None:
    """Each organization's own closed periods (own anchor and zone), all in one statement."""
    load(repository, records)
    repository._pushdown.values_rows = 1 if in_shares else 1000
    organizations = [r for r in records if isinstance(r, Organization)]
    expected = {
        o.id: matchusage.active_users_by_period(
            matches_of(records, o.id), o.cycle.closed_periods(before=before, count=count)
        )
        for o in sorted(organizations, key=lambda o: o.id)
    }

    assert {key: {p: len(u) for p, u in value.items()} for key, value in expected.items()} == (
        repository.count_closed_periods(before=before, count=count)
    )
    assert expected == repository.active_users_closed_periods(before=before, count=count)


def test_batch_runs_one_statement(repository: SQLRepository) -> None:
    """Counting the closed periods of every organization is one SELECT after reading them."""
    load(repository, example_records(Match("m", "p1", {"u1", "u2"}, T0)))
    with statements(repository.engine) as seen:
        repository.count_closed_periods(before=T0 + 90 * DAY, count=6, method="database")
    counting = [s for s in seen if "count(DISTINCT" in s]
    assert len(counting) == 1
    # The periods travel as bound arrays on PostgreSQL, as a VALUES list elsewhere.
    assert ("unnest" if repository.engine.dialect.name == "postgresql" else "VALUES") in counting[0]


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (
            lambda r: r.count_active_users("o1", [MONTHLY.period(k) for k in range(12)]),
            {MONTHLY.period(k): 0 if k == 0 else 2 for k in range(12)},
        ),
        (
            lambda r: r.active_users_by_period("o1", [MONTHLY.period(k) for k in range(6)]),
            {MONTHLY.period(k): frozenset({"u1", "u2"} if k else ()) for k in range(6)},
        ),
        (
            lambda r: r.count_by_organization({"o1": [FEBRUARY, MARCH], "o2": [MARCH, APRIL]}),
            {"o1": {FEBRUARY: 2, MARCH: 2}, "o2": {MARCH: 1, APRIL: 1}},
        ),
    ],
    ids=["counts-of-many-periods", "ids-of-many-periods", "counts-of-every-organization"],
)
def test_counting_is_one_statement(
    repository: SQLRepository, count: Callable[[SQLRepository], object], expected: object
) -> None:
    matches = [Match("m", "p1", {"u1", "u2"}, at(2, 10)), Match("n", "p3", {"u1"}, at(2, 10))]
    load(repository, example_records(*matches))
    with statements(repository.engine) as seen:
        found = count(repository)
    assert expected == found
    # On PostgreSQL first the planner's estimate: programs, EXPLAIN, table size, the plan.
    planning = 4 if repository.engine.dialect.name == "postgresql" else 0
    assert (1 + planning, 1) == (len(seen), len([s for s in seen if "AS hits" in s])), seen


# Each case: the matches, then the expected active users of o1 in February, March, April.
BOUNDARY_CASES = {
    "ongoing-from-before": (
        [Match("m", "p1", {"u1", "u2"}, at(1, 10))],
        [{"u1", "u2"}, {"u1", "u2"}, {"u1", "u2"}],
    ),
    "ongoing-starting-exactly-at-march-end": (
        [Match("m", "p1", {"u1"}, APRIL.start)],
        [set(), set(), {"u1"}],
    ),
    "ended-exactly-at-march-start": (
        [Match("m", "p1", {"u1"}, at(2, 10), MARCH.start)],
        [{"u1"}, set(), set()],
    ),
    "ended-one-microsecond-into-march": (
        [Match("m", "p1", {"u1"}, at(2, 10), MARCH.start + US)],
        [{"u1"}, {"u1"}, set()],
    ),
    "started-one-microsecond-before-march-end": (
        [Match("m", "p1", {"u1"}, APRIL.start - US, APRIL.start)],
        [set(), {"u1"}, set()],
    ),
    "zero-length-inside-march": (
        [Match("m", "p1", {"u1"}, at(3, 10), at(3, 10))],
        [set(), set(), set()],
    ),
    "zero-length-at-march-start": (
        [Match("m", "p1", {"u1"}, MARCH.start, MARCH.start)],
        [set(), set(), set()],
    ),
    "ended-mid-march-still-billed-for-march": (
        [Match("m", "p1", {"u1", "u2"}, at(3, 1), at(3, 15))],
        [set(), {"u1", "u2"}, set()],
    ),
    "group-match-counts-every-participant": (
        [Match("m", "p1", {"u1", "u2", "u3", "u4"}, at(3, 2), at(3, 3))],
        [set(), {"u1", "u2", "u3", "u4"}, set()],
    ),
    "mentor-with-two-mentees-is-three-users": (
        [
            Match("m1", "p1", {"u1", "u2"}, at(3, 2)),
            Match("m2", "p1", {"u1", "u3"}, at(3, 5), at(3, 9)),
        ],
        [set(), {"u1", "u2", "u3"}, {"u1", "u2"}],
    ),
    "user-in-two-programs-counts-once": (
        [
            Match("m1", "p1", {"u1", "u2"}, at(3, 2)),
            Match("m2", "p2", {"u1", "u3"}, at(3, 5)),
        ],
        [set(), {"u1", "u2", "u3"}, {"u1", "u2", "u3"}],
    ),
    "other-organization-does-not-count": (
        [Match("m1", "p3", {"u1", "u2"}, at(1, 2)), Match("m2", "p1", {"u1"}, at(3, 2))],
        [set(), {"u1"}, {"u1"}],
    ),
}


@pytest.mark.parametrize(
    ("matches", "expected"), list(BOUNDARY_CASES.values()), ids=list(BOUNDARY_CASES)
)
def test_named_cases_agree_on_every_path(
    repository: SQLRepository, matches: list[Match], expected: list[set[str]]
) -> None:
    """Objects read back, ids and counts in SQL, and the in-memory adapter give the rule's users."""
    records = example_records(*matches)
    periods = [FEBRUARY, MARCH, APRIL]
    wanted = {p: frozenset(users) for p, users in zip(periods, expected, strict=True)}
    counts = {p: len(u) for p, u in wanted.items()}
    load(repository, records)
    in_memory = InMemoryRepository()
    in_memory.add(*records)

    for source in (in_memory, repository):
        found = matchusage.active_users_by_period(OrganizationMatches(source, "o1"), periods)
        assert wanted == found
    assert wanted == repository.active_users_by_period("o1", periods)
    assert counts == repository.count_active_users("o1", periods)
    assert {"o1": counts} == repository.count_by_organization({"o1": periods})


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.count_active_users("nowhere", [MARCH]),
        lambda r: r.active_users_by_period("nowhere", [MARCH]),
        lambda r: list(r.iter_active_users("nowhere", [MARCH])),
        lambda r: r.count_by_organization({"o1": [MARCH], "nowhere": [MARCH]}),
        lambda r: r.active_users_by_organization({"o1": [MARCH], "nowhere": [MARCH]}),
    ],
    ids=["count", "ids", "stream", "count-by-organization", "ids-by-organization"],
)
def test_counting_an_unknown_organization_raises(
    repository: SQLRepository, call: Callable[[SQLRepository], object]
) -> None:
    load(repository, example_records())
    with pytest.raises(UnknownRecordError, match="nowhere"):
        call(repository)


def test_no_periods_no_query(repository: SQLRepository) -> None:
    load(repository, example_records())
    assert repository.count_active_users("o1", []) == {}
    assert repository.active_users_by_period("o1", []) == {}
    assert repository.count_by_organization({"o1": []}) == {"o1": {}}
    assert repository.active_users_by_organization({"o2": []}) == {"o2": {}}


def test_batch_of_organizations_with_explicit_periods(repository: SQLRepository) -> None:
    records = example_records(
        Match("a", "p1", {"u1", "u2"}, T0), Match("b", "p3", {"u1"}, T0 + DAY)
    )
    load(repository, records)
    periods = {"o1": [MONTHLY.period(2), MONTHLY.period(1)], "o2": [MONTHLY.period(2)]}
    assert {"o1": {MONTHLY.period(2): 2, MONTHLY.period(1): 0}, "o2": {MONTHLY.period(2): 1}} == (
        repository.count_by_organization(periods)
    )
    assert {
        "o1": {MONTHLY.period(2): frozenset({"u1", "u2"}), MONTHLY.period(1): frozenset()},
        "o2": {MONTHLY.period(2): frozenset({"u1"})},
    } == repository.active_users_by_organization(periods)


# -- indexes --------------------------------------------------------------------------------


def test_overlap_query_uses_the_indexes(repository: SQLRepository) -> None:
    """The plan of the window query reads an index of the matches table, not the whole table."""
    load(repository, example_records(Match("m", "p1", {"u1"}, T0)))
    statements: list[str] = []
    parameters: list[object] = []

    def keep(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)
        parameters.append(params)

    sa.event.listen(repository.engine, "before_cursor_execute", keep)
    repository.matches("o1", start=T0, end=T0 + DAY)
    sa.event.remove(repository.engine, "before_cursor_execute", keep)
    statement, params = statements[-1], parameters[-1]
    with repository.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        if repository.engine.dialect.name == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + statement, params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "INDEX ix_matchusage_matches_" in plan
        else:
            # The table is tiny, so forbid the sequential scan a planner would rightly prefer.
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("EXPLAIN " + statement, params)
            plan = " ".join(row[0] for row in cursor.fetchall())
            assert "ix_matchusage_matches_" in plan
            assert "started_at <" in plan or "ended_at >" in plan


def test_counting_checks_the_roles_from_an_index_alone(repository: SQLRepository) -> None:
    """Refusing unknown roles reads the participants' roles from an index, not their table."""
    load(repository, example_records(Match("m", "p1", {"u1"}, T0)))
    statements: list[tuple[str, Any]] = []

    def keep(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        statements.append((statement, params))

    sa.event.listen(repository.engine, "before_cursor_execute", keep)
    repository.count_active_users("o1", [BillingPeriod(T0, T0 + DAY)])
    sa.event.remove(repository.engine, "before_cursor_execute", keep)
    statement, params = next((s, p) for s, p in statements if "count(DISTINCT" in s)
    with repository.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        if repository.engine.dialect.name == "sqlite":
            cursor = raw.cursor()
            cursor.execute("EXPLAIN QUERY PLAN " + statement, params)
            plan = [str(row[-1]) for row in cursor.fetchall()]
            reads = [step for step in plan if "matchusage_participants" in step]
            assert reads
            assert all("COVERING INDEX ix_matchusage_participants_role" in r for r in reads)
        else:
            raw.autocommit = True  # type: ignore[attr-defined]
            cursor = raw.cursor()
            cursor.execute("VACUUM matchusage_participants")  # marks the pages all-visible
            # The table is tiny: forbid the plans a planner would rightly prefer for it.
            for scan in ("seqscan", "bitmapscan", "hashjoin", "mergejoin"):
                cursor.execute(f"SET enable_{scan} = off")
            cursor.execute("EXPLAIN " + statement, params)
            plan = [row[0] for row in cursor.fetchall()]
            reads = [step for step in plan if "on matchusage_participants" in step]
            assert reads
            assert all("Index Only Scan using ix_matchusage_participants_role" in r for r in reads)


def test_create_schema_creates_the_indexes_on_existing_tables(sql_engine: sa.Engine) -> None:
    repository = SQLRepository(sql_engine)
    repository._tables.metadata.create_all(sql_engine)  # tables without their indexes
    with sql_engine.begin() as connection:
        for index in repository._tables.indexes:
            index.drop(connection)
    repository.create_indexes()
    names = {i["name"] for i in sa.inspect(sql_engine).get_indexes("matchusage_matches")}
    assert {"ix_matchusage_matches_started", "ix_matchusage_matches_ended"} <= names
    repository.create_schema()  # idempotent


def test_the_schema_indexes_the_overlap_query_and_stores_instants_with_their_zone(
    repository: SQLRepository,
) -> None:
    inspector = sa.inspect(repository.engine)
    columns = {c["name"]: c["type"] for c in inspector.get_columns("matchusage_matches")}
    if repository.engine.dialect.name == "postgresql":
        assert (True, True) == (columns["started_at"].timezone, columns["ended_at"].timezone)
    indexed = [tuple(i["column_names"]) for i in inspector.get_indexes("matchusage_matches")]
    assert ("program_id", "started_at") in indexed
    assert ("program_id", "ended_at", "started_at") in indexed


# -- mapping onto an application's tables ---------------------------------------------------

APP_TABLES = """
CREATE TABLE accounts (account_id TEXT PRIMARY KEY, display TEXT, tz TEXT NOT NULL,
                       billing_anchor {instant} NOT NULL);
CREATE TABLE cohorts (cohort_id TEXT PRIMARY KEY, account_id TEXT NOT NULL);
CREATE TABLE people (person_id TEXT PRIMARY KEY, full_name TEXT, mail TEXT);
CREATE TABLE mentorships (mentorship_id TEXT PRIMARY KEY, cohort_id TEXT NOT NULL,
                          mentor_id TEXT, mentee_id TEXT,
                          began {instant} NOT NULL, finished {instant});
CREATE TABLE members (mentorship_id TEXT NOT NULL, person_id TEXT NOT NULL,
                      PRIMARY KEY (mentorship_id, person_id))
"""


def app_mapping(*, pairs: bool, naive_utc: bool = False) -> SchemaMapping:
    pair = {"mentor": "mentor_id", "mentee": "mentee_id"} if pairs else {}
    matches = MatchTable(
        "mentorships",
        id="mentorship_id",
        program_id="cohort_id",
        started_at="began",
        ended_at="finished",
        **pair,
    )
    members = ParticipantTable("members", match_id="mentorship_id", user_id="person_id", role=None)
    return SchemaMapping(
        organizations=OrganizationTable(
            "accounts",
            id="account_id",
            name="display",
            timezone="tz",
            cycle_anchor="billing_anchor",
            cycle_unit=None,
            cycle_every=None,
        ),
        programs=ProgramTable("cohorts", id="cohort_id", organization_id="account_id", name=None),
        users=UserTable("people", id="person_id", name="full_name", email="mail"),
        matches=matches,
        participants=None if pairs else members,
        naive_utc=naive_utc,
    )


def create_app_tables(engine: sa.Engine, *, naive: bool) -> None:
    postgres = engine.dialect.name == "postgresql"
    instant = ("TIMESTAMP" if naive else "TIMESTAMPTZ") if postgres else "TEXT"
    with engine.begin() as connection:
        for statement in APP_TABLES.format(instant=instant).split(";"):
            connection.execute(sa.text(statement))


pair_matches = st.lists(
    mst.matches(users=mst.USER_IDS, programs=st.just("c1")).filter(
        lambda m: len(m.participants) <= 2
    ),
    max_size=20,
    unique_by=lambda m: m.id,
)


@pytest.mark.parametrize("pairs", [False, True], ids=["participants-table", "mentor-mentee"])
@given(matches=pair_matches, periods=st.lists(mst.billing_periods(), min_size=1, max_size=4))
def test_existing_tables_through_a_mapping(
    sql_engine: sa.Engine, pairs: bool, matches: list[Match], periods: list[BillingPeriod]
) -> None:
    """An app's own tables (other names, two layouts) count like the engine."""
    matches = [_as_pair(m) if pairs else m for m in matches]
    if not sa.inspect(sql_engine).has_table("accounts"):
        create_app_tables(sql_engine, naive=False)
    repository = SQLRepository(sql_engine, app_mapping(pairs=pairs))
    with sql_engine.begin() as connection:
        for table in ("members", "mentorships", "people", "cohorts", "accounts"):
            connection.execute(sa.text(f"DELETE FROM {table}"))
    anchor = datetime(2024, 1, 15, tzinfo=ZoneInfo("Europe/Paris"))
    account = Organization("acme", "Acme", "Europe/Paris", BillingCycle.monthly(anchor))
    repository.add(account, Program("c1", "acme"), *matches)
    expected = matchusage.active_users_by_period(matches, periods)
    assert [account] == repository.organizations()
    assert expected == repository.active_users_by_period("acme", periods)
    assert {p: len(u) for p, u in expected.items()} == repository.count_active_users(
        "acme", periods
    )
    source = matchusage.OrganizationMatches(repository, "acme")
    assert expected == matchusage.active_users_by_period(source, periods)


def _as_pair(match: Match) -> Match:
    people = sorted(match.participants)
    roles = dict(zip(people, [Role.MENTOR, Role.MENTEE], strict=False))
    return Match(match.id, match.program_id, people, match.started_at, match.ended_at, roles=roles)


def test_mentor_mentee_columns_read_back_as_roles(sql_engine: sa.Engine) -> None:
    create_app_tables(sql_engine, naive=False)
    repository = SQLRepository(sql_engine, app_mapping(pairs=True))
    account = Organization("acme", "Acme", "UTC", MONTHLY)
    alone = Match("alone", "c1", {"u1"}, T0, roles={"u1": Role.MENTEE})
    pair = Match("pair", "c1", {"u1", "u2"}, T0, roles={"u1": "mentor", "u2": "mentee"})
    repository.add(account, Program("c1", "acme"), alone, pair)
    assert [alone, pair] == repository.matches("acme", start=T0, end=T0 + DAY)
    assert [alone.roles, pair.roles] == [
        m.roles for m in repository.matches("acme", start=T0, end=T0 + DAY)
    ]


def test_a_group_match_does_not_fit_mentor_mentee_columns(sql_engine: sa.Engine) -> None:
    create_app_tables(sql_engine, naive=False)
    repository = SQLRepository(sql_engine, app_mapping(pairs=True))
    group = Match("g", "c1", {"u1", "u2", "u3"}, T0)
    with pytest.raises(InvalidMatchError, match="'g'"):
        repository.add(Organization("acme", "Acme", "UTC", MONTHLY), Program("c1", "acme"), group)
    assert repository.organizations() == []


def test_tables_in_a_named_schema(postgresql_engine: sa.Engine) -> None:
    """A PostgreSQL schema (namespace) named in the mapping qualifies every table."""
    engine = postgresql_engine
    with engine.begin() as connection:
        connection.execute(sa.text('CREATE SCHEMA "billing data"'))
    repository = SQLRepository(engine, SchemaMapping(schema="billing data"))
    repository.create_schema()
    load(repository, example_records(Match("m", "p1", {"u1", "u2"}, T0)))
    assert {MONTHLY.period(2): 2} == repository.count_active_users("o1", [MONTHLY.period(2)])
    with engine.connect() as connection:
        tables = sa.inspect(connection).get_table_names(schema="billing data")
    assert "matchusage_matches" in tables


# -- instants -------------------------------------------------------------------------------


def test_instants_are_stored_in_utc(repository: SQLRepository) -> None:
    """PostgreSQL gets timestamptz, SQLite fixed-width UTC text that sorts like the instants."""
    paris = datetime(2024, 3, 31, 3, 30, tzinfo=ZoneInfo("Europe/Paris"))
    load(repository, example_records(Match("m", "p1", {"u1"}, paris)))
    with repository.engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT started_at FROM matchusage_matches")).scalar()
    if repository.engine.dialect.name == "sqlite":
        assert stored == "2024-03-31 01:30:00.000000+00:00"
    else:
        assert paris == stored
        assert paris.utcoffset() != stored.utcoffset()  # the session zone is New York
    [match] = repository.matches("o1", start=paris, end=paris + DAY)
    assert match.started_at.tzinfo == UTC
    assert paris == match.started_at


@pytest.mark.parametrize("declared", [False, True], ids=["undeclared", "naive_utc"])
def test_naive_columns_are_an_error_unless_declared_utc(
    sql_engine: sa.Engine, declared: bool
) -> None:
    create_app_tables(sql_engine, naive=True)
    sqlite = sql_engine.dialect.name == "sqlite"
    began = "2024-03-01 10:00:00.000000" if sqlite else "2024-03-01 10:00:00"
    anchor = "2024-01-01 00:00:00.000000" if sqlite else "2024-01-01 00:00:00"
    with sql_engine.begin() as connection:
        connection.execute(
            sa.text(f"INSERT INTO accounts VALUES ('acme', 'Acme', 'UTC', '{anchor}');")
        )
        connection.execute(sa.text("INSERT INTO cohorts VALUES ('c1', 'acme')"))
        connection.execute(
            sa.text(f"INSERT INTO mentorships VALUES ('m1', 'c1', 'u1', 'u2', '{began}', NULL)")
        )
    repository = SQLRepository(sql_engine, app_mapping(pairs=True, naive_utc=declared))
    if declared:
        [match] = repository.matches("acme", start=T0, end=T0 + DAY)
        assert datetime(2024, 3, 1, 10, tzinfo=UTC) == match.started_at
        period = BillingPeriod(T0 + timedelta(hours=10), T0 + DAY)
        assert {period: 2} == repository.count_active_users("acme", [period])
        return
    with pytest.raises(InvalidRecordError, match=r"naive_utc|timezone-aware"):
        repository.matches("acme", start=T0, end=T0 + DAY)
    with pytest.raises(InvalidRecordError, match=r"naive_utc|timezone-aware"):
        repository.organizations()


def _insert_raw_match(engine: sa.Engine, started: str, ended: str | None) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO matchusage_matches VALUES ('raw', 'p1', :s, :e)"),
            {"s": started, "e": ended},
        )
        connection.execute(
            sa.text("INSERT INTO matchusage_participants VALUES ('raw', 'u7', NULL)")
        )


@pytest.mark.parametrize(
    ("started", "ended"),
    [
        ("2024-03-01 00:00:00.000000", None),
        ("2024-02-10 00:00:00.000000+00:00", "2024-03-01 00:00:00.000000"),
        ("2024-03-01T00:00:00", None),
        ("2024-03-01 01:00:00.000000+01:00", None),
        ("2024-02-10 00:00:00.000000+00:00", "2024-03-01 no time"),
    ],
    ids=["naive-start", "naive-end", "iso-naive", "not-utc-text", "not-an-instant"],
)
def test_sqlite_instants_not_in_the_utc_form_are_rejected_by_every_read(
    tmp_path: Path, started: str, ended: str | None
) -> None:
    """Stored text the mapping does not declare never counts silently (nor miscounts).

    Reading matches compares the same text in SQL to select the window, so it
    refuses it too, even an aware value in another zone that would parse.
    """
    repository = SQLRepository(sa.create_engine(f"sqlite:///{tmp_path / 'naive.db'}"))
    repository.create_schema()
    repository.add(*example_records())
    _insert_raw_match(repository.engine, started, ended)
    field, text = ("started_at", started) if ended is None else ("ended_at", ended)
    message = f"'raw': '{field}' .* \\(got {re.escape(repr(text))}\\)"
    with pytest.raises(InvalidMatchError, match=message):
        repository.matches("o1", start=FEBRUARY.start, end=APRIL.end)
    with pytest.raises(InvalidMatchError, match=message):
        repository.count_active_users("o1", [FEBRUARY, MARCH])
    with pytest.raises(InvalidMatchError, match="raw"):
        repository.active_users_by_period("o1", [FEBRUARY, MARCH])
    report = repository.count_closed_periods(before=at(4), count=2)
    assert ["o1"] == list(report.failed)
    assert isinstance(report.failed["o1"], InvalidMatchError)
    assert re.search(message, str(report.failed["o1"]))


def test_anchors_that_are_not_one_instant_are_refused(repository: SQLRepository) -> None:
    """A skipped wall time or a fixed offset would not come back the same from a row."""
    paris = ZoneInfo("Europe/Paris")
    skipped = datetime(2024, 3, 31, 2, 30, tzinfo=paris)  # clocks jump from 2:00 to 3:00
    fixed = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    for anchor, zone in ((skipped, "Europe/Paris"), (fixed, "Europe/Paris")):
        organization = Organization("o", "O", zone, BillingCycle.monthly(anchor))
        with pytest.raises(InvalidCycleError, match="'o'"):
            repository.add(organization)
    assert repository.organizations() == []


# -- writing --------------------------------------------------------------------------------


def test_add_checks_references_like_the_memory_repository(repository: SQLRepository) -> None:
    load(repository, example_records(Match("m", "p1", {"u1"}, T0)))
    with pytest.raises(UnknownRecordError, match="'nope'"):
        repository.add(Match("x", "nope", {"u1"}, T0))
    with pytest.raises(UnknownRecordError, match="'nope'"):
        repository.add(Program("x", "nope"))
    with pytest.raises(DuplicateMatchError, match="'m'"):
        repository.add(Match("m", "p1", {"u2"}, T0))
    with pytest.raises(DuplicateMatchError, match="'n'"):
        repository.add(Match("n", "p1", {"u2"}, T0), Match("n", "p1", {"u3"}, T0))
    with pytest.raises(InvalidRecordError, match="record"):
        repository.add("not a record")  # type: ignore[arg-type]


def test_a_refused_write_writes_nothing(repository: SQLRepository) -> None:
    """The database rejects the last row; the rows before it are rolled back too."""
    with repository.engine.begin() as connection:  # a rule only the database knows
        connection.execute(sa.text("DROP TABLE matchusage_users"))
        connection.execute(
            sa.text(
                "CREATE TABLE matchusage_users (id TEXT PRIMARY KEY CHECK (id <> 'refused'),"
                " name TEXT NOT NULL DEFAULT '', email TEXT)"
            )
        )
    with pytest.raises(RepositoryError, match="nothing was written") as caught:
        repository.add(*example_records(Match("m", "p1", {"u1"}, T0)), User("refused"))
    assert isinstance(caught.value.__cause__, sa.exc.IntegrityError)
    assert repository.organizations() == []


def test_save_match_replaces_a_match(repository: SQLRepository) -> None:
    match = Match("m", "p1", {"u1", "u2"}, T0)
    load(repository, example_records(match))
    ended = Match("m", "p1", {"u1", "u3"}, T0, T0 + DAY)
    repository.save_match(ended)
    assert [ended] == repository.matches("o1", start=T0, end=T0 + 2 * DAY)
    with pytest.raises(UnknownRecordError, match="'nope'"):
        repository.save_match(Match("z", "nope", {"u1"}, T0))


def test_the_memory_repository_and_sql_agree_on_the_example(repository: SQLRepository) -> None:
    from matchusage._cli._example import EXAMPLE_NOW, EXAMPLE_ORGANIZATION_ID, example_repository

    memory: InMemoryRepository = example_repository()
    organization = memory.organization(EXAMPLE_ORGANIZATION_ID)
    everything = memory.matches(organization.id, start=T0.replace(year=2000), end=EXAMPLE_NOW)
    users = memory.users({u for m in everything for u in m.participants})
    repository.add(organization, *memory.programs(organization.id), *users.values(), *everything)
    periods = organization.cycle.closed_periods(before=EXAMPLE_NOW, count=6)
    source = matchusage.OrganizationMatches(memory, organization.id)
    expected = matchusage.active_users_by_period(source, periods)
    assert {organization.id: expected} == repository.active_users_closed_periods(before=EXAMPLE_NOW)


# -- safety ---------------------------------------------------------------------------------

HOSTILE = "x'); DROP TABLE matchusage_matches; --"


def test_hostile_values_are_data(repository: SQLRepository) -> None:
    """Values are bound parameters: the tables survive and the values come back intact."""
    records = [
        Organization(HOSTILE, HOSTILE, "UTC", MONTHLY),
        Program(HOSTILE, HOSTILE, HOSTILE),
        User(HOSTILE, HOSTILE, HOSTILE),
        Match(HOSTILE, HOSTILE, {HOSTILE, "é;\"'"}, T0),
    ]
    load(repository, records)
    assert records[3:] == repository.matches(HOSTILE, start=T0, end=T0 + DAY)
    period = MONTHLY.period(2)
    assert {period: frozenset({HOSTILE, "é;\"'"})} == repository.active_users_by_period(
        HOSTILE, [period]
    )
    assert "matchusage_matches" in sa.inspect(repository.engine).get_table_names()


def test_hostile_identifiers_are_quoted(sql_engine: sa.Engine) -> None:
    """Table and column names from a mapping go through SQLAlchemy's quoting."""
    mapping = SchemaMapping(
        matches=MatchTable('my "matches"; DROP TABLE x', started_at="from", ended_at="to"),
        participants=ParticipantTable("Who's in", user_id="user id", role="select"),
    )
    repository = SQLRepository(sql_engine, mapping)
    repository.create_schema()
    load(repository, example_records(Match("m", "p1", {"u1", "u2"}, T0, roles={"u1": "mentor"})))
    assert {MONTHLY.period(2): 2} == repository.count_active_users("o1", [MONTHLY.period(2)])
    [match] = repository.matches("o1", start=T0, end=T0 + DAY)
    assert dict(match.roles) == {"u1": Role.MENTOR}


def _failing_view(engine: sa.Engine) -> None:
    """A matches "table" that fails on its third row, in the middle of the result set."""
    if engine.dialect.name == "sqlite":

        def fail(value: str) -> str:
            if value == "m3":
                raise RuntimeError("disk on fire")
            return value

        sa.event.listen(engine, "connect", lambda dbapi, _: dbapi.create_function("boom", 1, fail))
        engine.dispose()
        guard = "boom(id)"
    else:
        guard = "id || (1 / (CASE WHEN id = 'm3' THEN 0 ELSE 1 END))::text"
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f"CREATE VIEW failing AS SELECT {guard} AS id, program_id, started_at, ended_at "
                "FROM matchusage_matches"
            )
        )


@pytest.mark.parametrize(
    "read",
    [
        lambda r: r.matches("o1", start=T0, end=T0 + 30 * DAY),
        lambda r: r.count_active_users("o1", [MONTHLY.period(2)]),
        lambda r: r.active_users_by_period("o1", [MONTHLY.period(2)]),
        lambda r: r.count_closed_periods(before=at(5)),
        lambda r: matchusage.usage_report(OrganizationMatches(r, "o1"), MONTHLY, now=at(5)),
    ],
    ids=["matches", "count", "ids", "closed-periods", "usage-report"],
)
def test_a_failure_in_the_middle_of_a_read_raises_a_matchusage_error(
    sql_engine: sa.Engine, read: Callable[[SQLRepository], object]
) -> None:
    writer = SQLRepository(sql_engine)
    writer.create_schema()
    load(writer, example_records(*(Match(f"m{n}", "p1", {"u1"}, T0 + n * DAY) for n in range(6))))
    _failing_view(sql_engine)
    reader = SQLRepository(sql_engine, SchemaMapping(matches=MatchTable("failing")))
    with pytest.raises(RepositoryError, match="failed") as caught:
        read(reader)
    assert isinstance(caught.value.__cause__, sa.exc.DBAPIError)


def test_a_missing_table_is_a_repository_error(sql_engine: sa.Engine) -> None:
    with pytest.raises(RepositoryError, match="organizations failed") as caught:
        SQLRepository(sql_engine).organizations()
    assert isinstance(caught.value.__cause__, sa.exc.SQLAlchemyError)


# -- the mapping itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: MatchTable(""), "table"),
        (lambda: UserTable(email=""), "email"),
        (lambda: SchemaMapping(matches=MatchTable(mentor="a")), "matches"),
        (
            lambda: SchemaMapping(
                matches=MatchTable(mentor="a", mentee="b"), participants=ParticipantTable()
            ),
            "participants",
        ),
        (lambda: SchemaMapping(participants=None), "participants"),
    ],
    ids=["empty-table", "empty-column", "half-pair", "pair-and-table", "no-participants"],
)
def test_bad_mappings_are_rejected(make: object, field: str) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        make()  # type: ignore[operator]
    assert field == caught.value.field


def test_a_pair_mapping_has_no_participant_table_by_default() -> None:
    assert None is SchemaMapping(matches=MatchTable(mentor="a", mentee="b")).participants


@pytest.mark.parametrize("kind", ["memory", "sql"])
def test_every_reporting_entry_point_reads_a_repository_as_it_reads_matches(
    repository: SQLRepository, kind: str
) -> None:
    matches = [
        Match("m1", "p1", {"u1", "u2"}, at(1, 10), roles={"u1": "mentor"}),
        Match("m2", "p2", {"u1", "u3"}, at(3, 5), at(3, 20)),
        Match("m3", "p3", {"u4"}, at(2, 1)),
        Match("m4", "p1", {"u5"}, at(4, 1), at(4, 1)),
    ]
    records = example_records(*matches)
    in_memory = InMemoryRepository()
    in_memory.add(*records)
    chosen = in_memory if kind == "memory" else load(repository, records)
    source = OrganizationMatches(chosen, "o1")
    own = [m for m in matches if m.program_id in {"p1", "p2"}]
    now = at(4, 10)
    report = matchusage.usage_report(own, MONTHLY, now=now)

    assert report == matchusage.usage_report(source, MONTHLY, now=now)
    assert list(matchusage.export_rows(report)) == list(
        matchusage.export_rows(matchusage.usage_report(source, MONTHLY, now=now))
    )
    assert matchusage.explain(own, "u1", MARCH) == matchusage.explain(source, "u1", MARCH)
    assert matchusage.current_active_matches(own, at=now) == matchusage.current_active_matches(
        source, at=now
    )
    assert matchusage.current_active_users(own, at=now, program_id="p1") == (
        matchusage.current_active_users(OrganizationMatches(chosen, "o1", "p1"), at=now)
    )
