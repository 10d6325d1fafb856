"""The fast path of the matches loader: a CSV file straight into columns, with pyarrow.

Imported only when a matches file is loaded and pyarrow is installed. The
file is read in blocks of whole lines, each parsed by Arrow's multi-threaded
CSV reader; every rule of the row-by-row loader is checked on the block's
whole columns, and only integer columns (and the ids) are kept, so one
block's text is in memory at a time. The fast path only ever
*accepts*: a file it cannot vouch for (any bad or unusual line, a quoted
cell, a value it does not parse exactly as the row-by-row loader would)
makes it return ``None``, and the row-by-row loader reads the file and
names every bad line. So both paths accept the same files and build the
same matches.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import datetime, tzinfo
from typing import IO, Any, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from dateutil import tz
from numpy.lib.stride_tricks import sliding_window_view

from ._match_table import MatchTable, TextLabels
from ._time import FOREVER, to_micros

# What str.strip() removes: the row-by-row loader strips ids and instants with it.
_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# Instants of the common form YYYY-MM-DDTHH:MM:SS[.f](Z|±HH:MM) are parsed on columns;
# any other form goes to dateutil, one cell at a time.
# Python's csv module refuses larger cells; the row-by-row loader reports them.
_CELL_LIMIT = 131_072
_NUMPY_TYPES = {
    pa.int8(): np.int8,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint8(): np.uint8,
}
_COLUMNS = ("id", "program_id", "participants", "started_at")
# Lines are parsed a block at a time, so that one block's text is in memory at once.
_BLOCK_BYTES = 8 << 20
_DAY_SECONDS = 86_400
_DAY_US = _DAY_SECONDS * 1_000_000

T = TypeVar("T")
Ints = npt.NDArray[np.int64]
Parser = Callable[[str], "datetime | None"]


def _text(value: str) -> pa.Scalar:
    """An Arrow string scalar made without ``pa.scalar`` (which imports pandas, if installed)."""
    data = value.encode()
    offsets = np.array([0, len(data)], dtype=np.int32)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.string(), 1, buffers)[0]


_EMPTY = _text("")
_ROLE_NAMES = [_text(role.value) for role in MatchTable.ROLES]
_ZERO, _ONE = pa.Array.from_buffers(
    pa.int64(), 2, [None, pa.py_buffer(np.array([0, 1], dtype=np.int64))]
)
_FALSE = pa.Array.from_buffers(pa.bool_(), 1, [None, pa.py_buffer(bytes(1))])[0]


class _Declined(Exception):
    """The fast path cannot vouch for the file: the row-by-row loader reads it."""


def read_csv_matches(
    stream: IO[bytes], known: Collection[str] | None, parse_instant: Parser
) -> MatchTable | None:
    """The matches of a CSV file, or ``None`` when the row-by-row loader must decide.

    Args:
        stream: The file, opened for reading bytes.
        known: The program ids a match may have (``None``: any).
        parse_instant: The row-by-row loader's instant parser (``None`` for a
            bad cell), for the cells not in the common form
            ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)``.
    """
    return unless_declined(_matches, stream, known, parse_instant)


def read_csv_records(stream: IO[bytes], optional: tuple[str, ...]) -> list[pa.StringArray] | None:
    """Ids and text columns of a CSV file of users, or ``None`` for the row-by-row loader.

    Columns: ``id`` (stripped, not empty, unique) and the *optional* ones, as
    written (``None`` for a column the file does not have).
    """
    return unless_declined(_records, stream, optional)


def _records(stream: IO[bytes], optional: tuple[str, ...]) -> list[pa.StringArray]:
    chunks: dict[str, list[pa.StringArray]] = {name: [] for name in ("id", *optional)}
    for text in _blocks(stream, ("id",), optional):
        chunks["id"].append(text["id"])
        for name in optional:
            if name in text:
                chunks[name].append(text[name])
    return _unique_ids(chunks.pop("id"), [chunks[name] for name in optional])


def _unique_ids(
    ids: list[pa.StringArray], texts: list[list[pa.StringArray]]
) -> list[pa.StringArray]:
    """The blocks of ids (stripped, not empty, unique) and of texts (None if none), joined."""
    column = pa.chunked_array([_filled(_strip(block)) for block in ids]).combine_chunks()
    if not _distinct(column):
        raise _Declined
    return [column, *(pa.chunked_array(text).combine_chunks() if text else None for text in texts)]


def unless_declined(read: Callable[..., T], *args: Any) -> T | None:
    """``read(*args)``, or ``None`` if it declined; the parsed text's memory is given back."""
    try:
        return read(*args)
    except _Declined:
        return None
    finally:
        # Arrow's allocator keeps the memory it frees: give it back to the system.
        pa.default_memory_pool().release_unused()


def _blocks(
    stream: IO[bytes], required: tuple[str, ...], optional: tuple[str, ...]
) -> Iterator[dict[str, pa.StringArray]]:
    """The cells of a CSV file by (stripped) column name, one block of lines at a time.

    Reading block by block keeps only one block's text in memory. Raises
    `_Declined` if the file is not plain.
    """
    header = stream.readline().removeprefix(b"\xef\xbb\xbf")
    if not header.endswith(b"\n"):
        raise _Declined  # no lines after the header
    try:
        raw_names = _plain(header[:-1]).decode().split(",")
    except UnicodeDecodeError:
        raise _Declined from None
    names = [name.strip() for name in raw_names]
    if len(set(names)) != len(names) or not set(required) <= set(names) <= {*required, *optional}:
        raise _Declined
    options = {
        "read_options": pa_csv.ReadOptions(column_names=raw_names),
        "parse_options": pa_csv.ParseOptions(newlines_in_values=False),
        "convert_options": pa_csv.ConvertOptions(
            column_types=dict.fromkeys(raw_names, pa.string()), strings_can_be_null=False
        ),
    }
    rows = 0
    while block := stream.read(_BLOCK_BYTES):
        if not block.endswith(b"\n"):
            block += stream.readline()  # the rest of the block's last line
        try:
            table = pa_csv.read_csv(pa.py_buffer(_plain(block)), **options)
        except (pa.ArrowInvalid, UnicodeDecodeError):
            raise _Declined from None
        if table.num_rows:
            text = {
                name: column.combine_chunks()
                for name, column in zip(names, table.columns, strict=True)
            }
            if any(_longest(column) > _CELL_LIMIT for column in text.values()):
                raise _Declined
            rows += table.num_rows
            yield text
    if not rows:
        raise _Declined


def _plain(data: bytes) -> bytes:
    """*data*, unless it has bytes Python's csv module reads slightly differently than Arrow."""
    if b'"' in data or b"\x00" in data or b"\r" in data:
        raise _Declined
    return data


def _matches(stream: IO[bytes], known: Collection[str] | None, parse_instant: Parser) -> MatchTable:
    blocks = (
        (text, _participants(text["participants"], len(text["id"])))
        for text in _blocks(stream, _COLUMNS, ("ended_at",))
    )
    return _match_table(blocks, known, parse_instant)


Participants = tuple[Ints, pa.StringArray, Any]
"""Participant rows: match row, user id, role code (None if no row has a role)."""


def _match_table(
    blocks: Iterable[tuple[dict[str, pa.StringArray], Participants]],
    known: Collection[str] | None,
    parse_instant: Parser,
) -> MatchTable:
    """The matches of blocks of columns (``ended_at`` may be absent), every rule checked."""
    ids, programs, users, starts, ends, parents, roles = [], [], [], [], [], [], []
    rows = 0
    for text, (parent, user, role) in blocks:
        size = len(text["id"])
        ids.append(_filled(_strip(text["id"])))
        programs.append(_filled(_strip(text["program_id"])))
        start = _instants(text["started_at"], parse_instant, ongoing_if_empty=False)
        ended = text.get("ended_at")
        if ended is None:
            end = (np.full(size, FOREVER, dtype=np.int64), np.zeros(size, dtype=np.int64))
        else:
            end = _instants(ended, parse_instant, ongoing_if_empty=True)
        if (end[0] < start[0]).any():
            raise _Declined
        starts.append(start)
        ends.append(end)
        parents.append(parent + rows)
        users.append(user)
        roles.append(role)
        rows += size
    match_ids = pa.chunked_array(ids)
    if not _distinct(match_ids):
        raise _Declined
    program_codes = pa.chunked_array(programs).dictionary_encode()
    program_ids: list[str] = program_codes.chunk(0).dictionary.to_pylist()
    if known is not None and not set(program_ids) <= set(known):
        raise _Declined
    participant_match = np.concatenate(parents)
    user_codes = pa.chunked_array(users).dictionary_encode()
    participant_user = _codes(user_codes)
    if _repeats(participant_match, participant_user):
        raise _Declined
    offsets, zone_codes = _distinct_offsets([offset for _, offset in starts + ends])
    return MatchTable(
        ids=match_ids.combine_chunks(),
        program=_codes(program_codes),
        program_ids=program_ids,
        start_us=np.concatenate([micros for micros, _ in starts]),
        end_us=np.concatenate([micros for micros, _ in ends]),
        start_zone=zone_codes[:rows],
        end_zone=zone_codes[rows:],
        zones=[_zone(offset) for offset in offsets.tolist()],
        participant_match=participant_match,
        participant_user=participant_user,
        user_ids=TextLabels(user_codes.chunk(0).dictionary),
        participant_role=_role_codes(roles, [len(parent) for parent in parents]),
    )


def _distinct_offsets(blocks: list[Ints]) -> tuple[Ints, Ints]:
    """The distinct UTC offsets (seconds) of *blocks*, and each offset's code among them.

    Offsets are less than a day, so a table of every possible one replaces a sort.
    """
    seen = np.zeros(2 * _DAY_SECONDS + 1, dtype=np.bool_)
    for offsets in blocks:
        seen[offsets + _DAY_SECONDS] = True
    code_of = np.cumsum(seen, dtype=np.int32) - 1
    codes = np.concatenate([code_of[offsets + _DAY_SECONDS] for offsets in blocks])
    return np.flatnonzero(seen) - _DAY_SECONDS, codes


def _codes(encoded: pa.ChunkedArray) -> Ints:
    """The codes of a dictionary-encoded chunked array, as one int64 array."""
    return np.concatenate([_numpy(chunk.indices) for chunk in encoded.chunks]).astype(np.int64)


def _role_codes(blocks: list[Any], sizes: list[int]) -> Any:
    """The role codes of every participant row, or None if no block has a role."""
    if all(codes is None for codes in blocks):
        return None
    return np.concatenate(
        [
            np.full(size, MatchTable.NO_ROLE, dtype=np.int8) if codes is None else codes
            for codes, size in zip(blocks, sizes, strict=True)
        ]
    )


def _zone(offset: int) -> tzinfo:
    """The tzinfo dateutil's isoparse gives an instant with this offset (cached instances)."""
    return tz.UTC if offset == 0 else tz.tzoffset(None, offset)


def _longest(column: pa.StringArray) -> int:
    longest = pc.max(pc.binary_length(column)).as_py()
    return 0 if longest is None else int(longest)


def _distinct(column: pa.StringArray | pa.ChunkedArray) -> bool:
    """Whether no value repeats (``unique`` hashes several times faster than ``count_distinct``)."""
    return len(pc.unique(column)) == len(column)


def _any(mask: Any) -> bool:
    return bool(pc.any(mask).as_py())


def _strip(column: pa.StringArray) -> pa.StringArray:
    return pc.utf8_trim(column, characters=_WHITESPACE)


def _filled(column: pa.StringArray) -> pa.StringArray:
    """*column*, if no cell is empty."""
    if _any(pc.equal(column, _EMPTY)):
        raise _Declined
    return column


def _participants(column: pa.StringArray, matches: int) -> tuple[Ints, pa.StringArray, Any]:
    """Participant rows: match row, user id, role code (None if no row has a role).

    A cell is ``u1:mentor;u2:mentee;u3``: items split on ``;`` (blank items
    skipped), each stripped, its user before the first ``:`` (stripped, not
    empty), its role after it (stripped; none if empty).
    """
    found = _compact_participants(column)
    return _spaced_participants(column, matches) if found is None else found


def _compact_participants(column: pa.StringArray) -> tuple[Ints, pa.StringArray, Any] | None:
    """`_participants` of cells of printable ASCII without blanks, read from their bytes.

    ``None`` for any other column (a space, a blank item, a non-ASCII id...),
    which the general reading handles.
    """
    starts, lengths, data = _cells(column)
    if not len(starts) or not lengths.all():
        return None
    base = int(starts[0])
    text = data[base : int(starts[-1] + lengths[-1])]
    if ((text <= 0x20) | (text >= 0x7F)).any():
        return None
    cuts = np.flatnonzero(text == ord(";"))
    # Items begin at a cell's start or after a ";" and end at a ";" or the cell's end
    # (cells are adjacent). Marks that fall together mean a blank item.
    cell_start = starts - base
    cell_end = cell_start + lengths
    item_start = _marked(len(text), cell_start, cuts + 1)  # none at the very end
    item_end = _marked(len(text) + 1, cuts, cell_end)
    items = len(starts) + len(cuts)
    if len(item_start) != items or len(item_end) != items or (item_end <= item_start).any():
        return None  # a blank item
    # Each item's match: how many cells begin at or before it, less one.
    begins_cell = np.zeros(len(text), dtype=np.bool_)
    begins_cell[cell_start] = True
    parent = np.cumsum(begins_cell[item_start], dtype=np.int32).astype(np.int64) - 1
    # Each colon's item: how many items begin at or before it, less one.
    colons = np.flatnonzero(text == ord(":"))
    count = np.bincount(np.searchsorted(item_start, colons, side="right") - 1, minlength=items)
    if (count > 1).any():
        return None  # a role with a ":"
    has_role = count == 1
    user_end = item_end.copy()
    user_end[has_role] = colons
    if (user_end <= item_start).any():
        return None  # no user before the ":"
    roles = None
    if has_role.any():
        roles = _role_bytes(text, user_end + 1, item_end, has_role)
        if roles is None:
            return None
    return parent, _substrings(column, base + item_start, base + user_end), roles


def _marked(limit: int, *positions: Ints) -> Ints:
    """The distinct *positions* (at most *limit*) below *limit*, in order."""
    marks = np.zeros(limit + 1, dtype=np.bool_)
    for found in positions:
        marks[found] = True
    return np.flatnonzero(marks[:limit])


_ROLE_WORDS = np.array(
    [int.from_bytes(role.value.encode().ljust(8, b"\0"), "little") for role in MatchTable.ROLES],
    dtype=np.uint64,
)


def _role_bytes(
    text: npt.NDArray[np.uint8], first: Ints, stop: Ints, given: npt.NDArray[np.bool_]
) -> Any:
    """Role codes of the items whose role is ``text[first:stop]`` (where *given*), or None."""
    length = np.where(given, stop - first, 0)
    if length.max() > 8:
        return None  # not a role name
    named = np.flatnonzero(length)
    # Each role as one 64-bit word: its bytes, zero-padded (the text gets 8 zeros after it).
    padded = np.concatenate([text, np.zeros(8, dtype=np.uint8)])
    words = sliding_window_view(padded, 8)[first[named]].view("<u8").ravel()
    words &= _LOW_BYTES[length[named]]
    codes = np.full(len(first), MatchTable.NO_ROLE, dtype=np.int8)
    found = np.searchsorted(_ROLE_WORDS[_ROLE_ORDER], words)
    found = np.minimum(found, len(_ROLE_WORDS) - 1)
    known = _ROLE_WORDS[_ROLE_ORDER][found] == words
    if not known.all():
        return None  # an unknown role
    codes[named] = _ROLE_ORDER[found]
    return codes


_ROLE_ORDER = np.argsort(_ROLE_WORDS).astype(np.int8)
# The first n bytes of a little-endian 64-bit word, for n = 0 to 8.
_LOW_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)


def _substrings(column: pa.StringArray, first: Ints, stop: Ints) -> pa.StringArray:
    """The strings ``[first, stop)`` of the bytes of *column* (in order, not overlapping)."""
    # Cut the bytes into the substrings and what lies between them, then keep the former.
    bounds = np.empty(2 * len(first) + 1, dtype=np.int32)
    bounds[0:-1:2], bounds[1::2] = first, stop
    bounds[-1] = stop[-1]
    buffer = column.buffers()[2]
    pieces = pa.Array.from_buffers(
        pa.string(), 2 * len(first), [None, pa.py_buffer(bounds), buffer]
    )
    return pieces.take(_arrow(np.arange(0, 2 * len(first), 2)))


def _spaced_participants(column: pa.StringArray, matches: int) -> Participants:
    """`_participants` of any column, with Arrow's string functions."""
    items = pc.split_pattern(column, ";")
    parent = _numpy(pc.list_parent_indices(items)).astype(np.int64)
    item = _strip(pc.list_flatten(items))
    keep = pc.not_equal(item, _EMPTY)
    return _items(pc.filter(item, keep), parent[_mask(keep)], matches)


def _items(item: pa.StringArray, parent: Ints, matches: int) -> Participants:
    """Participants of stripped, non-blank items ``user[:role]`` of the match rows *parent*."""
    if not np.bincount(parent, minlength=matches).all():
        raise _Declined  # a match without participants
    colon = _numpy(pc.find_substring(item, ":"))
    with_role = np.flatnonzero(colon >= 0)
    user = item
    roles = None
    if with_role.size:
        parts = pc.split_pattern(item, ":", max_splits=1)
        user = pc.list_element(parts, _ZERO)
        roles = np.full(len(item), MatchTable.NO_ROLE, dtype=np.int8)
        # after the first ":"
        roles[with_role] = _role_names(pc.list_element(parts.take(_arrow(with_role)), _ONE))
    return parent, _filled(_strip(user)), roles


def _role_names(raw: pa.StringArray) -> npt.NDArray[np.int8]:
    """Role codes of role names as written: stripped, none if empty (declined if unknown)."""
    given = _mask(pc.not_equal(raw, _EMPTY))
    names = _strip(raw)
    found = np.full(len(raw), -1, dtype=np.int8)
    for code, name in enumerate(_ROLE_NAMES):
        found[_mask(pc.equal(names, name))] = code
    if (given & (found < 0)).any():
        raise _Declined  # an unknown role
    return np.where(given, found, MatchTable.NO_ROLE).astype(np.int8)


def _repeats(parent: Ints, user: Ints) -> bool:
    """Whether a user appears twice in a match (*parent*: rows grouped by match)."""
    if not len(parent):
        return False
    # A repeat is within the size of the largest match.
    largest = int(np.bincount(parent).max())
    if largest > 16:  # a large group: one sort instead of a pass per distance
        pairs = np.sort(parent * (int(user.max()) + 1) + user)
        return bool((pairs[1:] == pairs[:-1]).any())
    return any(
        ((parent[distance:] == parent[:-distance]) & (user[distance:] == user[:-distance])).any()
        for distance in range(1, largest)
    )


def _instants(
    column: pa.StringArray,
    parse_instant: Parser,
    *,
    ongoing_if_empty: bool,
) -> tuple[Ints, Ints]:
    """UTC microseconds and offsets (seconds) of a column of instants (declined if one is bad).

    An empty cell is ``FOREVER`` when *ongoing_if_empty*, else bad.
    """
    size = len(column)
    micros = np.zeros(size, dtype=np.int64)
    offsets = np.zeros(size, dtype=np.int64)
    common = np.zeros(size, dtype=bool)
    starts, lengths, data = _cells(column)
    if ongoing_if_empty:
        empty = lengths == 0
        micros[empty] = FOREVER
        common |= empty
    last = data[np.maximum(starts + lengths - 1, 0)] if size else starts
    zulu = last == ord("Z")
    for length in np.flatnonzero(np.bincount(lengths)).tolist():
        for is_zulu in (True, False):
            fraction = length - 19 - (1 if is_zulu else 6)
            if fraction not in (0, 2, 3, 4, 5, 6, 7):
                continue
            rows = np.flatnonzero((lengths == length) & (zulu == is_zulu))
            if rows.size:
                found = _parse_fixed(_block(data, starts[rows], length), fraction, is_zulu)
                if found is not None:
                    valid, row_micros, row_offsets = found
                    micros[rows] = row_micros
                    offsets[rows] = row_offsets
                    common[rows] = valid
    rest = np.flatnonzero(~common)
    if rest.size:
        cells = column.take(_arrow(rest)).to_pylist()
        for row, cell in zip(rest.tolist(), cells, strict=True):
            instant = parse_instant(cell)
            if instant is None:  # a bad cell: the row-by-row loader names it
                raise _Declined
            delta = instant.utcoffset()
            seconds = 0 if delta is None else int(delta.total_seconds())
            if instant.tzinfo is not _zone(seconds):
                raise _Declined  # not a zone the fast path rebuilds the same
            offsets[row] = seconds
            micros[row] = to_micros(instant)
    return micros, offsets


def _cells(column: pa.StringArray) -> tuple[Ints, Ints, npt.NDArray[np.uint8]]:
    """Where each cell of a string array starts in its bytes, its length, and the bytes."""
    _, offsets_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(
        offsets_buffer, dtype=np.int32, count=len(column) + 1, offset=column.offset * 4
    ).astype(np.int64)
    data = _NO_BYTES
    if data_buffer is not None and data_buffer.size:
        data = np.frombuffer(data_buffer, dtype=np.uint8)
    return offsets[:-1], np.diff(offsets), data


_NO_BYTES = np.zeros(1, dtype=np.uint8)


def _block(data: npt.NDArray[np.uint8], starts: Ints, length: int) -> npt.NDArray[np.uint8]:
    """The cells of *length* bytes at *starts*, one row each (a view when they are adjacent)."""
    first = int(starts[0])
    if int(starts[-1]) - first == (len(starts) - 1) * length and (
        len(starts) < 2 or (np.diff(starts) == length).all()
    ):
        return data[first : first + len(starts) * length].reshape(len(starts), length)
    gathered: npt.NDArray[np.uint8] = sliding_window_view(data, length)[starts]
    return gathered


# The layout YYYY-MM-DDTHH:MM:SS[.f…](Z|±HH:MM): the separators at their places, and the
# digits of each field (year, month, day, hour, minute, second).
_SEPARATORS = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":"}
_FIELDS = ((0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19))


def _parse_fixed(
    text: npt.NDArray[np.uint8], fraction: int, zulu: bool
) -> tuple[npt.NDArray[np.bool_], Ints, Ints] | None:
    """Instants of one layout, ``YYYY-MM-DDTHH:MM:SS[.f…](Z|±HH:MM)``, one row of bytes each.

    Returns which rows are such instants (with fields a datetime accepts),
    their UTC microseconds and their offsets in seconds.
    """
    width = text.shape[1]
    # What each byte must be: a digit, or the one separator of its place (the
    # offset's sign, either one, is checked apart).
    expected = np.zeros(width, dtype=np.uint8)  # 0: a digit
    for position, separator in _SEPARATORS.items():
        expected[position] = ord(separator)
    fields = list(_FIELDS)
    if fraction:
        expected[19] = ord(".")
        fields.append((20, 19 + fraction))
    sign_at = 19 + fraction
    if zulu:
        expected[sign_at] = ord("Z")
    else:
        expected[sign_at] = ord("+")
        expected[sign_at + 3] = ord(":")
        fields += [(sign_at + 1, sign_at + 3), (sign_at + 4, sign_at + 6)]
    digits = text - np.uint8(ord("0"))  # wraps around for bytes below "0"
    same = text == expected
    sign = text[:, sign_at]
    if not zulu:
        same[:, sign_at] |= sign == ord("-")
    ok = np.where(expected == 0, digits <= 9, same).all(axis=1)
    if not ok.any():
        return None
    values = [_number(digits, first, stop) for first, stop in fields]
    year, month, day, hour, minute, second = values[:6]
    micros_part = values[6] * 10 ** (6 - (fraction - 1)) if fraction else 0
    offset = np.zeros(len(text), dtype=np.int64)
    if not zulu:
        hours, minutes = values[-2], values[-1]
        ok &= (hours <= 23) & (minutes <= 59)
        offset = np.where(sign == ord("-"), -1, 1) * (hours * 3600 + minutes * 60)
    ok &= _plausible(year, month, day, hour, minute, second)
    if not ok.any():
        return None
    days = _days_from_civil(year, np.where(ok, month, 1), np.where(ok, day, 1))
    seconds = (hour * 60 + minute) * 60 + second
    local = days * _DAY_US + seconds * 1_000_000 + micros_part
    return ok, np.where(ok, local - offset * 1_000_000, 0), np.where(ok, offset, 0)


def _number(digits: npt.NDArray[np.uint8], first: int, stop: int) -> Ints:
    """The decimal number of each row's digits in columns *first* to *stop*."""
    value = digits[:, first].astype(np.int64)
    for column in range(first + 1, stop):
        value = value * 10 + digits[:, column]
    return value


def _numpy(column: pa.Array) -> npt.NDArray[Any]:
    """A fixed-width Arrow array without nulls as numpy, sharing its memory.

    (``Array.to_numpy`` would import pandas, a second of start-up time.)
    """
    dtype = np.dtype(_NUMPY_TYPES[column.type])
    return np.frombuffer(
        column.buffers()[1], dtype=dtype, count=len(column), offset=column.offset * dtype.itemsize
    )


def _arrow(values: npt.NDArray[Any]) -> pa.Array:
    """A numpy integer or boolean array as Arrow (``pa.array`` would import pandas)."""
    if values.dtype == np.bool_:
        return pc.cast(_arrow(values.astype(np.uint8)), pa.bool_())
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _mask(column: pa.Array) -> npt.NDArray[np.bool_]:
    """A boolean Arrow array as numpy booleans (nulls false)."""
    return _numpy(pc.cast(pc.fill_null(column, _FALSE), pa.uint8())).astype(bool)


def _plausible(
    year: Ints, month: Ints, day: Ints, hour: Ints, minute: Ints, second: Ints
) -> npt.NDArray[np.bool_]:
    """Fields a datetime accepts (years 2 to 9998 only, so no offset leaves the range)."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    lengths = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
    in_month = lengths[np.clip(month, 0, 12)] + (leap & (month == 2))
    plausible: npt.NDArray[np.bool_] = (
        (year >= 2)
        & (year <= 9998)
        & (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (day <= in_month)
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
    )
    return plausible


def _days_from_civil(year: Ints, month: Ints, day: Ints) -> Ints:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days: Ints = (era * 146097 + doe - 719468).astype(np.int64)
    return days
