"""The native Spark SQL path: an overlap join of matches and periods, then distinct users.

Only built-in expressions: nothing runs in Python on the executors, so the
plan scales with the cluster and needs nothing installed there.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ._frames import MatchFrames, canonical_matches, canonical_participants, user_ids

KEY = ["organization_id", "period_index"]


def in_window(frames: MatchFrames, periods: DataFrame) -> DataFrame:
    """The canonical matches that overlap some period of their organization's window.

    The window runs from the organization's first period start to its last
    period end (a small broadcast table); other matches, and zero-length
    ones, are dropped before any shuffle.
    """
    windows = periods.groupBy("organization_id").agg(
        F.min("start_us").alias("low"), F.max("end_us").alias("high")
    )
    return (
        canonical_matches(frames)
        .join(F.broadcast(windows), "organization_id")
        .filter(
            (F.col("start_us") < F.col("high"))
            & (F.col("end_us") > F.col("low"))
            & (F.col("end_us") > F.col("start_us"))
        )
        .drop("low", "high")
    )


def participations(frames: MatchFrames, periods: DataFrame) -> DataFrame:
    """One row per (participant, period) of a match overlapping the period by a positive amount.

    Columns: the canonical match columns, ``user_id``, ``period_index`` and the
    period's bounds as ``period_start_us`` and ``period_end_us``. Matches meet
    their participants before the periods, so that the join shuffles each
    match once, not once per period it overlaps.
    """
    spans = periods.select(
        *KEY, F.col("start_us").alias("period_start_us"), F.col("end_us").alias("period_end_us")
    )
    people = in_window(frames, periods).join(canonical_participants(frames), "match_id")
    return people.join(F.broadcast(spans), "organization_id").filter(
        (F.col("start_us") < F.col("period_end_us")) & (F.col("end_us") > F.col("period_start_us"))
    )


def active_users(frames: MatchFrames, periods: DataFrame) -> DataFrame:
    """``organization_id``, ``period_index``, ``user_id``: each active user once."""
    found = participations(frames, periods).select(*KEY, "user_id").distinct()
    return found.select(*KEY, user_ids(found))


def counts(frames: MatchFrames, periods: DataFrame) -> DataFrame:
    """``organization_id``, ``period_index``, ``active_users`` for the periods with any."""
    return (
        participations(frames, periods)
        .groupBy(*KEY)
        .agg(F.count_distinct("user_id").alias("active_users"))
    )
