"""CSV exports written from columns with Arrow: the same bytes as the csv module writes."""

from __future__ import annotations

import contextlib
import csv
import io
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from matchusage import (
    BillingCycle,
    BillingPeriod,
    Match,
    MatchColumns,
    User,
    export_csv,
    neutralise,
    usage_report,
)
from matchusage import _export_arrow as export_arrow
from matchusage._export import _instants
from matchusage._loading import UserDirectory
from matchusage._time import to_micros
from matchusage.testing import strategies as mst

UTC = timezone.utc


def csv_text(rows: list[list[str]]) -> str:
    text = io.StringIO(newline="")
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    return text.getvalue()


def utf8(texts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """*texts* as UTF-8 can hold them (lone surrogates replaced): what Arrow strings hold."""
    return texts.map(lambda text: text.encode(errors="replace").decode())


@settings(max_examples=300, deadline=None)
@given(st.lists(utf8(mst.hostile_text() | st.text()), min_size=1, max_size=8))
@example([",", '"', "a\rb", "a\nb", "", "'", "=1", "\t", " x ", '"=1"', "\x00", ";"])
def test_cells_are_what_the_csv_module_writes_of_neutralised_text(texts: list[str]) -> None:
    found = export_arrow.cells(export_arrow.strings(texts)).to_pylist()

    # Two cells a row: the csv module quotes a lone empty cell.
    expected = csv_text([[neutralise(text), "x"] for text in texts])
    assert "".join(f"{cell},x\r\n" for cell in found) == expected


def micros_around(period: BillingPeriod) -> st.SearchStrategy[list[int]]:
    """Instants in and around *period*, with and without microseconds."""
    low, high = to_micros(period.start), to_micros(period.end)
    day = 86_400_000_000
    anywhere = st.integers(low - 2 * day, high + 2 * day)
    on_hours = anywhere.map(lambda micros: micros - micros % 3_600_000_000)
    return st.lists(anywhere | on_hours | st.sampled_from([low, high, low - 1, high - 1]))


@settings(max_examples=300, deadline=None)
@given(st.data(), mst.billing_periods())
def test_instants_are_written_as_isoformat_writes_them_in_the_period_zone(
    data: st.DataObject, period: BillingPeriod
) -> None:
    micros = data.draw(micros_around(period))
    expected = list(map(_instants(period, datetime.isoformat), micros))

    found = export_arrow._InstantWriter(period).texts(np.array(micros, dtype=np.int64))

    assert found.to_pylist() == expected


@pytest.mark.parametrize(
    ("zone", "start", "end"),
    [
        # Offsets with seconds (local mean time, before 1937), and a DST change.
        ("Europe/Amsterdam", datetime(1935, 1, 1), datetime(1935, 12, 1)),
        ("Africa/Monrovia", datetime(1971, 6, 1), datetime(1972, 6, 1)),
        ("Australia/Lord_Howe", datetime(2024, 3, 1), datetime(2024, 11, 1)),
        ("Pacific/Apia", datetime(2011, 12, 1), datetime(2012, 1, 10)),  # a day skipped
        ("Asia/Kathmandu", datetime(1985, 12, 1), datetime(1986, 2, 1)),
        ("America/St_Johns", datetime(2023, 1, 1), datetime(2024, 1, 1)),
    ],
)
def test_instants_of_odd_zones_are_written_as_isoformat_writes_them(
    zone: str, start: datetime, end: datetime
) -> None:
    tz = ZoneInfo(zone)
    period = BillingPeriod(start.replace(tzinfo=tz), end.replace(tzinfo=tz))
    low, high = to_micros(period.start), to_micros(period.end)
    micros = np.random.default_rng(7).integers(low - 10**11, high + 10**11, 20_000)
    whole = micros - micros % 1_800_000_000
    every = np.concatenate([micros, whole, np.arange(low, high, 900_000_000)])

    found = export_arrow._InstantWriter(period).texts(every).to_pylist()

    assert found == list(map(_instants(period, datetime.isoformat), every.tolist()))


def hostile_ids() -> st.SearchStrategy[str]:
    return st.sampled_from(["=a", "b,c", 'd"e', "-f", "g\nh", "i", "'j", "k l", "é", "@m"])


def exports(report: object, users: object) -> str:
    text = io.StringIO(newline="")
    export_csv(report, text, users=users)  # type: ignore[arg-type]
    return text.getvalue()


def directory_columns(users: dict[str, User]) -> UserDirectory:
    people = list(users.values())
    return UserDirectory(
        export_arrow.strings([user.id for user in people]),
        export_arrow.strings([user.name for user in people]),
        export_arrow.strings([user.email or "" for user in people]),
    )


@settings(max_examples=80, deadline=None)
@given(
    matches=st.lists(
        mst.matches(ids=hostile_ids() | st.text(min_size=1, max_size=4), users=hostile_ids()),
        max_size=25,
        unique_by=lambda match: match.id,
    ),
    cycle=mst.billing_cycles(),
    now=mst.aware_datetimes(),
    users=mst.user_directories(ids=hostile_ids()),
)
def test_an_export_from_columns_writes_what_the_csv_module_writes(
    matches: list[Match],
    cycle: BillingCycle,
    now: datetime,
    users: dict[str, User],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(export_arrow, "_SLICE", 2)  # several slices a period
    programs = {match.program_id: "o1" for match in matches}
    expected = usage_report(matches, cycle, now=now, periods=3)
    found = usage_report(MatchColumns.from_matches(matches, programs), cycle, now=now, periods=3)

    directories: list[object] = [None, users]
    with contextlib.suppress(UnicodeEncodeError):  # Arrow holds UTF-8 only
        directories.append(directory_columns(users))
    for directory in directories:
        assert exports(found, directory) == exports(expected, directory)


def test_an_export_from_columns_without_pyarrow_or_with_text_that_is_not_utf8_is_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cycle = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))
    start = datetime(2024, 1, 5, tzinfo=UTC)
    matches = [
        Match("m1", "p1", {"ann", "b\ud800"}, start, start + timedelta(days=40)),
        Match("m2", "p2", {"ann", "cyd"}, start),
    ]
    users = {"ann": User("ann", "=Ann\ud800", None), "cyd": User("cyd", "Cyd", "c@x.org")}
    now = datetime(2024, 4, 1, tzinfo=UTC)
    expected = usage_report(matches, cycle, now=now, periods=3)
    columns = MatchColumns.from_matches(matches, {"p1": "o1", "p2": "o1"})
    found = usage_report(columns, cycle, now=now, periods=3)
    assert exports(found, users) == exports(expected, users)

    monkeypatch.setitem(sys.modules, "matchusage._export_arrow", None)  # an ImportError
    clean = {"cyd": users["cyd"]}
    assert exports(found, clean) == exports(expected, clean)
