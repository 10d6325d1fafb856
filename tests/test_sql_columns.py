"""The SQL repository hands its matches over as columns; the columnar batch equals the pushdown.

Every test runs on SQLite (rows fetched and converted in Python) and on the
throwaway PostgreSQL server (columns packed by the server, unpacked by numpy
and pyarrow).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

import matchusage
from matchusage import BillingCycle, BillingPeriod, Match, Organization, Program
from matchusage.exceptions import InvalidRecordError
from matchusage.sql import SchemaMapping, SQLRepository
from matchusage.testing import strategies as mst
from matchusage.testing.contracts import Record

from .test_sql import load, matches_of

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
