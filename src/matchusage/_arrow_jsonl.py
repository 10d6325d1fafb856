"""The fast path of the matches and users loaders for JSON Lines: files straight into columns.

Imported only when a JSON Lines matches or users file is loaded and pyarrow
is installed. Blocks of whole lines are parsed by Arrow's JSON reader into
columns, which go through the CSV fast path's checks. Like it, this path
only ever *accepts*: a line it cannot vouch for (a line that is not blank
or exactly one object, an unexpected key or type, a participants form
it does not read) makes it return ``None``, and the row-by-row loader reads
the file and names every bad line.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import IO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from ._arrow_loading import (
    _EMPTY,
    Ints,
    Parser,
    Participants,
    _Declined,
    _filled,
    _items,
    _match_table,
    _numpy,
    _participants,
    _role_names,
    _strip,
    _unique_ids,
    unless_declined,
)
from ._match_table import MatchTable

_TEXT = ("id", "program_id", "started_at", "ended_at")
_REQUIRED = ("id", "program_id", "participants", "started_at")
# Lines are parsed a block at a time, so that one block's text is in memory at once.
_BLOCK_BYTES = 8 << 20
_NEWLINE, _RETURN, _TAB, _SPACE = ord("\n"), ord("\r"), ord("\t"), ord(" ")
_OPEN, _CLOSE = ord("{"), ord("}")
_BOM = b"\xef\xbb\xbf"


def read_jsonl_matches(
    stream: IO[bytes], known: Collection[str] | None, parse_instant: Parser
) -> MatchTable | None:
    """The matches of a JSON Lines file, or ``None`` when the row-by-row loader must decide.

    Arguments as for `read_csv_matches`.
    """
    return unless_declined(lambda: _match_table(_match_blocks(stream), known, parse_instant))


def read_jsonl_records(stream: IO[bytes], optional: tuple[str, ...]) -> list[pa.StringArray] | None:
    """Ids and text columns of a JSON Lines file of users, or ``None`` for the row-by-row loader.

    Columns: ``id`` (stripped, not empty, unique) and the *optional* ones
    (``""`` where a line has null or lacks the key), as for `read_csv_records`.
    """
    return unless_declined(_records, stream, optional)


def _match_blocks(
    stream: IO[bytes],
) -> Iterator[tuple[dict[str, pa.StringArray], Participants]]:
    """The text fields and the participant rows of each block of lines."""
    for columns in _lines(stream, _TEXT, "participants"):
        if "participants" not in columns or any(columns[name].null_count for name in _REQUIRED):
            raise _Declined  # a missing or null field
        people = _people(columns.pop("participants"), len(columns["id"]))
        columns["ended_at"] = pc.fill_null(columns["ended_at"], _EMPTY)  # null: ongoing
        yield columns, people


def _records(stream: IO[bytes], optional: tuple[str, ...]) -> list[pa.StringArray]:
    chunks: dict[str, list[pa.StringArray]] = {name: [] for name in ("id", *optional)}
    for columns in _lines(stream, ("id", *optional)):
        if columns["id"].null_count:
            raise _Declined
        for name in optional:
            chunks[name].append(pc.fill_null(columns[name], _EMPTY))  # null: no text
        chunks["id"].append(columns["id"])
    return _unique_ids(chunks.pop("id"), [chunks[name] for name in optional])


def _lines(
    stream: IO[bytes], text: tuple[str, ...], other: str | None = None
) -> Iterator[dict[str, pa.Array]]:
    """The columns of each block of lines: the *text* keys (strings, null where a line
    lacks them) and the key *other* as the file has it. Declined: any other key."""
    # A number where text is expected is declined, not turned into text.
    options = pa_json.ParseOptions(
        explicit_schema=pa.schema([(name, pa.string()) for name in text]),
        unexpected_field_behavior="infer" if other else "error",
        newlines_in_values=False,
    )
    rows = 0
    first = True
    while block := stream.read(_BLOCK_BYTES):
        if not block.endswith(b"\n"):
            block += stream.readline()  # the rest of the block's last line
            block += b"" if block.endswith(b"\n") else b"\n"  # the file's last line
        if first:
            block, first = block.removeprefix(_BOM), False
        try:
            block.decode()
            table = pa_json.read_json(pa.py_buffer(block), parse_options=options)
        except (pa.ArrowInvalid, UnicodeDecodeError):
            raise _Declined from None
        if not set(table.column_names) <= {*text, other} or not _one_object_per_line(block, table):
            raise _Declined
        if not table.num_rows:
            continue  # only blank lines
        rows += table.num_rows
        yield {name: table.column(name).combine_chunks() for name in table.column_names}
    if not rows:
        raise _Declined


def _one_object_per_line(block: bytes, table: pa.Table) -> bool:
    """Whether each line of *block* is blank or one object, as the row-by-row loader reads lines.

    Blank lines (only spaces, tabs and a ``\\r`` before the ``\\n``) are skipped by
    both. Every other line starts with ``{`` and ends with ``}``, give or take those
    blanks, so an object cannot span lines (after a ``}`` within an object comes ``,``,
    ``]`` or ``}``), and there are as many objects as such lines. No other control
    bytes: a ``\\r`` not before a ``\\n`` also ends a line for the row-by-row loader
    (Arrow declines raw control bytes within strings).
    """
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == _NEWLINE)
    returns = np.flatnonzero(data == _RETURN)
    tabs = np.count_nonzero(data == _TAB)
    if np.count_nonzero(data < 0x20) != len(ends) + len(returns) + tabs:
        return False
    if len(returns) and not (data[returns + 1] == _NEWLINE).all():
        return False  # the block ends with "\n", so a "\r" is never its last byte
    starts = np.append(0, ends[:-1] + 1)
    if (data[starts] == _OPEN).all() and (data[ends - 1] == _CLOSE).all():
        return bool(len(ends) == table.num_rows)  # the usual case: no blanks around the objects
    first, last = _solid_bytes(data, starts, ends)
    filled = last >= first
    return bool(
        np.count_nonzero(filled) == table.num_rows
        and (data[first[filled]] == _OPEN).all()
        and (data[last[filled]] == _CLOSE).all()
    )


def _solid_bytes(data: npt.NDArray[np.uint8], starts: Ints, ends: Ints) -> tuple[Ints, Ints]:
    """The first and last byte of each line (*starts* to the ``\\n`` at *ends*) that is
    not a blank (space, tab, line end); last < first for a blank line.

    A line's solid bytes lie between the run of blanks that holds its ``\\n``
    and the run, if any, at its start.
    """
    blank = np.flatnonzero(data <= _SPACE)  # the only control bytes left: \n, \r, \t
    run_starts = np.empty(len(blank), dtype=bool)
    run_starts[0], run_starts[1:] = True, np.diff(blank) != 1
    run = np.cumsum(run_starts) - 1
    first_of_run, last_of_run = blank[run_starts], blank[np.append(run_starts[1:], True)]
    last = first_of_run[run[np.searchsorted(blank, ends)]] - 1
    at_start = np.searchsorted(blank, starts)  # in range: each line's "\n" is a blank
    first = np.where(blank[at_start] == starts, last_of_run[run[at_start]] + 1, starts)
    return first, last


def _people(column: pa.Array, matches: int) -> Participants:
    """Participant rows of a participants column: ``"u1:mentor;u2"`` or a list per match."""
    if pa.types.is_string(column.type):
        return _participants(column, matches)
    if not pa.types.is_list(column.type) or column.null_count:
        raise _Declined
    parent = _numpy(pc.list_parent_indices(column)).astype(np.int64)
    values = pc.list_flatten(column)
    if values.null_count:
        raise _Declined
    if pa.types.is_string(values.type):  # user ids, each maybe with ":role"
        return _items(_filled(_strip(values)), parent, matches)  # blank: no user
    if not pa.types.is_struct(values.type):
        raise _Declined
    fields = {values.type.field(index).name for index in range(values.type.num_fields)}
    if "user_id" not in fields or not fields <= {"user_id", "role"}:
        raise _Declined
    users = pc.struct_field(values, "user_id")
    if not pa.types.is_string(users.type) or users.null_count:
        raise _Declined
    if not np.bincount(parent, minlength=matches).all():
        raise _Declined  # a match without participants
    roles = None
    if "role" in fields:
        role = pc.struct_field(values, "role")
        if pa.types.is_string(role.type):
            roles = _role_names(pc.fill_null(role, _EMPTY))
        elif not pa.types.is_null(role.type):
            raise _Declined
    return parent, _filled(_strip(users)), roles
