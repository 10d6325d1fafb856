"""The native Spark SQL path: an overlap join of matches and periods, then distinct users.

Only built-in expressions: nothing runs in Python on the executors, so the
plan scales with the cluster and needs nothing installed there.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ._frames import MatchFrames, canonical_matches, canonical_participants, user_ids

KEY = ["organization_id", "period_index"]


def overlapping(frames: MatchFrames, periods: DataFrame) -> DataFrame:
    """Each match with each period of its organization that it overlaps by a positive amount.

    Columns: the canonical match columns, ``period_index``, and the period's
    bounds as ``period_start_us`` and ``period_end_us``. The periods table is
    small and broadcast; a zero-length match overlaps nothing.
    """
    spans = periods.select(
        *KEY, F.col("start_us").alias("period_start_us"), F.col("end_us").alias("period_end_us")
    )
    matches = canonical_matches(frames)
    return matches.join(F.broadcast(spans), "organization_id").filter(
        (F.col("start_us") < F.col("period_end_us"))
        & (F.col("end_us") > F.col("period_start_us"))
        & (F.col("end_us") > F.col("start_us"))
    )


def participations(frames: MatchFrames, periods: DataFrame) -> DataFrame:
    """One row per (overlapping match, period, participant): the evidence of activity."""
    return overlapping(frames, periods).join(canonical_participants(frames), "match_id")


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
