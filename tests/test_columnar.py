"""The columnar engine agrees with the object path (the core sweep) on every input."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone

import attrs
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from matchusage import (
    BillingCycle,
    BillingPeriod,
    Match,
    MatchColumns,
    active_users_by_period,
    columnar_active_users,
    columnar_counts,
)
from matchusage._columnar import Engine
from matchusage._time import to_micros
from matchusage.exceptions import InvalidColumnError, InvalidRecordError, UnknownRecordError
from matchusage.testing import strategies as mst

ENGINES: list[Engine] = ["numpy", "python"]
UTC = timezone.utc
JAN = datetime(2024, 1, 1, tzinfo=UTC)
FEB = datetime(2024, 2, 1, tzinfo=UTC)
MAR = datetime(2024, 3, 1, tzinfo=UTC)
JANUARY = BillingPeriod(JAN, FEB)
FEBRUARY = BillingPeriod(FEB, MAR)
# p1 and p2 belong to o1, p3 to o2: the strategies' users are shared by both.
PROGRAMS = {"p1": "o1", "p2": "o1", "p3": "o2"}


def us(instant: datetime) -> int:
    return to_micros(instant)


def reference(
    matches: Iterable[Match], periods: Mapping[str, list[BillingPeriod]]
) -> dict[str, dict[BillingPeriod, frozenset[str]]]:
    """The object path: the core sweep, one organization at a time."""
    matches = list(matches)
    return {
        org: active_users_by_period([m for m in matches if PROGRAMS[m.program_id] == org], spans)
        for org, spans in periods.items()
    }


def counts_of(
    found: Mapping[str, Mapping[BillingPeriod, frozenset[str]]],
) -> dict[str, dict[BillingPeriod, int]]:
    return {org: {p: len(u) for p, u in spans.items()} for org, spans in found.items()}


def as_numpy(columns: MatchColumns) -> MatchColumns:
    """The same columns as numpy arrays, ids as integer codes with labels."""
    users = sorted(set(columns.participant_user))
    orgs = sorted(set(columns.organization))
    return MatchColumns(
        np.array(columns.start_us, dtype=np.int64),
        np.array(columns.end_us, dtype=np.int64),
        np.array([orgs.index(o) for o in columns.organization], dtype=np.int32),
        np.array(columns.participant_match, dtype=np.int64),
        np.array([users.index(u) for u in columns.participant_user], dtype=np.int64),
        organization_ids=orgs,
        user_ids=users,
        ongoing=None if columns.ongoing is None else np.array(columns.ongoing, dtype=bool),
    )


def with_ongoing_mask(columns: MatchColumns) -> MatchColumns:
    """The same columns with ongoing matches flagged by a mask (and a junk end)."""
    ongoing = [end == MatchColumns.ONGOING for end in columns.end_us]
    ends = [0 if flag else end for flag, end in zip(ongoing, columns.end_us, strict=True)]
    return attrs.evolve(columns, end_us=ends, ongoing=ongoing)


COLUMN_FORMS = {
    "lists": lambda columns: columns,
    "lists-with-mask": with_ongoing_mask,
    "numpy": as_numpy,
    "numpy-with-mask": lambda columns: as_numpy(with_ongoing_mask(columns)),
}


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=150, deadline=None)
@given(
    matches=mst.match_lists(),
    o1=st.lists(mst.billing_periods(), max_size=4),
    o2=st.lists(mst.billing_periods(), max_size=3),
    form=st.sampled_from(sorted(COLUMN_FORMS)),
)
@example(matches=[], o1=[JANUARY], o2=[], form="lists")
def test_columnar_equals_sweep(
    engine: Engine,
    matches: list[Match],
    o1: list[BillingPeriod],
    o2: list[BillingPeriod],
    form: str,
) -> None:
    """Same active users and counts as the core sweep, per organization and period."""
    periods = {"o1": o1, "o2": o2}
    columns = COLUMN_FORMS[form](MatchColumns.from_matches(matches, PROGRAMS))
    expected = reference(matches, periods)

    assert expected == columnar_active_users(columns, periods, engine=engine)
    assert counts_of(expected) == columnar_counts(columns, periods, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("start", "end", "active"),
    [
        (JAN - timedelta(days=1), JAN, False),
        (JAN - timedelta(days=1), JAN + timedelta(microseconds=1), True),
        (FEB, MAR, False),
        (FEB - timedelta(microseconds=1), MAR, True),
        (JAN + timedelta(days=3), JAN + timedelta(days=3), False),
        (JAN, JAN, False),
        (JAN - timedelta(days=400), None, True),
        (FEB, None, False),
    ],
    ids=[
        "ends-at-start",
        "ends-just-after-start",
        "starts-at-end",
        "starts-just-before-end",
        "zero-length-inside",
        "zero-length-at-start",
        "ongoing-from-before",
        "ongoing-from-end",
    ],
)
def test_boundaries(engine: Engine, start: datetime, end: datetime | None, active: bool) -> None:
    """Positive overlap with ``[start, end)`` counts; touching or zero-length does not."""
    columns = MatchColumns(
        [us(start)], [MatchColumns.ONGOING if end is None else us(end)], ["o"], [0, 0], ["a", "b"]
    )
    expected = {"o": {JANUARY: frozenset({"a", "b"}) if active else frozenset()}}

    assert expected == columnar_active_users(columns, {"o": [JANUARY]}, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_people_count_once_per_organization(engine: Engine) -> None:
    """A mentor with two mentees is three users; a user in two organizations bills in both."""
    day = us(JAN + timedelta(days=2))
    columns = MatchColumns(
        start_us=[day] * 4,
        end_us=[day + 1] * 4,
        organization=["acme", "acme", "beta", "beta"],
        participant_match=[0, 0, 1, 1, 2, 2, 3, 3],
        participant_user=["ann", "bob", "ann", "cid", "dan", "eve", "ann", "eve"],
    )
    periods = {"acme": [JANUARY], "beta": [JANUARY]}

    expected = {"acme": {JANUARY: 3}, "beta": {JANUARY: 3}}

    assert expected == columnar_counts(columns, periods, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "mask",
    [[True, False], np.array([True, False]), np.array([True, False], dtype=object)],
    ids=["list", "bool-array", "object-array-of-booleans"],
)
def test_ongoing_mask(engine: Engine, mask: object) -> None:
    """With an ``ongoing`` mask, an ongoing match's end value is ignored.

    A pandas-style object column of Python booleans is a mask too.
    """
    columns = MatchColumns(
        [us(JAN - timedelta(days=9))] * 2,
        [0, us(JAN - timedelta(days=1))],
        ["o", "o"],
        [0, 1],
        ["now", "then"],
        ongoing=mask,
    )

    assert {"o": {JANUARY: frozenset({"now"})}} == columnar_active_users(
        columns, {"o": [JANUARY]}, engine=engine
    )


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "ongoing",
    [[], np.array([], dtype=object)],
    ids=["list", "object-array"],
)
def test_an_empty_ongoing_mask_is_a_mask_of_no_rows(engine: Engine, ongoing: object) -> None:
    """No matches with an empty mask (a float array to numpy) count nothing, not crash."""
    columns = MatchColumns([], [], [], [], [], ongoing=ongoing)

    assert {"o": {JANUARY: 0}} == columnar_counts(columns, {"o": [JANUARY]}, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("organization", "users", "kwargs", "expected_users"),
    [
        ([17], [5, 6], {}, {"5", "6"}),
        ([17], [10**15, 6], {}, {"1000000000000000", "6"}),
        ([17], [-3, 6], {}, {"-3", "6"}),
        (["17"], [6, "6"], {}, {"6"}),
        ([0], [1, 0], {"organization_ids": ["17"], "user_ids": ["x", "y"]}, {"x", "y"}),
    ],
    ids=["small-ints", "sparse-ints", "negative-ints", "int-and-str-same-id", "codes-and-labels"],
)
def test_integer_ids_are_decimal_strings(
    engine: Engine,
    organization: list[object],
    users: list[object],
    kwargs: dict[str, list[str]],
    expected_users: set[str],
) -> None:
    """Integer ids are reported (and looked up) as their decimal strings."""
    columns = MatchColumns([us(JAN)], [us(FEB)], organization, [0, 0], users, **kwargs)

    assert {"17": {JANUARY: frozenset(expected_users)}} == columnar_active_users(
        columns, {"17": [JANUARY]}, engine=engine
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_organizations_without_matches_or_periods(engine: Engine) -> None:
    """Every requested organization and period is in the result; others are ignored."""
    columns = MatchColumns([us(JAN)], [us(FEB)], ["other"], [0], ["u"])
    periods = {"idle": [JANUARY, FEBRUARY, JANUARY], "none": []}

    expected = {"idle": {JANUARY: 0, FEBRUARY: 0}, "none": {}}

    assert expected == columnar_counts(columns, periods, engine=engine)


def test_more_than_64_periods() -> None:
    """An organization with many periods (counted 64 at a time) matches the sweep."""
    cycle = BillingCycle.weekly(JAN)
    periods = {"o1": [cycle.period(k) for k in range(-3, 70)], "o2": [cycle.period(5)]}
    matches = [
        Match(str(n), "p1" if n % 3 else "p3", {f"u{n % 7}", f"v{n % 5}"}, JAN + timedelta(days=n))
        if n % 2
        else Match(str(n), "p2", {f"u{n % 9}"}, JAN, JAN + timedelta(days=3 * n))
        for n in range(40)
    ]
    columns = MatchColumns.from_matches(matches, PROGRAMS)
    expected = reference(matches, periods)

    for engine in ENGINES:
        assert expected == columnar_active_users(columns, periods, engine=engine)
        assert counts_of(expected) == columnar_counts(columns, periods, engine=engine)


@pytest.mark.parametrize("count", [1, 8, 9, 12], ids=lambda n: f"{n}-periods")
def test_counts_with_up_to_eight_and_more_periods(count: int) -> None:
    """Counts are tallied per (organization, mask) up to 8 periods, per period above."""
    cycle = BillingCycle.weekly(JAN)
    periods = {"o1": [cycle.period(k) for k in range(count)], "o2": [cycle.period(2)]}
    matches = [
        Match(
            str(n),
            ("p1", "p2", "p3")[n % 3],
            {f"u{n % 11}", f"v{n % 4}"},
            JAN + timedelta(days=n % 50),
            None if n % 4 else JAN + timedelta(days=n % 50 + n),
        )
        for n in range(60)
    ]
    columns = MatchColumns.from_matches(matches, PROGRAMS)
    expected = counts_of(reference(matches, periods))

    for engine in ENGINES:
        assert expected == columnar_counts(columns, periods, engine=engine)


INT_DTYPES = ["int32", "int64", "uint32", "uint64"]


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_numpy_integer_types(dtype: str) -> None:
    """Any integer dtype works for every integer column."""
    columns = MatchColumns(
        np.array([us(JAN)], dtype=np.int64),
        np.array([us(FEB)], dtype=np.int64),
        np.array([3], dtype=dtype),
        np.array([0, 0], dtype=dtype),
        np.array([1, 2], dtype=dtype),
    )

    expected = {"3": {JANUARY: 2}}

    assert expected == columnar_counts(columns, {"3": [JANUARY]})


@pytest.mark.parametrize("library", ["pandas", "polars", "pyarrow"])
def test_dataframe_columns(library: str) -> None:
    """Columns of pandas, polars and pyarrow convert (here: the same counts as lists)."""
    module = pytest.importorskip(library)
    convert = module.array if library == "pyarrow" else module.Series
    day = us(JAN + timedelta(days=1))
    data = ([day, day], [day + 1, MatchColumns.ONGOING], ["a", "b"], [0, 0, 1], ["x", "y", "x"])
    periods = {"a": [JANUARY], "b": [JANUARY, FEBRUARY]}
    expected = columnar_counts(MatchColumns(*data), periods, engine="python")

    for engine in ENGINES:
        converted = MatchColumns(*[convert(column) for column in data])
        assert expected == columnar_counts(converted, periods, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("change", "column", "row"),
    [
        ({"end_us": [10, 0]}, "end_us", 1),
        ({"start_us": [0, 1.5]}, "start_us", 1),
        ({"end_us": [10]}, "end_us", None),
        ({"organization": ["o", ""]}, "organization", 1),
        ({"organization": ["o", None]}, "organization", 1),
        ({"organization": ["o"]}, "organization", None),
        ({"participant_match": [0, 2]}, "participant_match", 1),
        ({"participant_match": [0, -1]}, "participant_match", 1),
        ({"participant_user": ["u"]}, "participant_user", None),
        ({"participant_user": ["u", 2.5]}, "participant_user", 1),
        ({"participant_user": [0, 2], "user_ids": ["a", "b"]}, "participant_user", 1),
        ({"user_ids": ["a", ""], "participant_user": [0, 1]}, "participant_user labels", 1),
        ({"ongoing": [False, "yes"]}, "ongoing", 1),
        ({"ongoing": [False]}, "ongoing", None),
    ],
    ids=[
        "ends-before-start",
        "float-start",
        "short-end",
        "empty-org-id",
        "null-org-id",
        "short-org",
        "match-row-too-big",
        "match-row-negative",
        "short-users",
        "float-user",
        "user-code-out-of-range",
        "empty-user-label",
        "non-boolean-ongoing",
        "short-ongoing",
    ],
)
def test_bad_columns_name_column_and_row(
    engine: Engine, change: dict[str, object], column: str, row: int | None
) -> None:
    """A bad column raises InvalidColumnError naming the column and first bad row."""
    good: dict[str, object] = {
        "start_us": [0, 1],
        "end_us": [10, 11],
        "organization": ["o", "o"],
        "participant_match": [0, 1],
        "participant_user": ["u", "v"],
    }
    columns = MatchColumns(**{**good, **change})  # type: ignore[arg-type]

    with pytest.raises(InvalidColumnError) as caught:
        columnar_counts(columns, {"o": [JANUARY]}, engine=engine)

    assert (column, row) == (caught.value.column, caught.value.row)
    assert column in str(caught.value)


def test_bad_arguments() -> None:
    """Periods must be a mapping of BillingPeriods, the engine a known name."""
    columns = MatchColumns([], [], [], [], [])

    with pytest.raises(InvalidRecordError, match="periods"):
        columnar_counts(columns, [JANUARY])  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="BillingPeriod"):
        columnar_counts(columns, {"o": ["2024-01"]})  # type: ignore[list-item]
    with pytest.raises(InvalidRecordError, match="engine"):
        columnar_counts(columns, {"o": [JANUARY]}, engine="gpu")  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="columns"):
        columnar_counts([], {"o": [JANUARY]})  # type: ignore[arg-type]


def test_from_matches_needs_every_program() -> None:
    match = Match("m1", "p9", {"u"}, JAN)

    with pytest.raises(UnknownRecordError, match=r"'m1'.*'p9'"):
        MatchColumns.from_matches([match], PROGRAMS)


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_without_numpy_the_same_entry_points_run_in_python() -> None:
    """With numpy unavailable, "auto" runs in pure Python and "numpy" says what to install."""
    code = """
        import sys
        sys.modules["numpy"] = None  # as if the extra were not installed
        from datetime import datetime, timezone
        import matchusage as mu
        january = mu.BillingPeriod(
            datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 2, 1, tzinfo=timezone.utc)
        )
        columns = mu.MatchColumns(
            [1704100000000000], [mu.MatchColumns.ONGOING], ["o"], [0, 0], ["a", "b"]
        )
        print(mu.columnar_counts(columns, {"o": [january]})["o"][january])
        try:
            mu.columnar_counts(columns, {"o": [january]}, engine="numpy")
        except ModuleNotFoundError as error:
            print(error)
    """

    expected = [
        "2",
        "engine='numpy' needs numpy: pip install \"matchusage[numpy]\""
        ' (from a checkout of matchusage: pip install ".[numpy]")',
    ]

    assert expected == run_python(code).splitlines()
