"""Acceptance checks of issues 2 and 3 through the public API, as the issues name it.

Each test states one requirement of the core engine (issue 2) or of the usage
reports, explanations, exports, loaders and command line (issue 3), or one rule
of the product spec, and checks it with the keyword arguments the issue spells.
The edge cases are those an established billing engine gets right: anchors on
month ends, DST in several zones, instants exactly on boundaries, naive
datetimes wherever they can enter, hostile spreadsheet cells.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pendulum
import pytest
from hypothesis import given, settings

import matchusage
from matchusage import (
    EXPORT_COLUMNS,
    BillingCycle,
    BillingPeriod,
    CycleUnit,
    Match,
    User,
    active_users,
    active_users_by_period,
    current_active_matches,
    current_active_users,
    explain,
    export_csv,
    export_jsonl,
    load_directory,
    load_matches,
    load_organization,
    load_users,
    usage_report,
)
from matchusage.__main__ import main
from matchusage.exceptions import (
    DuplicateMatchError,
    InvalidCycleError,
    InvalidInputError,
    InvalidMatchError,
    InvalidPeriodError,
    InvalidRecordError,
    MatchUsageError,
)
from matchusage.memory import InMemoryRepository
from matchusage.testing import strategies as mst

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
SYDNEY = ZoneInfo("Australia/Sydney")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
DST_ZONES = [NEW_YORK, LONDON, SYDNEY, LORD_HOWE]
ZONE_IDS = ["new-york", "london", "sydney", "lord-howe"]
MICROSECOND = timedelta(microseconds=1)
NAIVE = datetime(2024, 3, 1, 12, 30)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def in_utc(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()


def match(
    id: str,
    participants: set[str],
    started_at: datetime,
    ended_at: datetime | None = None,
    program_id: str = "p1",
) -> Match:
    return Match(
        id=id,
        program_id=program_id,
        participants=participants,
        started_at=started_at,
        ended_at=ended_at,
    )


MARCH = BillingPeriod(start=utc(2024, 3, 1), end=utc(2024, 4, 1))


# --- Issue 2: the domain model ------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [list, tuple, set, frozenset, iter, lambda ids: (user for user in ids)],
    ids=["list", "tuple", "set", "frozenset", "iterator", "generator"],
)
def test_match_participants_are_stored_as_a_frozenset(make: Callable[[list[str]], Any]) -> None:
    participants = make(["ann", "bob", "ann"])
    built = Match(id="m1", program_id="p1", participants=participants, started_at=utc(2024, 1, 1))

    assert frozenset({"ann", "bob"}) == built.participants
    assert built.ended_at is None


def test_match_roles_are_optional_and_keep_the_signature() -> None:
    built = Match(
        id="m1",
        program_id="p1",
        participants=["ann", "bob"],
        started_at=utc(2024, 1, 1),
        ended_at=None,
        roles={"ann": "mentor", "bob": "mentee"},
    )

    assert matchusage.Role.MENTOR == built.role_of("ann")
    assert matchusage.Role.MENTEE == built.role_of("bob")


GOOD: dict[str, Any] = {
    "id": "m-42",
    "program_id": "p1",
    "participants": ["ann", "bob"],
    "started_at": utc(2024, 3, 1),
    "ended_at": utc(2024, 3, 5),
}


@pytest.mark.parametrize(
    ("changes", "field", "shown"),
    [
        ({"started_at": NAIVE}, "started_at", "2024-03-01T12:30:00"),
        ({"ended_at": NAIVE}, "ended_at", "2024-03-01T12:30:00"),
        ({"started_at": pendulum.naive(2024, 3, 1)}, "started_at", "2024-03-01T00:00:00"),
        ({"ended_at": utc(2024, 2, 29)}, "ended_at", "2024-02-29T00:00:00+00:00"),
        ({"participants": []}, "participants", "frozenset()"),
        ({"participants": "ann"}, "participants", "'ann'"),
        ({"participants": ["ann", ""]}, "participants", "''"),
        ({"program_id": ""}, "program_id", "''"),
        ({"started_at": "2024-03-01T00:00:00+00:00"}, "started_at", "'2024-03-01T00:00:00+00:00'"),
    ],
    ids=[
        "naive-start",
        "naive-end",
        "naive-pendulum-start",
        "end-before-start",
        "no-participants",
        "bare-string-participants",
        "empty-participant",
        "empty-program",
        "string-start",
    ],
)
def test_bad_match_names_the_match_id_the_field_and_the_value(
    changes: dict[str, Any], field: str, shown: str
) -> None:
    with pytest.raises(InvalidMatchError) as info:
        Match(**{**GOOD, **changes})

    error = info.value
    assert isinstance(error, ValueError)
    assert isinstance(error, MatchUsageError)
    assert (field, "m-42") == (error.field, error.match_id)
    message = str(error)
    assert "m-42" in message
    assert field in message
    assert shown in message


def test_bad_datetimes_are_shown_as_repr_and_iso_text() -> None:
    with pytest.raises(InvalidMatchError) as info:
        Match(**{**GOOD, "started_at": NAIVE})

    assert repr(NAIVE) in str(info.value)
    assert NAIVE.isoformat() in str(info.value)


def test_zero_length_match_is_valid_and_never_active_nor_current() -> None:
    instant = utc(2024, 3, 10)
    zero = match("z", {"ann"}, instant, instant)

    assert frozenset() == active_users([zero], MARCH)
    assert [] == current_active_matches([zero], at=instant)


def test_stdlib_and_pendulum_datetimes_are_alike() -> None:
    stdlib = match("m1", {"ann"}, datetime(2024, 3, 1, 9, tzinfo=NEW_YORK))
    with_pendulum = match("m1", {"ann"}, pendulum.datetime(2024, 3, 1, 14, tz="UTC"))

    assert stdlib == with_pendulum
    assert active_users([stdlib], MARCH) == active_users([with_pendulum], MARCH)


def test_matches_are_equal_by_instants_even_in_a_repeated_hour() -> None:
    # 01:30 on 2024-11-03 happens twice in New York; fold=0 is the first one (EDT).
    first = datetime(2024, 11, 3, 1, 30, tzinfo=NEW_YORK)

    assert match("m1", {"ann"}, first) == match("m1", {"ann"}, first.astimezone(UTC))
    assert match("m1", {"ann"}, first) != match("m1", {"ann"}, first.replace(fold=1))


# --- Issue 2: billing periods -------------------------------------------------------------


def test_period_is_half_open_and_hashable() -> None:
    period = BillingPeriod(start=utc(2024, 3, 1), end=utc(2024, 4, 1))

    assert period.contains(utc(2024, 3, 1))
    assert period.contains(utc(2024, 4, 1) - MICROSECOND)
    assert not period.contains(utc(2024, 4, 1))
    assert {period: "march"}[BillingPeriod(start=utc(2024, 3, 1), end=utc(2024, 4, 1))] == "march"


@pytest.mark.parametrize(
    ("start", "end", "field", "shown"),
    [
        (NAIVE, utc(2024, 4, 1), "start", "2024-03-01T12:30:00"),
        (utc(2024, 3, 1), NAIVE, "end", "2024-03-01T12:30:00"),
        (utc(2024, 3, 1), utc(2024, 3, 1), "end", "2024-03-01T00:00:00+00:00"),
        (utc(2024, 4, 1), utc(2024, 3, 1), "end", "2024-03-01T00:00:00+00:00"),
    ],
    ids=["naive-start", "naive-end", "empty", "reversed"],
)
def test_bad_period_names_the_field_and_the_value(
    start: datetime, end: datetime, field: str, shown: str
) -> None:
    with pytest.raises(InvalidPeriodError) as info:
        BillingPeriod(start=start, end=end)

    assert isinstance(info.value, ValueError)
    assert field == info.value.field
    assert field in str(info.value)
    assert shown in str(info.value)


@pytest.mark.parametrize("zone", DST_ZONES, ids=ZONE_IDS)
def test_periods_are_equal_by_instants_whatever_the_zone_even_in_a_repeated_hour(
    zone: ZoneInfo,
) -> None:
    # A weekly cycle whose boundaries fall in each zone's repeated hour.
    repeated = {
        "America/New_York": datetime(2024, 11, 3, 1, 30),
        "Europe/London": datetime(2024, 10, 27, 1, 30),
        "Australia/Sydney": datetime(2024, 4, 7, 2, 30),
        "Australia/Lord_Howe": datetime(2024, 4, 7, 1, 45),
    }[zone.key]
    cycle = BillingCycle.weekly(repeated.replace(tzinfo=zone))
    local = cycle.period(0)
    same = BillingPeriod(start=local.start.astimezone(UTC), end=local.end.astimezone(UTC))
    shifted = BillingPeriod(start=local.start.replace(fold=1), end=local.end)

    assert local == same
    assert hash(local) == hash(same)
    assert local != shifted
    assert [local, shifted] == sorted([shifted, local])


# --- Issue 2: billing cycles --------------------------------------------------------------


def boundaries(cycle: BillingCycle, indexes: range) -> list[str]:
    return [cycle.boundary(k).isoformat() for k in indexes]


@pytest.mark.parametrize(
    ("cycle", "indexes", "expected"),
    [
        (
            BillingCycle.monthly(utc(2024, 1, 31)),
            range(-2, 5),
            ["2023-11-30", "2023-12-31", "2024-01-31", "2024-02-29", "2024-03-31",
             "2024-04-30", "2024-05-31"],
        ),
        (
            BillingCycle.monthly(utc(2023, 1, 31)),
            range(0, 4),
            ["2023-01-31", "2023-02-28", "2023-03-31", "2023-04-30"],
        ),
        (
            BillingCycle.monthly(utc(2024, 1, 30)),
            range(0, 4),
            ["2024-01-30", "2024-02-29", "2024-03-30", "2024-04-30"],
        ),
        (
            BillingCycle.monthly(utc(2023, 1, 29)),
            range(0, 4),
            ["2023-01-29", "2023-02-28", "2023-03-29", "2023-04-29"],
        ),
        (
            BillingCycle.monthly(utc(2024, 1, 29)),
            range(0, 3),
            ["2024-01-29", "2024-02-29", "2024-03-29"],
        ),
        (
            BillingCycle.monthly(utc(2023, 2, 28)),
            range(-1, 4),
            ["2023-01-28", "2023-02-28", "2023-03-28", "2023-04-28", "2023-05-28"],
        ),
        (
            BillingCycle.monthly(utc(2023, 11, 30), every=3),
            range(-1, 5),
            ["2023-08-30", "2023-11-30", "2024-02-29", "2024-05-30", "2024-08-30", "2024-11-30"],
        ),
        (
            BillingCycle.monthly(utc(2024, 8, 31), every=6),
            range(-1, 4),
            ["2024-02-29", "2024-08-31", "2025-02-28", "2025-08-31", "2026-02-28"],
        ),
        (
            BillingCycle.yearly(utc(2024, 2, 29)),
            range(-1, 5),
            ["2023-02-28", "2024-02-29", "2025-02-28", "2026-02-28", "2027-02-28", "2028-02-29"],
        ),
        (
            BillingCycle.weekly(utc(2024, 2, 26)),
            range(-1, 3),
            ["2024-02-19", "2024-02-26", "2024-03-04", "2024-03-11"],
        ),
        (
            BillingCycle.weekly(utc(2024, 2, 26), every=2),
            range(-1, 3),
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
        "quarterly-30th",
        "semiannual-31st",
        "yearly-feb-29",
        "weekly",
        "biweekly",
    ],
)  # fmt: skip
def test_boundaries_follow_the_anchor_and_clamp_at_month_ends(
    cycle: BillingCycle, indexes: range, expected: list[str]
) -> None:
    assert [f"{day}T00:00:00+00:00" for day in expected] == boundaries(cycle, indexes)


def test_cycles_take_the_anchor_by_keyword() -> None:
    anchor = utc(2024, 1, 31)

    assert BillingCycle.monthly(anchor, every=1) == BillingCycle.monthly(anchor=anchor)
    assert BillingCycle.yearly(anchor=anchor).period(0) == BillingPeriod(
        start=anchor, end=utc(2025, 1, 31)
    )
    assert BillingCycle.weekly(anchor=anchor).period(0).duration == timedelta(weeks=1)


@pytest.mark.parametrize(
    ("zone", "anchor", "index", "expected"),
    [
        (NEW_YORK, (2024, 1, 10, 2, 30), 2, "2024-03-10T03:30:00-04:00"),
        (NEW_YORK, (2024, 1, 3, 1, 30), 10, "2024-11-03T01:30:00-04:00"),
        (NEW_YORK, (2024, 1, 1, 0, 0), 3, "2024-04-01T00:00:00-04:00"),
        (LONDON, (2024, 1, 31, 1, 30), 2, "2024-03-31T02:30:00+01:00"),
        (LONDON, (2024, 1, 27, 1, 30), 9, "2024-10-27T01:30:00+01:00"),
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
        "sydney-skipped",
        "sydney-repeated",
        "lord-howe-skipped-half-hour",
        "lord-howe-repeated-half-hour",
        "lord-howe-after-the-change",
    ],
)
def test_boundaries_are_local_wall_times_across_dst(
    zone: ZoneInfo, anchor: tuple[int, ...], index: int, expected: str
) -> None:
    """A skipped wall time moves forward by the gap; a repeated one takes its first occurrence."""
    cycle = BillingCycle.monthly(datetime(*anchor, tzinfo=zone))  # type: ignore[misc]

    assert expected == cycle.boundary(index).isoformat()
    # The same cycle from a pendulum anchor gives the same instants.
    same = BillingCycle.monthly(pendulum.datetime(*anchor, tz=zone.key))
    assert in_utc(cycle.boundary(index)) == in_utc(same.boundary(index))


@pytest.mark.parametrize("zone", DST_ZONES, ids=ZONE_IDS)
@pytest.mark.parametrize(
    "build",
    [
        lambda a: BillingCycle.monthly(a),
        lambda a: BillingCycle.monthly(a, every=3),
        lambda a: BillingCycle.monthly(a, every=6),
        lambda a: BillingCycle.yearly(a),
        lambda a: BillingCycle.weekly(a),
    ],
    ids=["monthly", "quarterly", "semiannual", "yearly", "weekly"],
)
@pytest.mark.parametrize(
    "anchor",
    [(2024, 1, 31, 0, 0), (2024, 1, 30, 2, 30), (2024, 2, 29, 1, 45), (2023, 3, 28, 23, 0)],
    ids=["31st-midnight", "30th-0230", "feb-29-0145", "28th-2300"],
)
def test_periods_tile_contain_their_start_and_never_drift(
    zone: ZoneInfo, build: Callable[[datetime], BillingCycle], anchor: tuple[int, ...]
) -> None:
    cycle = build(datetime(*anchor, tzinfo=zone))  # type: ignore[misc]
    wall = datetime(*anchor)  # type: ignore[misc]
    for k in range(-13, 14):
        period, following = cycle.period(k), cycle.period(k + 1)
        assert period.end == following.start
        assert period.start < period.end
        assert period == cycle.period_containing(period.start)
        assert period == cycle.period_containing(period.end.astimezone(UTC) - MICROSECOND)
        assert k == cycle.index_of(period.start)
        # No drift: the local day of month is the anchor's or, clamped, the month's
        # last day; a weekly period keeps the weekday.
        local = period.start.astimezone(zone)
        if cycle.unit is CycleUnit.WEEK:
            assert wall.weekday() == local.weekday()
        else:
            clamped = min(wall.day, calendar.monthrange(local.year, local.month)[1])
            assert clamped == local.day


def test_a_monthly_period_across_dst_is_an_hour_shorter_or_longer() -> None:
    cycle = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=NEW_YORK))

    assert timedelta(days=31, hours=-1) == cycle.period(2).duration  # March
    assert timedelta(days=30, hours=1) == cycle.period(10).duration  # November


def test_weekly_periods_keep_the_weekday_and_time_across_dst() -> None:
    cycle = BillingCycle.weekly(datetime(2024, 3, 4, 9, tzinfo=NEW_YORK))

    assert "2024-03-11T09:00:00-04:00" == cycle.boundary(1).isoformat()
    assert timedelta(hours=167) == cycle.period(0).duration


def test_instants_before_the_anchor_get_earlier_periods() -> None:
    cycle = BillingCycle.monthly(utc(2024, 1, 31))

    assert BillingPeriod(start=utc(2023, 11, 30), end=utc(2023, 12, 31)) == (
        cycle.period_containing(utc(2023, 12, 1))
    )


class TestClosedPeriods:
    cycle = BillingCycle.monthly(utc(2024, 1, 31))

    def test_oldest_first_and_the_open_period_left_out(self) -> None:
        expected = [
            BillingPeriod(start=utc(2024, 2, 29), end=utc(2024, 3, 31)),
            BillingPeriod(start=utc(2024, 3, 31), end=utc(2024, 4, 30)),
        ]
        assert expected == self.cycle.closed_periods(before=utc(2024, 5, 15), count=2)

    def test_a_period_ending_exactly_at_before_is_closed(self) -> None:
        closed = self.cycle.closed_periods(before=utc(2024, 4, 30), count=1)

        assert [BillingPeriod(start=utc(2024, 3, 31), end=utc(2024, 4, 30))] == closed

    def test_a_microsecond_earlier_it_is_still_open(self) -> None:
        closed = self.cycle.closed_periods(before=utc(2024, 4, 30) - MICROSECOND, count=1)

        assert [BillingPeriod(start=utc(2024, 2, 29), end=utc(2024, 3, 31))] == closed

    def test_count_zero_is_empty(self) -> None:
        assert [] == self.cycle.closed_periods(before=utc(2024, 5, 15), count=0)

    def test_closed_periods_across_dst(self) -> None:
        cycle = BillingCycle.monthly(datetime(2024, 1, 31, tzinfo=LONDON))
        closed = cycle.closed_periods(before=datetime(2024, 4, 30, tzinfo=LONDON), count=2)

        assert [
            ("2024-02-29T00:00:00+00:00", "2024-03-31T00:00:00+00:00"),
            ("2024-03-31T00:00:00+00:00", "2024-04-30T00:00:00+01:00"),
        ] == [(p.start.isoformat(), p.end.isoformat()) for p in closed]


def test_iteration_over_the_periods_between_two_instants() -> None:
    cycle = BillingCycle.monthly(utc(2024, 1, 31))

    expected = [cycle.period(k) for k in (1, 2, 3)]
    assert expected == list(cycle.periods(utc(2024, 3, 1), utc(2024, 5, 1)))
    assert expected == list(cycle.periods_between(utc(2024, 3, 1), utc(2024, 5, 1)))
    assert [cycle.period(1)] == list(cycle.periods(utc(2024, 2, 29), utc(2024, 3, 31)))


def test_a_boundary_beyond_year_9999_is_a_cycle_error() -> None:
    cycle = BillingCycle.monthly(utc(2024, 1, 31))

    with pytest.raises(InvalidCycleError, match=r"period 100000 .* in the year 10357"):
        cycle.boundary(100_000)
    with pytest.raises(InvalidCycleError):
        cycle.period_containing(datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))))


# --- Naive datetimes, wherever they can enter ---------------------------------------------

CYCLE = BillingCycle.monthly(utc(2024, 1, 31))
ONE = [match("m1", {"ann"}, utc(2024, 1, 1))]


@pytest.mark.parametrize(
    ("call", "error", "field"),
    [
        (lambda: Match(**{**GOOD, "started_at": NAIVE}), InvalidMatchError, "started_at"),
        (lambda: Match(**{**GOOD, "ended_at": NAIVE}), InvalidMatchError, "ended_at"),
        (lambda: BillingPeriod(start=NAIVE, end=utc(2025, 1, 1)), InvalidPeriodError, "start"),
        (lambda: BillingPeriod(start=utc(2024, 1, 1), end=NAIVE), InvalidPeriodError, "end"),
        (lambda: BillingCycle.monthly(NAIVE), InvalidCycleError, "anchor"),
        (lambda: BillingCycle.monthly(NAIVE, every=3), InvalidCycleError, "anchor"),
        (lambda: BillingCycle.yearly(NAIVE), InvalidCycleError, "anchor"),
        (lambda: BillingCycle.weekly(NAIVE), InvalidCycleError, "anchor"),
        (lambda: CYCLE.period_containing(NAIVE), InvalidCycleError, "instant"),
        (lambda: CYCLE.closed_periods(before=NAIVE, count=2), InvalidCycleError, "before"),
        (lambda: list(CYCLE.periods(NAIVE, utc(2024, 5, 1))), InvalidCycleError, "start"),
        (lambda: list(CYCLE.periods(utc(2024, 1, 1), NAIVE)), InvalidCycleError, "end"),
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


@pytest.mark.parametrize(
    ("build", "field", "value"),
    [
        (lambda: BillingCycle.monthly(utc(2024, 1, 1), every=0), "every", 0),
        (lambda: BillingCycle.monthly(utc(2024, 1, 1), every=-3), "every", -3),
        (lambda: BillingCycle.weekly(utc(2024, 1, 1), every=0), "every", 0),
        (lambda: CYCLE.closed_periods(before=utc(2024, 5, 1), count=-1), "count", -1),
        (lambda: usage_report(ONE, CYCLE, now=utc(2024, 5, 1), periods=-1), "periods", -1),
    ],
    ids=["every-zero", "every-negative", "weekly-every-zero", "count-negative", "periods-negative"],
)
def test_bad_counts_are_rejected_naming_field_and_value(
    build: Callable[[], object], field: str, value: int
) -> None:
    with pytest.raises(InvalidRecordError) as info:
        build()

    assert (field, value) == (info.value.field, info.value.value)
    assert f"(got {value})" in str(info.value)


# --- Issue 2: the counting rules ----------------------------------------------------------

START, END = MARCH.start, MARCH.end


@pytest.mark.parametrize(
    ("started_at", "ended_at", "active"),
    [
        (utc(2024, 2, 1), START, False),
        (END, utc(2024, 5, 1), False),
        (END, None, False),
        (utc(2024, 3, 10), utc(2024, 3, 10), False),
        (START, START, False),
        (utc(2024, 2, 1), START + MICROSECOND, True),
        (END - MICROSECOND, None, True),
        (START, END, True),
        (utc(2024, 3, 10), utc(2024, 3, 20), True),
        (utc(2024, 1, 1), utc(2024, 6, 1), True),
        (utc(2024, 1, 1), None, True),
        (utc(2024, 1, 1), utc(2024, 3, 15), True),
    ],
    ids=[
        "ends-exactly-at-start",
        "starts-exactly-at-end",
        "ongoing-from-the-end",
        "zero-length-inside",
        "zero-length-at-start",
        "one-microsecond-in",
        "last-microsecond-ongoing",
        "exactly-the-period",
        "inside",
        "covers-the-period",
        "ongoing-from-before",
        "ends-mid-period",
    ],
)
def test_a_match_counts_when_it_overlaps_by_a_positive_amount(
    started_at: datetime, ended_at: datetime | None, active: bool
) -> None:
    found = active_users([match("m1", {"ann", "bob"}, started_at, ended_at)], MARCH)

    assert (frozenset({"ann", "bob"}) if active else frozenset()) == found


def test_spec_two_matches_of_two_people_are_four_active_users() -> None:
    matches = [
        match("m1", {"mentor-a", "mentee-a"}, utc(2024, 3, 2)),
        match("m2", {"mentor-b", "mentee-b"}, utc(2024, 3, 3)),
    ]

    assert 4 == len(active_users(matches, MARCH))


def test_spec_one_mentor_with_two_mentees_is_three_active_users() -> None:
    matches = [
        match("m1", {"mentor", "mentee-1"}, utc(2024, 3, 2)),
        match("m2", {"mentor", "mentee-2"}, utc(2024, 3, 3)),
    ]

    assert frozenset({"mentor", "mentee-1", "mentee-2"}) == active_users(matches, MARCH)


def test_a_user_in_two_programs_is_one_active_user() -> None:
    matches = [
        match("m1", {"ann", "bob"}, utc(2024, 3, 2), program_id="coding"),
        match("m2", {"ann", "cyd"}, utc(2024, 3, 3), program_id="leadership"),
    ]

    assert frozenset({"ann", "bob", "cyd"}) == active_users(matches, MARCH)


def test_a_group_match_counts_every_participant_once() -> None:
    group = match("g1", {"mentor", "a", "b", "c"}, utc(2024, 3, 2))
    pair = match("m1", {"mentor", "a"}, utc(2024, 3, 5))

    assert 4 == len(active_users([group, pair], MARCH))


def test_ending_mid_period_bills_that_period_and_not_the_next() -> None:
    cycle = BillingCycle.monthly(utc(2024, 1, 1))
    ended = match("m1", {"ann", "bob"}, utc(2024, 1, 10), utc(2024, 3, 15))
    periods = [cycle.period(k) for k in (1, 2, 3)]

    expected = {
        periods[0]: frozenset({"ann", "bob"}),
        periods[1]: frozenset({"ann", "bob"}),
        periods[2]: frozenset(),
    }
    assert expected == active_users_by_period([ended], periods)


def test_another_match_keeps_a_user_active_after_one_ends() -> None:
    matches = [
        match("m1", {"ann", "bob"}, utc(2024, 1, 10), utc(2024, 2, 15)),
        match("m2", {"ann", "cyd"}, utc(2024, 2, 20)),
    ]

    assert frozenset({"ann", "cyd"}) == active_users(matches, MARCH)


def test_active_users_by_period_keeps_the_given_periods_in_order() -> None:
    periods = CYCLE.closed_periods(before=utc(2024, 6, 1), count=4)[::-1]
    found = active_users_by_period(ONE, periods)

    assert periods == list(found)
    assert all(isinstance(users, frozenset) for users in found.values())


# --- Duplicate match ids in one computation -----------------------------------------------

TWINS = [
    match("dup", {"ann"}, utc(2024, 3, 2)),
    match("dup", {"bob"}, utc(2023, 1, 1), utc(2023, 2, 1)),
]


@pytest.mark.parametrize(
    "call",
    [
        lambda: active_users(TWINS, MARCH),
        lambda: active_users_by_period(TWINS, [MARCH]),
        lambda: current_active_matches(TWINS, at=utc(2024, 3, 10)),
        lambda: current_active_users(TWINS, at=utc(2024, 3, 10)),
        lambda: usage_report(TWINS, CYCLE, now=utc(2024, 6, 1)),
        lambda: explain(TWINS, "ann", MARCH),
        lambda: active_users([TWINS[0], TWINS[0]], MARCH),
    ],
    ids=[
        "active-users",
        "by-period",
        "current-matches",
        "current-users",
        "usage-report",
        "explain",
        "same-object-twice",
    ],
)
def test_duplicate_match_ids_in_one_computation_are_an_error(call: Callable[[], object]) -> None:
    with pytest.raises(DuplicateMatchError) as info:
        call()

    assert isinstance(info.value, ValueError)
    assert "dup" == info.value.match_id
    assert "'dup'" in str(info.value)


# --- Current active matches ---------------------------------------------------------------

NOW = utc(2024, 3, 10, 12)
CURRENT_CASES = {
    "started-now": (NOW, None, True),
    "ends-now": (utc(2024, 3, 1), NOW, False),
    "ends-a-microsecond-later": (utc(2024, 3, 1), NOW + MICROSECOND, True),
    "starts-in-the-future": (NOW + MICROSECOND, None, False),
    "ongoing": (utc(2023, 1, 1), None, True),
    "zero-length-now": (NOW, NOW, False),
    "ended-before": (utc(2024, 1, 1), utc(2024, 2, 1), False),
}


@pytest.mark.parametrize(
    ("started_at", "ended_at", "current"), list(CURRENT_CASES.values()), ids=list(CURRENT_CASES)
)
def test_a_match_is_current_when_started_and_not_ended(
    started_at: datetime, ended_at: datetime | None, current: bool
) -> None:
    found = match("m1", {"ann", "bob"}, started_at, ended_at)

    assert ([found] if current else []) == current_active_matches([found], at=NOW)
    assert (found.participants if current else frozenset()) == current_active_users([found], at=NOW)


def test_current_active_matches_and_users_per_program() -> None:
    matches = [
        match("m1", {"ann", "bob"}, utc(2024, 3, 1), program_id="coding"),
        match("m2", {"ann", "cyd"}, utc(2024, 3, 2), program_id="leadership"),
        match("m3", {"dan", "eve"}, utc(2024, 3, 2), NOW, program_id="coding"),
        match("m4", {"fay", "gus"}, NOW + MICROSECOND, program_id="coding"),
    ]

    assert ["m1"] == [m.id for m in current_active_matches(matches, at=NOW, program_id="coding")]
    assert frozenset({"ann", "cyd"}) == current_active_users(
        matches, at=NOW, program_id="leadership"
    )
    assert frozenset({"ann", "bob", "cyd"}) == current_active_users(matches, at=NOW)


# --- Issue 3: the usage report ------------------------------------------------------------

# A cycle on the 31st in New York; "now" is 2024-06-10 noon local time.
NY_CYCLE = BillingCycle.monthly(datetime(2024, 1, 31, tzinfo=NEW_YORK))


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


REPORT_NOW = ny(2024, 6, 10, 12)
REPORT_MATCHES = [
    match("a", {"mentor", "mentee-1"}, ny(2024, 1, 15), ny(2024, 3, 10), "coding"),
    match("b", {"mentor", "mentee-2"}, ny(2024, 2, 29), ny(2024, 3, 31), "coding"),
    match("c", {"mentee-1", "zed"}, ny(2024, 3, 31), ny(2024, 3, 31), "leadership"),
    match("d", {"g1", "g2", "g3", "mentor"}, ny(2024, 4, 5), None, "leadership"),
    match("e", {"yan"}, ny(2024, 5, 20), REPORT_NOW, "coding"),
    match("f", {"mentor", "yan"}, ny(2024, 4, 1), None, "coding"),
    match("g", {"zoe"}, REPORT_NOW, None, "coding"),
    match("h", {"kim"}, REPORT_NOW + MICROSECOND, None, "coding"),
]


def report_summary(report: matchusage.UsageReport) -> list[tuple[str, int, list[str]]]:
    return [
        (usage.period.start.date().isoformat(), usage.count, sorted(usage.users))
        for usage in report.periods
    ]


class TestUsageReport:
    report = usage_report(REPORT_MATCHES, NY_CYCLE, now=REPORT_NOW, periods=4)

    def test_periods_are_the_last_closed_ones_oldest_first(self) -> None:
        assert [
            ("2024-01-31", 2, ["mentee-1", "mentor"]),
            ("2024-02-29", 3, ["mentee-1", "mentee-2", "mentor"]),
            ("2024-03-31", 5, ["g1", "g2", "g3", "mentor", "yan"]),
            ("2024-04-30", 5, ["g1", "g2", "g3", "mentor", "yan"]),
        ] == report_summary(self.report)

    def test_default_is_six_closed_periods(self) -> None:
        report = usage_report(REPORT_MATCHES, NY_CYCLE, now=REPORT_NOW)

        assert NY_CYCLE.closed_periods(before=REPORT_NOW, count=6) == [
            usage.period for usage in report.periods
        ]

    def test_counts_equal_the_core_engine(self) -> None:
        periods = [usage.period for usage in self.report.periods]
        expected = active_users_by_period(REPORT_MATCHES, periods)

        assert expected == {usage.period: usage.users for usage in self.report.periods}
        assert [len(users) for users in expected.values()] == [
            usage.count for usage in self.report.periods
        ]

    def test_new_and_dropped_compare_with_the_previous_period(self) -> None:
        # "a" started in January, before the oldest reported period.
        assert [
            ([], []),
            (["mentee-2"], []),
            (["g1", "g2", "g3", "yan"], ["mentee-1", "mentee-2"]),
            ([], []),
        ] == [(sorted(u.new), sorted(u.dropped)) for u in self.report.periods]

    def test_per_program_users_are_distinct_and_may_sum_to_more_than_the_total(self) -> None:
        april = self.report.periods[2]

        assert {
            "coding": frozenset({"mentor", "yan"}),
            "leadership": frozenset({"g1", "g2", "g3", "mentor"}),
        } == dict(april.by_program)
        assert sum(map(len, april.by_program.values())) > april.count

    def test_attribution_puts_each_user_in_one_program(self) -> None:
        # In April "mentor" is in d (leadership, from Apr 5) and f (coding, from Apr 1):
        # the earliest-starting match wins.
        april = self.report.periods[2]

        assert {
            "coding": frozenset({"mentor", "yan"}),
            "leadership": frozenset({"g1", "g2", "g3"}),
        } == dict(april.attributed)
        for usage in self.report.periods:
            assert usage.count == sum(map(len, usage.attributed.values()))
            assert usage.users == frozenset().union(*usage.attributed.values())

    def test_current_has_three_distinct_figures(self) -> None:
        current = self.report.current

        assert BillingPeriod(start=ny(2024, 5, 31), end=ny(2024, 6, 30)) == current.period
        # e ended exactly now: active so far, not in a match right now.
        assert frozenset({"g1", "g2", "g3", "mentor", "yan", "zoe"}) == current.users_so_far
        assert frozenset({"g1", "g2", "g3", "mentor", "yan", "zoe"}) == current.current_users
        assert {"coding": ["f", "g"], "leadership": ["d"]} == {
            program: [m.id for m in found] for program, found in current.current_matches.items()
        }

    def test_a_match_ending_exactly_now_is_so_far_but_not_current(self) -> None:
        only = [match("e", {"yan"}, ny(2024, 5, 31, 1), REPORT_NOW)]
        current = usage_report(only, NY_CYCLE, now=REPORT_NOW).current

        assert (frozenset({"yan"}), frozenset(), {}) == (
            current.users_so_far,
            current.current_users,
            dict(current.current_matches),
        )

    def test_current_matches_agree_with_current_active_matches(self) -> None:
        current = self.report.current
        flat = sorted(m.id for found in current.current_matches.values() for m in found)

        assert [m.id for m in current_active_matches(REPORT_MATCHES, at=REPORT_NOW)] == flat
        assert current_active_users(REPORT_MATCHES, at=REPORT_NOW) == current.current_users

    def test_now_exactly_on_a_boundary_closes_the_period_ending_there(self) -> None:
        report = usage_report(REPORT_MATCHES, NY_CYCLE, now=ny(2024, 4, 30), periods=2)

        assert [ny(2024, 3, 31), ny(2024, 4, 30)] == [u.period.end for u in report.periods]
        assert ny(2024, 4, 30) == report.current.period.start

    def test_zero_periods(self) -> None:
        report = usage_report(REPORT_MATCHES, NY_CYCLE, now=REPORT_NOW, periods=0)

        assert () == tuple(report.periods)
        assert NY_CYCLE.period_containing(REPORT_NOW) == report.current.period

    def test_report_from_an_iterator_or_a_repository(self) -> None:
        repository = InMemoryRepository()
        organization = matchusage.Organization(
            id="org", name="Org", timezone="America/New_York", cycle=NY_CYCLE
        )
        programs = [
            matchusage.Program(id=p, organization_id="org") for p in ("coding", "leadership")
        ]
        repository.add(organization, *programs, *REPORT_MATCHES)
        source = matchusage.OrganizationMatches(repository, "org")

        for matches in (iter(REPORT_MATCHES), source):
            again = usage_report(matches, NY_CYCLE, now=REPORT_NOW, periods=4)
            assert report_summary(self.report) == report_summary(again)
            assert self.report.current == again.current


# --- Issue 3: explanations ----------------------------------------------------------------


def test_explain_lists_each_match_clipped_to_the_period() -> None:
    april = NY_CYCLE.period(3)  # [Apr 30, May 31)
    found = explain(REPORT_MATCHES, "mentor", april)

    assert "mentor" == found.user_id
    assert april == found.period
    assert [("f", "coding", ny(2024, 4, 30), None), ("d", "leadership", ny(2024, 4, 30), None)] == [
        (o.match_id, o.program_id, o.start, o.end) for o in found.overlaps
    ]


def test_explain_clips_a_mid_period_end_and_start() -> None:
    march = NY_CYCLE.period(1)  # [Feb 29, Mar 31)
    found = explain(REPORT_MATCHES, "mentor", march)

    assert [("a", ny(2024, 2, 29), ny(2024, 3, 10)), ("b", ny(2024, 2, 29), ny(2024, 3, 31))] == [
        (o.match.id, o.start, o.end) for o in found
    ]
    yan = explain(REPORT_MATCHES, "yan", NY_CYCLE.period(4))  # [May 31, Jun 30)
    assert [("f", ny(2024, 5, 31), None), ("e", ny(2024, 5, 31), REPORT_NOW)] == [
        (o.match.id, o.start, o.end) for o in yan
    ]


def test_a_match_ending_exactly_at_the_period_start_explains_nothing() -> None:
    found = explain(REPORT_MATCHES, "mentee-2", NY_CYCLE.period(2))

    assert () == tuple(found.overlaps)
    assert not found


@settings(max_examples=40)
@given(mst.match_lists(), mst.billing_periods())
def test_explanation_is_non_empty_exactly_for_active_users(
    matches: list[Match], period: BillingPeriod
) -> None:
    active = active_users(matches, period)
    everyone = frozenset().union(*(m.participants for m in matches), {"nobody"})

    assert active == {user for user in everyone if explain(matches, user, period)}


# --- Issue 3: exports ---------------------------------------------------------------------

DOCUMENTED_HEADER = (
    "period_start",
    "period_end",
    "user_id",
    "name",
    "email",
    "programs",
    "match_ids",
    "active_from",
    "active_until",
)
EXPORT_REPORT = usage_report(REPORT_MATCHES, NY_CYCLE, now=REPORT_NOW, periods=4)


def csv_text(report: matchusage.UsageReport, **options: Any) -> str:
    file = io.StringIO(newline="")
    export_csv(report, file, **options)
    return file.getvalue()


def jsonl_text(report: matchusage.UsageReport, **options: Any) -> str:
    file = io.StringIO()
    export_jsonl(report, file, **options)
    return file.getvalue()


def test_export_header_is_documented_and_keys_follow_it() -> None:
    rows = list(csv.reader(io.StringIO(csv_text(EXPORT_REPORT), newline="")))
    records = [json.loads(line) for line in jsonl_text(EXPORT_REPORT).splitlines()]

    assert DOCUMENTED_HEADER == EXPORT_COLUMNS
    assert list(DOCUMENTED_HEADER) == rows[0]
    assert all(list(DOCUMENTED_HEADER) == list(record) for record in records)


@pytest.mark.parametrize("read", ["csv", "jsonl"])
def test_export_read_back_is_exactly_the_reports_users_in_stable_order(read: str) -> None:
    if read == "csv":
        rows = list(csv.DictReader(io.StringIO(csv_text(EXPORT_REPORT), newline="")))
    else:
        rows = [json.loads(line) for line in jsonl_text(EXPORT_REPORT).splitlines()]

    expected = [
        (usage.period.start.isoformat(), usage.period.end.isoformat(), user)
        for usage in EXPORT_REPORT.periods
        for user in sorted(usage.users)
    ]
    assert expected == [(r["period_start"], r["period_end"], r["user_id"]) for r in rows]


def test_export_bounds_have_the_offset_of_the_cycles_zone() -> None:
    rows = list(csv.DictReader(io.StringIO(csv_text(EXPORT_REPORT), newline="")))

    assert [
        ("2024-01-31T00:00:00-05:00", "2024-02-29T00:00:00-05:00"),
        ("2024-02-29T00:00:00-05:00", "2024-03-31T00:00:00-04:00"),
        ("2024-03-31T00:00:00-04:00", "2024-04-30T00:00:00-04:00"),
        ("2024-04-30T00:00:00-04:00", "2024-05-31T00:00:00-04:00"),
    ] == sorted({(r["period_start"], r["period_end"]) for r in rows})


def test_export_instants_are_written_in_the_cycles_zone_whatever_the_match_zone() -> None:
    # Started 2024-03-15 14:00 UTC, ended 2024-03-20 03:00 UTC: in New York, EDT.
    found = match("m1", {"ann"}, utc(2024, 3, 15, 14), utc(2024, 3, 20, 3))
    report = usage_report([found], NY_CYCLE, now=ny(2024, 4, 1), periods=1)
    (row,) = csv.DictReader(io.StringIO(csv_text(report), newline=""))

    assert ("2024-03-15T10:00:00-04:00", "2024-03-19T23:00:00-04:00") == (
        row["active_from"],
        row["active_until"],
    )


def test_export_row_says_what_the_explanation_says() -> None:
    users = {"mentor": User(id="mentor", name="Maria", email="maria@example.org")}
    rows = list(csv.DictReader(io.StringIO(csv_text(EXPORT_REPORT, users=users), newline="")))
    row = next(
        r for r in rows if r["user_id"] == "mentor" and r["period_start"].startswith("2024-02")
    )

    assert {
        "name": "Maria",
        "email": "maria@example.org",
        "programs": "coding",
        "match_ids": "a;b",
        "active_from": "2024-02-29T00:00:00-05:00",
        "active_until": "2024-03-31T00:00:00-04:00",
    } == {
        key: row[key]
        for key in ("name", "email", "programs", "match_ids", "active_from", "active_until")
    }


def test_export_of_one_period_and_repeatable_output() -> None:
    period = EXPORT_REPORT.periods[1].period
    again = usage_report(list(reversed(REPORT_MATCHES)), NY_CYCLE, now=REPORT_NOW, periods=4)
    rows = list(csv.DictReader(io.StringIO(csv_text(EXPORT_REPORT, period=period), newline="")))

    assert sorted(EXPORT_REPORT.periods[1].users) == [r["user_id"] for r in rows]
    assert csv_text(EXPORT_REPORT) == csv_text(again)
    assert jsonl_text(EXPORT_REPORT) == jsonl_text(again)


class _WriteOnly:
    """A text sink with nothing but ``write``: exports must stream into it."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)


@pytest.mark.parametrize("export", [export_csv, export_jsonl], ids=["csv", "jsonl"])
def test_exports_stream_to_any_text_file_object(export: Any) -> None:
    sink = _WriteOnly()
    rows = export(EXPORT_REPORT, sink)

    assert sum(usage.count for usage in EXPORT_REPORT.periods) == rows
    assert len(sink.writes) >= rows  # row by row, not one whole-file string


@pytest.mark.parametrize(
    "first", ["=", "+", "-", "@", "\t", "\r"], ids=["eq", "plus", "minus", "at", "tab", "cr"]
)
@pytest.mark.parametrize("column", ["user_id", "name", "email", "programs", "match_ids"])
def test_every_dangerous_first_character_is_neutralised_in_csv(first: str, column: str) -> None:
    hostile = f'{first}HYPERLINK("http://evil","x")'
    user_id = hostile if column == "user_id" else "ann"
    program = hostile if column == "programs" else "p1"
    match_id = hostile if column == "match_ids" else "m1"
    person = User(id=user_id, name=hostile if column == "name" else "Ann",
                  email=hostile if column == "email" else "ann@example.org")  # fmt: skip
    found = Match(
        id=match_id,
        program_id=program,
        participants=[user_id],
        started_at=utc(2024, 3, 2),
    )
    report = usage_report([found], CYCLE, now=utc(2024, 4, 1), periods=1)
    rows = list(csv.DictReader(io.StringIO(csv_text(report, users={user_id: person}), newline="")))

    assert 1 == len(rows)
    assert "'" + hostile == rows[0][column]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in rows[0].values())


# --- Issue 3: loading ---------------------------------------------------------------------

MATCHES_HEADER = "id,program_id,participants,started_at,ended_at\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def problems(error: InvalidInputError) -> list[tuple[int | None, str, object]]:
    return [(e.line, e.field, e.value) for e in error.errors]


def test_loader_collects_every_bad_line_of_a_file_in_one_error(tmp_path: Path) -> None:
    path = write(
        tmp_path / "matches.csv",
        MATCHES_HEADER
        + "m1,p1,ann;bob,2024-01-01T00:00:00,\n"
        + "m1,p1,ann;bob,2024-01-01T00:00:00+00:00,\n"
        + "m2,p1,ann;bob,2024-01-10T00:00:00+00:00,2024-01-05T00:00:00+00:00\n"
        + "m3,nope,ann;bob,2024-01-10T00:00:00+00:00,\n"
        + "m4,p1,,2024-01-10T00:00:00+00:00,\n"
        + "m5,p1,ann;bob,2024-01-10T00:00:00+00:00,\n"
        + "m5,p1,ann;cyd,2024-01-10T00:00:00+00:00,\n",
    )

    with pytest.raises(InvalidInputError) as info:
        load_matches(path, program_ids=["p1"])

    assert [
        (2, "started_at", "2024-01-01T00:00:00"),
        (3, "id", "m1"),
        (4, "ended_at", "2024-01-05T00:00:00+00:00"),
        (5, "program_id", "nope"),
        (6, "participants", ""),
        (8, "id", "m5"),
    ] == problems(info.value)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    for line, field, value in problems(info.value):
        assert f"{path}, line {line}: {field!r}" in message
        assert repr(value) in message


def test_jsonl_loader_names_file_line_field_and_value(tmp_path: Path) -> None:
    good = {"id": "m1", "program_id": "p1", "participants": ["ann", "bob"]}
    lines = [
        {**good, "started_at": "2024-01-01T00:00:00+00:00"},
        {**good, "id": "m2", "started_at": "2024-01-01T09:00:00"},
        {**good, "id": "m3", "participants": [], "started_at": "2024-01-01T00:00:00Z"},
    ]
    path = write(tmp_path / "matches.jsonl", "\n".join(map(json.dumps, lines)) + "\n")

    with pytest.raises(InvalidInputError) as info:
        load_matches(path)

    assert [(2, "started_at", "2024-01-01T09:00:00"), (3, "participants", [])] == problems(
        info.value
    )
    assert "matches.jsonl, line 2: 'started_at'" in str(info.value)


def test_nothing_is_half_loaded_from_a_directory(tmp_path: Path) -> None:
    write(
        tmp_path / "organization.json",
        json.dumps(
            {
                "id": "org",
                "name": "Org",
                "timezone": "Europe/London",
                "cycle": {"anchor": "2024-01-31T00:00:00+00:00", "unit": "month", "every": 1},
            }
        ),
    )
    write(tmp_path / "programs.csv", "id,name\np1,Coding\n")
    write(tmp_path / "users.csv", "id,name,email\nann,Ann,\nann,Again,\n")
    write(
        tmp_path / "matches.csv",
        MATCHES_HEADER
        + "m1,p1,ann;bob,2024-01-01T00:00:00+00:00,\n"
        + "m2,p2,ann;bob,2024-01-01T00:00:00+00:00,\n",
    )

    with pytest.raises(InvalidInputError) as info:
        load_directory(tmp_path)

    assert [("users.csv", 3, "id"), ("matches.csv", 3, "program_id")] == [
        (Path(e.file).name, e.line, e.field) for e in info.value.errors
    ]


def test_organization_settings_give_the_cycle(tmp_path: Path) -> None:
    path = write(
        tmp_path / "organization.json",
        json.dumps(
            {
                "id": "org",
                "name": "Org",
                "timezone": "America/New_York",
                "cycle": {"anchor": "2024-01-31T00:00:00-05:00", "unit": "month", "every": 3},
            }
        ),
    )
    organization = load_organization(path)

    assert "2024-04-30T00:00:00-04:00" == organization.cycle.boundary(1).isoformat()


def test_an_organization_file_that_is_not_utf8_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "organization.json"
    path.write_bytes(b'{"id": "org", "name": "\xff"}')

    with pytest.raises(InvalidInputError) as info:
        load_organization(path)

    assert [(None, "encoding", b"\xff")] == problems(info.value)


def test_an_oversized_csv_cell_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path / "users.csv", "id,name,email\nann,Ann,\nbob," + "x" * 200_000 + ",\n")

    with pytest.raises(InvalidInputError) as info:
        load_users(path)

    assert [(3, "csv")] == [(line, field) for line, field, _ in problems(info.value)]


# --- Issue 3: the command line ------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], ["report"], ["export"], ["explain"], ["active"], ["demo"]],
                         ids=["top", "report", "export", "explain", "active", "demo"])  # fmt: skip
def test_help_on_every_subcommand(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert 0 == main([*argv, "--help"])
    assert capsys.readouterr().out.startswith("usage: matchusage")


def _bad_organization(tmp_path: Path) -> list[str]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "organization.json").write_bytes(b"\xff\xfe{}")
    write(data / "programs.csv", "id\np1\n")
    write(data / "matches.csv", MATCHES_HEADER)
    return ["report", "--data", str(data)]


def _bad_matches(tmp_path: Path) -> list[str]:
    data = tmp_path / "data"
    data.mkdir()
    write(
        data / "organization.json",
        '{"id": "o", "name": "O", "timezone": "UTC", "cycle": {"anchor": "2024-01-01T00:00:00Z"}}',
    )
    write(data / "programs.csv", "id\np1\n")
    write(data / "matches.csv", MATCHES_HEADER + "m1,p1,ann,2024-01-01T00:00:00,\nm2,p1,,x,\n")
    return ["report", "--data", str(data)]


CLI_ERRORS: dict[str, Callable[[Path], list[str]]] = {
    "no-command": lambda _: [],
    "unknown-command": lambda _: ["bill"],
    "no-data": lambda _: ["report"],
    "missing-directory": lambda p: ["report", "--data", str(p / "missing")],
    "naive-now": lambda _: ["report", "--example", "--now", "2026-01-01T00:00:00"],
    "bad-now": lambda _: ["report", "--example", "--now", "yesterday"],
    "now-beyond-9999": lambda _: ["report", "--example", "--now", "9999-12-31T23:00:00+00:00"],
    "too-many-periods": lambda _: ["report", "--example", "--periods", "100000"],
    "negative-periods": lambda _: ["report", "--example", "--periods", "-1"],
    "zero-months": lambda _: ["report", "--example", "--months", "0"],
    "bad-zone": lambda _: ["report", "--example", "--timezone", "Mars/Olympus"],
    "bad-anchor": lambda _: ["report", "--example", "--anchor", "soon"],
    "bad-format": lambda _: ["report", "--example", "--format", "xml"],
    "explain-no-user": lambda _: ["explain", "--example"],
    "explain-unknown-user": lambda _: ["explain", "--example", "nobody"],
    "export-unwritable": lambda p: ["export", "--example", "-o", str(p / "no" / "x.csv")],
    "organization-not-utf8": _bad_organization,
    "bad-match-lines": _bad_matches,
}


@pytest.mark.parametrize("make_argv", list(CLI_ERRORS.values()), ids=list(CLI_ERRORS))
def test_errors_print_one_line_and_exit_2(
    make_argv: Callable[[Path], list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    status = main(make_argv(tmp_path), out=out)

    err = capsys.readouterr().err
    assert 2 == status
    assert "" == out.getvalue()
    assert 1 == len(err.splitlines())
    assert err.startswith("matchusage")
    assert "Traceback" not in err


def test_bad_match_lines_are_all_named_on_the_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 2 == main(_bad_matches(tmp_path))

    err = capsys.readouterr().err
    assert "matches.csv, line 2: 'started_at'" in err
    assert "matches.csv, line 3: 'participants'" in err
    assert "matches.csv, line 3: 'started_at'" in err


def test_cli_export_reads_back_as_the_library_report(tmp_path: Path) -> None:
    from matchusage._cli._example import EXAMPLE_NOW, example_repository

    repository = example_repository()
    organization = repository.organizations()[0]
    source = matchusage.OrganizationMatches(repository, organization.id)
    report = usage_report(source, organization.cycle, now=EXAMPLE_NOW, periods=2)
    target = tmp_path / "active.csv"

    assert 0 == main(["export", "--example", "--periods", "2", "--output", str(target)])
    with target.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [
        (u.period.start.isoformat(), user) for u in report.periods for user in sorted(u.users)
    ] == [(r["period_start"], r["user_id"]) for r in rows]


@pytest.mark.parametrize("output", ["table", "json", "csv"])
def test_report_formats_and_cycle_options(output: str) -> None:
    out = io.StringIO()
    argv = ["report", "--example", "--anchor", "2025-01-31", "--months", "3",
            "--timezone", "America/New_York", "--now", "2026-06-01T00:00:00Z",
            "--periods", "2", "--format", output]  # fmt: skip

    assert 0 == main(argv, out=out)
    if output == "json":
        document = json.loads(out.getvalue())
        assert ["2025-10-31T00:00:00-04:00", "2026-01-31T00:00:00-05:00"] == [
            p["period_start"] for p in document["periods"]
        ]


@pytest.mark.parametrize("output", ["json", "jsonl"])
def test_cli_export_json_lines_reads_back_with_json(output: str) -> None:
    out = io.StringIO()

    assert 0 == main(["export", "--example", "--periods", "1", "--format", output], out=out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records
    assert all(list(DOCUMENTED_HEADER) == list(record) for record in records)
