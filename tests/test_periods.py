"""Billing periods and cycles: anchors, month ends, time zones, DST, tiling."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

import pendulum
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from matchusage import BillingCycle, BillingPeriod, CycleUnit
from matchusage.exceptions import InvalidCycleError, InvalidPeriodError, PeriodOutOfRangeError
from matchusage.testing import strategies as mst

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")


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


def starts(cycle: BillingCycle, first: int, count: int) -> list[str]:
    return [cycle.boundary(k).isoformat() for k in range(first, first + count)]


class TestMonthEnds:
    def test_anchor_on_31st_clamps_without_drift(self) -> None:
        cycle = BillingCycle.monthly(utc(2024, 1, 31))

        assert [
            "2024-01-31T00:00:00+00:00",
            "2024-02-29T00:00:00+00:00",
            "2024-03-31T00:00:00+00:00",
            "2024-04-30T00:00:00+00:00",
            "2024-05-31T00:00:00+00:00",
        ] == starts(cycle, 0, 5)
        assert "2025-02-28T00:00:00+00:00" == cycle.boundary(13).isoformat()

    def test_anchor_on_feb_28_stays_on_the_28th(self) -> None:
        cycle = BillingCycle.monthly(utc(2023, 2, 28))

        assert ["2023-02-28", "2023-03-28", "2023-04-28"] == [s[:10] for s in starts(cycle, 0, 3)]

    def test_quarterly_from_the_31st(self) -> None:
        cycle = BillingCycle.monthly(utc(2023, 8, 31), every=3)

        assert ["2023-08-31", "2023-11-30", "2024-02-29", "2024-05-31"] == [
            s[:10] for s in starts(cycle, 0, 4)
        ]

    def test_yearly_from_feb_29(self) -> None:
        cycle = BillingCycle.yearly(utc(2024, 2, 29))

        assert ["2024-02-29", "2025-02-28", "2026-02-28", "2027-02-28", "2028-02-29"] == [
            s[:10] for s in starts(cycle, 0, 5)
        ]

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

    def test_skipped_wall_time_moves_forward_by_the_gap(self) -> None:
        """Berlin skips 02:00-03:00 on 2024-03-31: 02:30 becomes 03:30 CEST."""
        cycle = BillingCycle.monthly(datetime(2024, 1, 31, 2, 30, tzinfo=BERLIN))

        assert "2024-03-31T03:30:00+02:00" == cycle.boundary(2).isoformat()
        assert "2024-04-30T02:30:00+02:00" == cycle.boundary(3).isoformat()

    def test_repeated_wall_time_takes_the_first_occurrence(self) -> None:
        """Berlin repeats 02:00-03:00 on 2024-10-27."""
        cycle = BillingCycle.monthly(datetime(2024, 9, 27, 2, 30, tzinfo=BERLIN))

        assert "2024-10-27T02:30:00+02:00" == cycle.boundary(1).isoformat()

    def test_half_hour_dst_zone(self) -> None:
        """Lord Howe moves its clocks by 30 minutes: 02:00 -> 02:30 on 2024-10-06."""
        cycle = BillingCycle.monthly(datetime(2024, 9, 6, 2, 15, tzinfo=LORD_HOWE))

        assert "2024-10-06T02:45:00+11:00" == cycle.boundary(1).isoformat()
        assert cycle.period(0).end == cycle.period(1).start

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

    def test_count_zero_and_bad_counts(self) -> None:
        assert [] == self.cycle.closed_periods(before=utc(2024, 7, 15), count=0)
        with pytest.raises(InvalidCycleError, match="'count'"):
            self.cycle.closed_periods(before=utc(2024, 7, 15), count=-1)

    def test_periods_between_two_instants(self) -> None:
        periods = list(self.cycle.periods_between(utc(2024, 2, 1), utc(2024, 4, 15)))

        assert ["2024-01-15", "2024-02-15", "2024-03-15"] == [
            p.start.date().isoformat() for p in periods
        ]


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
def test_consecutive_periods_tile(cycle: BillingCycle, k: int) -> None:
    """Each period ends exactly where the next starts and contains its own start."""
    period, following = cycle.period(k), cycle.period(k + 1)

    assert period.end == following.start
    assert period.contains(period.start)
    assert not period.contains(period.end)
    assert k == cycle.index_of(period.start)
    assert k == cycle.index_of(period.end - timedelta(microseconds=1))


@given(mst.billing_cycles(), st.integers(-40, 40))
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
