"""The usage report of one organization, from the Spark DataFrames of every organization."""

from __future__ import annotations

from datetime import datetime, timedelta

from pyspark.sql import functions as F

from .._model import Match, Organization
from .._report import UsageReport
from .._report import usage_report as core_usage_report
from .._time import FOREVER, from_micros, require_aware, to_micros
from ..exceptions import InvalidRecordError
from ._checks import check_frames
from ._frames import MatchFrames, canonical_matches, canonical_participants


def usage_report(
    frames: MatchFrames,
    organization: Organization,
    *,
    now: datetime,
    periods: int = 6,
    check: bool = True,
) -> UsageReport:
    """The [`UsageReport`][matchusage.UsageReport] of one organization, from the lake.

    Spark selects the organization's matches that overlap the report's
    window (the period before the oldest reported one, up to *now*) with
    their participants; only those come to the driver, where the core's
    [`usage_report`][matchusage.usage_report] computes every figure: the
    active users of each closed period, per program and attributed, new and
    dropped users, and the open period so far. The report is the core's, so
    its users can be explained and exported as usual.

    Args:
        frames: The matches and participants; matches need a ``program_id``
            column (the report splits users by program).
        organization: The organization to report on.
        now: The instant of the report (timezone-aware).
        periods: How many closed periods to report.
        check: Check the input first (see
            [`batch_counts`][matchusage.spark.batch_counts]).

    Raises:
        matchusage.exceptions.InvalidRecordError: A bad argument or input row;
            matches without a ``program_id`` column.
    """
    if not isinstance(frames, MatchFrames):
        raise InvalidRecordError("usage_report", "frames", frames, "a MatchFrames")
    if not isinstance(organization, Organization):
        raise InvalidRecordError("usage_report", "organization", organization, "an Organization")
    if not frames.has_programs:
        raise InvalidRecordError(
            "usage_report", "frames", frames.matches.columns, "matches with a program_id column"
        )
    require_aware(now, "usage_report", "now", InvalidRecordError)
    if not isinstance(periods, int) or isinstance(periods, bool) or periods < 0:
        raise InvalidRecordError("usage_report", "periods", periods, "a non-negative integer")
    if check:
        check_frames(frames)
    oldest = organization.cycle.closed_periods(before=now, count=periods + 1)[0]
    low, high = oldest._start_us, to_micros(now + timedelta(microseconds=1))
    matches = canonical_matches(frames).filter(
        (F.col("organization_id") == organization.id)
        & (F.col("start_us") < high)
        & (F.col("end_us") > low)
    )
    rows = (
        matches.join(canonical_participants(frames), "match_id")
        .groupBy("match_id", "program_id", "start_us", "end_us")
        .agg(F.collect_set("user_id").alias("users"))
        .collect()
    )
    found = [
        Match(
            str(row.match_id),
            row.program_id,
            map(str, row.users),
            from_micros(row.start_us),
            None if row.end_us >= FOREVER else from_micros(row.end_us),
        )
        for row in rows
    ]
    return core_usage_report(found, organization.cycle, now=now, periods=periods)
