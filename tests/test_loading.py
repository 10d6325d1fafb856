"""Loading input files: documented CSV and JSON Lines formats, all-or-nothing."""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matchusage
from matchusage import (
    BillingCycle,
    CycleUnit,
    Match,
    Role,
    User,
    load_directory,
    load_matches,
    load_organization,
    load_programs,
    load_users,
)
from matchusage import _loading as loading
from matchusage._cli._example import EXAMPLE_NOW, example_repository
from matchusage._match_table import MatchTable
from matchusage.exceptions import InvalidInputError, InvalidLineError, MatchUsageError

UTC = timezone.utc
PARIS = timezone(timedelta(hours=1))

MATCHES_CSV = """\
id,program_id,participants,started_at,ended_at
m1,p1,ann:mentor;bob:mentee,2024-01-10T09:00:00+01:00,2024-03-05T00:00:00Z
m2,p2,ann;cyd:other,2024-02-01T00:00:00+00:00,
"""

MATCHES_JSONL = """\
{"id": "m1", "program_id": "p1", "participants": [{"user_id": "ann", "role": "mentor"}, {"user_id": "bob", "role": "mentee"}], "started_at": "2024-01-10T09:00:00+01:00", "ended_at": "2024-03-05T00:00:00Z"}

{"id": "m2", "program_id": "p2", "participants": ["ann", {"user_id": "cyd", "role": "other"}], "started_at": "2024-02-01T00:00:00+00:00", "ended_at": null}
"""  # noqa: E501

EXPECTED = [
    Match(
        "m1",
        "p1",
        {"ann", "bob"},
        datetime(2024, 1, 10, 9, tzinfo=PARIS),
        datetime(2024, 3, 5, tzinfo=UTC),
        roles={"ann": Role.MENTOR, "bob": Role.MENTEE},
    ),
    Match("m2", "p2", {"ann", "cyd"}, datetime(2024, 2, 1, tzinfo=UTC), roles={"cyd": "other"}),
]


def stream(text: str, name: str) -> io.StringIO:
    file = io.StringIO(text, newline="")
    file.name = name  # type: ignore[misc]
    return file


@pytest.mark.parametrize(
    ("text", "name"),
    [(MATCHES_CSV, "matches.csv"), (MATCHES_JSONL, "matches.jsonl")],
    ids=["csv", "jsonl"],
)
def test_matches_load_in_both_formats(text: str, name: str) -> None:
    found = load_matches(stream(text, name), program_ids=["p1", "p2"])
    assert EXPECTED == found
    assert [dict(m.roles) for m in EXPECTED] == [dict(m.roles) for m in found]


def test_format_can_be_given_when_the_name_does_not_tell() -> None:
    assert EXPECTED == load_matches(io.StringIO(MATCHES_CSV, newline=""), format="csv")


def test_users_and_programs_load() -> None:
    users = load_users(stream("id,name,email\nann,Ann,ann@example.org\nbob,,\n", "users.csv"))
    assert [User("ann", "Ann", "ann@example.org"), User("bob")] == users
    lines = '{"id": "p1", "name": "One"}\n{"id": "p2"}\n'
    programs = load_programs(stream(lines, "programs.jsonl"), "org")
    assert [matchusage.Program("p1", "org", "One"), matchusage.Program("p2", "org")] == programs


def bad(text: str, name: str = "matches.csv", **kwargs: object) -> list[tuple[object, ...]]:
    """Load *text* as matches and return the (line, field, value) of every problem."""
    with pytest.raises(InvalidInputError) as info:
        load_matches(stream(text, name), **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, MatchUsageError)
    for error in info.value.errors:
        assert isinstance(error, InvalidLineError)
        assert name == error.file
    return [(e.line, e.field, e.value) for e in info.value.errors]


HEADER = "id,program_id,participants,started_at,ended_at\n"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(
            "m1,p1,ann,2024-01-10T09:00:00,",
            [(2, "started_at", "2024-01-10T09:00:00")],
            id="naive-start",
        ),
        pytest.param(
            "m1,p1,ann,2024-01-10T09:00:00Z,2024-02-01T00:00:00",
            [(2, "ended_at", "2024-02-01T00:00:00")],
            id="naive-end",
        ),
        pytest.param(
            "m1,p1,ann,2024-01-10T09:00:00Z,2024-01-01T00:00:00Z",
            [(2, "ended_at", "2024-01-01T00:00:00Z")],
            id="end-before-start",
        ),
        pytest.param(
            "m1,p9,ann,2024-01-10T09:00:00Z,", [(2, "program_id", "p9")], id="unknown-program"
        ),
        pytest.param("m1,p1,,2024-01-10T09:00:00Z,", [(2, "participants", "")], id="no-people"),
        pytest.param("m1,p1, ; ,2024-01-10T09:00:00Z,", [(2, "participants", " ; ")], id="blank"),
        pytest.param(
            "m1,p1,ann:boss,2024-01-10T09:00:00Z,", [(2, "participants", "boss")], id="bad-role"
        ),
        pytest.param(
            "m1,p1,ann;ann,2024-01-10T09:00:00Z,",
            [(2, "participants", "ann;ann")],
            id="repeated-participant",
        ),
        pytest.param("m1,p1,ann,yesterday,", [(2, "started_at", "yesterday")], id="not-a-date"),
        pytest.param(",p1,ann,2024-01-10T09:00:00Z,", [(2, "id", "")], id="no-id"),
        pytest.param("m1,p1,ann", [(2, "columns", ["m1", "p1", "ann"])], id="short-row"),
    ],
)
def test_each_bad_value_is_named(row: str, expected: list[tuple[object, ...]]) -> None:
    assert expected == bad(HEADER + row + "\n", program_ids=["p1"])


def test_every_bad_line_is_collected_in_one_error() -> None:
    text = (
        HEADER
        + "m1,p1,ann,2024-01-10T09:00:00Z,\n"
        + "m2,p1,ann,2024-01-10T09:00:00,\n"  # naive
        + "m1,p1,bob,2024-01-10T09:00:00Z,\n"  # duplicate id
        + '"m3",p1,"bob;\ncyd",2024-01-10T09:00:00Z,2023-01-01T00:00:00Z\n'  # two lines, end<start
        + "m4,p7,,2024-01-10T09:00:00Z,\n"  # unknown program and no participants
    )
    assert [
        (3, "started_at", "2024-01-10T09:00:00"),
        (4, "id", "m1"),
        (5, "ended_at", "2023-01-01T00:00:00Z"),
        (7, "participants", ""),
        (7, "program_id", "p7"),
    ] == bad(text, program_ids=["p1"])


def test_the_message_names_file_line_field_and_value() -> None:
    with pytest.raises(InvalidInputError) as info:
        load_matches(stream(HEADER + "m1,p1,ann,2024-01-10T09:00:00,\n", "data/matches.csv"))
    message = str(info.value)
    assert "data/matches.csv, line 2: 'started_at' must be" in message
    assert "(got '2024-01-10T09:00:00')" in message
    assert "\n" not in message


def test_many_bad_lines_are_summarised_in_the_message() -> None:
    rows = "".join(f"m{n},p1,ann,2024-01-10,\n" for n in range(25))
    with pytest.raises(InvalidInputError) as info:
        load_matches(stream(HEADER + rows, "matches.csv"))
    assert 25 == len(info.value.errors)
    assert str(info.value).startswith("25 bad values in matches.csv: ")
    assert str(info.value).endswith("; and 5 more")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "id,program,participants,started_at\n",
            [(1, "columns", ["id", "program", "participants", "started_at"])] * 2,
            id="wrong-column",
        ),
        pytest.param("", [(None, "header", "")], id="empty-file"),
    ],
)
def test_bad_headers(text: str, expected: list[tuple[object, ...]]) -> None:
    assert expected == bad(text)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("not json", [(1, "json", "not json")], id="not-json"),
        pytest.param("[1, 2]", [(1, "json", [1, 2])], id="not-an-object"),
        pytest.param(
            '{"id": 5, "program_id": "p1", "participants": ["a"],'
            ' "started_at": "2024-01-01T00:00Z"}',
            [(1, "id", 5)],
            id="number-id",
        ),
        pytest.param(
            '{"id": "m", "program_id": "p1", "participants": "a",'
            ' "started_at": "2024-01-01T00:00Z", "ended_at": 3}',
            [(1, "ended_at", 3)],
            id="number-end",
        ),
        pytest.param(
            '{"id": "m", "program_id": "p1", "participants": [{"user": "a"}],'
            ' "started_at": "2024-01-01T00:00Z"}',
            [(1, "participants", {"user": "a"})],
            id="bad-participant-object",
        ),
    ],
)
def test_bad_jsonl_lines(line: str, expected: list[tuple[object, ...]]) -> None:
    assert expected == bad(line + "\n", "matches.jsonl")


def test_duplicate_users_and_programs() -> None:
    with pytest.raises(InvalidInputError) as info:
        load_users(stream("id,name\nann,A\nann,B\n,C\n", "users.csv"))
    assert [(3, "id", "ann"), (4, "id", "")] == [
        (e.line, e.field, e.value) for e in info.value.errors
    ]
    with pytest.raises(InvalidInputError, match="line 3"):
        load_programs(stream("id\np1\np1\n", "programs.csv"), "org")


def test_an_oversized_csv_cell_is_an_input_error() -> None:
    text = "id,name,email\nann,Ann,\nbob," + "x" * 200_000 + ",\n"
    with pytest.raises(InvalidInputError) as info:
        load_users(stream(text, "users.csv"))
    assert [(3, "csv")] == [(e.line, e.field) for e in info.value.errors]


def test_an_organization_file_that_is_not_utf8_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "organization.json"
    path.write_bytes(b'{"id": "org",\n "name": "\xff"}')
    with pytest.raises(InvalidInputError) as info:
        load_organization(path)
    assert [(2, "encoding", b"\xff")] == [(e.line, e.field, e.value) for e in info.value.errors]


def test_unknown_suffix_needs_a_format() -> None:
    with pytest.raises(InvalidInputError, match="'format'"):
        load_users(stream("id\nann\n", "users.txt"))


ORGANIZATION = {
    "id": "acme",
    "name": "Acme",
    "timezone": "Europe/Paris",
    "cycle": {"anchor": "2024-01-15T00:00:00+01:00", "unit": "month", "every": 3},
}


def test_organization_settings() -> None:
    organization = load_organization(stream(json.dumps(ORGANIZATION), "organization.json"))
    cycle = organization.cycle
    assert ("acme", "Acme", "Europe/Paris") == (
        organization.id,
        organization.name,
        organization.timezone,
    )
    assert (CycleUnit.MONTH, 3) == (cycle.unit, cycle.every)
    assert "2024-04-15T00:00:00+02:00" == cycle.boundary(1).isoformat()


def test_bad_organization_settings_are_all_named() -> None:
    settings = {
        "id": "",
        "name": "Acme",
        "timezone": "Mars/Base",
        "cycle": {"anchor": "2024-01-15", "unit": "fortnight", "every": 0},
    }
    with pytest.raises(InvalidInputError) as info:
        load_organization(stream(json.dumps(settings), "organization.json"))
    assert ["id", "timezone", "anchor", "cycle.unit", "cycle.every"] == [
        e.field for e in info.value.errors
    ]


def write_directory(root: Path, matches: str = MATCHES_CSV) -> Path:
    (root / "organization.json").write_text(json.dumps(ORGANIZATION))
    (root / "programs.csv").write_text("id,name\np1,One\np2,Two\n")
    (root / "users.jsonl").write_text('{"id": "ann", "name": "Ann"}\n')
    (root / "matches.csv").write_text(matches)
    return root


def test_directory_loads_into_a_repository(tmp_path: Path) -> None:
    repository = load_directory(write_directory(tmp_path))
    assert ["acme"] == [o.id for o in repository.organizations()]
    assert ["p1", "p2"] == [p.id for p in repository.programs("acme")]
    assert {"ann": User("ann", "Ann")} == repository.users(["ann", "bob"])
    window = {"start": datetime(2000, 1, 1, tzinfo=UTC), "end": datetime(2100, 1, 1, tzinfo=UTC)}
    assert EXPECTED == repository.matches("acme", **window)


def test_directory_errors_from_every_file_are_reported_together(tmp_path: Path) -> None:
    write_directory(tmp_path, HEADER + "m1,p9,ann,2024-01-01T00:00Z,\n")
    (tmp_path / "users.jsonl").write_text('{"id": "ann"}\n{"id": "ann"}\n')
    with pytest.raises(InvalidInputError) as info:
        load_directory(tmp_path)
    assert [("users.jsonl", 2), ("matches.csv", 2)] == [
        (Path(e.file).name, e.line) for e in info.value.errors
    ]


@pytest.mark.parametrize(
    ("remove", "add", "field"),
    [
        pytest.param("organization.json", None, "organization", id="no-settings"),
        pytest.param("matches.csv", None, "matches", id="no-matches"),
        pytest.param(None, "programs.jsonl", "programs", id="two-program-files"),
    ],
)
def test_directory_layout_problems(
    tmp_path: Path, remove: str | None, add: str | None, field: str
) -> None:
    write_directory(tmp_path)
    if remove:
        (tmp_path / remove).unlink()
    if add:
        (tmp_path / add).write_text('{"id": "p1"}\n')
    with pytest.raises(InvalidInputError) as info:
        load_directory(tmp_path)
    assert [field] == [e.field for e in info.value.errors]


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="existing directory"):
        load_directory(tmp_path / "nowhere")


def test_bundled_example_is_realistic() -> None:
    """A few programs, a few hundred users, group and one-to-one matches, ends and ongoing."""
    repository = example_repository()
    (organization,) = repository.organizations()
    everything = repository.matches(
        organization.id,
        start=datetime(2000, 1, 1, tzinfo=UTC),
        end=datetime(2100, 1, 1, tzinfo=UTC),
    )
    sizes = {len(m.participants) for m in everything}
    ended = [m for m in everything if m.ended_at is not None]
    cycle = organization.cycle
    mid_period = [m for m in ended if cycle.period_containing(m.ended_at).start != m.ended_at]  # type: ignore[arg-type]
    users = {u for m in everything for u in m.participants}
    assert 3 == len(repository.programs(organization.id))
    assert len(users) >= 200
    assert {2, 4} == sizes
    assert mid_period
    assert any(m.is_ongoing for m in everything)
    span = max(m.started_at for m in everything) - min(m.started_at for m in everything)
    assert span > timedelta(days=600)
    assert all(m.started_at <= EXAMPLE_NOW for m in everything)
    assert isinstance(cycle, BillingCycle)


# --- bad bytes, huge numbers, lines of settings and missing files -----------------------


@pytest.mark.parametrize("name", ["matches.csv", "matches.jsonl"])
def test_a_line_that_is_not_utf8_is_named_and_the_others_are_still_checked(
    tmp_path: Path, name: str
) -> None:
    cells = [
        ("m1", "ann", "2024-01-01T00:00Z"),
        ("m2", "b\xffb", "2024-01-01T00:00Z"),
        ("m3", "cyd", "yesterday"),
    ]
    rows = [
        json.dumps({"id": i, "program_id": "p1", "participants": [u], "started_at": t})
        for i, u, t in cells
    ]
    if name.endswith(".csv"):
        rows = ["id,program_id,participants,started_at"] + [f"{i},p1,{u},{t}" for i, u, t in cells]
    rows = [row.replace("\\u00ff", "\xff") for row in rows]  # the raw byte, not its escape
    path = tmp_path / name
    path.write_bytes("\n".join(rows).encode("latin-1") + b"\n")
    offset = 1 if name.endswith(".csv") else 0
    with pytest.raises(InvalidInputError) as info:
        load_matches(path)
    assert [(2 + offset, "encoding", b"\xff"), (3 + offset, "started_at", "yesterday")] == [
        (e.line, e.field, e.value) for e in info.value.errors
    ]


def test_a_json_integer_too_long_to_convert_is_a_bad_line(tmp_path: Path) -> None:
    huge = "9" * 5000
    path = tmp_path / "matches.jsonl"
    path.write_text(f'{{"id": {huge}}}\n')
    with pytest.raises(InvalidInputError) as info:
        load_matches(path)
    assert [(1, "json")] == [(e.line, e.field) for e in info.value.errors]

    settings = json.dumps(ORGANIZATION).replace('"every": 3', f'"every": {huge}')
    with pytest.raises(InvalidInputError, match="4,300 digits"):
        load_organization(stream(settings, "organization.json"))


def test_organization_errors_name_the_line_of_the_setting() -> None:
    settings = dict(ORGANIZATION, cycle={"anchor": "2024-01-15", "unit": "month", "every": 0})
    text = json.dumps(settings, indent=2)  # the anchor is on line 6, every on line 8
    with pytest.raises(InvalidInputError) as info:
        load_organization(stream(text, "organization.json"))
    lines = text.splitlines()
    expected = [
        ("anchor", 1 + next(n for n, t in enumerate(lines) if '"anchor"' in t)),
        ("cycle.every", 1 + next(n for n, t in enumerate(lines) if '"every"' in t)),
    ]
    assert expected == [(e.field, e.line) for e in info.value.errors]
    assert expected[0][1] > 1


def test_a_missing_file_is_said_plainly(tmp_path: Path) -> None:
    write_directory(tmp_path)
    (tmp_path / "programs.csv").unlink()
    with pytest.raises(InvalidInputError) as info:
        load_directory(tmp_path)
    message = str(info.value)
    assert "no programs file (expected programs.csv, programs.jsonl or programs.ndjson)" in message
    assert "got None" not in message


def test_unknown_programs_are_named_even_when_the_programs_file_has_bad_lines(
    tmp_path: Path,
) -> None:
    write_directory(
        tmp_path, HEADER + "m1,p9,ann,2024-01-01T00:00Z,\nm2,p2,ann,2024-01-01T00:00Z,\n"
    )
    (tmp_path / "programs.csv").write_text("id,name\np1,One\np2,Two\np1,Again\n")
    with pytest.raises(InvalidInputError) as info:
        load_directory(tmp_path)
    assert [("programs.csv", 4, "id"), ("matches.csv", 2, "program_id")] == [
        (Path(e.file).name, e.line, e.field) for e in info.value.errors
    ]


# --- the fast path (pyarrow) against the row-by-row loader ---------------------------------

_CELLS = {
    "id": st.sampled_from(["m1", "m2", " m3 ", "", "m1"]),
    "program_id": st.sampled_from(["p1", "p2", " p1", "p9", ""]),
    "participants": st.lists(
        st.sampled_from(
            [
                "ann",
                "bob:mentor",
                " cyd : mentee ",
                "dan:other",
                "eve:",
                "ann",
                "x:boss",
                " ",
                "f:g:h",
                "u\u3000",
            ]
        ),
        max_size=4,
    ).map(";".join),
    "started_at": st.sampled_from(
        [
            "2024-01-10T09:00:00+01:00",
            "2024-01-10T09:00:00.5Z",
            "2024-02-29T23:59:59.123456-05:30",
            "2023-02-29T00:00:00Z",
            "2024-01-10T09:00:00",
            "2024-01-10 09:00:00+01:00",
            " 2024-03-01T00:00:00+00:00",
            "2024-03-31T02:30:00+02:00",
            "2024-01-10T24:00:00Z",
            "20240110T090000Z",
            "2024-01-10T09:00:00-00:00",
            "yesterday",
        ]
    ),
    "ended_at": st.sampled_from(
        [
            "",
            "2024-06-01T00:00:00Z",
            "2024-01-01T00:00:00+14:00",
            "2030-12-31T23:59:59.999999+01:00",
            " ",
        ]
    ),
}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.fixed_dictionaries(_CELLS), min_size=1, max_size=6),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.sampled_from([1, 60, 8 << 20]),
)
def test_the_fast_path_loads_what_the_row_by_row_loader_loads(
    rows: list[dict[str, str]], with_end: bool, check_programs: bool, compact: bool, block: int
) -> None:
    """Same matches (same instants, offsets and roles) or the same errors, whichever path.

    Files are read in blocks of *block* bytes (whole lines); *compact* files
    have no blanks in their participants (read from the bytes, not with Arrow's
    string functions).
    """
    columns = ["id", "program_id", "participants", "started_at"] + (["ended_at"] * with_end)
    text = ",".join(columns) + "\n"
    for n, row in enumerate(rows):
        # Mostly distinct ids, so that most files are good.
        cells = dict(row, id=row["id"] or "") if n % 3 == 0 else dict(row, id=f"r{n}")
        if compact:
            cells["participants"] = "".join(cells["participants"].split())
        text += ",".join(cells[column] for column in columns) + "\n"
    _assert_both_paths_load_the_same("matches.csv", text, block, check_programs)


def _assert_both_paths_load_the_same(name: str, text: str, block: int, check: bool) -> None:
    """The same matches or the same errors, with the programs p1 and p2 if *check*."""
    known = ["p1", "p2"] if check else None
    fast, slow = _by_both_paths(
        name, text, block, lambda path: _outcome(lambda: load_matches(path, program_ids=known))
    )
    assert slow == fast


def _by_both_paths(
    name: str, text: str, block: int, read: Callable[[Path], object]
) -> tuple[object, object]:
    """What *read* makes of a file *name* holding *text*, by the fast path and row by row.

    The fast path reads blocks of *block* bytes (whole lines).
    """
    module = "_arrow_loading" if name.endswith(".csv") else "_arrow_jsonl"
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_text(text, encoding="utf-8")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(f"matchusage.{module}._BLOCK_BYTES", block)
            fast = read(path)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(loading, "fast_loading_available", lambda: False)
            slow = read(path)
    return fast, slow


_PLAIN_CELLS = {
    "program_id": st.sampled_from(["p1", "p2"]),
    "participants": st.lists(
        st.tuples(
            st.sampled_from(["ann", "bob", "cyd", "u7", "x-1"]),
            st.sampled_from(["", ":", ":mentor", ":mentee", ":other"]),
        ),
        min_size=1,
        max_size=4,
        unique_by=lambda item: item[0],
    ).map(lambda items: ";".join(user + role for user, role in items)),
    "started_at": st.sampled_from(
        [
            "2024-01-10T09:00:00+01:00",
            "2024-01-10T09:00:00.5Z",
            "2024-02-29T23:59:59.123456-05:30",
            "2024-03-31T02:30:00.000001+02:00",
        ]
    ),
    "ended_at": st.sampled_from(["", "2024-06-01T00:00:00Z", "2030-12-31T23:59:59.999+01:00"]),
}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.fixed_dictionaries(_PLAIN_CELLS), min_size=1, max_size=8),
    st.sampled_from([1, 60, 8 << 20]),
    st.sampled_from(["", "x:boss", "ann;;bob", "ann:mentor:x", "a\u00e9", ":mentor"]),
)
def test_plain_files_load_the_same_by_columns_and_row_by_row(
    rows: list[dict[str, str]], block: int, odd: str
) -> None:
    """Files without blanks, mostly good: their participants are read from the bytes.

    One cell may be *odd* (an unknown role, a blank item, a role with a colon,
    a non-ASCII id, no user): the file is then read with Arrow's string
    functions or declined, with the same outcome as the row-by-row loader.
    """
    lines = ["id,program_id,participants,started_at,ended_at"]
    for n, row in enumerate(rows):
        people = odd if odd and n == len(rows) // 2 else row["participants"]
        lines.append(f"m{n},{row['program_id']},{people},{row['started_at']},{row['ended_at']}")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "matches.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("matchusage._arrow_loading._BLOCK_BYTES", block)
            fast = _outcome(lambda: load_matches(path))
            if not odd:
                assert isinstance(loading.read_matches(path), MatchTable)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(loading, "fast_loading_available", lambda: False)
            slow = _outcome(lambda: load_matches(path))
    assert slow == fast


def _outcome(load: Callable[[], list[Match]]) -> object:
    try:
        matches = load()
    except InvalidInputError as error:
        return str(error)
    return [
        (m, m.started_at.isoformat(), repr(m.started_at.tzinfo), repr(m.ended_at), dict(m.roles))
        for m in matches
    ]


def test_the_fast_path_reads_a_large_file_as_columns(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "matches.csv"
    rows = [
        f"m{n},p{n % 3},u{n}:mentor;u{n + 1},2024-01-01T00:00:{n % 60:02d}Z," for n in range(500)
    ]
    path.write_text(HEADER + "\n".join(rows) + "\n")
    assert isinstance(loading.read_matches(path), MatchTable)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loading, "fast_loading_available", lambda: False)
        assert load_matches(path) == loading.read_matches(path)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ann", " bob ", "", "cyd", "ann", "u\u3000"]),
            st.sampled_from(["Ann", "", " B ", "=cmd()"]),
            st.sampled_from(["", "a@x.example", " "]),
        ),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from([("id", "name", "email"), ("id",), ("email", "id"), ("id", "nick")]),
)
def test_users_load_the_same_by_columns_and_row_by_row(
    rows: list[tuple[str, str, str]], header: tuple[str, ...]
) -> None:
    cells = {"id": 0, "name": 1, "email": 2, "nick": 1}
    text = ",".join(header) + "\n"
    text += "".join(",".join(row[cells[c]] for c in header) + "\n" for row in rows)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "users.csv"
        path.write_text(text, encoding="utf-8")
        fast = _users(path)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(loading, "fast_loading_available", lambda: False)
            slow = _users(path)
    assert slow == fast


def _users(path: Path) -> object:
    try:
        directory = loading.read_users(path)
    except InvalidInputError as error:
        return str(error)
    return [(user_id, directory[user_id]) for user_id in directory] + [load_users(path)]


# JSON Lines: the CSV cells, as JSON values of several forms.
_JSON_PARTICIPANTS = st.lists(
    st.sampled_from(["ann", "bob:mentor", " cyd : mentee ", "dan:other", "eve:", " ", "f:g:h"]),
    max_size=4,
)
_JSON_ODDITIES = st.sampled_from(
    [
        None,
        "null id",
        "number id",
        "no started_at",
        "null ended_at",
        "extra key",
        "blank line",
        "two objects",
        "spaces",
        "lone carriage return",
        "form feed line",
        "bom",
        "no final newline",
        "odd participant",
    ]
)


# How good lines are laid out: line ends, blanks around each object, blank lines.
_JSON_LAYOUTS = st.fixed_dictionaries(
    {
        "end": st.sampled_from(["\n", "\r\n"]),
        "pad": st.sampled_from(["", " ", "\t ", "  "]),
        "blank lines": st.lists(
            st.tuples(st.integers(0, 8), st.sampled_from(["", " ", "\t", " \t  "])), max_size=3
        ),
    }
)


def _laid_out(lines: list[str], layout: dict[str, Any]) -> str:
    """The text of *lines* as *layout* says, each line ended."""
    pad = layout["pad"]
    lines = [pad + line + pad for line in lines]
    for where, blank in layout["blank lines"]:
        lines.insert(min(where, len(lines)), blank)
    return "".join(line + layout["end"] for line in lines)


def _json_people(items: list[str], form: str) -> object:
    """Participants as a string, a list of ids or a list of objects."""
    if form == "text":
        return ";".join(items)
    if form == "ids":
        return items
    people: list[dict[str, object]] = []
    for item in items:
        user, colon, role = item.partition(":")
        person: dict[str, object] = {"user_id": user}
        if colon:
            person["role"] = role if role.strip() else None
        people.append(person)
    return people


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.fixed_dictionaries({**_CELLS, "participants": _JSON_PARTICIPANTS}), max_size=6),
    st.sampled_from(["text", "ids", "objects"]),
    st.booleans(),
    _JSON_ODDITIES,
    st.sampled_from([1, 60, 8 << 20]),
    _JSON_LAYOUTS,
)
def test_the_fast_path_loads_json_lines_as_the_row_by_row_loader_does(
    rows: list[dict[str, Any]],
    form: str,
    check_programs: bool,
    odd: str | None,
    block: int,
    layout: dict[str, Any],
) -> None:
    """JSON Lines: same matches (instants, offsets, roles) or the same errors, whichever path."""
    records: list[dict[str, object]] = []
    for n, row in enumerate(rows):
        record: dict[str, object] = dict(row, id=row["id"] if n % 3 == 0 else f"r{n}")
        record["participants"] = _json_people(row["participants"], form)
        records.append(record)
    if records and odd:
        _make_odd(records[len(records) // 2], odd)
    lines = [json.dumps(record, separators=(",", ":")) for record in records]
    if len(lines) > 1 and odd == "two objects":
        lines[0] += lines.pop()
    if odd == "blank line":
        lines.insert(len(lines) // 2, "")
    if odd == "spaces":
        lines = [json.dumps(record) for record in records]
    if len(lines) > 1 and odd == "lone carriage return":  # two lines for the row-by-row loader
        lines[0] += "\r" + lines.pop()
    if odd == "form feed line":  # blank for the row-by-row loader
        lines.insert(len(lines) // 2, "\f")
    text = _laid_out(lines, layout)
    text = "\ufeff" + text if odd == "bom" else text
    text = text.rstrip("\n") if odd == "no final newline" else text
    _assert_both_paths_load_the_same("matches.jsonl", text, block, check_programs)


def _make_odd(record: dict[str, object], odd: str) -> None:
    if odd == "null id":
        record["id"] = None
    elif odd == "number id":
        record["id"] = 7
    elif odd == "no started_at":
        del record["started_at"]
    elif odd == "null ended_at":
        record["ended_at"] = None
    elif odd == "extra key":
        record["note"] = "x"
    elif odd == "odd participant":
        people = record["participants"]
        record["participants"] = (
            [*people, {"user_id": "zed", "seat": 1}] if isinstance(people, list) else 5
        )


# A line of JSON Lines ("{}" for its text), with blank lines and blanks around it or not.
_LINE_LAYOUTS = pytest.mark.parametrize(
    "layout",
    ["{}\n", "\n {}\t\n  \n", "{}\r\n", "\r\n\t{} \r\n \r\n"],
    ids=["plain", "blank-lines-and-padding", "crlf", "crlf-blank-lines-and-padding"],
)


@pytest.mark.parametrize(
    "participants",
    [
        '"ann:mentor;bob"',
        '["ann:mentor", " bob "]',
        '[{"user_id": "ann", "role": "mentor"}, {"user_id": "bob", "role": null}]',
        '[{"user_id": "ann", "role": "mentor"}, {"user_id": "bob"}]',
    ],
)
@_LINE_LAYOUTS
def test_good_json_lines_files_are_read_as_columns(
    tmp_path: Path, participants: str, layout: str
) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "matches.jsonl"
    path.write_bytes(
        "".join(
            layout.format(
                f'{{"id": "m{n}", "program_id": "p1", "participants": {participants}, '
                f'"started_at": "2024-01-0{n + 1}T09:00:00+01:00", "ended_at": null}}'
            )
            for n in range(3)
        ).encode()
    )
    table = loading.read_matches(path)
    assert isinstance(table, MatchTable)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loading, "fast_loading_available", lambda: False)
        assert load_matches(path) == table.matches()
        assert {"ann": Role.MENTOR} == dict(load_matches(path)[0].roles)


@_LINE_LAYOUTS
def test_two_objects_on_a_line_are_an_error_whatever_the_layout(layout: str) -> None:
    record = {"program_id": "p1", "participants": "ann", "started_at": "2024-01-01T09:00:00Z"}
    lines = [json.dumps({"id": f"m{n}", **record}) for n in range(3)]
    text = "".join(layout.format(line) for line in (lines[0] + lines[1], lines[2]))
    fast, slow = _by_both_paths(
        "matches.jsonl", text, 8 << 20, lambda path: _outcome(lambda: load_matches(path))
    )
    assert fast == slow
    assert "must be one JSON object per line" in str(slow)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.fixed_dictionaries(_PLAIN_CELLS), min_size=1, max_size=8),
    st.sampled_from(["text", "ids", "objects"]),
    st.sampled_from([1, 60, 8 << 20]),
    st.sampled_from([None, "spaces", "bom", "no final newline", "null ended_at", "escapes"]),
    _JSON_LAYOUTS,
)
def test_good_json_lines_files_load_the_same_by_columns_and_row_by_row(
    rows: list[dict[str, str]], form: str, block: int, style: str | None, layout: dict[str, Any]
) -> None:
    """Good files in any form and layout (blank lines, CRLF, blanks around objects) the fast
    path reads: read as columns, the same matches."""
    records = [
        dict(row, id=f"m{n}", participants=_json_people(row["participants"].split(";"), form))
        for n, row in enumerate(rows)
    ]
    if style == "null ended_at":
        records[0]["ended_at"] = None
    if style == "escapes":
        records[-1]["id"] = "m\u00e9\U0001f600"
    compact = style not in ("spaces", "escapes")
    lines = [json.dumps(r, separators=(",", ":") if compact else None) for r in records]
    text = _laid_out(lines, layout)
    text = "\ufeff" + text if style == "bom" else text
    text = text.rstrip("\n") if style == "no final newline" else text
    fast, slow = _by_both_paths(
        "matches.jsonl",
        text,
        block,
        lambda path: (
            isinstance(loading.read_matches(path), MatchTable),
            _outcome(lambda: load_matches(path)),
        ),
    )
    assert fast == (True, slow[1])  # type: ignore[index]  # read as columns, the same matches


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"id": st.sampled_from(["ann", " bob ", "", "cyd", "ann", "u\u3000", None, 7])},
            optional={
                "name": st.sampled_from(["Ann", "", " B ", None, 3]),
                "email": st.sampled_from(["", "a@x.example", " ", None]),
                "nick": st.just("x"),
            },
        ),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from([1, 60, 8 << 20]),
    _JSON_LAYOUTS,
)
def test_json_lines_users_load_the_same_by_columns_and_row_by_row(
    rows: list[dict[str, object]], block: int, layout: dict[str, Any]
) -> None:
    text = _laid_out([json.dumps(row) for row in rows], layout)
    fast, slow = _by_both_paths("users.jsonl", text, block, _users)
    assert slow == fast


def test_good_json_lines_users_are_read_as_columns(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "users.jsonl"
    path.write_bytes(b'{"id": "ann", "name": "Ann", "email": null}\r\n \r\n\t{"id": " bob "} \r\n')
    directory = loading.read_users(path)
    assert isinstance(directory, loading.UserDirectory)
    assert [User("ann", "Ann", None), User("bob", "", None)] == list(directory.values())
