"""The input: Spark DataFrames of matches and participants, read into one canonical shape."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .._columnar import organizations_of_programs
from .._model import Match, Program
from .._time import FOREVER
from ..exceptions import InvalidRecordError
from ._periods import local_frame

_INTEGERS = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)


@attrs.frozen(eq=False)
class MatchFrames:
    """Matches and their participants as Spark DataFrames, the input of `matchusage.spark`.

    The columns of [`MatchColumns`][matchusage.MatchColumns], keyed by match
    id instead of row number (other columns are ignored):

    | DataFrame | column | type |
    | --- | --- | --- |
    | *matches* | ``match_id`` | string or integer, unique |
    | | ``started_at`` | ``TIMESTAMP`` (an instant) or ``BIGINT`` (microseconds since 1970, UTC) |
    | | ``ended_at`` | the same type; ``NULL`` for an ongoing match |
    | | ``organization_id`` or ``program_id`` | string or integer |
    | *participants* | ``match_id`` | the matches' type |
    | | ``user_id`` | string or integer |
    | *programs* (with ``program_id``) | ``program_id``, ``organization_id`` | string or integer |

    ``TIMESTAMP_NTZ`` columns are refused: a wall-clock time without a zone is
    not an instant. Integer ids are read as their decimal strings
    (organization ``17`` is ``"17"``), as everywhere in matchusage.

    Attributes:
        matches: One row per match.
        participants: One row per (match, user).
        programs: The program-to-organization table, when *matches* has a
            ``program_id`` column instead of ``organization_id``.

    Raises:
        matchusage.exceptions.InvalidRecordError: A column is missing or has a
            type that is not accepted.
    """

    matches: DataFrame
    participants: DataFrame
    programs: DataFrame | None = None

    @classmethod
    def from_matches(
        cls,
        spark: SparkSession,
        matches: Iterable[Match],
        programs: Iterable[Program] | Mapping[str, str],
    ) -> MatchFrames:
        """DataFrames holding the same facts as *matches* (for tests, examples, small data).

        Matches keep their ``program_id``; the programs become the
        program-to-organization table.

        Args:
            spark: The Spark session.
            matches: The matches.
            programs: The programs the matches belong to, or a mapping from
                program id to organization id.
        """
        owners = organizations_of_programs(programs)
        matches = list(matches)
        rows = [(m.id, m.program_id, m._start_us, m._end_us) for m in matches]
        people = [(m.id, user) for m in matches for user in sorted(m.participants)]
        frame = local_frame(
            spark, rows, "match_id string, program_id string, start_us bigint, end_us bigint"
        ).select(
            "match_id",
            "program_id",
            F.timestamp_micros("start_us").alias("started_at"),
            # The core's ongoing end is beyond any timestamp: NULL here.
            F.when(F.col("end_us") < FOREVER, F.timestamp_micros("end_us")).alias("ended_at"),
        )
        return cls(
            frame,
            local_frame(spark, people, "match_id string, user_id string"),
            local_frame(spark, list(owners.items()), "program_id string, organization_id string"),
        )

    def __attrs_post_init__(self) -> None:
        if not self.by_program:
            _require(self.matches, "matches", "organization_id", _ID)
        elif self.programs is None:
            raise InvalidRecordError(
                "MatchFrames",
                "programs",
                None,
                "a program-to-organization DataFrame (matches have program_id, "
                "not organization_id)",
            )
        else:
            for name in ("program_id", "organization_id"):
                _require(self.programs, "programs", name, _ID)
        if self.has_programs:
            _require(self.matches, "matches", "program_id", _ID)
        _require(self.matches, "matches", "match_id", _ID)
        for name in ("started_at", "ended_at"):
            _require(self.matches, "matches", name, _INSTANT)
        for name in ("match_id", "user_id"):
            _require(self.participants, "participants", name, _ID)

    @property
    def by_program(self) -> bool:
        """Whether organizations come from the programs table (matches name only programs)."""
        return "organization_id" not in self.matches.columns and self.has_programs

    @property
    def has_programs(self) -> bool:
        """Whether matches name their program (needed for per-program figures)."""
        return "program_id" in self.matches.columns


_ID = "a string or integer id column"
_INSTANT = "a TIMESTAMP (an instant) or BIGINT microseconds since the epoch, UTC"


def _require(frame: DataFrame, name: str, column: str, expected: str) -> None:
    if column not in frame.columns:
        raise InvalidRecordError(
            f"MatchFrames.{name}", column, sorted(frame.columns), f"a column {column!r}"
        )
    dtype = frame.schema[column].dataType
    accepted = (T.StringType, *_INTEGERS) if expected == _ID else (T.TimestampType, T.LongType)
    if not isinstance(dtype, accepted):
        if isinstance(dtype, T.TimestampNTZType):
            expected += " (TIMESTAMP_NTZ is a wall-clock time, not an instant)"
        raise InvalidRecordError(f"MatchFrames.{name}", column, dtype.simpleString(), expected)


def blank(frame: DataFrame, column: str) -> Column:
    """Whether an id is missing: null, or an empty string."""
    if isinstance(frame.schema[column].dataType, T.StringType):
        return F.col(column).isNull() | (F.col(column) == "")
    return F.col(column).isNull()


def user_ids(frame: DataFrame, column: str = "user_id") -> Column:
    """Ids as matchusage reports them: strings, integers as their decimal strings."""
    return _id(frame, column).alias(column)


def _id(frame: DataFrame, column: str) -> Column:
    """An id column as strings: integers become their decimal strings."""
    if isinstance(frame.schema[column].dataType, T.StringType):
        return F.col(column)
    return F.col(column).cast("string")


def _micros(frame: DataFrame, column: str) -> Column:
    """An instant column as microseconds since the epoch, whatever the session time zone."""
    if isinstance(frame.schema[column].dataType, T.TimestampType):
        return F.unix_micros(F.col(column))
    return F.col(column)


def _match_key(frames: MatchFrames, frame: DataFrame) -> Column:
    """The match id to join on: as it is when both sides have one type, else as strings.

    Integer keys join much faster than their strings; an integer and its
    decimal string are the same id, so mixed types meet as strings.
    """
    same = frames.matches.schema["match_id"].dataType == (
        frames.participants.schema["match_id"].dataType
    )
    return (F.col("match_id") if same else _id(frame, "match_id")).alias("match_id")


def canonical_matches(frames: MatchFrames) -> DataFrame:
    """``match_id`` (the join key), ``organization_id`` and ``program_id`` (strings; the
    program may be null), ``start_us`` and ``end_us`` (``FOREVER`` when ongoing)."""
    m = frames.matches
    program = _id(m, "program_id") if frames.has_programs else F.lit(None).cast("string")
    frame = m.select(
        _match_key(frames, m),
        program.alias("program_id"),
        (_id(m, "organization_id") if not frames.by_program else F.lit(None).cast("string")).alias(
            "organization_id"
        ),
        _micros(m, "started_at").alias("start_us"),
        F.coalesce(_micros(m, "ended_at"), F.lit(FOREVER)).alias("end_us"),
    )
    if not frames.by_program:
        return frame
    assert frames.programs is not None
    p = frames.programs
    owners = p.select(
        _id(p, "program_id").alias("program_id"),
        _id(p, "organization_id").alias("owner"),
    )
    return (
        frame.drop("organization_id")
        .join(owners, "program_id", "left")
        .withColumnRenamed("owner", "organization_id")
    )


def canonical_participants(frames: MatchFrames) -> DataFrame:
    """``match_id`` (the join key) and ``user_id`` as given: integers count faster than
    their strings, which the results show."""
    p = frames.participants
    return p.select(_match_key(frames, p), "user_id")


def canonical_programs(frames: MatchFrames) -> DataFrame | None:
    """``program_id`` and ``organization_id`` as strings, if there is a programs table."""
    if frames.programs is None:
        return None
    p = frames.programs
    return p.select(
        _id(p, "program_id").alias("program_id"),
        _id(p, "organization_id").alias("organization_id"),
    )
