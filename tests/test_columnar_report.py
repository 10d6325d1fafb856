"""Reports, explanations, exports and the command line on columns: identical to the object path."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matchusage
from matchusage import (
    BillingCycle,
    Match,
    MatchColumns,
    explain,
    export_csv,
    export_jsonl,
    export_rows,
    usage_report,
)
from matchusage import _explain as explain_module
from matchusage import _report as report_module
from matchusage._cli import main
from matchusage._match_table import CheckedColumns, MatchTable
from matchusage.exceptions import DuplicateMatchError, InvalidColumnError
from matchusage.testing import strategies as mst

PROGRAMS = {"p1": "o1", "p2": "o1", "p3": "o1"}

cases = st.builds(
    lambda matches, cycle, now, count: (matches, cycle, now, count),
    mst.match_lists(),
    mst.billing_cycles(),
    mst.aware_datetimes(),
    st.integers(0, 4),
)


def columns_of(matches: list[Match]) -> MatchColumns:
    return MatchColumns.from_matches(matches, {m.program_id: "o1" for m in matches} | PROGRAMS)


@pytest.fixture(params=["numpy", "python"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Reports on columns with numpy, and with the pure-Python path (as without numpy)."""
    if request.param == "python":
        for module in (report_module, explain_module):
            monkeypatch.setattr(module, "_use_numpy", lambda engine: False)
    return str(request.param)


@settings(max_examples=80, deadline=None)
@given(case=cases)
def test_a_report_on_columns_equals_the_report_on_matches(
    engine: str, case: tuple[list[Match], BillingCycle, datetime, int]
) -> None:
    matches, cycle, now, count = case
    expected = usage_report(matches, cycle, now=now, periods=count)
    found = usage_report(columns_of(matches), cycle, now=now, periods=count)

    assert expected == found
    for usage in expected.periods:
        # Equal mappings, in the same (sorted) order.
        assert list(usage.by_program) == list(found.usage(usage.period).by_program)
        assert list(usage.attributed) == list(found.usage(usage.period).attributed)
    assert list(expected.current.current_matches) == list(found.current.current_matches)
    people = sorted({user for m in matches for user in m.participants})[:4]
    for period in [u.period for u in expected.periods] + [expected.current.period]:
        for user in people:
            assert expected.explain(user, period) == found.explain(user, period)


@settings(max_examples=60, deadline=None)
@given(case=cases, directory=mst.user_directories())
def test_exports_from_a_report_on_columns_are_identical(
    engine: str, case: tuple[list[Match], BillingCycle, datetime, int], directory: dict[str, object]
) -> None:
    matches, cycle, now, count = case
    expected = usage_report(matches, cycle, now=now, periods=count)
    found = usage_report(columns_of(matches), cycle, now=now, periods=count)
    users = directory  # type: ignore[assignment]

    assert list(export_rows(expected, users=users)) == list(export_rows(found, users=users))  # type: ignore[arg-type]
    # Every closed period, one closed period, and the open one (its users so far).
    for period in [None, expected.current.period, *[u.period for u in expected.periods][:1]]:
        for write in (export_csv, export_jsonl):
            expected_text, found_text = io.StringIO(newline=""), io.StringIO(newline="")
            write(expected, expected_text, period=period, users=users)  # type: ignore[arg-type]
            write(found, found_text, period=period, users=users)  # type: ignore[arg-type]
            assert expected_text.getvalue() == found_text.getvalue()


@settings(max_examples=60, deadline=None)
@given(
    matches=mst.match_lists(), period=mst.billing_periods(), user=st.sampled_from(list("abcdefg"))
)
def test_explain_on_columns_equals_explain_on_matches(
    engine: str, matches: list[Match], period: matchusage.BillingPeriod, user: str
) -> None:
    assert explain(matches, user, period) == explain(columns_of(matches), user, period)


def test_a_report_needs_match_ids_and_programs(engine: str) -> None:
    cycle = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=mst.UTC))
    bare = MatchColumns([0], [1], ["o1"], [0], ["ann"])
    with pytest.raises(InvalidColumnError, match="'match_id'"):
        usage_report(bare, cycle, now=datetime(2024, 3, 1, tzinfo=mst.UTC))


def test_repeated_match_ids_in_columns_are_refused(engine: str) -> None:
    cycle = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=mst.UTC))
    columns = MatchColumns(
        [0, 0],
        [1, 1],
        ["o1", "o1"],
        [0, 1],
        ["ann", "bob"],
        match_id=["m1", "m1"],
        program=["p1", "p1"],
    )
    with pytest.raises(DuplicateMatchError):
        usage_report(columns, cycle, now=datetime(2024, 3, 1, tzinfo=mst.UTC))


@pytest.mark.parametrize(
    "command",
    [
        ["report"],
        ["report", "--format", "json"],
        ["export"],
        ["export", "--format", "jsonl"],
        ["explain", "u053"],
        ["active", "--format", "csv"],
    ],
)
def test_the_command_line_prints_the_same_from_columns_and_from_objects(
    command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The example's files read into columns (pyarrow) or into objects give the same output."""
    pytest.importorskip("pyarrow")
    arguments = [*command, "--example"]
    fast = io.StringIO()
    assert 0 == main(arguments, out=fast)
    monkeypatch.setattr(matchusage._loading, "fast_loading_available", lambda: False)
    slow = io.StringIO()
    assert 0 == main(arguments, out=slow)
    assert slow.getvalue() == fast.getvalue()


def _csv_of(matches: list[Match]) -> str:
    """*matches* as a matches file in the documented CSV format."""
    lines = ["id,program_id,participants,started_at,ended_at"]
    for match in matches:
        people = ";".join(
            f"{user}:{match.roles[user].value}" if user in match.roles else user
            for user in sorted(match.participants)
        )
        ended = "" if match.ended_at is None else match.ended_at.isoformat()
        lines.append(
            f"{match.id},{match.program_id},{people},{match.started_at.isoformat()},{ended}"
        )
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None)
@given(case=cases)
def test_a_report_on_the_columns_a_loader_read_equals_the_report_on_matches(
    case: tuple[list[Match], BillingCycle, datetime, int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Columns the fast loader checked are taken without checking again: same report."""
    pytest.importorskip("pyarrow")
    matches, cycle, now, count = case
    path = tmp_path_factory.mktemp("data") / "matches.csv"
    path.write_text(_csv_of(matches), encoding="utf-8")
    table = matchusage._loading.read_matches(path)
    if not matches:
        return
    assert isinstance(table, MatchTable)
    columns = table.columns("o1")
    assert isinstance(columns, CheckedColumns)
    expected = usage_report(matches, cycle, now=now, periods=count)
    found = usage_report(columns, cycle, now=now, periods=count)

    assert expected == found
    assert expected.current.current_matches == found.current.current_matches
    for period in [u.period for u in expected.periods] + [expected.current.period]:
        for user in sorted({user for m in matches for user in m.participants})[:3]:
            assert expected.explain(user, period) == found.explain(user, period)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 2**16 - 1)), max_size=30))
def test_masks_are_or_ed_per_key_by_table_and_by_sort_alike(pairs: list[tuple[int, int]]) -> None:
    """Per-key masks (per program and user): a table for dense keys, a sort for sparse ones."""
    np = pytest.importorskip("numpy")
    from matchusage._columnar_report import _or_by_key

    expected: dict[int, int] = {}
    for key, bits in pairs:
        expected[key] = expected.get(key, 0) | bits
    keys = np.array([key for key, _ in pairs], dtype=np.int64)
    bits = np.array([bits for _, bits in pairs], dtype=np.uint16)
    for space in (41, 10**9):  # a table over every key; far more keys than rows: a sort
        found, masks = _or_by_key(keys, bits, space)
        assert dict(zip(found.tolist(), masks.tolist(), strict=True)) == expected
        assert found.tolist() == sorted(expected)
