"""The command line: ``python -m matchusage`` through its real entry point ``main(argv)``."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matchusage import OrganizationMatches, usage_report
from matchusage.__main__ import main
from matchusage._cli._example import (
    EXAMPLE_NOW,
    EXAMPLE_ORGANIZATION_ID,
    example_data,
    example_repository,
)
from matchusage._cli._render import BAR_WIDTH, bar

REPOSITORY = example_repository()
ORGANIZATION = REPOSITORY.organization(EXAMPLE_ORGANIZATION_ID)
SOURCE = OrganizationMatches(REPOSITORY, ORGANIZATION.id)
REPORT = usage_report(SOURCE, ORGANIZATION.cycle, now=EXAMPLE_NOW, periods=6)
DATA = example_data()


def run(*argv: str) -> str:
    out = io.StringIO()
    assert 0 == main(list(argv), out=out)
    return out.getvalue()


def test_demo_draws_a_bar_per_period_and_the_current_figures() -> None:
    text = run("demo")
    lines = text.splitlines()
    assert lines[0].startswith("Northwind Mentoring: billing periods of 1 month")
    rows = [line for line in lines if "█" in line]
    assert [str(u.count) for u in REPORT.periods] == [row.split()[3] for row in rows]
    longest = max(u.count for u in REPORT.periods)
    widest = [row for row in rows if row.split()[3] == str(longest)]
    assert all(row.endswith("█" * BAR_WIDTH) for row in widest)
    current = REPORT.current
    assert f"  active so far         {len(current.users_so_far):>6}" in lines
    assert f"  in a match right now  {len(current.current_users):>6}" in lines
    assert any(line.split()[:3] == ["Leadership", "Circle", "47"] for line in lines)


def test_demo_is_report_on_the_example() -> None:
    assert run("demo") == run("report", "--example")


def test_report_json_has_the_library_figures() -> None:
    document = json.loads(run("report", "--example", "--format", "json"))
    assert [u.count for u in REPORT.periods] == [p["active_users"] for p in document["periods"]]
    assert [len(u.new) for u in REPORT.periods] == [p["new_users"] for p in document["periods"]]
    assert [u.period.start.isoformat() for u in REPORT.periods] == [
        p["period_start"] for p in document["periods"]
    ]
    for usage, period in zip(REPORT.periods, document["periods"], strict=True):
        assert usage.count == sum(p["attributed_users"] for p in period["programs"].values())
    assert len(REPORT.current.users_so_far) == document["current"]["active_so_far"]
    assert EXAMPLE_NOW.isoformat() == document["at"]


def test_report_csv() -> None:
    rows = list(csv.DictReader(io.StringIO(run("report", "--example", "--format", "csv"))))
    assert [str(u.count) for u in REPORT.periods] == [row["active_users"] for row in rows]
    assert [str(len(u.by_program["onboarding"])) for u in REPORT.periods] == [
        row["onboarding:active"] for row in rows
    ]


def test_report_periods_and_cycle_options() -> None:
    cycle = ["--months", "3", "--timezone", "America/New_York", "--anchor", "2025-01-01"]
    quarterly = json.loads(run("report", "--example", "--format", "json", "--periods", "2", *cycle))
    assert ["2026-04-01T00:00:00-04:00", "2026-07-01T00:00:00-04:00"] == [
        p["period_start"] for p in quarterly["periods"]
    ]
    assert "2026-10-01T00:00:00-04:00" == quarterly["current"]["period_start"]


def test_report_from_a_data_directory(tmp_path: Path) -> None:
    for name in ("organization.json", "programs.csv", "users.csv", "matches.csv"):
        (tmp_path / name).write_text((DATA / name).read_text())
    now = EXAMPLE_NOW.isoformat()
    assert run("report", "--example", "--now", now) == run(
        "report", "--data", str(tmp_path), "--now", now
    )


def test_export_csv_to_stdout_reads_back_as_the_active_users() -> None:
    rows = list(csv.DictReader(io.StringIO(run("export", "--example"))))
    expected = [
        (u.period.start.isoformat(), user) for u in REPORT.periods for user in sorted(u.users)
    ]
    assert expected == [(row["period_start"], row["user_id"]) for row in rows]
    assert "User 001" == next(row["name"] for row in rows if row["user_id"] == "u001")


@pytest.mark.parametrize("output", ["json", "jsonl"])
def test_export_one_period_as_json_lines_to_a_file(tmp_path: Path, output: str) -> None:
    target = tmp_path / "march.jsonl"
    run(
        "export",
        "--example",
        "--format",
        output,
        "--period",
        "2025-03-01T00:00Z",
        "-o",
        str(target),
    )
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert {"2025-02-15T00:00:00+01:00"} == {r["period_start"] for r in records}
    assert sorted({r["user_id"] for r in records}) == [r["user_id"] for r in records]


def test_explain_lists_the_matches_of_each_period() -> None:
    document = json.loads(run("explain", "u001", "--example", "--format", "json"))
    assert "User 001" == document["name"]
    assert [u.period.start.isoformat() for u in REPORT.periods] == [
        p["period_start"] for p in document["periods"]
    ]
    for usage, period in zip(REPORT.periods, document["periods"], strict=True):
        found = REPORT.explain("u001", usage.period)
        assert list(found.match_ids) == [m["match_id"] for m in period["matches"]]
        assert ("u001" in usage.users) == period["active"]
    table = run("explain", "u001", "--example")
    assert table.startswith("Why was u001 (User 001) billed?")
    assert "m173  Leadership Circle (mentee)" in table


def test_explain_one_period_csv_and_the_open_period() -> None:
    period = "2026-11-16T00:00+01:00"
    text = run("explain", "u001", "--example", "--format", "csv", "--period", period)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {"2026-11-15T00:00:00+01:00"} == {row["period_start"] for row in rows}
    assert ["m173", "m187"] == [row["match_id"] for row in rows]
    assert {""} == {row["overlap_end"] for row in rows}  # ongoing: open end


def test_active_per_program() -> None:
    document = json.loads(run("active", "--example", "--format", "json"))
    current = REPORT.current
    assert len(current.current_users) == document["current_active_users"]
    assert {k: len(v) for k, v in current.current_matches.items()} == {
        k: v["current_active_matches"] for k, v in document["programs"].items()
    }
    rows = list(csv.DictReader(io.StringIO(run("active", "--example", "--format", "csv"))))
    assert ["engineering", "leadership", "onboarding"] == [row["program_id"] for row in rows]
    assert "New Hire Buddies" in run("active", "--example")


@pytest.mark.parametrize(
    "argv",
    [[], ["report"], ["export"], ["explain"], ["active"], ["demo"]],
    ids=["top", "report", "export", "explain", "active", "demo"],
)
def test_help_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert 0 == main([*argv, "--help"])
    assert capsys.readouterr().out.startswith("usage: matchusage")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        pytest.param([], "required: COMMAND", id="no-command"),
        pytest.param(["bill"], "invalid choice", id="unknown-command"),
        pytest.param(["report"], "--data --example is required", id="no-data"),
        pytest.param(["report", "--example", "--now", "2026-01-01"], "no UTC offset", id="naive"),
        pytest.param(["report", "--example", "--now", "soon"], "'soon'", id="bad-now"),
        pytest.param(["report", "--example", "--periods", "-1"], "'-1'", id="periods"),
        pytest.param(["report", "--example", "--months", "0"], "'0'", id="months"),
        pytest.param(["report", "--example", "--anchor", "soon"], "'soon'", id="anchor"),
        pytest.param(["report", "--example", "--timezone", "Mars/Base"], "Mars/Base", id="zone"),
        pytest.param(["report", "--example", "--format", "xml"], "'xml'", id="format"),
        pytest.param(["report", "--data", "/nonexistent"], "existing directory", id="no-dir"),
        pytest.param(["explain", "--example"], "required: USER_ID", id="no-user"),
        pytest.param(["explain", "nobody", "--example"], "unknown user 'nobody'", id="user"),
        pytest.param(
            ["export", "--example", "--period", "2027-06-01T00:00Z"], "not started", id="future"
        ),
        pytest.param(["report", "--example", "--periods", "0"], "'0'", id="zero-periods"),
        pytest.param(
            ["report", "--example", "--periods", "99999999999999999999"],
            "would start in the year -8333333333333331307",
            id="huge-periods",
        ),
        pytest.param(
            ["report", "--example", "--periods", "9" * 5000],
            "'99999999999999999999'... (5,000 characters) is not a positive integer",
            id="long-int",
        ),
        pytest.param(
            ["report", "--example", "--months", "100000"],
            "billing periods of 100000 months from 2024-11-15T00:00:00+01:00: period 1 "
            "(period 0 starts at the anchor) would start in the year 10358",
            id="months-beyond-9999",
        ),
        pytest.param(
            ["report", "--example", "--now", "9999-12-20T00:00Z"],
            "would start in the year 10000; dates only go from the year 1 to 9999 (see --now",
            id="now-beyond-9999",
        ),
        pytest.param(
            ["explain", "u001", "--example", "--period", "2027-06-01T00:00Z"],
            "has not started",
            id="future-explained",
        ),
        pytest.param(
            ["export", "--example", "-o", "/nonexistent/dir/x.csv"], "No such file", id="output"
        ),
    ],
)
def test_errors_are_one_line_and_exit_2(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert 2 == main(argv, out=out)
    err = capsys.readouterr().err
    assert 1 == len(err.splitlines()), err
    assert err.startswith("matchusage")
    assert words in err
    assert "" == out.getvalue()


def test_bad_input_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("organization.json", "programs.csv"):
        (tmp_path / name).write_text((DATA / name).read_text())
    (tmp_path / "matches.csv").write_text(
        "id,program_id,participants,started_at\nm1,nope,a,2024-01-01\nm2,engineering,,x\n"
    )
    assert 2 == main(["report", "--data", str(tmp_path)])
    (line,) = capsys.readouterr().err.splitlines()
    assert "4 bad values in" in line
    assert "matches.csv, line 2: 'started_at'" in line
    assert "matches.csv, line 3: 'participants'" in line


def test_an_organization_file_that_is_not_utf8_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("programs.csv", "matches.csv"):
        (tmp_path / name).write_text((DATA / name).read_text())
    (tmp_path / "organization.json").write_bytes(b"\xff\xfe{}")

    assert 2 == main(["report", "--data", str(tmp_path)], out=io.StringIO())
    (line,) = capsys.readouterr().err.splitlines()
    assert "organization.json, line 1: 'encoding'" in line


@given(st.integers(0, 1000), st.integers(1, 1000))
def test_bar_length_is_proportional(value: int, maximum: int) -> None:
    value = min(value, maximum)
    drawn = bar(value, maximum)
    eighths = sum(8 if c == "█" else "▏▎▍▌▋▊▉".index(c) + 1 for c in drawn)
    assert abs(eighths - value * BAR_WIDTH * 8 / maximum) <= 1 or (value > 0 and eighths == 1)
    assert (value == 0) == (drawn == "")
    assert len(bar(value, maximum, ascii_only=True)) <= BAR_WIDTH


def test_python_dash_m_runs_the_demo() -> None:
    """The README's main command, as a real process."""
    done = subprocess.run(
        [sys.executable, "-m", "matchusage", "demo"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert (0, "") == (done.returncode, done.stderr)
    assert "active so far" in done.stdout
    assert "█" in done.stdout


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    import matchusage

    assert 0 == main(["--version"])
    assert f"matchusage {metadata.version('matchusage')}\n" == capsys.readouterr().out
    assert metadata.version("matchusage") == matchusage.__version__


def test_export_of_the_open_period_lists_the_users_active_so_far() -> None:
    rows = list(
        csv.DictReader(io.StringIO(run("export", "--example", "--period", "2026-11-16T00:00Z")))
    )
    assert sorted(REPORT.current.users_so_far) == [row["user_id"] for row in rows]
    assert {REPORT.current.period.end.isoformat()} == {row["period_end"] for row in rows}


@pytest.mark.parametrize("encoding", ["ascii", "cp1252"])
@pytest.mark.parametrize(
    "argv",
    [["report"], ["explain", "u001"], ["active"]],
    ids=["report", "explain", "active"],
)
def test_output_the_console_cannot_encode_falls_back(
    argv: list[str], encoding: str, tmp_path: Path
) -> None:
    """Arrows and bars become ASCII; a name the code page lacks prints escaped, not a crash."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("organization.json", "users.csv", "matches.csv"):
        (data / name).write_text((DATA / name).read_text(), encoding="utf-8")
    programs = (DATA / "programs.csv").read_text().replace("Leadership Circle", "领导力圈 →")
    (data / "programs.csv").write_text(programs, encoding="utf-8")
    argv = [*argv, "--data", str(data), "--now", EXAMPLE_NOW.isoformat()]
    done = subprocess.run(
        [sys.executable, "-m", "matchusage", *argv],
        capture_output=True,
        check=False,
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": encoding},
    )
    assert (0, b"") == (done.returncode, done.stderr)
    text = done.stdout.decode(encoding)
    assert "→" not in text
    assert "█" not in text
    if argv[0] != "explain":
        assert "\\u9886\\u5bfc\\u529b\\u5708" in text  # the program's name, escaped
    if argv[0] == "report":
        assert " -> " in text
        assert "#" in text


def test_json_on_a_console_that_cannot_encode_keeps_every_name(tmp_path: Path) -> None:
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    assert 0 == main(["active", "--example", "--format", "json"], out=out)
    out.flush()
    document = json.loads(out.buffer.getvalue().decode("ascii"))  # type: ignore[attr-defined]
    assert "engineering" in document["programs"]


def test_tables_print_no_control_characters_from_the_data(tmp_path: Path) -> None:
    """A name holding an escape sequence or a direction override cannot reach the terminal."""
    for name in ("organization.json", "matches.csv"):
        (tmp_path / name).write_text((DATA / name).read_text(), encoding="utf-8")
    programs = (DATA / "programs.csv").read_text().replace("Leadership Circle", "Lead\x1b[2Jers")
    (tmp_path / "programs.csv").write_text(programs, encoding="utf-8")
    users = (DATA / "users.csv").read_text().replace("User 001", "User\u202e 001\x07")
    (tmp_path / "users.csv").write_text(users, encoding="utf-8")
    source = ["--data", str(tmp_path), "--now", EXAMPLE_NOW.isoformat()]

    text = run("report", *source) + run("active", *source) + run("explain", "u001", *source)

    assert {"\x1b", "\x07", "\u202e"}.isdisjoint(text)
    assert "Lead[2Jers" in text
    assert "Why was u001 (User 001) billed?" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("threshold", "quiet", "shown"),
    [(1, False, True), (1, True, False), (10**12, False, False)],
    ids=["large-input", "quiet", "small-input"],
)
def test_progress_is_shown_on_a_terminal_for_large_inputs_unless_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int, quiet: bool, shown: bool
) -> None:
    from matchusage._cli import _progress

    for name in ("organization.json", "programs.csv", "users.csv", "matches.csv"):
        (tmp_path / name).write_bytes((DATA / name).read_bytes())
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(_progress, "LARGE_INPUT_BYTES", threshold)
    command = ["export", "--data", str(tmp_path), "-o", str(tmp_path / "out.csv")]
    assert 0 == main(command + ["--quiet"] * quiet, out=io.StringIO())
    written = terminal.getvalue()
    assert shown == ("reading the data files" in written)
    assert shown == ("rows" in written.replace("rows written", ""))
    assert written.endswith(f"rows written to {tmp_path / 'out.csv'}\n")
