"""Exports: CSV and JSON Lines of the active users, spreadsheet-safe, streamed."""

from __future__ import annotations

import csv
import io
import json
import re
import tracemalloc
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from matchusage import (
    EXPORT_COLUMNS,
    BillingCycle,
    ExportRow,
    Match,
    UsageReport,
    User,
    export_csv,
    export_jsonl,
    export_rows,
    neutralise,
    usage_report,
)
from matchusage.exceptions import InvalidPeriodError, InvalidRecordError
from matchusage.testing import strategies as mst

UTC = timezone.utc
CYCLE = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))
NOW = datetime(2024, 4, 2, tzinfo=UTC)


def at(month: int, day: int) -> datetime:
    return datetime(2024, month, day, tzinfo=UTC)


MATCHES = [
    Match("m1", "p1", {"bob", "ann"}, at(1, 10), at(3, 5)),
    Match("m2", "p2", {"ann", "cyd"}, at(2, 1)),
]
DIRECTORY = {"ann": User("ann", "Ann", "ann@example.org"), "bob": User("bob", "=1+1")}


def restore(cell: str) -> str:
    """Undo neutralise: strip one leading apostrophe."""
    return cell[1:] if cell.startswith("'") else cell


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def csv_text(report: UsageReport, **options: Any) -> str:
    out = io.StringIO(newline="")
    export_csv(report, out, **options)
    return out.getvalue()


def test_csv_export_named_example() -> None:
    report = usage_report(MATCHES, CYCLE, now=NOW, periods=2)
    out = io.StringIO(newline="")
    assert 6 == export_csv(report, out, users=DIRECTORY)
    text = out.getvalue()
    assert ",".join(EXPORT_COLUMNS) + "\r\n" == text.splitlines(keepends=True)[0]
    rows = read_csv(text)
    assert [
        ("2024-02-01T00:00:00+00:00", "ann"),
        ("2024-02-01T00:00:00+00:00", "bob"),
        ("2024-02-01T00:00:00+00:00", "cyd"),
        ("2024-03-01T00:00:00+00:00", "ann"),
        ("2024-03-01T00:00:00+00:00", "bob"),
        ("2024-03-01T00:00:00+00:00", "cyd"),
    ] == [(row["period_start"], row["user_id"]) for row in rows]
    ann_march = rows[3]
    assert {
        "period_start": "2024-03-01T00:00:00+00:00",
        "period_end": "2024-04-01T00:00:00+00:00",
        "user_id": "ann",
        "name": "Ann",
        "email": "ann@example.org",
        "programs": "p1;p2",
        "match_ids": "m1;m2",
        "active_from": "2024-03-01T00:00:00+00:00",
        "active_until": "2024-04-01T00:00:00+00:00",
    } == ann_march
    bob_march = rows[4]
    assert ("'=1+1", "", "2024-03-05T00:00:00+00:00") == (
        bob_march["name"],
        bob_march["email"],
        bob_march["active_until"],
    )


def test_the_columns_are_the_documented_ones() -> None:
    """The columns, in order, are those the Exports page's column table documents."""
    page = (Path(__file__).parents[1] / "docs" / "exports.md").read_text(encoding="utf-8")
    table = page.split("| column | value |", 1)[1].split("\n\n", 1)[0]
    documented = re.findall(r"`(\w+)`", "".join(re.findall(r"^\| (`.*?) \|", table, re.M)))

    assert tuple(documented) == EXPORT_COLUMNS


NEW_YORK = ZoneInfo("America/New_York")


def test_instants_are_written_in_the_cycles_zone_whatever_the_match_zone() -> None:
    """Bounds carry the zone's offset (EST, then EDT); match instants are converted to it."""
    cycle = BillingCycle.monthly(datetime(2024, 1, 31, tzinfo=NEW_YORK))
    # Started 2024-03-15 14:00 UTC, ended 2024-03-20 03:00 UTC: in New York, EDT.
    found = Match(
        "m1", "p1", {"ann"}, datetime(2024, 3, 15, 14, tzinfo=UTC), at(3, 20) + timedelta(hours=3)
    )
    report = usage_report([found], cycle, now=datetime(2024, 4, 1, tzinfo=NEW_YORK), periods=1)
    (row,) = read_csv(csv_text(report))

    assert (
        "2024-02-29T00:00:00-05:00",
        "2024-03-31T00:00:00-04:00",
        "2024-03-15T10:00:00-04:00",
        "2024-03-19T23:00:00-04:00",
    ) == (row["period_start"], row["period_end"], row["active_from"], row["active_until"])


def test_the_output_does_not_depend_on_the_order_of_the_matches() -> None:
    report = usage_report(MATCHES, CYCLE, now=NOW, periods=2)
    again = usage_report(list(reversed(MATCHES)), CYCLE, now=NOW, periods=2)

    assert csv_text(report) == csv_text(again)
    out, out_again = io.StringIO(), io.StringIO()
    export_jsonl(report, out)
    export_jsonl(again, out_again)
    assert out.getvalue() == out_again.getvalue()


@pytest.mark.parametrize(
    "first", ["=", "+", "-", "@", "\t", "\r"], ids=["eq", "plus", "minus", "at", "tab", "cr"]
)
@pytest.mark.parametrize("column", ["user_id", "name", "email", "programs", "match_ids"])
def test_every_dangerous_first_character_is_neutralised_in_every_column(
    first: str, column: str
) -> None:
    hostile = f'{first}HYPERLINK("http://evil","x")'
    values = {key: hostile if key == column else key for key in ("user_id", "name", "email")}
    person = User(values["user_id"], values["name"], values["email"])
    found = Match(
        hostile if column == "match_ids" else "m1",
        hostile if column == "programs" else "p1",
        [person.id],
        at(3, 2),
    )
    report = usage_report([found], CYCLE, now=NOW, periods=1)
    (row,) = read_csv(csv_text(report, users={person.id: person}))

    assert "'" + hostile == row[column]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())


def test_jsonl_export_of_one_period() -> None:
    report = usage_report(MATCHES, CYCLE, now=NOW, periods=2)
    out = io.StringIO()
    march = report.periods[1].period
    assert 3 == export_jsonl(report, out, period=march)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert list(EXPORT_COLUMNS) == list(records[0])
    assert ["ann", "bob", "cyd"] == [r["user_id"] for r in records]
    assert [["p1", "p2"], ["p1"], ["p2"]] == [r["programs"] for r in records]
    assert [None, None, None] == [r["email"] for r in records]  # no directory given


def test_export_of_a_period_outside_the_report_is_rejected() -> None:
    report = usage_report(MATCHES, CYCLE, now=NOW, periods=1)
    with pytest.raises(InvalidPeriodError):
        next(export_rows(report, period=CYCLE.period_containing(at(1, 5))))
    with pytest.raises(InvalidRecordError, match="'report'"):
        next(export_rows(MATCHES))  # type: ignore[arg-type]


exports = st.builds(
    lambda matches, cycle, now, directory: (matches, cycle, now, directory),
    mst.match_lists(),
    mst.billing_cycles(),
    mst.aware_datetimes(),
    mst.user_directories(),
)


@settings(max_examples=50)
@given(exports)
def test_export_rows_read_back_are_the_active_users(case: tuple) -> None:  # type: ignore[type-arg]
    """CSV and JSON Lines read back with the csv/json modules give exactly the report's users."""
    matches, cycle, now, directory = case
    report = usage_report(matches, cycle, now=now, periods=3)
    expected = [
        (u.period.start.isoformat(), user) for u in report.periods for user in sorted(u.users)
    ]

    text = io.StringIO(newline="")
    export_csv(report, text, users=directory)
    rows = read_csv(text.getvalue())
    assert expected == [(row["period_start"], restore(row["user_id"])) for row in rows]

    lines = io.StringIO()
    export_jsonl(report, lines, users=directory)
    # Line separators inside strings (U+0085, U+2028) are escaped, so any line splitting works.
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert expected == [(r["period_start"], r["user_id"]) for r in records]

    for row, record in zip(rows, records, strict=True):
        usage = next(u for u in report.periods if u.period.start.isoformat() == row["period_start"])
        found = report.explain(record["user_id"], usage.period)
        assert list(found.match_ids) == record["match_ids"]
        assert [restore(c) for c in row["match_ids"].split(";")] == record["match_ids"]
        person = directory.get(record["user_id"])
        assert (person.name if person else "") == record["name"] == restore(row["name"])
        assert (person.email if person else None) == record["email"]
        assert found.active_from.isoformat() == record["active_from"] == row["active_from"]


def reference_rows(report: UsageReport, users: Mapping[str, User]) -> list[ExportRow]:
    """The export as its definition reads: each active user's explanation, period by period."""
    rows = []
    for usage in report.periods:
        for user_id in sorted(usage.users):
            found = report.explain(user_id, usage.period)
            person = users.get(user_id)
            assert found.active_from is not None
            assert found.active_until is not None
            rows.append(
                ExportRow(
                    period=usage.period,
                    user_id=user_id,
                    name=person.name if person is not None else "",
                    email=person.email if person is not None else None,
                    programs=found.program_ids,
                    match_ids=found.match_ids,
                    active_from=found.active_from,
                    active_until=found.active_until,
                )
            )
    return rows


def reference_csv(rows: list[ExportRow]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        cells = [
            row.period.start.isoformat(),
            row.period.end.isoformat(),
            row.user_id,
            row.name,
            row.email or "",
            ";".join(row.programs),
            ";".join(row.match_ids),
            row.active_from.isoformat(),
            row.active_until.isoformat(),
        ]
        writer.writerow([neutralise(cell) for cell in cells])
    return out.getvalue()


def reference_jsonl(row: ExportRow) -> str:
    """A row as JSON, with the line separators JSON leaves raw (U+0085, U+2028/9) escaped."""
    text = json.dumps(row.as_dict(), ensure_ascii=False)
    for separator in "\x85\u2028\u2029":
        text = text.replace(separator, f"\\u{ord(separator):04x}")
    return text


@settings(max_examples=50)
@given(exports, st.integers(0, 2))
def test_exports_equal_the_explanations(case: tuple, which: int) -> None:  # type: ignore[type-arg]
    """Rows, CSV and JSON Lines are exactly what each user's explanation says, in order."""
    matches, cycle, now, directory = case
    report = usage_report(matches, cycle, now=now, periods=3)
    expected = reference_rows(report, directory)
    assert expected == list(export_rows(report, users=directory))
    for row in expected:
        assert (row.active_from.tzinfo, row.active_until.tzinfo) == (
            row.period.start.tzinfo,
            row.period.start.tzinfo,
        )

    text = io.StringIO(newline="")
    assert len(expected) == export_csv(report, text, users=directory)
    assert reference_csv(expected) == text.getvalue()

    lines = io.StringIO()
    assert len(expected) == export_jsonl(report, lines, users=directory)
    assert "".join(reference_jsonl(row) + "\n" for row in expected) == lines.getvalue()

    if which < len(report.periods):
        period = report.periods[which].period
        assert [row for row in expected if row.period == period] == list(
            export_rows(report, period=period, users=directory)
        )


@settings(max_examples=200)
@given(mst.hostile_text())
@example("=cmd|' /C calc'!A0")
@example("+1")
@example("-1")
@example("@SUM(A1)")
@example("\t=1")
@example("\r=1")
@example("'=1")
def test_neutralised_cells_never_start_a_formula(text: str) -> None:
    cell = neutralise(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert text == restore(cell)
    assert cell == text or cell == "'" + text


@settings(max_examples=80)
@given(mst.user_directories(ids=mst.hostile_text().filter(bool)))
def test_hostile_names_are_inert_in_the_csv(directory: dict[str, User]) -> None:
    """Every cell of a CSV export with hostile ids, names and emails is neutralised."""
    people = sorted(directory)
    matches = [Match(f"m{i}", "p1", {user}, at(1, 5)) for i, user in enumerate(people)]
    report = usage_report(matches, CYCLE, now=NOW, periods=1)
    out = io.StringIO(newline="")
    export_csv(report, out, users=directory)
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert list(EXPORT_COLUMNS) == rows[0]
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert people == [restore(row[2]) for row in rows[1:]]
    names = [directory[user].name for user in people]
    assert names == [restore(row[3]) for row in rows[1:]]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=SUM(A1:A3)", "'=SUM(A1:A3)"),
        ("+33 1 23", "'+33 1 23"),
        ("-2", "'-2"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'quoted", "''quoted"),
        ("Ada = Lovelace", "Ada = Lovelace"),
        ("", ""),
    ],
    ids=["equals", "plus", "minus", "at", "tab", "cr", "apostrophe", "inner-equals", "empty"],
)
def test_neutralise_table(cell: str, expected: str) -> None:
    assert expected == neutralise(cell)


class WriteOnly:
    """A text sink with nothing but ``write``: exports must stream into it."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return len(text)


@pytest.mark.parametrize("export", [export_csv, export_jsonl], ids=["csv", "jsonl"])
def test_exports_stream_row_by_row(export: object) -> None:
    report = usage_report(MATCHES, CYCLE, now=NOW, periods=2)
    out = WriteOnly()
    count = export(report, out)  # type: ignore[operator]
    assert count <= out.writes
    rows = export_rows(report)
    assert isinstance(rows, Iterator)


def test_jsonl_escapes_unicode_line_separators() -> None:
    """A name holding U+0085, U+2028 or U+2029 stays on its record's line, intact."""
    name = "a\x85b\u2028c\u2029d"
    matches = [
        Match("m1", "p", {"ann"}, datetime(2024, 1, 2, tzinfo=timezone.utc)),
    ]
    cycle = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=timezone.utc))
    report = usage_report(matches, cycle, now=datetime(2024, 2, 5, tzinfo=timezone.utc), periods=1)
    out = io.StringIO()

    export_jsonl(report, out, users={"ann": User("ann", name)})

    lines = out.getvalue().splitlines()
    assert 1 == len(lines)
    assert name == json.loads(lines[0])["name"]


def test_the_open_period_exports_its_users_so_far() -> None:
    cycle = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=timezone.utc))
    matches = [
        Match("m1", "p", {"ann"}, datetime(2024, 2, 3, tzinfo=timezone.utc)),
        Match("m2", "p", {"bob"}, datetime(2024, 2, 20, tzinfo=timezone.utc)),
    ]
    report = usage_report(matches, cycle, now=datetime(2024, 2, 10, tzinfo=timezone.utc))

    rows = list(export_rows(report, period=report.current.period))

    assert [("ann", report.current.period)] == [(row.user_id, row.period) for row in rows]
    assert datetime(2024, 3, 1, tzinfo=timezone.utc) == rows[0].active_until
    out = io.StringIO()
    assert 1 == export_csv(report, out, period=report.current.period)


class _Discard(io.StringIO):
    def write(self, text: str) -> int:
        return len(text)


def _export_peak(weeks: int) -> tuple[int, int]:
    """Rows written and peak bytes allocated by a CSV export of *weeks* busy weeks."""
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    cycle = BillingCycle.weekly(start)
    matches = [
        Match(f"m{week}-{n}", "p", {f"u{n}", f"v{week}-{n}"}, start + timedelta(weeks=week, days=1),
              start + timedelta(weeks=week, days=2))
        for week in range(weeks)
        for n in range(300)
    ]  # fmt: skip
    report = usage_report(matches, cycle, now=start + timedelta(weeks=weeks), periods=weeks)
    tracemalloc.start()
    try:
        rows = export_csv(report, _Discard())
        return rows, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_export_memory_is_flat_in_the_number_of_rows() -> None:
    """Eight times the rows (one period at a time in memory, nothing kept per user)."""
    few_rows, few_peak = _export_peak(4)
    many_rows, many_peak = _export_peak(32)
    assert 8 * few_rows == many_rows
    assert many_peak < 2 * few_peak, (few_peak, many_peak)
