"""The batch API over an SQLRepository counts where the matches are, with the object path's outcome.

`batch_counts` and `batch_active_users` given an
[`SQLRepository`][matchusage.sql.SQLRepository] count every organization at
once by its fastest path (columns read out on PostgreSQL, one counting
statement elsewhere) instead of reading each one's matches as objects. Results and
errors must be those of the object path, which the tests run on the same
tables through a plain `MatchRepository` wrapper: including bad stored rows,
a bad stored organization, and organizations given that are not stored.
Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import event, example, given
from hypothesis import strategies as st

from matchusage import (
    BillingCycle,
    Match,
    Organization,
    Program,
    User,
    batch_active_users,
    batch_counts,
)
from matchusage.exceptions import MatchUsageError
from matchusage.sql import SQLRepository
from matchusage.testing import strategies as mst
from matchusage.testing.contracts import Record

from .test_sql import load, statements
from .test_sql_bad_stored_rows import loose_repository, store

UTC = timezone.utc
HOUR = timedelta(hours=1)
MONTHLY = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))


@attrs.frozen
class ObjectsOnly:
    """The repository seen through the `MatchRepository` port only: the batch over objects."""

    repository: SQLRepository

    def organizations(self) -> list[Organization]:
        return self.repository.organizations()

    def organization(self, organization_id: str) -> Organization:
        return self.repository.organization(organization_id)

    def programs(self, organization_id: str) -> Sequence[Program]:
        return self.repository.programs(organization_id)

    def matches(
        self, organization_id: str, *, start: datetime, end: datetime, program_id: str | None = None
    ) -> list[Match]:
        return self.repository.matches(organization_id, start=start, end=end, program_id=program_id)

    def users(self, user_ids: Iterable[str]) -> Mapping[str, User]:
        return self.repository.users(user_ids)


@pytest.fixture
def repository(sql_engine: sa.Engine) -> SQLRepository:
    return loose_repository(sql_engine)


def outcome(call: Callable[[], object]) -> tuple[object, ...]:
    """What a call gave: its result, or the kind and message of the error it raised."""
    try:
        return ("result", call())
    except MatchUsageError as error:
        return (type(error), str(error))


BAD_KINDS = ["end-before-start", "no-user", "empty-user", "unknown-role", "zero-length-bad-role"]


def store_bad(repository: SQLRepository, n: int, bad: tuple[str, str, datetime, datetime]) -> None:
    """Write bad match ``bad<n>`` of *kind* in *program*, spanning around the two instants."""
    kind, program, one, other = bad
    start, end = min(one, other), max(one, other)
    match_id = f"bad{n}"
    if kind == "end-before-start":
        store(repository, end + HOUR, start, ("u1", None), match_id=match_id, program_id=program)
    elif kind == "zero-length-bad-role":
        store(repository, start, start, ("u1", "coach"), match_id=match_id, program_id=program)
    else:
        user, role = {"no-user": (None, None), "empty-user": ("", None)}.get(kind, ("u2", "boss"))
        participants = [("u3", "mentor"), (user, role)]
        store(repository, start, end, *participants, match_id=match_id, program_id=program)


def given_organizations(records: list[Record], ids: list[str] | None) -> list[Organization] | None:
    """The organizations to bill: stored ones by their record, others made up (unknown)."""
    if ids is None:
        return None
    stored = {r.id: r for r in records if isinstance(r, Organization)}
    return [stored.get(key) or Organization(key, "?", "UTC", MONTHLY) for key in ids]


def at(month: int, day: int = 1) -> datetime:
    return datetime(2024, month, day, tzinfo=UTC)


EXAMPLE_RECORDS: list[Record] = [
    Organization("o1", "One", "UTC", MONTHLY),
    Organization("o2", "Two", "UTC", MONTHLY),
    Program("p1", "o1"),
    Program("p2", "o1"),
    Program("p3", "o2"),
    Match("m1", "p1", {"u1", "u2"}, at(3, 10)),
    Match("m2", "p3", {"u3"}, at(1, 10), at(2, 10)),
]


@given(
    records=mst.repository_records(max_matches=12),
    bad_rows=st.lists(
        st.tuples(
            st.sampled_from(BAD_KINDS),
            mst.PROGRAM_IDS,
            mst.aware_datetimes(),
            mst.aware_datetimes(),
        ),
        max_size=3,
    ),
    bad_cycle=st.sampled_from([False, False, False, True]),
    organization_ids=st.none()
    | st.lists(st.sampled_from(["o1", "o2", "x1", "x2"]), unique=True, max_size=4),
    now=mst.aware_datetimes(),
    count=st.integers(0, 4),
)
# An end before the start that no single period holds both ends of.
@example(
    records=EXAMPLE_RECORDS,
    bad_rows=[("end-before-start", "p1", at(2, 20), at(4, 10))],
    bad_cycle=False,
    organization_ids=None,
    now=at(5),
    count=3,
)
# Bad rows in two organizations, and an unknown one: the first in order raises.
@example(
    records=EXAMPLE_RECORDS,
    bad_rows=[("no-user", "p3", at(2, 20), at(2, 22)), ("unknown-role", "p1", at(3), at(4))],
    bad_cycle=False,
    organization_ids=["x1", "o2", "o1", "x2"],
    now=at(5),
    count=3,
)
def test_the_batch_in_the_database_has_the_object_paths_outcome(
    repository: SQLRepository,
    records: list[Record],
    bad_rows: list[tuple[str, str, datetime, datetime]],
    bad_cycle: bool,
    organization_ids: list[str] | None,
    now: datetime,
    count: int,
) -> None:
    load(repository, records)
    for n, bad in enumerate(bad_rows):
        store_bad(repository, n, bad)
    if bad_cycle:
        table = repository._tables.organizations
        with repository.engine.begin() as connection:
            connection.execute(table.update().where(table.c.id == "o2").values(cycle_every=0))
    arguments: dict[str, Any] = {
        "now": now,
        "count": count,
        "organizations": given_organizations(records, organization_ids),
    }
    objects = ObjectsOnly(repository)
    for batch in (batch_counts, batch_active_users):
        expected = outcome(lambda batch=batch: batch(objects, **arguments))  # type: ignore[misc]
        event(getattr(expected[0], "__name__", "results"))
        with statements(repository.engine) as seen:
            found = outcome(lambda batch=batch: batch(repository, **arguments))  # type: ignore[misc]
        # On PostgreSQL the batch reads columns (method="auto"), elsewhere the database counts.
        event("by columns" if any("string_agg" in s for s in seen) else "not by columns")
        assert expected == found


def test_the_batch_takes_the_fastest_path(repository: SQLRepository) -> None:
    """Columns on PostgreSQL (``method="auto"``), one counting statement elsewhere."""
    load(
        repository,
        [
            Organization("o1", "One", "UTC", MONTHLY),
            Program("p1", "o1"),
            Match("m", "p1", {"u1", "u2"}, datetime(2024, 2, 10, tzinfo=UTC)),
        ],
    )
    now = datetime(2024, 5, 1, tzinfo=UTC)
    for batch in (batch_counts, batch_active_users):
        with statements(repository.engine) as seen:
            result = batch(repository, now=now, count=3)
        assert [2, 2, 2] == [v if isinstance(v, int) else len(v) for v in result["o1"].values()]
        by_columns = [statement for statement in seen if "string_agg" in statement]
        counting = [statement for statement in seen if "period_start" in statement]
        if repository.engine.dialect.name == "postgresql":
            assert (1, []) == (len(by_columns), counting), seen
        else:
            assert 2 == len(seen), seen  # the organizations, then the batch
