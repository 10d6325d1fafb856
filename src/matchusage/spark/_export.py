"""Exports on Spark: every active user of every period with the matches that make them so."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from .._export import _UNSAFE, EXPORT_COLUMNS
from .._model import Organization
from ..exceptions import InvalidRecordError
from ._batch import prepare
from ._frames import MatchFrames
from ._overlaps import KEY, participations

Format = Literal["parquet", "csv"]
"""The file formats [`write_export`][matchusage.spark.write_export] writes."""

EXPORT_FRAME_COLUMNS = ("organization_id", "period_index", *EXPORT_COLUMNS)
"""The columns of an export DataFrame, in order: the organization and the period's index,
then the columns of every matchusage export."""


def batch_exports(
    frames: MatchFrames,
    *,
    now: datetime,
    organizations: Iterable[Organization],
    count: int = 6,
    users: DataFrame | None = None,
    check: bool = True,
) -> DataFrame:
    """The export rows of every organization's last closed periods, as a DataFrame.

    One row per active user of each period, with the same facts as
    [`matchusage.export_rows`][matchusage.export_rows]: the user's matches
    overlapping the period (by start, then id), their distinct programs, and
    when the user is active in the period (from the start of their earliest
    match to the end of their latest, clipped to the period; an ongoing match
    runs to the period's end). Computed in native Spark SQL.

    Args:
        frames: The matches and participants.
        now: The instant the batch runs at (timezone-aware).
        organizations: The organizations to export.
        count: How many closed periods per organization.
        users: An optional user directory with ``user_id`` and any of
            ``name`` and ``email``, for those columns (unknown users get an
            empty name and a null email).
        check: Check the input first (see
            [`batch_counts`][matchusage.spark.batch_counts]).

    Returns:
        A DataFrame with the columns ``organization_id``, ``period_index``,
        ``period_start``, ``period_end`` (``TIMESTAMP``), ``user_id``,
        ``name``, ``email``, ``programs`` and ``match_ids`` (arrays of
        strings; ``programs`` is empty when matches carry no
        ``program_id``), ``active_from`` and ``active_until``
        (``TIMESTAMP``).

    Raises:
        matchusage.exceptions.InvalidRecordError: A bad argument or input row
            (see [`batch_counts`][matchusage.spark.batch_counts]).
    """
    _, periods = prepare(frames, organizations, now, count, "sql", check)
    evidence = (
        participations(frames, periods)
        .groupBy(*KEY, "user_id")
        .agg(
            # Sorting (start, id) pairs orders the evidence as the core's explanations do.
            F.array_sort(F.collect_set(F.struct("start_us", _as_text("match_id")))).alias(
                "evidence"
            ),
            F.array_sort(F.collect_set("program_id")).alias("programs"),
            F.min("start_us").alias("first_us"),
            F.max("end_us").alias("last_us"),
        )
        .join(F.broadcast(periods), KEY)
    )
    found = evidence.select(
        *KEY,
        "period_start",
        "period_end",
        _as_text("user_id"),
        "programs",
        F.transform("evidence", lambda pair: pair["match_id"]).alias("match_ids"),
        F.timestamp_micros(F.greatest("first_us", "start_us")).alias("active_from"),
        F.timestamp_micros(F.least("last_us", "end_us")).alias("active_until"),
    )
    return _with_directory(found, users).select(*EXPORT_FRAME_COLUMNS)


def _as_text(column: str) -> Column:
    """Ids as matchusage reports (and sorts) them: strings, integers as decimal strings."""
    return F.col(column).cast("string").alias(column)


def _with_directory(found: DataFrame, users: DataFrame | None) -> DataFrame:
    """Add ``name`` and ``email`` from the user directory, if any."""
    if users is None:
        return found.withColumns({"name": F.lit(""), "email": F.lit(None).cast("string")})
    if "user_id" not in users.columns:
        raise InvalidRecordError("batch_exports", "users", users.columns, "a user_id column")
    directory = users.select(
        F.col("user_id").cast("string").alias("user_id"),
        (F.col("name") if "name" in users.columns else F.lit(None)).cast("string").alias("name"),
        (F.col("email") if "email" in users.columns else F.lit(None)).cast("string").alias("email"),
    )
    return found.join(directory, "user_id", "left").withColumn(
        "name", F.coalesce("name", F.lit(""))
    )


def write_export(
    exports: DataFrame,
    path: str,
    *,
    format: Format = "parquet",
    mode: str = "errorifexists",
    by_organization: bool = False,
) -> None:
    """Write an export DataFrame with Spark, sorted by organization, period and user.

    Parquet keeps the types (timestamps, arrays). CSV has a header row;
    ``programs`` and ``match_ids`` are joined by ``;``, instants are ISO 8601
    in UTC (``2026-06-01T00:00:00.000000Z``), and every text cell is made
    inert in a spreadsheet as [`neutralise`][matchusage.neutralise] does.
    Spark writes a directory of part files.

    Args:
        exports: A DataFrame from [`batch_exports`][matchusage.spark.batch_exports].
        path: The output directory (any path Spark can write: local, HDFS, S3...).
        format: ``"parquet"`` or ``"csv"``.
        mode: Spark's save mode: ``"errorifexists"``, ``"overwrite"``,
            ``"append"`` or ``"ignore"``.
        by_organization: One subdirectory per organization
            (``organization_id=.../``), for handing each its own files.

    Raises:
        matchusage.exceptions.InvalidRecordError: *format* is not one of the two.
    """
    if format not in ("parquet", "csv"):
        raise InvalidRecordError("write_export", "format", format, "'parquet' or 'csv'")
    frame = exports.repartition("organization_id") if by_organization else exports
    frame = frame.sortWithinPartitions("organization_id", "period_index", "user_id")
    if format == "csv":
        frame = frame.select(*[_csv_cell(frame, name, by_organization) for name in frame.columns])
    writer = frame.write.mode(mode)
    if by_organization:
        writer = writer.partitionBy("organization_id")
    if format == "parquet":
        writer.parquet(path)
        return
    writer.options(
        header=True,
        timeZone="UTC",
        timestampFormat="yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
        # An empty name is written "", a missing email as an empty cell.
        emptyValue="",
        nullValue="",
    ).csv(path)


_UNSAFE_START = sorted(_UNSAFE)


def _csv_cell(frame: DataFrame, name: str, by_organization: bool) -> Column:
    """The column as a CSV cell: lists joined by ``;``, text neutralised."""
    kind = frame.schema[name].dataType.simpleString()
    column = F.col(name)
    if kind.startswith("array"):
        column = F.array_join(column, ";")
    elif kind != "string" or (by_organization and name == "organization_id"):
        # Numbers and instants never start like a formula; directory names stay the ids.
        return column
    return (
        F.when(F.substring(column, 1, 1).isin(_UNSAFE_START), F.concat(F.lit("'"), column))
        .otherwise(column)
        .alias(name)
    )
