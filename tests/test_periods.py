"""Billing periods and cycles: anchors, month ends, time zones, DST, tiling."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

import pendulum
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from matchusage import BillingCycle, BillingPeriod, CycleUnit
from matchusage.exceptions import (
    InvalidCycleError,
    InvalidPeriodError,
    InvalidRecordError,
    PeriodOutOfRangeError,
)
from matchusage.testing import strategies as mst

UTC = timezone.utc
ST_JOHNS = ZoneInfo("America/St_Johns")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
SYDNEY = ZoneInfo("Australia/Sydney")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
MICROSECOND = timedelta(microseconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


class TestBillingPeriod:
    def test_is_half_open(self) -> None:
        period = BillingPeriod(utc(2024, 1, 1), utc(2024, 2, 1))

        assert period.contains(utc(2024, 1, 1))
        assert period.contains(utc(2024, 1, 31, 23, 59))
        assert not period.contains(utc(2024, 2, 1))

    def test_equal_and_hash_by_instants_not_zones(self) -> None:
        a = BillingPeriod(utc(2024, 1, 1), utc(2024, 2, 1))
        b = BillingPeriod(utc(2024, 1, 1).astimezone(BERLIN), utc(2024, 2, 1).astimezone(BERLIN))

        assert a == b
        assert {a: 1}[b] == 1

    @pytest.mark.parametrize(
        ("start", "end", "field"),
        [
            (utc(2024, 1, 1), utc(2024, 1, 1), "end"),
            (utc(2024, 2, 1), utc(2024, 1, 1), "end"),
            (datetime(2024, 1, 1), utc(2024, 2, 1), "start"),
            (utc(2024, 1, 1), datetime(2024, 2, 1), "end"),
        ],
        ids=["empty", "reversed", "naive-start", "naive-end"],
    )
    def test_rejects_bad_bounds(self, start: datetime, end: datetime, field: str) -> None:
        with pytest.raises(InvalidPeriodError) as info:
            BillingPeriod(start, end)

        assert isinstance(info.value, ValueError)
        assert field == info.value.field

    def test_orders_by_start(self) -> None:
        late = BillingPeriod(utc(2024, 2, 1), utc(2024, 3, 1))
        early = BillingPeriod(utc(2024, 1, 1), utc(2024, 2, 1))

        assert [early, late] == sorted([late, early])

    @pytest.mark.parametrize(
        "repeated",
        [
            datetime(2024, 11, 3, 1, 30, tzinfo=NEW_YORK),
            datetime(2024, 10, 27, 1, 30, tzinfo=LONDON),
            datetime(2024, 4, 7, 2, 30, tzinfo=SYDNEY),
            datetime(2024, 4, 7, 1, 45, tzinfo=LORD_HOWE),
        ],
        ids=["new-york", "london", "sydney", "lord-howe"],
    )
    def test_equal_by_instants_even_in_a_repeated_hour(self, repeated: datetime) -> None:
        """A weekly cycle starting in each zone's repeated hour: fold=1 is another instant."""
        local = BillingCycle.weekly(repeated).period(0)
        same = BillingPeriod(local.start.astimezone(UTC), local.end.astimezone(UTC))
        shifted = BillingPeriod(local.start.replace(fold=1), local.end)

        assert local == same
        assert hash(local) == hash(same)
        assert local != shifted
        assert [local, shifted] == sorted([shifted, local])


def starts(cycle: BillingCycle, first: int, count: int) -> list[str]:
    return [cycle.boundary(k).isoformat() for k in range(first, first + count)]


@pytest.mark.parametrize(
    ("cycle", "first", "expected"),
    [
        (
            BillingCycle.monthly(utc(2024, 1, 31)),
            -2,
            ["2023-11-30", "2023-12-31", "2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"],
        ),
        (BillingCycle.monthly(utc(2023, 1, 31)), 0, ["2023-01-31", "2023-02-28", "2023-03-31"]),
        (BillingCycle.monthly(utc(2024, 1, 30)), 0, ["2024-01-30", "2024-02-29", "2024-03-30"]),
        (BillingCycle.monthly(utc(2023, 1, 29)), 0, ["2023-01-29", "2023-02-28", "2023-03-29"]),
        (BillingCycle.monthly(utc(2024, 1, 29)), 0, ["2024-01-29", "2024-02-29", "2024-03-29"]),
        (BillingCycle.monthly(utc(2023, 2, 28)), -1, ["2023-01-28", "2023-02-28", "2023-03-28"]),
        (
            BillingCycle.monthly(utc(2023, 8, 31), every=3),
            0,
            ["2023-08-31", "2023-11-30", "2024-02-29", "2024-05-31"],
        ),
        (
            BillingCycle.monthly(utc(2023, 11, 30), every=3),
            -1,
            ["2023-08-30", "2023-11-30", "2024-02-29", "2024-05-30"],
        ),
        (
            BillingCycle.monthly(utc(2024, 8, 31), every=6),
            -1,
            ["2024-02-29", "2024-08-31", "2025-02-28", "2025-08-31", "2026-02-28"],
        ),
        (
            BillingCycle.yearly(utc(2024, 2, 29)),
            -1,
            ["2023-02-28", "2024-02-29", "2025-02-28", "2026-02-28", "2027-02-28", "2028-02-29"],
        ),
        (BillingCycle.weekly(utc(2024, 2, 26)), -1, ["2024-02-19", "2024-02-26", "2024-03-04"]),
        (
            BillingCycle.weekly(utc(2024, 2, 26), every=2),
            -1,
            ["2024-02-12", "2024-02-26", "2024-03-11", "2024-03-25"],
        ),
    ],
    ids=[
        "31st-leap",
        "31st-common",
        "30th",
        "29th-common",
        "29th-leap",
        "feb-28-stays",
        "quarterly-31st",
        "quarterly-30th",
        "semiannual-31st",
        "yearly-feb-29",
        "weekly",
        "biweekly",
    ],
)
def test_boundaries_follow_the_anchor_and_clamp_at_month_ends(
    cycle: BillingCycle, first: int, expected: list[str]
) -> None:
    assert [f"{day}T00:00:00+00:00" for day in expected] == starts(cycle, first, len(expected))


def test_cycles_take_the_anchor_by_keyword() -> None:
    anchor = utc(2024, 1, 31)

    assert BillingCycle.monthly(anchor, every=1) == BillingCycle.monthly(anchor=anchor)
    assert BillingCycle.yearly(anchor=anchor).period(0) == BillingPeriod(anchor, utc(2025, 1, 31))
    assert BillingCycle.weekly(anchor=anchor).period(0).duration == timedelta(weeks=1)


class TestPeriodContaining:
    def test_instants_before_the_anchor_get_earlier_periods(self) -> None:
        cycle = BillingCycle.monthly(utc(2024, 3, 31))

        assert BillingPeriod(utc(2024, 1, 31), utc(2024, 2, 29)) == cycle.period_containing(
            utc(2024, 2, 10)
        )
        assert -2 == cycle.index_of(utc(2024, 2, 10))

    def test_weekly_and_biweekly(self) -> None:
        weekly = BillingCycle.weekly(utc(2024, 1, 1))
        biweekly = BillingCycle.weekly(utc(2024, 1, 1), every=2)

        assert BillingPeriod(utc(2024, 1, 8), utc(2024, 1, 15)) == weekly.period_containing(
            utc(2024, 1, 14, 23)
        )
        assert BillingPeriod(utc(2023, 12, 18), utc(2024, 1, 1)) == biweekly.period_containing(
            utc(2023, 12, 20)
        )


class TestTimeZones:
    def test_boundaries_are_local_wall_clock_times(self) -> None:
        cycle = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=BERLIN))

        assert [
            "2024-03-01T00:00:00+01:00",
            "2024-04-01T00:00:00+02:00",
        ] == starts(cycle, 2, 2)
        assert timedelta(days=31, hours=-1) == cycle.period(2).duration

    @pytest.mark.parametrize(
        ("zone", "anchor", "index", "expected"),
        [
            (NEW_YORK, (2024, 1, 10, 2, 30), 2, "2024-03-10T03:30:00-04:00"),
            (NEW_YORK, (2024, 1, 3, 1, 30), 10, "2024-11-03T01:30:00-04:00"),
            (NEW_YORK, (2024, 1, 1, 0, 0), 3, "2024-04-01T00:00:00-04:00"),
            (LONDON, (2024, 1, 31, 1, 30), 2, "2024-03-31T02:30:00+01:00"),
            (LONDON, (2024, 1, 27, 1, 30), 9, "2024-10-27T01:30:00+01:00"),
            (BERLIN, (2024, 1, 31, 2, 30), 2, "2024-03-31T03:30:00+02:00"),
            (BERLIN, (2024, 1, 31, 2, 30), 3, "2024-04-30T02:30:00+02:00"),
            (BERLIN, (2024, 9, 27, 2, 30), 1, "2024-10-27T02:30:00+02:00"),
            (SYDNEY, (2024, 1, 6, 2, 30), 9, "2024-10-06T03:30:00+11:00"),
            (SYDNEY, (2024, 1, 7, 2, 30), 3, "2024-04-07T02:30:00+11:00"),
            (LORD_HOWE, (2024, 1, 6, 2, 15), 9, "2024-10-06T02:45:00+11:00"),
            (LORD_HOWE, (2024, 1, 7, 1, 45), 3, "2024-04-07T01:45:00+11:00"),
            (LORD_HOWE, (2024, 1, 7, 1, 45), 4, "2024-05-07T01:45:00+10:30"),
        ],
        ids=[
            "new-york-skipped",
            "new-york-repeated",
            "new-york-midnight",
            "london-skipped",
            "london-repeated",
            "berlin-skipped",
            "berlin-after-the-skip",
            "berlin-repeated",
            "sydney-skipped",
            "sydney-repeated",
            "lord-howe-skipped-half-hour",
            "lord-howe-repeated-half-hour",
            "lord-howe-after-the-change",
        ],
    )
    def test_a_skipped_wall_time_moves_forward_a_repeated_one_takes_the_first(
        self, zone: ZoneInfo, anchor: tuple[int, ...], index: int, expected: str
    ) -> None:
        cycle = BillingCycle.monthly(datetime(*anchor, tzinfo=zone))  # type: ignore[misc]

        assert expected == cycle.boundary(index).isoformat()
        # The same cycle from a pendulum anchor gives the same instants (compared in UTC:
        # datetimes of two zones never compare equal inside a repeated hour).
        same = BillingCycle.monthly(pendulum.datetime(*anchor, tz=zone.key))
        assert cycle.boundary(index).astimezone(UTC) == same.boundary(index).astimezone(UTC)

    def test_a_monthly_period_across_dst_is_an_hour_shorter_or_longer(self) -> None:
        cycle = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=NEW_YORK))

        assert timedelta(days=31, hours=-1) == cycle.period(2).duration  # March
        assert timedelta(days=30, hours=1) == cycle.period(10).duration  # November

    def test_weekly_periods_keep_the_weekday_and_time_across_dst(self) -> None:
        cycle = BillingCycle.weekly(datetime(2024, 3, 4, 9, tzinfo=NEW_YORK))

        assert "2024-03-11T09:00:00-04:00" == cycle.boundary(1).isoformat()
        assert timedelta(hours=167) == cycle.period(0).duration

    def test_pendulum_anchor_resolves_repeated_times_like_stdlib(self) -> None:
        """pendulum sets fold=1 everywhere; boundaries on a repeated time still take the first."""
        stdlib = BillingCycle.monthly(datetime(2024, 9, 27, 2, 30, tzinfo=BERLIN))
        pend = BillingCycle.monthly(pendulum.datetime(2024, 9, 27, 2, 30, tz="Europe/Berlin"))

        assert "2024-10-27T02:30:00+02:00" == pend.boundary(1).isoformat()
        assert stdlib == pend
        assert starts(stdlib, -14, 30) == starts(pend, -14, 30)

    def test_anchor_on_a_second_occurrence_is_kept(self) -> None:
        anchor = datetime(2024, 10, 27, 2, 30, tzinfo=BERLIN, fold=1)
        cycle = BillingCycle.monthly(anchor)

        assert "2024-10-27T02:30:00+01:00" == cycle.boundary(0).isoformat()
        assert "2024-11-27T02:30:00+01:00" == cycle.boundary(1).isoformat()

    def test_cycles_are_equal_when_they_make_the_same_periods(self) -> None:
        new_york = ZoneInfo("America/New_York")
        utc_anchor = BillingCycle.monthly(utc(2024, 1, 1))

        assert utc_anchor == BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=ZoneInfo("UTC")))
        assert hash(utc_anchor) == hash(
            BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=ZoneInfo("UTC")))
        )
        assert utc_anchor != BillingCycle.monthly(utc(2024, 1, 1).astimezone(new_york))
        assert utc_anchor != BillingCycle.monthly(utc(2024, 1, 1), every=3)
        assert utc_anchor != BillingCycle.weekly(utc(2024, 1, 1))
        repeated = datetime(2024, 11, 3, 1, 30, tzinfo=new_york)
        assert BillingCycle.monthly(repeated) != BillingCycle.monthly(repeated.replace(fold=1))

    def test_pendulum_anchor_is_accepted(self) -> None:
        stdlib = BillingCycle.monthly(datetime(2024, 1, 31, tzinfo=BERLIN))
        pend = BillingCycle.monthly(pendulum.datetime(2024, 1, 31, tz="Europe/Berlin"))

        assert starts(stdlib, -3, 8) == starts(pend, -3, 8)
        assert stdlib.period_containing(pendulum.datetime(2024, 7, 4, tz="Asia/Tokyo")) == (
            pend.period_containing(datetime(2024, 7, 4, tzinfo=ZoneInfo("Asia/Tokyo")))
        )


class TestClosedPeriods:
    cycle = BillingCycle.monthly(utc(2024, 1, 15))

    def test_oldest_first_and_current_excluded(self) -> None:
        closed = self.cycle.closed_periods(before=utc(2024, 7, 20), count=3)

        assert ["2024-04-15", "2024-05-15", "2024-06-15"] == [
            p.start.date().isoformat() for p in closed
        ]

    def test_period_ending_exactly_at_before_is_closed(self) -> None:
        closed = self.cycle.closed_periods(before=utc(2024, 7, 15), count=1)

        assert [BillingPeriod(utc(2024, 6, 15), utc(2024, 7, 15))] == closed

    def test_a_microsecond_earlier_it_is_still_open(self) -> None:
        closed = self.cycle.closed_periods(before=utc(2024, 7, 15) - MICROSECOND, count=1)

        assert [BillingPeriod(utc(2024, 5, 15), utc(2024, 6, 15))] == closed

    def test_across_dst(self) -> None:
        cycle = BillingCycle.monthly(datetime(2024, 1, 31, tzinfo=LONDON))
        closed = cycle.closed_periods(before=datetime(2024, 4, 30, tzinfo=LONDON), count=2)

        assert [
            ("2024-02-29T00:00:00+00:00", "2024-03-31T00:00:00+00:00"),
            ("2024-03-31T00:00:00+00:00", "2024-04-30T00:00:00+01:00"),
        ] == [(p.start.isoformat(), p.end.isoformat()) for p in closed]

    def test_count_zero_and_bad_counts(self) -> None:
        assert [] == self.cycle.closed_periods(before=utc(2024, 7, 15), count=0)
        with pytest.raises(InvalidCycleError, match="'count'"):
            self.cycle.closed_periods(before=utc(2024, 7, 15), count=-1)

    def test_periods_between_two_instants(self) -> None:
        periods = list(self.cycle.periods(utc(2024, 2, 1), utc(2024, 4, 15)))

        assert ["2024-01-15", "2024-02-15", "2024-03-15"] == [
            p.start.date().isoformat() for p in periods
        ]
        with pytest.warns(DeprecationWarning, match="use BillingCycle.periods"):
            between = list(self.cycle.periods_between(utc(2024, 2, 1), utc(2024, 4, 15)))
        assert periods == between
        assert [self.cycle.period(1)] == list(
            self.cycle.periods(utc(2024, 2, 15), utc(2024, 3, 15))
        )


def test_the_period_of_an_instant_ending_beyond_9999_is_a_cycle_error() -> None:
    cycle = BillingCycle.monthly(utc(2024, 1, 31))

    with pytest.raises(InvalidCycleError):
        cycle.period_containing(datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))))


@pytest.mark.parametrize(
    ("build", "field", "value"),
    [
        (lambda: BillingCycle.monthly(utc(2024, 1, 1), every=0), "every", 0),
        (lambda: BillingCycle.monthly(utc(2024, 1, 1), every=-3), "every", -3),
        (lambda: BillingCycle.weekly(utc(2024, 1, 1), every=0), "every", 0),
        (
            lambda: BillingCycle.monthly(utc(2024, 1, 1)).closed_periods(
                before=utc(2024, 5, 1), count=-1
            ),
            "count",
            -1,
        ),
    ],
    ids=["every-zero", "every-negative", "weekly-every-zero", "count-negative"],
)
def test_bad_counts_are_rejected_naming_field_and_value(
    build: Callable[[], object], field: str, value: int
) -> None:
    with pytest.raises(InvalidRecordError) as info:
        build()

    assert (field, value) == (info.value.field, info.value.value)
    assert f"(got {value})" in str(info.value)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: BillingCycle.monthly(datetime(2024, 1, 1)), "anchor"),
        (lambda: BillingCycle.monthly(utc(2024, 1, 1), every=0), "every"),
        (lambda: BillingCycle.weekly(utc(2024, 1, 1), every=True), "every"),
        (lambda: BillingCycle(utc(2024, 1, 1), "fortnight"), "fortnight"),
    ],
    ids=["naive-anchor", "every-zero", "every-bool", "unknown-unit"],
)
def test_bad_cycles_are_rejected(build: object, field: str) -> None:
    with pytest.raises(ValueError, match=field) as info:
        build()  # type: ignore[operator]

    if field != "fortnight":
        assert isinstance(info.value, InvalidCycleError)
        assert field == info.value.field


@given(mst.billing_cycles(), st.integers(-40, 40))
@example(BillingCycle.monthly(datetime(2024, 1, 31, 2, 30, tzinfo=BERLIN)), 2)
@example(BillingCycle.monthly(datetime(2024, 2, 29, 1, 45, tzinfo=LORD_HOWE), every=3), -1)
@example(BillingCycle.monthly(datetime(2024, 1, 30, 2, 30, tzinfo=SYDNEY), every=6), 1)
@example(BillingCycle.yearly(datetime(2023, 3, 28, 23, tzinfo=NEW_YORK)), -13)
@example(BillingCycle.weekly(datetime(2024, 1, 28, 2, tzinfo=ST_JOHNS), every=2), 28)
def test_consecutive_periods_tile(cycle: BillingCycle, k: int) -> None:
    """Each period ends exactly where the next starts and contains its own start."""
    period, following = cycle.period(k), cycle.period(k + 1)

    assert period.end == following.start
    assert period.contains(period.start)
    assert not period.contains(period.end)
    assert k == cycle.index_of(period.start)
    # The instant just before the end, in UTC: wall-clock arithmetic on an end right after
    # a DST gap (03:00 in St. John's) would land in the gap, an hour *after* the end.
    assert k == cycle.index_of(period.end.astimezone(UTC) - timedelta(microseconds=1))


@given(mst.billing_cycles(), st.integers(-40, 40))
@example(BillingCycle.monthly(datetime(2024, 1, 31, tzinfo=LONDON)), 13)
@example(BillingCycle.weekly(datetime(2024, 1, 30, 2, 30, tzinfo=LORD_HOWE)), 40)
def test_boundaries_never_drift_from_the_anchor(cycle: BillingCycle, k: int) -> None:
    """Boundary k falls on the anchor's (clamped) day k intervals later, at its local time."""
    anchor = cycle.anchor
    local = cycle.boundary(k).astimezone(cycle.timezone)
    if cycle.unit is CycleUnit.MONTH:
        months = anchor.month - 1 + k * cycle.every
        year, month = anchor.year + months // 12, months % 12 + 1
        day = min(anchor.day, calendar.monthrange(year, month)[1])
        expected = datetime(year, month, day, anchor.hour, anchor.minute)
    else:
        expected = anchor.replace(tzinfo=None) + timedelta(weeks=k * cycle.every)
    # Only a DST gap may move the wall time, and only forward by less than a day.
    shift = local.replace(tzinfo=None) - expected
    assert timedelta(0) <= shift < timedelta(hours=3)
    if shift:
        assert (
            expected.replace(tzinfo=cycle.timezone)
            .astimezone(UTC)
            .astimezone(cycle.timezone)
            .replace(tzinfo=None)
            != expected
        ), "only a nonexistent wall time is moved"


@given(mst.billing_cycles(), mst.aware_datetimes())
def test_period_containing_contains_the_instant(cycle: BillingCycle, instant: datetime) -> None:
    period = cycle.period_containing(instant)

    assert period.contains(instant)
    assert period == cycle.period(cycle.index_of(instant))


@given(mst.billing_cycles(), mst.aware_datetimes(), st.integers(0, 8))
def test_closed_periods_end_by_before(cycle: BillingCycle, before: datetime, count: int) -> None:
    closed = cycle.closed_periods(before=before, count=count)

    assert count == len(closed)
    assert all(p.end <= before for p in closed)
    assert all(a.end == b.start for a, b in pairwise(closed))
    if closed:
        assert closed[-1].end == cycle.period_containing(before).start


@given(mst.billing_cycles(), mst.aware_datetimes(), mst.aware_datetimes())
def test_periods_between_cover_the_span(cycle: BillingCycle, a: datetime, b: datetime) -> None:
    start, end = min(a, b), max(a, b)
    periods = list(cycle.periods(start, end))

    if start == end:
        assert [] == periods
    else:
        assert periods[0].contains(start)
        assert periods[-1].start < end <= periods[-1].end
        assert all(x.end == y.start for x, y in pairwise(periods))


_ANY_DATETIME = st.one_of(st.datetimes(), st.datetimes(timezones=st.timezones()))


@given(_ANY_DATETIME, _ANY_DATETIME)
def test_period_builds_or_raises_the_documented_error(start: datetime, end: datetime) -> None:
    """Any bounds build a non-empty aware period or raise InvalidPeriodError naming the value."""
    try:
        period = BillingPeriod(start, end)
    except InvalidPeriodError as error:
        failure = error
    else:
        assert period.start < period.end
        assert period.contains(period.start)
        return
    assert failure.field in ("start", "end")
    assert repr(failure.value) in str(failure)


@given(
    # Far from datetime.max, so that the next period's end is representable.
    st.one_of(
        st.datetimes(max_value=datetime(9000, 1, 1)),
        st.datetimes(max_value=datetime(9000, 1, 1), timezones=st.timezones()),
    ),
    st.sampled_from(["month", "week", "day", 3]),
    st.integers(-2, 30),
)
def test_cycle_builds_or_raises_the_documented_error(
    anchor: datetime, unit: object, every: int
) -> None:
    """Any settings build a cycle whose periods tile, or raise a ValueError naming the value."""
    try:
        cycle = BillingCycle(anchor, unit, every)  # type: ignore[arg-type]
    except ValueError as error:
        failure = error
    else:
        assert cycle.period(0).end == cycle.period(1).start
        return
    if isinstance(failure, InvalidCycleError):
        assert failure.field in ("anchor", "every")
        assert repr(failure.value) in str(failure)
    else:
        assert repr(unit) in str(failure)


@given(
    st.sampled_from([BillingCycle.monthly, BillingCycle.weekly]),
    st.integers(1, 2000),
    st.integers(-(2**70), 2**70),
)
def test_a_boundary_outside_the_years_1_to_9999_names_its_year(
    build: object, every: int, index: int
) -> None:
    """Any index gives a boundary or PeriodOutOfRangeError with the year it would fall in."""
    cycle = build(datetime(2024, 1, 31, tzinfo=timezone.utc), every)  # type: ignore[operator]
    try:
        boundary = cycle.boundary(index)
    except PeriodOutOfRangeError as error:
        failure = error
    else:
        assert 1 <= boundary.year <= 9999
        return
    assert index == failure.index
    assert not 2 <= failure.year <= 9998  # the year is estimated to within one at the edges
    assert str(failure).startswith(f"{cycle}: period {index} ")
    assert f"would start in the year {failure.year}; dates only go" in str(failure)


@pytest.mark.parametrize("count", [10**20, 2**63, 30_000])
def test_closed_periods_reaching_before_the_year_1_are_refused(count: int) -> None:
    cycle = BillingCycle.monthly(datetime(2024, 1, 15, tzinfo=timezone.utc))

    with pytest.raises(PeriodOutOfRangeError, match="would start in the year -"):
        cycle.closed_periods(before=datetime(2024, 3, 1, tzinfo=timezone.utc), count=count)
