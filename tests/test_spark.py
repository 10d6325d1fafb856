"""matchusage.spark: the batch on a real local Spark session gives the core's exact figures.

Every test shares one ``local[2]`` session (the ``spark`` fixture) whose time
zone is not UTC. Property tests put several independent generated batches
into one Spark input (ids prefixed per batch), so that one Spark job checks
many cases; their examples are few to keep the suite fast.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchusage import (
    Match,
    Organization,
    Program,
    batch_active_users,
    batch_counts,
    batch_periods,
)
from matchusage.exceptions import (
    DuplicateMatchError,
    InvalidMatchError,
    InvalidRecordError,
    UnknownRecordError,
)
from matchusage.testing import strategies as mst

from ._spark import require_spark
from .test_batch import two_organizations
from .test_public_api import _referenced

require_spark()

from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from matchusage import spark as mus  # noqa: E402

if TYPE_CHECKING:
    from matchusage.spark._batch import Method

Batch = tuple[list[Organization], list[Program], list[Match]]
Ids = Literal["string", "integer"]
Instants = Literal["timestamp", "micros"]
Owner = Literal["programs", "direct"]
METHODS: list[Method] = ["sql", "arrow"]
SPARK_SETTINGS = settings(
    # Each example is a few Spark jobs (about a second each): few examples, many batches in each.
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


class _Names:
    """New ids for one kind of record: ``"17"`` (integer ids) or ``"b2-o1"`` (per batch)."""

    def __init__(self, integer: bool) -> None:
        self.integer = integer
        self.known: dict[tuple[int, str], str] = {}

    def __call__(self, batch: int, name: str) -> str:
        key = (batch, name)
        if key not in self.known:
            self.known[key] = str(len(self.known) + 7) if self.integer else f"b{batch}-{name}"
        return self.known[key]


def merged(batches: list[Batch], ids: Ids) -> Batch:
    """The batches as one input, each batch's organizations, programs, matches and users apart."""
    org, program, match, user = (_Names(ids == "integer") for _ in range(4))
    organizations, programs, matches = [], [], []
    for n, (orgs, progs, found) in enumerate(batches):
        organizations += [Organization(org(n, o.id), o.name, o.timezone, o.cycle) for o in orgs]
        programs += [Program(program(n, p.id), org(n, p.organization_id)) for p in progs]
        matches += [
            Match(
                match(n, m.id),
                program(n, m.program_id),
                {user(n, u) for u in m.participants},
                m.started_at,
                m.ended_at,
            )
            for m in found
        ]
    return organizations, programs, matches


def frames_of(
    spark: SparkSession,
    batch: Batch,
    ids: Ids = "string",
    instants: Instants = "timestamp",
    owner: Owner = "programs",
) -> mus.MatchFrames:
    """The batch as DataFrames of the given shape."""
    _, programs, matches = batch
    given_ = mus.MatchFrames.from_matches(spark, matches, programs)
    found, people, table = given_.matches, given_.participants, given_.programs
    assert table is not None
    if owner == "direct":
        found = found.join(table, "program_id").drop("program_id")
    if instants == "micros":
        found = found.withColumns(
            {name: F.unix_micros(name) for name in ("started_at", "ended_at")}
        )
    if ids == "integer":
        found = _integers(found, "match_id", "program_id", "organization_id")
        people = _integers(people, "match_id", "user_id")
        table = _integers(table, "program_id", "organization_id")
    return mus.MatchFrames(found, people, table if owner == "programs" else None)


def _integers(frame: DataFrame, *names: str) -> DataFrame:
    return frame.withColumns({n: F.col(n).cast("bigint") for n in names if n in frame.columns})


@st.composite
def spark_batches(draw: st.DrawFn) -> tuple[Batch, datetime]:
    """Several generated batches, merged, and one instant to run them at."""
    drawn = draw(st.lists(mst.billing_batches(max_matches=12), min_size=1, max_size=8))
    ids: Ids = draw(st.sampled_from(["string", "integer"]))
    return merged([(o, p, m) for o, p, m, _ in drawn], ids), drawn[0][3]


SHAPES: list[tuple[Instants, Owner]] = [("timestamp", "programs"), ("micros", "direct")]


@SPARK_SETTINGS
@given(data=spark_batches(), shape=st.sampled_from(SHAPES))
def test_counts_and_users_are_the_cores(
    spark: SparkSession, data: tuple[Batch, datetime], shape: tuple[Instants, Owner]
) -> None:
    """Random matches, edges, zero-length and ongoing matches, DST zones, shared users, id types.

    Both methods, from timestamps and a programs table or from microseconds
    and the organization on each match.
    """
    batch, now = data
    organizations, programs, matches = batch
    ids: Ids = "integer" if organizations[0].id.isdigit() else "string"
    frames = frames_of(spark, batch, ids, *shape)
    given_ = {"now": now, "organizations": organizations}
    expected_users = batch_active_users(matches, programs=programs, **given_)
    expected_counts = batch_counts(matches, programs=programs, **given_)

    actual = {
        method: (
            mus.collect_counts(
                mus.batch_counts(frames, method=method, check=False, **given_), **given_
            ),
            mus.collect_active_users(
                mus.batch_active_users(frames, method=method, check=False, **given_), **given_
            ),
        )
        for method in METHODS
    }

    assert dict.fromkeys(METHODS, (expected_counts, expected_users)) == actual


@pytest.fixture(scope="module")
def edges(spark: SparkSession) -> tuple[Batch, mus.MatchFrames]:
    """Paris anchored on the 31st, quarterly Tokyo; a match one microsecond into a period,
    a zero-length match, one user in both organizations."""
    organizations, programs, matches = two_organizations()
    return (organizations, programs, matches), mus.MatchFrames.from_matches(
        spark, matches, programs
    )


NOW = pendulum.datetime(2025, 5, 1, tz="UTC")


@pytest.mark.parametrize("method", METHODS)
def test_edges_of_periods_count_as_in_the_core(
    edges: tuple[Batch, mus.MatchFrames], method: Method
) -> None:
    (organizations, programs, matches), frames = edges
    given_ = {"now": NOW, "organizations": organizations, "count": 3}
    expected = batch_counts(matches, programs=programs, **given_)

    counts = mus.batch_counts(frames, method=method, **given_)

    assert expected == mus.collect_counts(counts, **given_)


def test_periods_frame_holds_each_cycles_periods(spark: SparkSession) -> None:
    organizations, _, _ = two_organizations()
    expected = [
        (org, org_cycle.index_of(p.start), p._start_us, p._end_us, True, True)
        for org, org_cycle, periods in (
            (o.id, o.cycle, batch_periods(organizations, now=NOW, count=3)[o.id])
            for o in organizations
        )
        for p in periods
    ]

    frame = mus.batch_periods(spark, organizations, now=NOW, count=3)
    rows = frame.select(
        "organization_id",
        "period_index",
        "start_us",
        "end_us",
        F.unix_micros("period_start") == F.col("start_us"),
        F.unix_micros("period_end") == F.col("end_us"),
    ).collect()

    assert expected == sorted(tuple(row) for row in rows)


def _edited(
    frames: mus.MatchFrames, part: str, edit: Callable[[DataFrame], DataFrame]
) -> mus.MatchFrames:
    given_ = {
        "matches": frames.matches,
        "participants": frames.participants,
        "programs": frames.programs,
    }
    given_[part] = edit(given_[part])  # type: ignore[arg-type]
    return mus.MatchFrames(**given_)  # type: ignore[arg-type]


def _add(spark: SparkSession, rows: list[tuple[object, ...]]) -> Callable[[DataFrame], DataFrame]:
    return lambda frame: frame.unionByName(spark.createDataFrame(rows, frame.schema))


@pytest.mark.parametrize(
    ("part", "rows", "error", "message"),
    [
        ("matches", [("m1", "p-tokyo", None, None)], DuplicateMatchError, "'m1'"),
        ("matches", [("m9", "p-none", None, None)], UnknownRecordError, "'m9'.*'p-none'"),
        ("participants", [("m0", "ann")], UnknownRecordError, "'ann'.*unknown match 'm0'"),
        ("participants", [("m1", "")], InvalidRecordError, "match 'm1'.*user_id"),
        ("programs", [("p-tokyo", "paris")], InvalidRecordError, "'p-tokyo'.*one organization"),
    ],
    ids=["duplicate", "unknown-program", "unknown-match", "empty-user", "program-twice"],
)
def test_bad_rows_are_named_before_counting(
    spark: SparkSession,
    edges: tuple[Batch, mus.MatchFrames],
    part: str,
    rows: list[tuple[object, ...]],
    error: type[Exception],
    message: str,
) -> None:
    (organizations, _, _), frames = edges
    if part == "matches":  # started_at is required: give the rows one
        rows = [(*row[:2], datetime(2025, 1, 1, tzinfo=timezone.utc), None) for row in rows]
    bad = _edited(frames, part, _add(spark, rows))

    with pytest.raises(error, match=message):
        mus.batch_counts(bad, now=NOW, organizations=organizations)


def test_a_match_ending_before_it_starts_is_named(
    spark: SparkSession, edges: tuple[Batch, mus.MatchFrames]
) -> None:
    (organizations, _, _), frames = edges
    start, end = (
        datetime(2025, 2, 2, tzinfo=timezone.utc),
        datetime(2025, 2, 1, tzinfo=timezone.utc),
    )
    bad = _edited(frames, "matches", _add(spark, [("m9", "p-paris", start, end)]))

    with pytest.raises(InvalidMatchError, match=r"Match 'm9': 'ended_at'.*2025-02-02.*2025-02-01"):
        mus.batch_active_users(bad, now=NOW, organizations=organizations)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop("started_at"), "'started_at'"),
        (
            lambda f: f.withColumn("started_at", F.col("started_at").cast("timestamp_ntz")),
            "TIMESTAMP_NTZ",
        ),
        (lambda f: f.withColumn("match_id", F.lit(1.5)), "'match_id'.*'double'"),
        (lambda f: f.drop("program_id"), "'organization_id'"),
    ],
    ids=["missing", "naive", "float-id", "no-organization"],
)
def test_bad_columns_are_refused_at_once(
    edges: tuple[Batch, mus.MatchFrames], edit: Callable[[DataFrame], DataFrame], message: str
) -> None:
    _, frames = edges

    with pytest.raises(InvalidRecordError, match=message):
        mus.MatchFrames(edit(frames.matches), frames.participants, frames.programs)


def test_matches_by_program_need_the_programs_table(edges: tuple[Batch, mus.MatchFrames]) -> None:
    _, frames = edges

    with pytest.raises(InvalidRecordError, match="programs"):
        mus.MatchFrames(frames.matches, frames.participants)


def test_unknown_method_is_refused(edges: tuple[Batch, mus.MatchFrames]) -> None:
    (organizations, _, _), frames = edges

    with pytest.raises(InvalidRecordError, match="method"):
        mus.batch_counts(frames, now=NOW, organizations=organizations, method="udf")  # type: ignore[arg-type]


def test_public_names_are_listed_documented_and_referenced() -> None:
    public = {n for n in vars(mus) if not n.startswith("_")} - {"annotations"}
    undocumented = [n for n in mus.__all__ if not inspect.getdoc(getattr(mus, n))]

    assert (sorted(public), [], set()) == (
        sorted(mus.__all__),
        undocumented,
        set(mus.__all__) - _referenced("matchusage.spark"),
    )
