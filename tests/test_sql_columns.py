"""The SQL repository hands its matches over as columns; the columnar batch equals the pushdown.

Every test runs on SQLite (rows fetched and converted in Python) and on the
throwaway PostgreSQL server (columns packed by the server, unpacked by numpy
and pyarrow).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

import matchusage
from matchusage import BillingCycle, BillingPeriod, Match, Organization, Program
from matchusage.exceptions import InvalidRecordError
from matchusage.sql import (
    SchemaMapping,
    SQLRepository,
    _columns,
)
from matchusage.testing import strategies as mst
from matchusage.testing.contracts import Record

from .test_sql import load, matches_of
from .test_sql_application_databases import DJANGO, DJANGO_TABLES, execute, instant_type

T = TypeVar("T")
UTC = timezone.utc
T0 = datetime(2024, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
MONTHLY = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))


@pytest.fixture
def repository(sql_engine: sa.Engine) -> SQLRepository:
    repository = SQLRepository(sql_engine)
    repository.create_schema()
    return repository


@given(
    records=mst.repository_records(),
    before=mst.aware_datetimes(),
    count=st.integers(0, 4),
)
def test_the_batch_by_columns_equals_the_pushdown_and_the_engine(
    repository: SQLRepository, records: list[Record], before: datetime, count: int
) -> None:
    """Each organization's own closed periods, counted from columns read out of the database."""
    load(repository, records)
    organizations = sorted((r for r in records if isinstance(r, Organization)), key=lambda o: o.id)
    expected = {
        o.id: matchusage.active_users_by_period(
            matches_of(records, o.id), o.cycle.closed_periods(before=before, count=count)
        )
        for o in organizations
    }
    counts = {key: {p: len(u) for p, u in value.items()} for key, value in expected.items()}

    assert counts == repository.count_closed_periods(before=before, count=count, method="columns")
    assert counts == repository.count_closed_periods(before=before, count=count, method="database")
    assert expected == repository.active_users_closed_periods(
        before=before, count=count, method="columns"
    )


@given(
    records=mst.repository_records(),
    periods=st.lists(mst.billing_periods(), min_size=1, max_size=5),
)
def test_match_columns_count_like_the_engine(
    repository: SQLRepository, records: list[Record], periods: list[BillingPeriod]
) -> None:
    """Any periods: the columns hold every participant of every match that overlaps them."""
    load(repository, records)
    plan = {"o1": periods, "o2": periods[:1]}
    expected = {
        key: matchusage.active_users_by_period(matches_of(records, key), value)
        for key, value in plan.items()
    }
    columns = repository.match_columns(plan)
    assert expected == matchusage.columnar_active_users(columns, plan)
    assert expected == matchusage.columnar_active_users(columns, plan, engine="python")


def test_auto_reads_columns_on_postgresql_and_counts_in_the_database_elsewhere(
    repository: SQLRepository,
) -> None:
    load(repository, [Organization("o1", "", "UTC", MONTHLY), Program("p1", "o1"),
                      Match("m", "p1", {"u1", "u2"}, T0)])  # fmt: skip
    statements: list[str] = []

    def keep(conn, cursor, statement, *_):  # type: ignore[no-untyped-def]
        statements.append(statement)

    sa.event.listen(repository.engine, "before_cursor_execute", keep)
    report = repository.count_closed_periods(before=T0 + 40 * DAY, count=1)
    sa.event.remove(repository.engine, "before_cursor_execute", keep)
    assert {"o1": {MONTHLY.period(2): 2}} == report
    packed = any("string_agg" in s for s in statements)
    counted = any("count(DISTINCT" in s for s in statements)
    postgresql = repository.engine.dialect.name == "postgresql"
    assert (postgresql, not postgresql) == (packed, counted)


def test_an_unknown_method_is_refused(repository: SQLRepository) -> None:
    with pytest.raises(InvalidRecordError, match="method"):
        repository.count_closed_periods(before=T0, method="spark")  # type: ignore[arg-type]


HOSTILE = ["a,b", 'quote"d', "new\nline", "tab\tx", "back\\slash", "é中😀", "-", "NULL", " "]


def test_any_id_survives_the_columns(repository: SQLRepository) -> None:
    """Separators, quotes, escapes and any script: the ids come back byte for byte."""
    load(repository, [
        Organization("org,1", "", "UTC", MONTHLY),
        Program("p1", "org,1"),
        Match("m", "p1", set(HOSTILE), T0, T0 + DAY),
        Match("n", "p1", {"solo"}, T0 - 10 * DAY),
    ])  # fmt: skip
    report = repository.active_users_closed_periods(before=T0 + 40 * DAY, count=1, method="columns")
    assert {"org,1": {MONTHLY.period(2): frozenset([*HOSTILE, "solo"])}} == report


def test_naive_utc_columns_are_read_as_utc(postgresql_engine: sa.Engine) -> None:
    """Timestamps without time zone hold UTC when the mapping says so, on the columns path too."""
    repository = SQLRepository(postgresql_engine, SchemaMapping(naive_utc=True))
    repository.create_schema()
    start = T0 + timedelta(hours=23, minutes=30)
    repository.add(Organization("o1", "", "UTC", MONTHLY), Program("p1", "o1"),
                   Match("m", "p1", {"u1"}, start, MONTHLY.period(3).start))  # fmt: skip
    periods = [MONTHLY.period(2), MONTHLY.period(3)]
    expected = {"o1": {periods[0]: 1, periods[1]: 0}}
    assert expected == repository.count_closed_periods(before=periods[1].end, count=2,
                                                       method="columns")  # fmt: skip
    columns = repository.match_columns({"o1": periods})
    assert [matchusage.MatchColumns.ONGOING] != list(columns.end_us)


# -- integer ids and every time zone ---------------------------------------------------------

DECIMAL = st.integers(0, 10**12).map(str)


@given(
    matches=st.lists(
        mst.matches(ids=DECIMAL, users=st.integers(1, 12).map(str), programs=st.sampled_from(
            ["21", "3", "90"])),
        max_size=20, unique_by=lambda m: m.id,
    ),
    zones=st.tuples(st.sampled_from(mst.ZONES), st.sampled_from(mst.ZONES)),
    anchor=mst.aware_datetimes(),
    before=mst.aware_datetimes(),
    count=st.integers(0, 4),
)  # fmt: skip
def test_columns_from_integer_id_tables_equal_the_object_path(
    sql_engine: sa.Engine,
    matches: list[Match],
    zones: tuple[str, str],
    anchor: datetime,
    before: datetime,
    count: int,
) -> None:
    """Bigint ids everywhere, organizations in any zone: columns == matches read as objects."""
    if not sa.inspect(sql_engine).has_table("app_member"):
        execute(sql_engine, *DJANGO_TABLES.format(instant=instant_type(sql_engine)).split(";"))
    repository = SQLRepository(sql_engine, DJANGO)
    with sql_engine.begin() as connection:
        for table in ("app_member", "app_match", "app_user", "app_program", "app_account"):
            connection.execute(sa.text(f"DELETE FROM {table}"))
    organizations = [
        Organization(key, "", zone, BillingCycle.monthly(anchor.astimezone(ZoneInfo(zone))))
        for key, zone in zip(["1", "9"], zones, strict=True)
    ]
    repository.add(*organizations, Program("21", "1"), Program("3", "1"), Program("90", "9"),
                   *matches)  # fmt: skip
    plan = matchusage.batch_periods(organizations, now=before, count=count)
    expected = {
        key: matchusage.active_users_by_period(
            matchusage.OrganizationMatches(repository, key), periods
        )
        for key, periods in plan.items()
    }
    counts = {key: {p: len(u) for p, u in value.items()} for key, value in expected.items()}
    assert counts == repository.count_closed_periods(before=before, count=count, method="columns")
    assert expected == repository.active_users_closed_periods(
        before=before, count=count, method="columns"
    )
    assert expected == matchusage.columnar_active_users(repository.match_columns(plan), plan)


# -- two connections for a large table -------------------------------------------------------


def _many_matches(count: int) -> list[Record]:
    """Two organizations with *count* matches spread over a year, some ongoing, some groups."""
    berlin = BillingCycle.monthly(datetime(2023, 12, 10, 9, tzinfo=ZoneInfo("Europe/Berlin")))
    records: list[Record] = [
        Organization("o1", "", "UTC", MONTHLY),
        Organization("o2", "", "Europe/Berlin", berlin),
        Program("p1", "o1"),
        Program("p2", "o2"),
    ]
    for n in range(count):
        start = T0 - timedelta(hours=(n * 7919) % (365 * 24))
        end = None if n % 3 == 0 else start + timedelta(hours=(n * 104729) % (90 * 24))
        users = {f"u{(n * k) % 499}" for k in (1, 7, 13)[: 2 + n % 2]}
        records.append(Match(f"m{n}", f"p{1 + n % 2}", users, start, end))
    return records


def _statements(engine: sa.Engine) -> tuple[list[tuple[int, str]], Callable[[], None]]:
    seen: list[tuple[int, str]] = []

    def keep(conn, cursor, statement, parameters, *_):  # type: ignore[no-untyped-def]
        seen.append((id(conn.connection.dbapi_connection), f"{statement} {parameters}"))

    sa.event.listen(engine, "before_cursor_execute", keep)
    return seen, lambda: sa.event.remove(engine, "before_cursor_execute", keep)


def test_a_large_table_is_read_in_two_halves_at_one_snapshot(
    postgresql_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two connections, one snapshot, the same counts as one statement and the database."""
    repository = SQLRepository(postgresql_engine)
    repository.create_schema()
    repository.add(*_many_matches(3000))
    with postgresql_engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")  # the planner's estimates decide
    now = T0 + 40 * DAY
    expected = repository.active_users_closed_periods(before=now, count=6, method="database")
    monkeypatch.setattr(_columns, "_SPLIT_PAGES", 1)
    seen, stop = _statements(postgresql_engine)
    assert expected == repository.active_users_closed_periods(before=now, count=6, method="columns")
    stop()
    packed = {connection for connection, statement in seen if "string_agg" in statement}
    assert 2 == len(packed)
    assert any(statement.startswith("SET TRANSACTION SNAPSHOT") for _, statement in seen)
    assert {k: {p: len(u) for p, u in v.items()} for k, v in expected.items()} == (
        repository.count_closed_periods(before=now, count=6, method="columns")
    )


def _read_through_a_pool_of_one(
    postgresql_url: str, postgresql_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Columns read through a pool of one connection: one statement, the database's counts."""
    with postgresql_engine.connect() as connection:
        schema = connection.exec_driver_sql("SHOW search_path").scalar_one()
    engine = sa.create_engine(
        postgresql_url,
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.5,
        connect_args={"options": f"-csearch_path={schema}"},
    )
    repository = SQLRepository(engine)
    repository.create_schema()
    repository.add(*_many_matches(300))
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    monkeypatch.setattr(_columns, "_SPLIT_PAGES", 1)
    seen, stop = _statements(engine)
    now = T0 + 40 * DAY
    report = repository.count_closed_periods(before=now, count=6, method="columns")
    stop()
    assert report == repository.count_closed_periods(before=now, count=6, method="database")
    assert 1 == len({connection for connection, statement in seen if "string_agg" in statement})
    engine.dispose()


def test_without_a_spare_connection_one_statement_reads_it_all(
    postgresql_url: str, postgresql_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool of one connection: no waiting for the connection the batch itself holds."""
    _read_through_a_pool_of_one(postgresql_url, postgresql_engine, monkeypatch)


def test_a_spare_connection_taken_meanwhile_leaves_one_statement_reading_it_all(
    postgresql_url: str, postgresql_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool looked spare, but its connection went to another thread: no failure."""
    monkeypatch.setattr(sa.pool.QueuePool, "checkedin", lambda pool: 1)
    _read_through_a_pool_of_one(postgresql_url, postgresql_engine, monkeypatch)


def test_the_tables_are_read_whole_only_for_a_large_share_of_the_matches(
    postgresql_engine: sa.Engine,
) -> None:
    """The planner's estimate for the organizations' programs decides, not its average.

    For the columns and for counting in the database alike (a program's
    matches, for counting one program).
    """
    repository = SQLRepository(postgresql_engine)
    repository.create_schema()
    repository.add(
        *_many_matches(3000),
        Organization("o3", "", "UTC", MONTHLY),
        Program("p3", "o3"),
        Match("small", "p3", {"u1"}, T0),
    )
    with postgresql_engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    periods = MONTHLY.closed_periods(before=T0 + 40 * DAY, count=6)
    for key, program, whole in (("o1", "p1", True), ("o3", "p3", False)):
        columns, nestloop_off = _planned(
            postgresql_engine, partial(repository.match_columns, {key: periods})
        )
        assert whole == nestloop_off
        expected = matchusage.columnar_counts(columns, {key: periods})
        # Counting in the database, for the organization and for one program of it
        counted, nestloop_off = _planned(
            postgresql_engine, partial(repository.count_by_organization, {key: periods})
        )
        assert (expected, whole) == (counted, nestloop_off)
        one_program, nestloop_off = _planned(
            postgresql_engine,
            partial(repository.count_active_users, key, periods, program_id=program),
        )
        assert (expected[key], whole) == (one_program, nestloop_off)
        users, nestloop_off = _planned(
            postgresql_engine, partial(repository.active_users_by_organization, {key: periods})
        )
        assert whole == nestloop_off
        assert expected[key] == {period: len(ids) for period, ids in users[key].items()}


def _planned(engine: sa.Engine, call: Callable[[], T]) -> tuple[T, bool]:
    """What *call* returns, and whether it turned nested loops off (read the tables whole)."""
    seen, stop = _statements(engine)
    try:
        result = call()
    finally:
        stop()
    return result, any("enable_nestloop" in statement for _, statement in seen)
