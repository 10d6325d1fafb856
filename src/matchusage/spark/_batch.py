"""The multi-organization batch on Spark: counts and active users per (organization, period)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .._model import Organization
from .._periods import BillingPeriod
from ..exceptions import InvalidRecordError
from . import _overlaps
from ._checks import check_frames
from ._frames import MatchFrames
from ._grouped import grouped
from ._periods import Plan, periods_frame, plan

Method = Literal["sql", "arrow"]
"""How Spark counts: ``"sql"`` (native expressions) or ``"arrow"`` (the columnar engine per
organization)."""

_PERIOD = ["organization_id", "period_index", "period_start", "period_end"]


def prepare(
    frames: MatchFrames,
    organizations: Iterable[Organization],
    now: datetime,
    count: int,
    method: Method,
    check: bool,
) -> tuple[Plan, DataFrame]:
    """Check the arguments (and with *check*, the input); the plan and its periods table."""
    if not isinstance(frames, MatchFrames):
        raise InvalidRecordError("batch", "frames", frames, "a MatchFrames")
    if method not in ("sql", "arrow"):
        raise InvalidRecordError("batch", "method", method, "'sql' or 'arrow'")
    planned = plan(organizations, now=now, count=count)
    if check:
        check_frames(frames)
    return planned, periods_frame(frames.matches.sparkSession, planned)


def batch_counts(
    frames: MatchFrames,
    *,
    now: datetime,
    organizations: Iterable[Organization],
    count: int = 6,
    method: Method = "sql",
    check: bool = True,
) -> DataFrame:
    """The number of active users of every organization in each of its last closed periods.

    The same figures as [`matchusage.batch_counts`][matchusage.batch_counts],
    computed by Spark: each organization in its own billing cycle, a user
    active when one of their matches overlaps the period by a positive
    amount (zero-length matches never count, ongoing ones run on), each
    person once per organization and period, across its programs.

    Args:
        frames: The matches and participants.
        now: The instant the batch runs at (timezone-aware).
        organizations: The organizations to bill; matches of others are ignored.
        count: How many closed periods per organization.
        method: ``"sql"`` (default): an overlap join and a distinct count in
            native Spark SQL, nothing to install on the executors.
            ``"arrow"``: each organization's rows counted by the columnar
            engine on an executor (needs matchusage there); see the
            "Billing on Spark" guide for when it is faster.
        check: Check the input first (a few passes over it), so that a bad
            row raises an error naming it; turn off for input already checked.

    Returns:
        A DataFrame with a row for every organization and period, zero
        where nobody was active: ``organization_id``, ``period_index``,
        ``period_start``, ``period_end`` (``TIMESTAMP``) and
        ``active_users`` (``BIGINT``).

    Raises:
        matchusage.exceptions.InvalidRecordError: A bad argument, or (with
            *check*) a bad value in the input; see
            [`MatchFrames`][matchusage.spark.MatchFrames].
        matchusage.exceptions.DuplicateMatchError: Two matches share an id.
        matchusage.exceptions.UnknownRecordError: A match's program or a
            participant's match does not exist.
    """
    planned, periods = prepare(frames, organizations, now, count, method, check)
    if method == "sql":
        found = _overlaps.counts(frames, periods)
    else:
        found = grouped(frames, periods, planned, ids=False)
    return periods.join(found, ["organization_id", "period_index"], "left").select(
        *_PERIOD, F.coalesce("active_users", F.lit(0)).alias("active_users")
    )


def batch_active_users(
    frames: MatchFrames,
    *,
    now: datetime,
    organizations: Iterable[Organization],
    count: int = 6,
    method: Method = "sql",
    check: bool = True,
) -> DataFrame:
    """The active users of every organization in each of its last closed periods.

    Like [`batch_counts`][matchusage.spark.batch_counts], with one row per
    active user instead of their number.

    Returns:
        A DataFrame: ``organization_id``, ``period_index``, ``period_start``,
        ``period_end`` and ``user_id`` (string; integer ids as decimal
        strings), one row per active user of each period.
    """
    planned, periods = prepare(frames, organizations, now, count, method, check)
    if method == "sql":
        found = _overlaps.active_users(frames, periods)
    else:
        found = grouped(frames, periods, planned, ids=True)
    return found.join(
        F.broadcast(periods.select(*_PERIOD)), ["organization_id", "period_index"]
    ).select(*_PERIOD, "user_id")


def collect_counts(
    frame: DataFrame, organizations: Iterable[Organization], *, now: datetime, count: int = 6
) -> dict[str, dict[BillingPeriod, int]]:
    """The rows of a [`batch_counts`][matchusage.spark.batch_counts] DataFrame, on the driver.

    Shaped like [`matchusage.batch_counts`][matchusage.batch_counts]'s
    result: every organization and each of its last *count* closed periods
    at *now* (rebuilt by its own cycle, in its time zone), oldest first.

    Args:
        frame: A DataFrame with ``organization_id``, ``period_index`` and
            ``active_users``.
        organizations: The organizations of the batch.
        now: The instant the batch ran at.
        count: How many closed periods per organization (as in the batch).

    Returns:
        Organization id -> period -> count.
    """
    found = {
        (row.organization_id, row.period_index): row.active_users
        for row in frame.select("organization_id", "period_index", "active_users").collect()
    }
    return {
        org: {period: found.get((org, index), 0) for index, period in spans}
        for org, spans in plan(organizations, now=now, count=count).items()
    }


def collect_active_users(
    frame: DataFrame, organizations: Iterable[Organization], *, now: datetime, count: int = 6
) -> dict[str, dict[BillingPeriod, frozenset[str]]]:
    """The rows of a [`batch_active_users`][matchusage.spark.batch_active_users] DataFrame.

    Shaped like [`matchusage.batch_active_users`][matchusage.batch_active_users]'s
    result: every organization and each of its last *count* closed periods
    at *now*, with an empty set where nobody was active.

    Args:
        frame: A DataFrame with ``organization_id``, ``period_index`` and ``user_id``.
        organizations: The organizations of the batch.
        now: The instant the batch ran at.
        count: How many closed periods per organization (as in the batch).

    Returns:
        Organization id -> period -> user ids.
    """
    planned = plan(organizations, now=now, count=count)
    found: dict[tuple[str, int], set[str]] = defaultdict(set)
    for row in frame.select("organization_id", "period_index", "user_id").collect():
        found[row.organization_id, row.period_index].add(row.user_id)
    return {
        org: {period: frozenset(found.get((org, index), ())) for index, period in spans}
        for org, spans in planned.items()
    }
