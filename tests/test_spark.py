"""matchusage.spark: the batch on a real local Spark session gives the core's exact figures.

Every test shares one ``local[2]`` session (the ``spark`` fixture) whose time
zone is not UTC. Property tests put several independent generated batches
into one Spark input (ids prefixed per batch), so that one Spark job checks
many cases; their examples are few to keep the suite fast.
"""

from __future__ import annotations

import csv
import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchusage import (
    ExportRow,
    Match,
    Organization,
    Program,
    UsageReport,
    User,
    batch_active_users,
    batch_counts,
    batch_periods,
    export_rows,
    neutralise,
    usage_report,
)
from matchusage._time import to_micros
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
    # Each example is a few Spark jobs (a second or more each): few examples, many batches in
    # each; the "thorough" profile runs more.
    max_examples=25 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 5,
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
    drawn = draw(st.lists(mst.billing_batches(max_matches=12), min_size=2, max_size=10))
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


def _of(organization: Organization, batch: Batch) -> list[Match]:
    _, programs, matches = batch
    owner = {p.id: p.organization_id for p in programs}
    return [m for m in matches if owner[m.program_id] == organization.id]


ExportKey = tuple[str, int, str, tuple[str, ...], tuple[str, ...], int, int]


def _core_exports(batch: Batch, now: datetime, count: int) -> list[ExportKey]:
    return sorted(
        (
            org.id,
            row.period._start_us,
            row.user_id,
            row.programs,
            row.match_ids,
            to_micros(row.active_from),
            to_micros(row.active_until),
        )
        for org in batch[0]
        for row in export_rows(usage_report(_of(org, batch), org.cycle, now=now, periods=count))
    )


def _spark_exports(frame: DataFrame) -> list[ExportKey]:
    rows = frame.select(
        "organization_id",
        F.unix_micros("period_start"),
        "user_id",
        "programs",
        "match_ids",
        F.unix_micros("active_from"),
        F.unix_micros("active_until"),
    ).collect()
    return sorted(
        (org, start, user, tuple(programs), tuple(ids), low, high)
        for org, start, user, programs, ids, low, high in rows
    )


@settings(SPARK_SETTINGS, max_examples=SPARK_SETTINGS.max_examples // 2 + 1)
@given(data=spark_batches())
def test_exports_hold_the_cores_evidence(spark: SparkSession, data: tuple[Batch, datetime]) -> None:
    """Each exported user's matches (by start, then id), programs and active span."""
    batch, now = data
    frames = frames_of(spark, batch, "integer" if batch[0][0].id.isdigit() else "string")

    exports = mus.batch_exports(frames, now=now, organizations=batch[0], count=3, check=False)

    assert _core_exports(batch, now, 3) == _spark_exports(exports)


def test_usage_report_is_the_cores(edges: tuple[Batch, mus.MatchFrames]) -> None:
    batch, frames = edges
    organization = batch[0][0]
    now = pendulum.datetime(2025, 4, 2, tz="UTC")
    expected = usage_report(_of(organization, batch), organization.cycle, now=now, periods=3)

    actual = mus.usage_report(frames, organization, now=now, periods=3)

    assert _figures(expected) == _figures(actual)


def _figures(report: UsageReport) -> object:
    current = report.current
    return (
        [(u.period, u.users, u.by_program, u.attributed, u.new, u.dropped) for u in report.periods],
        (current.period, current.users_so_far, current.current_users),
        {program: [m.id for m in found] for program, found in current.current_matches.items()},
    )


def test_usage_report_needs_programs(edges: tuple[Batch, mus.MatchFrames]) -> None:
    batch, frames = edges
    direct = frames.matches.join(frames.programs, "program_id").drop("program_id")  # type: ignore[arg-type]

    with pytest.raises(InvalidRecordError, match="program_id"):
        mus.usage_report(mus.MatchFrames(direct, frames.participants), batch[0][0], now=NOW)


@pytest.fixture(scope="module")
def hostile(
    spark: SparkSession, edges: tuple[Batch, mus.MatchFrames]
) -> tuple[DataFrame, list[ExportRow]]:
    """The exports of the edge cases with a user directory whose names start like formulas."""
    (organizations, programs, matches), frames = edges
    directory = {
        "ann": User("ann", "=HYPERLINK(1)", "ann@example.org"),
        "bob": User("bob", "'quoted", None),
    }
    users = spark.createDataFrame(
        [(u.id, u.name, u.email) for u in directory.values()],
        "user_id string, name string, email string",
    )
    exports = mus.batch_exports(
        frames, now=NOW, organizations=organizations[:1], count=3, users=users
    )
    paris = organizations[0]
    expected = list(
        export_rows(
            usage_report(
                _of(paris, (organizations, programs, matches)), paris.cycle, now=NOW, periods=3
            ),
            users=directory,
        )
    )
    return exports, expected


def test_csv_export_is_spreadsheet_safe(
    hostile: tuple[DataFrame, list[ExportRow]], tmp_path: Path
) -> None:
    exports, rows = hostile
    expected = [
        [
            "paris",
            row.user_id,
            neutralise(row.name),
            neutralise(row.email or ""),
            ";".join(row.programs),
            ";".join(row.match_ids),
            row.period.start.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        ]
        for row in rows
    ]

    mus.write_export(exports, str(tmp_path / "out"), format="csv")

    lines = []
    for part in sorted((tmp_path / "out").glob("part-*.csv")):
        with part.open(newline="") as file:
            lines += list(csv.DictReader(file))
    assert list(mus.EXPORT_FRAME_COLUMNS) == list(lines[0])
    assert sorted(expected) == sorted(
        [
            r["organization_id"],
            r["user_id"],
            r["name"],
            r["email"],
            r["programs"],
            r["match_ids"],
            r["period_start"],
        ]
        for r in lines
    )


def test_parquet_export_by_organization_keeps_the_types(
    spark: SparkSession, hostile: tuple[DataFrame, list[ExportRow]], tmp_path: Path
) -> None:
    exports, _ = hostile

    mus.write_export(exports, str(tmp_path / "out"), by_organization=True)

    assert ["organization_id=paris"] == sorted(
        p.name for p in (tmp_path / "out").glob("organization_id=*")
    )
    back = spark.read.parquet(str(tmp_path / "out")).select(*mus.EXPORT_FRAME_COLUMNS)
    assert sorted(exports.collect()) == sorted(back.collect())


def test_billing_job_runs_with_spark_submit(
    spark: SparkSession, edges: tuple[Batch, mus.MatchFrames], tmp_path: Path
) -> None:
    """The guide's job script, submitted as a cluster would run it (local master)."""
    (organizations, programs, matches), frames = edges
    assert frames.programs is not None
    frames.matches.join(frames.programs, "program_id").write.parquet(str(tmp_path / "matches"))
    frames.participants.write.parquet(str(tmp_path / "participants"))
    (tmp_path / "organizations.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "id": o.id,
                    "name": o.name,
                    "timezone": o.timezone,
                    "cycle": {
                        "anchor": o.cycle.anchor.isoformat(),
                        "unit": "month",
                        "every": o.cycle.every,
                    },
                }
            )
            + "\n"
            for o in organizations
        )
    )
    submit = Path(sys.executable).with_name("spark-submit")
    script = Path(__file__).parents[1] / "examples" / "spark_billing_job.py"
    environment = {**os.environ, "PYSPARK_PYTHON": sys.executable}

    done = subprocess.run(
        [
            str(submit),
            "--master",
            "local[1]",
            "--conf",
            "spark.ui.enabled=false",
            str(script),
            "--matches",
            str(tmp_path / "matches"),
            "--participants",
            str(tmp_path / "participants"),
            "--organizations",
            str(tmp_path / "organizations.jsonl"),
            "--now",
            NOW.isoformat(),
            "--periods",
            "3",
            "--output",
            str(tmp_path / "out"),
            "--export-format",
            "csv",
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )

    assert 0 == done.returncode, done.stderr[-3000:]
    given_ = {"now": NOW, "organizations": organizations, "count": 3}
    expected = batch_counts(matches, programs=programs, **given_)
    counts = spark.read.parquet(str(tmp_path / "out" / "counts"))
    assert expected == mus.collect_counts(counts, **given_)
    total = sum(sum(found.values()) for found in expected.values())
    assert f"{total} active user-periods, 2 organizations" in done.stdout
    assert ["organization_id=paris", "organization_id=tokyo"] == sorted(
        p.name for p in (tmp_path / "out" / "exports").glob("organization_id=*")
    )


def test_match_ids_of_two_types_meet_as_text(spark: SparkSession) -> None:
    """Integer match ids on the matches, their decimal strings on the participants."""
    batch = merged([two_organizations()], "integer")
    frames = frames_of(spark, batch, "integer")
    as_text = frames.participants.withColumn("match_id", F.col("match_id").cast("string"))
    mixed = mus.MatchFrames(frames.matches, as_text, frames.programs)
    given_ = {"now": NOW, "organizations": batch[0], "count": 3}
    expected = batch_counts(batch[2], programs=batch[1], **given_)

    assert expected == mus.collect_counts(mus.batch_counts(mixed, **given_), **given_)
