"""Counting in the database refuses the stored matches that reading them as objects refuses.

A stored row that [`Match`][matchusage.Match] refuses (an end before the
start, a participant row without a user, an empty id, an unknown role) can
only be written around the adapter. Every SQL counting path must then raise
the error [`SQLRepository.matches`][matchusage.sql.SQLRepository.matches]
raises for the same window, never count around the row (nor read it out as
columns); a batch fails that organization alone. Every test runs on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Literal

import attrs
import pytest
import sqlalchemy as sa

import matchusage
from matchusage import BillingCycle, BillingPeriod, Match, Organization, Program
from matchusage.exceptions import InvalidMatchError, UnknownRecordError
from matchusage.sql import MatchTable, ParticipantTable, ProgramTable, SchemaMapping, SQLRepository

UTC = timezone.utc
MONTHLY = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))
FEBRUARY, MARCH, APRIL = MONTHLY.period(1), MONTHLY.period(2), MONTHLY.period(3)
PERIODS = [FEBRUARY, MARCH, APRIL]
MAY = APRIL.end


def at(month: int, day: int = 1) -> datetime:
    return datetime(2024, month, day, tzinfo=UTC)


def loose_repository(engine: sa.Engine) -> SQLRepository:
    """The adapter's own tables, but participants in a table that holds what the schema refuses."""
    with engine.begin() as connection:
        connection.execute(
            sa.text("CREATE TABLE loose_participants (match_id TEXT, user_id TEXT, role TEXT)")
        )
    mapping = SchemaMapping(participants=ParticipantTable("loose_participants"))
    repository = SQLRepository(engine, mapping)
    repository.create_schema()
    return repository


@pytest.fixture
def repository(sql_engine: sa.Engine) -> SQLRepository:
    """A loose repository with two organizations: ``o1`` (program ``p1``, one good match) and
    ``o2`` (program ``p2``, one good match)."""
    repository = loose_repository(sql_engine)
    repository.add(
        Organization("o1", "One", "UTC", MONTHLY),
        Organization("o2", "Two", "UTC", MONTHLY),
        Program("p1", "o1"),
        Program("p2", "o2"),
        Match("good", "p1", {"u1", "u2"}, at(2, 10)),
        Match("other", "p2", {"u3", "u4"}, at(3, 10), at(4, 10)),
    )
    return repository


def store(
    repository: SQLRepository,
    started: datetime,
    ended: datetime | None,
    *participants: tuple[str | None, str | None],
    match_id: str = "bad",
    program_id: str = "p1",
) -> None:
    """Write a match row and its ``(user, role)`` participant rows, unchecked."""
    tables = repository._tables
    assert tables.participants is not None
    with repository.engine.begin() as connection:
        connection.execute(
            tables.matches.insert(),
            [{"id": match_id, "program_id": program_id, "started_at": started, "ended_at": ended}],
        )
        connection.execute(
            tables.participants.insert(),
            [{"match_id": match_id, "user_id": user, "role": role} for user, role in participants],
        )


# Each case writes one bad match of o1 that reading the window February-April refuses.
BAD_ROWS: dict[str, Callable[[SQLRepository], None]] = {
    "end-before-start": lambda r: store(r, at(3, 20), at(3, 10), ("u5", None)),
    # No single period has both ends of it, but reading the window meets it.
    "end-before-start-across-the-periods": lambda r: store(r, at(4, 10), at(2, 20), ("u5", None)),
    "end-before-start-in-a-pair-with-roles": lambda r: store(
        r, at(3, 2), at(3, 1), ("u1", "mentor"), ("u5", "mentee")
    ),
    "participant-without-a-user": lambda r: store(r, at(3, 1), None, ("u5", None), (None, None)),
    "empty-user-id": lambda r: store(r, at(3, 1), None, ("", None)),
    "unknown-role": lambda r: store(r, at(3, 1), at(3, 5), ("u5", "coach")),
    "empty-match-id": lambda r: store(r, at(3, 1), None, ("u5", None), match_id=""),
    # A zero-length match counts no one, but reading it still refuses it.
    "zero-length-with-an-unknown-role": lambda r: store(r, at(3, 9), at(3, 9), ("u5", "Mentor")),
}


def expected_error(repository: SQLRepository, periods: list[BillingPeriod]) -> str:
    """The error reading o1's matches over *periods*' window raises."""
    with pytest.raises(InvalidMatchError) as raised:
        repository.matches("o1", start=periods[0].start, end=periods[-1].end)
    return str(raised.value)


ONE_ORGANIZATION: dict[str, Callable[[SQLRepository], object]] = {
    "count_active_users": lambda r: r.count_active_users("o1", PERIODS),
    "active_users_by_period": lambda r: r.active_users_by_period("o1", PERIODS),
    "iter_active_users": lambda r: list(r.iter_active_users("o1", PERIODS)),
    "count_by_organization": lambda r: r.count_by_organization({"o2": PERIODS, "o1": PERIODS}),
    "active_users_by_organization": lambda r: r.active_users_by_organization(
        {"o2": PERIODS, "o1": PERIODS}
    ),
}


@pytest.mark.parametrize("values_rows", [1000, 1], ids=["one-statement", "row-by-row"])
@pytest.mark.parametrize("call", list(ONE_ORGANIZATION.values()), ids=list(ONE_ORGANIZATION))
@pytest.mark.parametrize("bad", list(BAD_ROWS.values()), ids=list(BAD_ROWS))
def test_counting_raises_what_reading_the_matches_raises(
    repository: SQLRepository,
    bad: Callable[[SQLRepository], None],
    call: Callable[[SQLRepository], object],
    values_rows: int,
) -> None:
    """Also with the period rows sent in shares (outside PostgreSQL: one per statement)."""
    repository._pushdown.values_rows = values_rows
    bad(repository)
    message = expected_error(repository, PERIODS)
    assert "'bad'" in message or "''" in message  # the match is named
    with pytest.raises(InvalidMatchError) as raised:
        call(repository)
    assert message == str(raised.value)


@pytest.mark.parametrize("method", ["database", "columns"])
@pytest.mark.parametrize("bad", list(BAD_ROWS.values()), ids=list(BAD_ROWS))
def test_a_batch_fails_the_organization_alone(
    repository: SQLRepository,
    bad: Callable[[SQLRepository], None],
    method: Literal["database", "columns"],
) -> None:
    bad(repository)
    message = expected_error(repository, PERIODS)
    counts = repository.count_closed_periods(before=MAY, count=3, method=method)
    users = repository.active_users_closed_periods(before=MAY, count=3, method=method)
    for report in (counts, users):
        assert ["o1"] == list(report.failed)
        assert isinstance(report.failed["o1"], InvalidMatchError)
        assert message == str(report.failed["o1"])
    assert {"o2": {FEBRUARY: 0, MARCH: 2, APRIL: 2}} == counts
    assert {"o2": {FEBRUARY: set(), MARCH: {"u3", "u4"}, APRIL: {"u3", "u4"}}} == users


@pytest.mark.parametrize("bad", list(BAD_ROWS.values()), ids=list(BAD_ROWS))
def test_reading_columns_raises_what_reading_the_matches_raises(
    repository: SQLRepository, bad: Callable[[SQLRepository], None]
) -> None:
    bad(repository)
    message = expected_error(repository, PERIODS)
    with pytest.raises(InvalidMatchError) as raised:
        repository.match_columns({"o2": PERIODS, "o1": PERIODS})
    assert message == str(raised.value)


def test_a_bad_match_outside_the_window_is_not_read_and_not_refused(
    repository: SQLRepository,
) -> None:
    """Reading February-April does not meet a match of January: neither path refuses it."""
    store(repository, at(1, 20), at(1, 5), ("u5", None))
    repository.matches("o1", start=FEBRUARY.start, end=APRIL.end)
    expected = {FEBRUARY: 2, MARCH: 2, APRIL: 2}
    assert expected == repository.count_active_users("o1", PERIODS)
    assert {"o1": expected} == repository.count_by_organization({"o1": PERIODS})
    for method in ("database", "columns"):
        report = repository.count_closed_periods(before=MAY, count=3, method=method)
        assert report.ok
        assert expected == report["o1"]
    columns = repository.match_columns({"o1": PERIODS})
    assert expected == matchusage.columnar_counts(columns, {"o1": PERIODS})["o1"]


def test_a_bad_match_of_another_program_is_not_refused_for_one_program(
    repository: SQLRepository,
) -> None:
    repository.add(Program("p3", "o1"))
    store(repository, at(3, 20), at(3, 10), ("u5", None), program_id="p3")
    assert {MARCH: 2} == repository.count_active_users("o1", [MARCH], program_id="p1")
    with pytest.raises(InvalidMatchError, match="'bad'"):
        repository.count_active_users("o1", [MARCH], program_id="p3")


def test_the_first_bad_organization_in_the_order_given_raises(repository: SQLRepository) -> None:
    store(repository, at(3, 20), at(3, 10), ("u5", None), match_id="bad-1")
    store(repository, at(3, 20), at(3, 10), ("u5", None), match_id="bad-2", program_id="p2")
    with pytest.raises(InvalidMatchError, match="'bad-2'"):
        repository.count_by_organization({"o2": [MARCH], "o1": [MARCH]})
    with pytest.raises(InvalidMatchError, match="'bad-1'"):
        repository.count_by_organization({"o1": [MARCH], "o2": [MARCH]})
    report = repository.count_closed_periods(before=MAY, count=3, method="database")
    assert ({}, ["o1", "o2"]) == (dict(report), sorted(report.failed))


def test_every_unknown_organization_is_named(repository: SQLRepository) -> None:
    plan = {"x9": PERIODS, "o1": PERIODS, "x1": PERIODS, "x5": PERIODS}
    for call in (repository.count_by_organization, repository.active_users_by_organization):
        with pytest.raises(UnknownRecordError) as raised:
            call(plan)
        assert ("organization", ("x9", "x1", "x5")) == (raised.value.kind, raised.value.record_ids)
        assert "unknown organizations 'x9', 'x1' and 'x5'" == str(raised.value)


@pytest.mark.parametrize("values_rows", [1000, 1], ids=["one-statement", "row-by-row"])
def test_a_stream_of_ids_refuses_before_its_first_pair(
    repository: SQLRepository, values_rows: int
) -> None:
    repository._pushdown.values_rows = values_rows
    store(repository, at(4, 20), at(4, 10), ("u5", None))  # in the last period only
    stream = repository.iter_active_users("o1", PERIODS)
    with pytest.raises(InvalidMatchError, match="'bad'"):
        next(stream)


# -- rows of one match id that disagree ---------------------------------------------------


def copied_repository(repository: SQLRepository, *, view: bool = False) -> SQLRepository:
    """*repository*'s matches and programs copied into tables ``copy_*`` without a primary
    key, unique index or foreign key, as an application's may be; mapped as they are, or
    through views of them."""
    mapped = "view" if view else "copy"
    with repository.engine.begin() as connection:
        for name in ("matches", "programs"):
            connection.execute(
                sa.text(f"CREATE TABLE copy_{name} AS SELECT * FROM matchusage_{name}")
            )
            if view:
                connection.execute(sa.text(f"CREATE VIEW view_{name} AS SELECT * FROM copy_{name}"))
    mapping = SchemaMapping(
        matches=MatchTable(f"{mapped}_matches"),
        programs=ProgramTable(f"{mapped}_programs"),
        participants=ParticipantTable("loose_participants"),
    )
    copied = SQLRepository(repository.engine, mapping)
    copied.programs("o1")  # reads the catalog
    return copied


def store_again(
    repository: SQLRepository,
    match_id: str,
    started: datetime,
    ended: datetime | None,
    program_id: str = "p1",
) -> None:
    """Another row of *match_id* in the copied matches table."""
    columns = repository._tables.matches.c
    table = sa.Table("copy_matches", sa.MetaData(), *(sa.Column(c.name, c.type) for c in columns))
    values = {"id": match_id, "program_id": program_id, "started_at": started, "ended_at": ended}
    with repository.engine.begin() as connection:
        connection.execute(table.insert(), [values])


# A second row of a match id that reading the matches cannot choose between: the organizations
# whose window meets it fail.
DISAGREEING_ROWS: dict[str, tuple[Callable[[SQLRepository], None], set[str]]] = {
    "another-start": (lambda r: store_again(r, "good", at(3, 1), None), {"o1"}),
    "ended-and-ongoing": (lambda r: store_again(r, "good", at(2, 10), at(3, 20)), {"o1"}),
    "another-program": (lambda r: store_again(r, "good", at(2, 10), None, "p2"), {"o1", "o2"}),
}


@pytest.mark.parametrize("view", [False, True], ids=["table", "view"])
@pytest.mark.parametrize("disagreeing", list(DISAGREEING_ROWS.values()), ids=list(DISAGREEING_ROWS))
def test_rows_of_one_match_id_that_disagree_are_refused_by_every_path(
    repository: SQLRepository,
    disagreeing: tuple[Callable[[SQLRepository], None], set[str]],
    view: bool,
) -> None:
    copied = copied_repository(repository, view=view)
    write, failing = disagreeing
    write(copied)
    message = expected_error(copied, PERIODS)
    assert "Match 'good': 'id'" in message
    for call in ONE_ORGANIZATION.values():
        with pytest.raises(InvalidMatchError) as raised:
            call(copied)
        assert message == str(raised.value)
    with pytest.raises(InvalidMatchError) as raised:
        copied.match_columns({"o1": PERIODS})
    assert message == str(raised.value)
    reports = [
        copied.count_closed_periods(before=MAY, count=3, method="database"),
        copied.count_closed_periods(before=MAY, count=3, method="columns"),
        copied.active_users_closed_periods(before=MAY, count=3, method="database"),
        copied.active_users_closed_periods(before=MAY, count=3, method="columns"),
    ]
    for report in reports:
        assert failing == set(report.failed)
        assert message == str(report.failed["o1"])
        assert {"o1", "o2"} - failing == set(report)
    with pytest.raises(InvalidMatchError) as raised:  # the first organization that fails
        matchusage.batch_counts(copied, now=MAY, count=3)
    assert message == str(raised.value)


def test_rows_of_one_match_id_that_agree_are_one_match(repository: SQLRepository) -> None:
    """The same match stored twice counts its users once, on every path."""
    copied = copied_repository(repository)
    store_again(copied, "good", at(2, 10), None)
    assert ["good"] == [m.id for m in copied.matches("o1", start=FEBRUARY.start, end=MAY)]
    expected = {FEBRUARY: 2, MARCH: 2, APRIL: 2}
    assert expected == copied.count_active_users("o1", PERIODS)
    for method in ("database", "columns"):
        report = copied.count_closed_periods(before=MAY, count=3, method=method)
        assert {"o1": expected, "o2": {FEBRUARY: 0, MARCH: 2, APRIL: 2}} == report
    assert report == matchusage.batch_counts(copied, now=MAY, count=3)


def test_rows_of_one_id_are_checked_only_without_a_unique_id_in_the_catalog(
    repository: SQLRepository,
) -> None:
    def checked(table: str) -> bool:
        mapping = SchemaMapping(
            matches=MatchTable(table), participants=ParticipantTable("loose_participants")
        )
        reading = SQLRepository(repository.engine, mapping)
        reading.programs("o1")  # reads the catalog
        return not reading._tables.unique_match_ids

    assert not checked("matchusage_matches")  # its primary key
    copied_repository(repository)
    with repository.engine.begin() as connection:
        connection.execute(sa.text("CREATE VIEW view_matches AS SELECT * FROM matchusage_matches"))
    assert checked("copy_matches")
    assert checked("view_matches")
    with repository.engine.begin() as connection:
        connection.execute(sa.text("CREATE UNIQUE INDEX ix_pair ON copy_matches (id, program_id)"))
    assert checked("copy_matches")  # two rows of an id may differ in program
    with repository.engine.begin() as connection:
        connection.execute(sa.text("CREATE UNIQUE INDEX ix_id ON copy_matches (id)"))
    assert not checked("copy_matches")


# -- programs of an organization that is not stored ---------------------------------------


@pytest.mark.parametrize("ended", [None, at(3, 1)], ids=["counting-someone", "counting-no-one"])
def test_an_organization_that_is_not_stored_is_unknown_to_every_path(
    repository: SQLRepository, ended: datetime | None
) -> None:
    """Its programs' matches (stored without a foreign key) bill no one, whatever they hold.

    ``counting-no-one``: a zero-length match, which reading the window meets but counts no
    one; ``counting-someone``: an ongoing match.
    """
    copied = copied_repository(repository)
    with repository.engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO copy_programs VALUES ('p9', 'gone', '')"))
    store_again(copied, "orphan", at(3, 1), ended, "p9")
    with copied.engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO loose_participants VALUES ('orphan', 'u9', NULL)"))
    unknown = "unknown organization 'gone'"
    calls: list[Callable[[], object]] = [
        lambda: copied.matches("gone", start=FEBRUARY.start, end=MAY),
        lambda: copied.count_active_users("gone", PERIODS),
        lambda: copied.active_users_by_period("gone", PERIODS),
        lambda: list(copied.iter_active_users("gone", PERIODS)),
        lambda: copied.count_by_organization({"o1": PERIODS, "gone": PERIODS}),
        lambda: copied.active_users_by_organization({"o1": PERIODS, "gone": PERIODS}),
        lambda: copied.match_columns({"o1": PERIODS, "gone": PERIODS}),
    ]
    for call in calls:
        with pytest.raises(UnknownRecordError, match=unknown):
            call()
    for method in ("database", "columns"):  # reports cover the stored organizations
        report = copied.count_closed_periods(before=MAY, count=3, method=method)
        assert {"o1", "o2"} == set(report)
        assert report.ok


def test_rows_of_one_match_id_with_another_pair_are_refused(sql_engine: sa.Engine) -> None:
    """With mentor and mentee columns, two rows of one id may also name other users."""
    layout = MatchTable("pairs", mentor="mentor_id", mentee="mentee_id")
    own = SQLRepository(sql_engine, SchemaMapping(matches=layout, participants=None))
    own.create_schema()
    own.add(
        Organization("o1", "One", "UTC", MONTHLY),
        Program("p1", "o1"),
        Match("m", "p1", {"u1", "u2"}, at(2, 10), roles={"u1": "mentor", "u2": "mentee"}),
    )
    with sql_engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE copy_pairs AS SELECT * FROM pairs"))
    copied = SQLRepository(
        sql_engine,
        SchemaMapping(matches=attrs.evolve(layout, table="copy_pairs"), participants=None),
    )
    copied.programs("o1")  # reads the catalog
    values = {"id": "m", "program_id": "p1", "started_at": at(2, 10), "ended_at": None}
    with sql_engine.begin() as connection:
        connection.execute(
            copied._tables.matches.insert(), [{**values, "mentor_id": "u1", "mentee_id": "u3"}]
        )
    with pytest.raises(InvalidMatchError) as raised:
        copied.matches("o1", start=FEBRUARY.start, end=MAY)
    message = str(raised.value)
    assert "Match 'm': 'id'" in message
    with pytest.raises(InvalidMatchError) as raised:
        copied.count_active_users("o1", PERIODS)
    assert message == str(raised.value)
    for method in ("database", "columns"):
        report = copied.count_closed_periods(before=MAY, count=3, method=method)
        assert message == str(report.failed["o1"])
