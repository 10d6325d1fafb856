"""Instants are timezone-aware: a naive datetime is refused wherever it can enter."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import pendulum
import pytest
import sqlalchemy as sa

from matchusage import (
    BillingCycle,
    BillingPeriod,
    Match,
    batch_periods,
    current_active_matches,
    current_active_users,
    usage_report,
)
from matchusage.exceptions import (
    InvalidCycleError,
    InvalidMatchError,
    InvalidPeriodError,
    InvalidRecordError,
)
from matchusage.sql import SQLRepository

UTC = timezone.utc
NAIVE = datetime(2024, 3, 1, 12, 30)
AWARE = datetime(2024, 1, 1, tzinfo=UTC)
CYCLE = BillingCycle.monthly(datetime(2024, 1, 31, tzinfo=UTC))
ONE = [Match("m1", "p1", {"ann"}, AWARE)]


@pytest.mark.parametrize(
    ("call", "error", "field"),
    [
        (lambda: Match("m1", "p1", {"ann"}, NAIVE), InvalidMatchError, "started_at"),
        (lambda: Match("m1", "p1", {"ann"}, AWARE, NAIVE), InvalidMatchError, "ended_at"),
        (lambda: BillingPeriod(start=NAIVE, end=AWARE), InvalidPeriodError, "start"),
        (lambda: BillingPeriod(start=AWARE, end=NAIVE), InvalidPeriodError, "end"),
        (lambda: BillingCycle.monthly(NAIVE), InvalidCycleError, "anchor"),
        (lambda: BillingCycle.monthly(NAIVE, every=3), InvalidCycleError, "anchor"),
        (lambda: BillingCycle.yearly(NAIVE), InvalidCycleError, "anchor"),
        (lambda: BillingCycle.weekly(NAIVE), InvalidCycleError, "anchor"),
        (lambda: CYCLE.period_containing(NAIVE), InvalidCycleError, "instant"),
        (lambda: CYCLE.closed_periods(before=NAIVE, count=2), InvalidCycleError, "before"),
        (lambda: list(CYCLE.periods(NAIVE, AWARE)), InvalidCycleError, "start"),
        (lambda: list(CYCLE.periods(AWARE, NAIVE)), InvalidCycleError, "end"),
        (
            lambda: SQLRepository(sa.create_engine("sqlite://")).count_closed_periods(before=NAIVE),
            InvalidRecordError,
            "before",
        ),
        (lambda: batch_periods([], now=NAIVE), InvalidRecordError, "now"),
        (lambda: current_active_matches(ONE, at=NAIVE), InvalidRecordError, "at"),
        (lambda: current_active_users(ONE, at=NAIVE), InvalidRecordError, "at"),
        (lambda: usage_report(ONE, CYCLE, now=NAIVE), InvalidRecordError, "now"),
        (
            lambda: usage_report(ONE, CYCLE, now=pendulum.naive(2024, 3, 1)),
            InvalidRecordError,
            "now",
        ),
    ],
    ids=[
        "match-start",
        "match-end",
        "period-start",
        "period-end",
        "monthly-anchor",
        "quarterly-anchor",
        "yearly-anchor",
        "weekly-anchor",
        "period-containing",
        "closed-periods-before",
        "periods-start",
        "periods-end",
        "sql-closed-periods-before",
        "batch-now",
        "current-matches-at",
        "current-users-at",
        "report-now",
        "report-now-pendulum",
    ],
)
def test_naive_datetimes_are_rejected_naming_the_field(
    call: Callable[[], object], error: type[InvalidRecordError], field: str
) -> None:
    with pytest.raises(error) as info:
        call()

    assert isinstance(info.value, ValueError)
    assert field == info.value.field
    assert repr(field) in str(info.value)
