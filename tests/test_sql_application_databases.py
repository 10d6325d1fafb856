"""The SQL adapter on an existing application's database: integer ids, shared tables, read-only
roles, failures named where they happen, concurrent writers, long names.

Every test runs on SQLite and on the throwaway PostgreSQL 15 server (the
shared ``sql_engine`` fixture) unless its name says otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

import matchusage
from matchusage import BillingCycle, BillingPeriod, Match, Organization, Program, User
from matchusage.billing import Plan, billing_run
from matchusage.exceptions import (
    DuplicateMatchError,
    DuplicateRecordError,
    InvalidCycleError,
    InvalidRecordError,
    RepositoryError,
    UnknownRecordError,
)
from matchusage.memory import InMemoryBillingProvider, InMemoryRepository, InMemorySnapshotStore
from matchusage.sql import (
    MatchTable,
    OrganizationTable,
    ParticipantTable,
    ProgramTable,
    SchemaMapping,
    SQLRepository,
    SQLSnapshotStore,
    UserTable,
)
from matchusage.testing.contracts import SnapshotStoreContract

UTC = timezone.utc
T0 = datetime(2024, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
MONTHLY = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))
MARCH = MONTHLY.period(2)


def execute(engine: sa.Engine, *statements: str) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)


def instant_type(engine: sa.Engine) -> str:
    return "TIMESTAMPTZ" if engine.dialect.name == "postgresql" else "TEXT"


# -- integer ids ----------------------------------------------------------------------------

DJANGO_TABLES = """
CREATE TABLE app_account (id BIGINT PRIMARY KEY, name TEXT, tz TEXT NOT NULL,
                          anchor {instant} NOT NULL);
CREATE TABLE app_program (id BIGINT PRIMARY KEY, account_id BIGINT NOT NULL);
CREATE TABLE app_user (id BIGINT PRIMARY KEY, name TEXT, email TEXT);
CREATE TABLE app_match (id BIGINT PRIMARY KEY, program_id BIGINT NOT NULL,
                        started {instant} NOT NULL, ended {instant});
CREATE TABLE app_member (match_id BIGINT NOT NULL, user_id BIGINT NOT NULL,
                         PRIMARY KEY (match_id, user_id))
"""

DJANGO = SchemaMapping(
    organizations=OrganizationTable(
        "app_account", timezone="tz", cycle_anchor="anchor", cycle_unit=None, cycle_every=None
    ),
    programs=ProgramTable("app_program", organization_id="account_id", name=None),
    users=UserTable("app_user"),
    matches=MatchTable("app_match", started_at="started", ended_at="ended"),
    participants=ParticipantTable("app_member", role=None),
)


@pytest.fixture
def integer_app(sql_engine: sa.Engine) -> SQLRepository:
    """A Django-style database (bigint ids everywhere), filled through the repository."""
    execute(sql_engine, *DJANGO_TABLES.format(instant=instant_type(sql_engine)).split(";"))
    repository = SQLRepository(sql_engine, DJANGO)
    repository.add(
        Organization("1", "One", "UTC", MONTHLY),
        Organization("10", "Ten", "UTC", MONTHLY),
        Organization("9", "Nine", "UTC", MONTHLY),
        Program("21", "1"),
        Program("3", "1"),
        Program("90", "9"),
        User("7", "Ann", "ann@example.org"),
        Match("100", "21", {"7", "8"}, T0),
        Match("101", "3", {"8", "12"}, T0 - 40 * DAY, T0 + DAY),
        Match("102", "90", {"7"}, T0),
    )
    return repository


def test_integer_ids_work_in_every_mapping_read(integer_app: SQLRepository) -> None:
    """Ids come back as decimal strings, ordered as text like every repository orders them."""
    repository = integer_app
    assert ["1", "10", "9"] == [o.id for o in repository.organizations()]
    assert "Nine" == repository.organization("9").name
    assert [Program("21", "1"), Program("3", "1")] == repository.programs("1")
    assert {"7": User("7", "Ann", "ann@example.org")} == repository.users(["7", "8", "x"])
    found = repository.matches("1", start=T0, end=T0 + DAY)
    assert ["100", "101"] == [m.id for m in found]
    assert frozenset({"12", "7", "8"}) == found[0].participants | found[1].participants
    assert [found[1]] == repository.matches("1", start=T0, end=T0 + DAY, program_id="3")


def test_integer_ids_work_when_counting(integer_app: SQLRepository) -> None:
    repository = integer_app
    assert {MARCH: 3} == repository.count_active_users("1", [MARCH])
    assert {MARCH: 2} == repository.count_active_users("1", [MARCH], program_id="21")
    assert {MARCH: frozenset({"7", "8", "12"})} == repository.active_users_by_period("1", [MARCH])
    assert [(MARCH, "12"), (MARCH, "7"), (MARCH, "8")] == list(
        repository.iter_active_users("1", [MARCH])
    )
    report = repository.count_closed_periods(before=MARCH.end, count=1)
    assert {"1": {MARCH: 3}, "10": {MARCH: 0}, "9": {MARCH: 1}} == report
    source = matchusage.OrganizationMatches(repository, "1")
    assert {MARCH: 3} == {
        p: len(u) for p, u in matchusage.active_users_by_period(source, [MARCH]).items()
    }


@pytest.mark.parametrize("bad", ["x", "01", "1.0", " 1", "99999999999999999999"])
def test_ids_an_integer_column_cannot_hold_are_unknown(
    integer_app: SQLRepository, bad: str
) -> None:
    """Looking up such an id finds nothing; writing one is refused, naming the record."""
    repository = integer_app
    with pytest.raises(UnknownRecordError, match="unknown organization"):
        repository.organization(bad)
    with pytest.raises(UnknownRecordError):
        repository.count_active_users(bad, [MARCH])
    assert {} == repository.users([bad])
    assert [] == repository.matches("1", start=T0, end=T0 + DAY, program_id=bad)
    assert {MARCH: 0} == repository.count_active_users("1", [MARCH], program_id=bad)
    with pytest.raises(InvalidRecordError, match=rf"Match {bad!r}: 'id'.*decimal"):
        repository.add(Match(bad, "21", {"7"}, T0))
    with pytest.raises(InvalidRecordError, match="decimal"):
        repository.save_match(Match("103", "21", {bad}, T0))


def test_integer_ids_are_written_as_integers(integer_app: SQLRepository) -> None:
    repository = integer_app
    repository.save_match(Match("100", "21", {"7"}, T0, T0 + DAY))
    with repository.engine.connect() as connection:
        stored = connection.exec_driver_sql(
            "SELECT id, program_id FROM app_match WHERE id = 100"
        ).one()
    assert (100, 21) == tuple(stored)
    with pytest.raises(DuplicateMatchError, match="'100'"):
        repository.add(Match("100", "21", {"7"}, T0))


def test_integer_ids_are_compared_as_integers_so_indexes_serve(
    postgresql_engine: sa.Engine,
) -> None:
    """On PostgreSQL, ``bigint = varchar`` would fail; a cast would defeat the index."""
    engine = postgresql_engine
    execute(engine, *DJANGO_TABLES.format(instant="TIMESTAMPTZ").split(";"))
    repository = SQLRepository(engine, DJANGO)
    repository.create_indexes()
    repository.add(
        Organization("1", "One", "UTC", MONTHLY), Program("21", "1"), Match("100", "21", {"7"}, T0)
    )
    statements: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    sa.event.listen(engine, "before_cursor_execute", keep)
    repository.matches("1", start=T0, end=T0 + DAY, program_id="21")
    sa.event.remove(engine, "before_cursor_execute", keep)
    statement, params = statements[-1]
    with engine.connect() as connection:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN " + statement, params)
        plan = " ".join(row[0] for row in cursor.fetchall())
    assert "Index Cond: ((program_id = '21'::bigint)" in plan or "ix_app_match_" in plan
    assert "::text" not in plan
    assert "::numeric" not in plan


# -- programs kept on the organizations table ----------------------------------------------


def test_programs_mapped_onto_the_organizations_table(sql_engine: sa.Engine) -> None:
    """An app without programs: each account is its own program."""
    instant = instant_type(sql_engine)
    execute(
        sql_engine,
        f"CREATE TABLE accounts (id BIGINT PRIMARY KEY, name TEXT, tz TEXT NOT NULL, "
        f"anchor {instant} NOT NULL)",
        f"CREATE TABLE pairs (id BIGINT PRIMARY KEY, account_id BIGINT NOT NULL, "
        f"mentor_id BIGINT, mentee_id BIGINT, started {instant} NOT NULL, ended {instant})",
    )
    mapping = SchemaMapping(
        organizations=OrganizationTable(
            "accounts", timezone="tz", cycle_anchor="anchor", cycle_unit=None, cycle_every=None
        ),
        programs=ProgramTable("accounts", id="id", organization_id="id", name="name"),
        matches=MatchTable(
            "pairs",
            program_id="account_id",
            started_at="started",
            ended_at="ended",
            mentor="mentor_id",
            mentee="mentee_id",
        ),
    )
    repository = SQLRepository(sql_engine, mapping)
    repository.create_indexes()
    pair = Match("5", "1", ["7", "8"], T0, roles={"7": "mentor", "8": "mentee"})
    repository.add(Organization("1", "Acme", "UTC", MONTHLY), Program("1", "1", "Acme"), pair)
    assert [Program("1", "1", "Acme")] == repository.programs("1")
    assert [pair] == repository.matches("1", start=T0, end=T0 + DAY)
    assert {MARCH: 2} == repository.count_active_users("1", [MARCH])
    assert {"1": {MARCH: 2}} == repository.count_closed_periods(before=MARCH.end, count=1)
    with pytest.raises(InvalidRecordError, match="its own program"):
        repository.add(Program("2", "1"))


# -- read-only connections -------------------------------------------------------------------


def many_periods(count: int) -> list[BillingPeriod]:
    """More period rows than one VALUES list carries."""
    return [
        BillingPeriod(T0 + n * timedelta(hours=1), T0 + (n + 1) * timedelta(hours=1))
        for n in range(count)
    ]


@pytest.fixture
def filled(sql_engine: sa.Engine) -> SQLRepository:
    repository = SQLRepository(sql_engine)
    repository.create_schema()
    repository.add(
        Organization("o1", "One", "UTC", MONTHLY),
        *(Organization(f"x{n:03d}", "", "UTC", MONTHLY) for n in range(200)),
        Program("p1", "o1"),
        Match("m1", "p1", {"u1", "u2"}, T0, T0 + 2 * timedelta(hours=1)),
        Match("m2", "p1", {"u3"}, T0 + 1500 * timedelta(hours=1)),
    )
    return repository


def same_database(engine: sa.Engine, *, read_only: bool = False) -> sa.Engine:
    """Another engine on *engine*'s database (and PostgreSQL schema), read-only if asked."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            path = connection.exec_driver_sql("SHOW search_path").scalar()
        options = f"-csearch_path={path}"
        if read_only:
            options += " -cdefault_transaction_read_only=on"
        return sa.create_engine(engine.url, connect_args={"options": options})
    other = sa.create_engine(engine.url)
    if read_only:
        sa.event.listen(other, "connect", lambda dbapi, _: dbapi.execute("PRAGMA query_only = ON"))
    return other


def test_counting_works_on_a_read_only_connection(
    filled: SQLRepository, sql_engine: sa.Engine
) -> None:
    """A hot standby or a read-only role: more than a thousand period rows write nothing."""
    reader = SQLRepository(same_database(sql_engine, read_only=True))
    periods = many_periods(1600)
    counts = reader.count_active_users("o1", periods)
    assert 1600 == len(counts)
    assert [2, 2, 0] == [counts[p] for p in periods[:3]]
    assert 1 == counts[periods[1500]]
    users = reader.active_users_by_period("o1", periods)
    assert frozenset({"u1", "u2"}) == users[periods[1]]
    report = reader.count_closed_periods(before=T0 + 400 * DAY, count=6)
    assert 201 == len(report)  # 1,206 period rows
    with pytest.raises(RepositoryError):  # the connection really is read-only
        reader.add(Organization("o2", "", "UTC", MONTHLY))
    reader.engine.dispose()


def test_the_database_error_of_a_large_count_is_reported(
    filled: SQLRepository, sql_engine: sa.Engine
) -> None:
    """The cause of a failed count is the database's error, not a failed cleanup."""
    _failing_participants(sql_engine)
    reader = SQLRepository(
        sql_engine, SchemaMapping(participants=ParticipantTable("failing_participants"))
    )
    with pytest.raises(RepositoryError, match="count_active_users failed") as caught:
        reader.count_active_users("o1", many_periods(1600))
    assert isinstance(caught.value.__cause__, sa.exc.DBAPIError)
    cause = "function raised exception" if sql_engine.dialect.name == "sqlite" else "by zero"
    assert cause in str(caught.value)


def _failing_participants(engine: sa.Engine) -> None:
    if engine.dialect.name == "sqlite":

        def fail(value: str) -> str:
            raise RuntimeError("disk on fire")

        sa.event.listen(engine, "connect", lambda dbapi, _: dbapi.create_function("boom", 1, fail))
        engine.dispose()
        guard = "boom(user_id)"
    else:
        guard = "user_id || (1 / 0)::text"
    execute(
        engine,
        f"CREATE VIEW failing_participants AS SELECT match_id, {guard} AS user_id, role "
        "FROM matchusage_participants",
    )


# -- failures named where they happen ---------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.count_active_users("o1", [MARCH]),
        lambda r: r.count_closed_periods(before=T0),
        lambda r: r.matches("o1", start=T0, end=T0 + DAY),
    ],
    ids=["count_active_users", "count_closed_periods", "matches"],
)
def test_a_missing_mapped_table_is_named_with_the_operation(
    filled: SQLRepository, sql_engine: sa.Engine, call: Callable[[SQLRepository], object]
) -> None:
    reader = SQLRepository(sql_engine, SchemaMapping(matches=MatchTable("matchez")))
    with pytest.raises(RepositoryError, match=r"\w+ failed: table 'matchez' does not exist"):
        call(reader)


def with_a_bad_cycle(engine: sa.Engine, every: str) -> SQLRepository:
    """An application's tables with two organizations, 'good' and 'bad' (cycle *every*)."""
    sql_engine = engine
    anchor = (
        "'2024-01-01 00:00:00.000000+00:00'"
        if sql_engine.dialect.name == "sqlite"
        else ("'2024-01-01 00:00:00+00'")
    )
    execute(
        sql_engine,
        f"CREATE TABLE accounts (id TEXT PRIMARY KEY, tz TEXT, anchor {instant_type(sql_engine)},"
        " months INTEGER)",
        "CREATE TABLE cohorts (id TEXT PRIMARY KEY, account_id TEXT)",
        "CREATE TABLE pairs (id TEXT PRIMARY KEY, cohort_id TEXT, a TEXT, b TEXT,"
        f" started {instant_type(sql_engine)}, ended {instant_type(sql_engine)})",
        f"INSERT INTO accounts VALUES ('good', 'UTC', {anchor}, 1), ('bad', 'UTC', {anchor}, "
        f"{every})",
        "INSERT INTO cohorts VALUES ('c1', 'good'), ('c2', 'bad')",
    )
    mapping = SchemaMapping(
        organizations=OrganizationTable(
            "accounts",
            name=None,
            timezone="tz",
            cycle_anchor="anchor",
            cycle_unit=None,
            cycle_every="months",
        ),
        programs=ProgramTable("cohorts", organization_id="account_id", name=None),
        matches=MatchTable(
            "pairs",
            program_id="cohort_id",
            started_at="started",
            ended_at="ended",
            mentor="a",
            mentee="b",
        ),
    )
    return SQLRepository(sql_engine, mapping)


@pytest.mark.parametrize("every", ["0", "NULL", "-1"])
def test_a_bad_stored_cycle_names_the_organization_and_fails_it_alone(
    sql_engine: sa.Engine, every: str
) -> None:
    repository = with_a_bad_cycle(sql_engine, every)
    with pytest.raises(InvalidCycleError, match=r"Organization 'bad': 'months' must be a positive"):
        repository.organization("bad")
    report = repository.count_closed_periods(before=T0, count=2)
    assert ["good"] == list(report)
    assert ["bad"] == list(report.failed)
    assert isinstance(report.failed["bad"], InvalidCycleError)
    assert not report.ok
    users = repository.active_users_closed_periods(before=T0, count=2)
    assert (["good"], ["bad"]) == (list(users), list(users.failed))


@pytest.mark.parametrize("every", ["0", "NULL"])
def test_a_billing_run_bills_the_others_and_reports_an_organization_with_a_bad_cycle(
    sql_engine: sa.Engine, every: str
) -> None:
    repository = with_a_bad_cycle(sql_engine, every)
    billing = InMemoryBillingProvider()
    for organization_id in ("bad", "good"):
        billing.subscribe(organization_id, Plan("Team", "4", "EUR"))
    summary = billing_run(repository, billing, InMemorySnapshotStore(), now=T0)
    assert [("good", MONTHLY.period(1))] == [(r.organization_id, r.period) for r in summary.closed]
    [failure] = summary.failed
    assert ("bad", None) == (failure.organization_id, failure.period)
    assert isinstance(failure.error, InvalidCycleError)
    assert failure.reason.startswith("InvalidCycleError: Organization 'bad': 'months' must be")
    assert ["good"] == [o.id for o in repository.checked_organizations()[0]]
    with pytest.raises(InvalidCycleError, match="'bad'"):
        repository.organizations()  # the plain list still refuses to hide a bad row


# -- concurrent writers ---------------------------------------------------------------------


def refuses_existing_ids_and_replaces_on_save(
    repository: InMemoryRepository | SQLRepository,
) -> None:
    repository.add(Organization("o1", "", "UTC", MONTHLY), Program("p1", "o1"))
    repository.add(Match("m", "p1", {"u1"}, T0))
    with pytest.raises(DuplicateMatchError, match="'m'"):
        repository.add(Match("m", "p1", {"u2"}, T0))
    [stored] = repository.matches("o1", start=T0, end=T0 + DAY)
    assert {"u1"} == stored.participants
    replacement = Match("m", "p1", {"u2"}, T0, T0 + DAY)
    repository.save_match(replacement)
    assert [replacement] == repository.matches("o1", start=T0, end=T0 + DAY)


def test_add_refuses_an_existing_match_id_and_save_match_replaces_it(
    sql_engine: sa.Engine,
) -> None:
    """The SQL repository and the in-memory one agree."""
    repository = SQLRepository(sql_engine)
    repository.create_schema()
    refuses_existing_ids_and_replaces_on_save(repository)
    refuses_existing_ids_and_replaces_on_save(InMemoryRepository())


@contextmanager
def rival_inserts_first(
    repository: SQLRepository, record: Organization | User | Match
) -> Iterator[None]:
    """Just before the repository's first write, another writer stores *record*.

    On PostgreSQL that write is the insert into the record's table, after the
    repository found the id free; SQLite lets one writer at a time in, so
    there the rival goes first.
    """
    rival = SQLRepository(same_database(repository.engine))
    fired = threading.Event()
    table = {Organization: "organizations", User: "users", Match: "matches"}[type(record)]
    first_write = (
        (f"INSERT INTO matchusage_{table}",)
        if repository.engine.dialect.name == "postgresql"
        else ("INSERT", "DELETE")
    )

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith(first_write) and not fired.is_set():
            fired.set()
            rival.add(record)

    sa.event.listen(repository.engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        sa.event.remove(repository.engine, "before_cursor_execute", before)
        rival.engine.dispose()


@pytest.fixture
def sql_writable(sql_engine: sa.Engine) -> SQLRepository:
    repository = SQLRepository(sql_engine)
    repository.create_schema()
    repository.add(Organization("o1", "", "UTC", MONTHLY), Program("p1", "o1"))
    return repository


def test_the_loser_of_a_race_to_add_a_match_id_gets_a_duplicate_error(
    sql_writable: SQLRepository,
) -> None:
    repository = sql_writable
    with (
        rival_inserts_first(repository, Match("m", "p1", {"rival"}, T0)),
        pytest.raises(DuplicateMatchError, match="'m'"),
    ):
        repository.add(Match("m", "p1", {"u1"}, T0))
    [stored] = repository.matches("o1", start=T0, end=T0 + DAY)
    assert {"rival"} == stored.participants


@pytest.mark.parametrize(
    ("kind", "mine", "theirs"),
    [
        (
            "organization",
            Organization("o2", "Mine", "UTC", MONTHLY),
            Organization("o2", "Rival", "UTC", MONTHLY),
        ),
        ("user", User("u9", "Mine"), User("u9", "Rival")),
    ],
)
def test_the_loser_of_a_race_to_add_an_organization_or_user_id_gets_a_duplicate_error(
    sql_writable: SQLRepository, kind: str, mine: Organization | User, theirs: Organization | User
) -> None:
    repository = sql_writable
    with (
        rival_inserts_first(repository, theirs),
        pytest.raises(DuplicateRecordError, match=f"{kind} {mine.id!r}") as info,
    ):
        repository.add(mine)
    assert (kind, mine.id) == (info.value.kind, info.value.record_id)
    found = (
        repository.organization(mine.id)
        if isinstance(mine, Organization)
        else repository.users([mine.id])[mine.id]
    )
    assert "Rival" == found.name


def test_save_match_racing_an_insert_of_the_same_id_replaces_it(
    sql_writable: SQLRepository,
) -> None:
    repository = sql_writable
    mine = Match("m", "p1", {"u1"}, T0, T0 + DAY)
    with rival_inserts_first(repository, Match("m", "p1", {"rival"}, T0)):
        repository.save_match(mine)
    assert [mine] == repository.matches("o1", start=T0, end=T0 + DAY)


# -- lengths of ids and names ---------------------------------------------------------------


def test_an_organization_id_the_repository_stores_fits_the_snapshot_store(
    sql_engine: sa.Engine,
) -> None:
    long_id = "org-" + "x" * 400
    repository = SQLRepository(sql_engine)
    repository.create_schema()
    repository.add(Organization(long_id, "", "UTC", MONTHLY))
    store = SQLSnapshotStore(sql_engine)
    store.create_schema()
    snapshot = SnapshotStoreContract.snapshot(organization_id=long_id)
    assert snapshot == store.add(snapshot)
    assert [snapshot] == store.snapshots(long_id)


def test_long_mapped_table_names_get_index_names_that_fit(sql_engine: sa.Engine) -> None:
    """PostgreSQL allows 63 bytes a name: derived index names are shortened, still distinct."""
    mapping = SchemaMapping(
        programs=ProgramTable("programmes_" + "é" * 24),  # 59 bytes in UTF-8
        matches=MatchTable("mentoring_relationships_between_mentors_and_mentees_v2"),
    )
    repository = SQLRepository(sql_engine, mapping)
    repository.create_schema()
    repository.create_schema()
    names = {index.name for index in repository._tables.indexes}
    assert 4 == len(names)  # with the participants' role index
    assert all(len(str(name).encode()) <= 63 for name in names)
    found = {i["name"] for i in sa.inspect(sql_engine).get_indexes(mapping.matches.table)}
    assert {n for n in names if "mentoring" in str(n)} <= found


def test_a_snapshot_table_prefix_too_long_for_postgresql_is_refused() -> None:
    engine = sa.create_engine("sqlite://")
    with pytest.raises(InvalidRecordError, match="table_prefix"):
        SQLSnapshotStore(engine, table_prefix="p" * 49)
    SQLSnapshotStore(engine, table_prefix="p" * 48)
