"""Billing periods and the cycles that generate them from an anchor."""

from __future__ import annotations

import enum
import itertools
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

import attrs

from ._time import UTC, require_aware, to_micros
from .exceptions import InvalidCycleError, InvalidPeriodError, PeriodOutOfRangeError


@attrs.frozen(order=True)
class BillingPeriod:
    """One billing period: the half-open span ``[start, end)``.

    Periods are hashable and ordered by start, so they can key dictionaries
    and be sorted. Two periods are equal when they cover the same instants,
    whatever the time zones their bounds are written in.

    Attributes:
        start: First instant of the period (inclusive, timezone-aware).
        end: First instant after the period (exclusive, timezone-aware).

    Raises:
        matchusage.exceptions.InvalidPeriodError: A bound is naive, or the
            period is empty or reversed.
    """

    # Equality, hashing and order go by the instants (UTC microseconds), not by
    # the datetimes: Python compares two datetimes of one zone by wall time
    # (ignoring fold), and never finds a repeated wall time equal to the same
    # instant written in another zone.
    start: datetime = attrs.field(eq=False, order=False)
    end: datetime = attrs.field(eq=False, order=False)
    _start_us: int = attrs.field(init=False, repr=False)
    _end_us: int = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        record = "BillingPeriod"
        start = to_micros(require_aware(self.start, record, "start", InvalidPeriodError))
        end = to_micros(require_aware(self.end, record, "end", InvalidPeriodError))
        if end <= start:
            raise InvalidPeriodError(
                record, "end", self.end, f"after start ({self.start.isoformat()})"
            )
        object.__setattr__(self, "_start_us", start)
        object.__setattr__(self, "_end_us", end)

    @property
    def duration(self) -> timedelta:
        """The exact elapsed time from start to end."""
        return timedelta(microseconds=self._end_us - self._start_us)

    def contains(self, instant: datetime) -> bool:
        """Whether ``start <= instant < end``."""
        at = to_micros(
            require_aware(instant, "BillingPeriod.contains", "instant", InvalidPeriodError)
        )
        return self._start_us <= at < self._end_us

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


class CycleUnit(str, enum.Enum):
    """The calendar unit a [`BillingCycle`][matchusage.BillingCycle] counts in."""

    MONTH = "month"
    WEEK = "week"


def _as_stdlib(anchor: Any) -> Any:
    # pendulum.DateTime subclasses datetime but overrides arithmetic and
    # replace(); a plain datetime keeps the wall-clock arithmetic predictable.
    if not isinstance(anchor, datetime):
        return anchor
    # pendulum sets fold=1 on every datetime; fold only means something for a
    # repeated wall time, so drop it elsewhere to treat both kinds alike.
    fold = anchor.fold
    if fold and anchor.replace(fold=0).utcoffset() == anchor.utcoffset():
        fold = 0
    wall = anchor.timetuple()[:6]  # year, month, day, hour, minute, second
    return datetime(*wall, anchor.microsecond, tzinfo=anchor.tzinfo, fold=fold)


def _zone_identity(zone: tzinfo) -> str:
    """A name that is equal for two zones exactly when they keep the same clocks."""
    key = getattr(zone, "key", None)  # zoneinfo and pendulum zones
    if isinstance(key, str):
        return key
    if isinstance(zone, timezone):
        offset = zone.utcoffset(None)
        return f"UTC{offset}" if offset else "UTC"
    return repr(zone)


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in_month(year: int, month: int) -> int:
    leap = month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return _MONTH_DAYS[month - 1] + leap


def _positive(instance: BillingCycle, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidCycleError("BillingCycle", attribute.name, value, "a positive integer")


@attrs.frozen
class BillingCycle:
    """A subscription's billing cycle: consecutive periods counted from an anchor.

    Boundary *k* is the anchor's wall-clock time plus *k* intervals, in the
    anchor's time zone. Every boundary is computed from the anchor, never
    from the previous one, so periods never drift: a cycle anchored on
    January 31 has boundaries on February 28 (29), March 31, April 30, ...
    Wall-clock times that a DST change skips move forward by the length of
    the gap; repeated wall-clock times take their first occurrence. Periods
    tile time: each one ends exactly where the next starts.

    Build cycles with [`monthly`][matchusage.BillingCycle.monthly],
    [`yearly`][matchusage.BillingCycle.yearly] or
    [`weekly`][matchusage.BillingCycle.weekly].

    Attributes:
        anchor: The start of one period (usually the subscription's start);
            timezone-aware, stdlib or pendulum.
        unit: The calendar unit periods are counted in.
        every: Number of units per period.

    Raises:
        matchusage.exceptions.InvalidCycleError: The anchor is naive or
            *every* is not a positive integer.
    """

    # Two cycles are equal when they make the same periods: the same anchor
    # instant in the same zone (datetime equality ignores the zone across zones
    # and the fold within one), the same unit and length.
    anchor: datetime = attrs.field(converter=_as_stdlib, eq=False)
    unit: CycleUnit = attrs.field(converter=CycleUnit)
    every: int = attrs.field(default=1, validator=_positive)
    _anchor_us: int = attrs.field(init=False, repr=False)
    _zone: str = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        require_aware(self.anchor, "BillingCycle", "anchor", InvalidCycleError)
        object.__setattr__(self, "_anchor_us", to_micros(self.anchor))
        object.__setattr__(self, "_zone", _zone_identity(self.timezone))

    @classmethod
    def monthly(cls, anchor: datetime, every: int = 1) -> BillingCycle:
        """Periods of *every* calendar months (3 for quarterly, 6 for semiannual)."""
        return cls(anchor, CycleUnit.MONTH, every)

    @classmethod
    def yearly(cls, anchor: datetime) -> BillingCycle:
        """Periods of one calendar year; a February 29 anchor gives February 28 in common years."""
        return cls(anchor, CycleUnit.MONTH, 12)

    @classmethod
    def weekly(cls, anchor: datetime, every: int = 1) -> BillingCycle:
        """Periods of *every* weeks of wall-clock time (same weekday and time of day)."""
        return cls(anchor, CycleUnit.WEEK, every)

    @property
    def timezone(self) -> tzinfo:
        """The time zone the boundaries follow: the anchor's."""
        assert self.anchor.tzinfo is not None  # checked at construction
        return self.anchor.tzinfo

    def boundary(self, index: int) -> datetime:
        """The start of period *index*; period 0 starts at the anchor.

        Raises:
            matchusage.exceptions.PeriodOutOfRangeError: The boundary falls
                outside the years 1 to 9999 that a `datetime` can hold.
        """
        zone = self.timezone
        # A round trip through UTC resolves a skipped wall time (fold=0: moved
        # forward by the gap) and a repeated one (fold=0: its first occurrence).
        # Only the anchor itself may be a second occurrence.
        fold = self.anchor.fold if index == 0 else 0
        anchor = self.anchor
        try:
            if self.unit is CycleUnit.MONTH:
                # The same wall time *index* periods later, on the anchor's day of
                # the month or the month's last day if it is shorter.
                months = anchor.month - 1 + index * self.every
                year, month = anchor.year + months // 12, months % 12 + 1
                day = min(anchor.day, _days_in_month(year, month))
                wall = anchor.replace(year=year, month=month, day=day, tzinfo=zone, fold=fold)
            else:
                wall = anchor.replace(tzinfo=None) + timedelta(weeks=index * self.every)
                wall = wall.replace(tzinfo=zone, fold=fold)
            return wall.astimezone(UTC).astimezone(zone)
        except (OverflowError, ValueError):
            raise PeriodOutOfRangeError(str(self), index, self._year_of(index)) from None

    def _year_of(self, index: int) -> int:
        """The year boundary *index* falls in, computed without dates (it may be out of range)."""
        if self.unit is CycleUnit.MONTH:
            return self.anchor.year + (self.anchor.month - 1 + index * self.every) // 12
        days = self.anchor.toordinal() + index * self.every * 7
        return (days * 400) // 146_097 + 1  # 146,097 days in 400 Gregorian years

    def __str__(self) -> str:
        unit = "month" if self.unit is CycleUnit.MONTH else "week"
        length = f"1 {unit}" if self.every == 1 else f"{self.every} {unit}s"
        return f"billing periods of {length} from {self.anchor.isoformat()}"

    def period(self, index: int) -> BillingPeriod:
        """Period number *index*: negative indexes lie before the anchor."""
        return BillingPeriod(self.boundary(index), self.boundary(index + 1))

    def index_of(self, instant: datetime) -> int:
        """The index of the period that contains *instant*.

        Raises:
            matchusage.exceptions.InvalidCycleError: *instant* is naive.
            matchusage.exceptions.PeriodOutOfRangeError: Its period falls
                outside the years 1 to 9999.
        """
        return self._index_of(instant, "BillingCycle", "instant")

    def _index_of(
        self, instant: datetime, record: str, field: str, known: dict[int, datetime] | None = None
    ) -> int:
        """`index_of`, naming the caller (*record*, *field*) if *instant* is naive.

        The boundaries computed on the way are added to *known*, by index.
        """
        known = {} if known is None else known

        def boundary_us(index: int) -> int:
            if index not in known:
                known[index] = self.boundary(index)
            return to_micros(known[index])

        at = to_micros(require_aware(instant, record, field, InvalidCycleError))
        if self.unit is CycleUnit.MONTH:
            try:
                local = instant.astimezone(self.timezone)
            except (OverflowError, ValueError):
                local = instant  # near year 1 or 9999: a rougher estimate
            months = (local.year - self.anchor.year) * 12 + local.month - self.anchor.month
            index = months // self.every
        else:
            index = (at - self._anchor_us) // (self.every * 7 * 86_400_000_000)
        # The estimate is off by at most one period (day of month, DST).
        while boundary_us(index) > at:
            index -= 1
        while boundary_us(index + 1) <= at:
            index += 1
        return index

    def period_containing(self, instant: datetime) -> BillingPeriod:
        """The period with ``start <= instant < end``."""
        return self.period(self.index_of(instant))

    def closed_periods(self, *, before: datetime, count: int) -> list[BillingPeriod]:
        """The last *count* periods that ended at or before *before*, oldest first.

        A period ending exactly at *before* is closed; the period containing
        *before* is still open and is not included.

        Raises:
            matchusage.exceptions.PeriodOutOfRangeError: The oldest of them
                would start before the year 1.
        """
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise InvalidCycleError(
                "BillingCycle.closed_periods", "count", count, "a non-negative integer"
            )
        known: dict[int, datetime] = {}
        current = self._index_of(before, "BillingCycle.closed_periods", "before", known)
        # The oldest boundary first: a count reaching before the year 1 is refused
        # as such, whatever its size.
        bounds = [
            known.get(index) or self.boundary(index)
            for index in range(current - count, current + 1)
        ]
        return [BillingPeriod(start, end) for start, end in itertools.pairwise(bounds)]

    def periods(self, start: datetime, end: datetime) -> Iterator[BillingPeriod]:
        """Iterate, oldest first, over the periods that overlap ``[start, end)``.

        An empty or reversed span overlaps nothing.
        """
        record = "BillingCycle.periods"
        end_us = to_micros(require_aware(end, record, "end", InvalidCycleError))
        index = self._index_of(start, record, "start")
        if end_us <= to_micros(start):
            return
        yield from itertools.takewhile(lambda p: p._start_us < end_us, self._consecutive(index))

    def _consecutive(self, first: int) -> Iterator[BillingPeriod]:
        """Periods *first*, *first* + 1, ...: each boundary computed once, shared by two periods."""
        start = self.boundary(first)
        for index in itertools.count(first + 1):
            end = self.boundary(index)
            yield BillingPeriod(start, end)
            start = end

    def periods_between(self, start: datetime, end: datetime) -> Iterator[BillingPeriod]:
        """Deprecated: the same as [`periods`][matchusage.BillingCycle.periods] (gone in 0.2)."""
        warnings.warn(
            "BillingCycle.periods_between is deprecated; use BillingCycle.periods",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.periods(start, end)
