"""The fast path of the matches loader: a CSV file straight into columns, with pyarrow.

Imported only when a matches file is loaded and pyarrow is installed. The
file is parsed by Arrow's multi-threaded CSV reader and every rule of the
row-by-row loader is checked on whole columns. The fast path only ever
*accepts*: a file it cannot vouch for (any bad or unusual line, a quoted
cell, a value it does not parse exactly as the row-by-row loader would)
makes it return ``None``, and the row-by-row loader reads the file and
names every bad line. So both paths accept the same files and build the
same matches.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, tzinfo
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from dateutil import tz

from ._match_table import MatchTable
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
_DAY_US = 86_400_000_000

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


def read_csv_matches(
    data: bytes, known: Collection[str] | None, parse_instant: Parser
) -> MatchTable | None:
    """The matches of a CSV file, or ``None`` when the row-by-row loader must decide.

    Args:
        data: The file's bytes.
        known: The program ids a match may have (``None``: any).
        parse_instant: The row-by-row loader's instant parser (``None`` for a
            bad cell), for the cells not in the common form
            ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)``.
    """
    text = _read_text(data, _COLUMNS, ("ended_at",))
    if text is None:
        return None
    return _check(text, known, parse_instant)


def read_csv_records(data: bytes, optional: tuple[str, ...]) -> list[pa.StringArray] | None:
    """Ids and text columns of a CSV file of users, or ``None`` for the row-by-row loader.

    Columns: ``id`` (stripped, not empty, unique) and the *optional* ones, as
    written (``None`` for a column the file does not have).
    """
    table = _read_text(data, ("id",), optional)
    if table is None:
        return None
    ids = _strip(table["id"])
    if _any(pc.equal(ids, _EMPTY)) or not _distinct(ids):
        return None
    return [ids, *(table.get(name) for name in optional)]


def _read_text(
    data: bytes, required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, pa.StringArray] | None:
    """The cells of a CSV file by (stripped) column name, or None if the file is not plain."""
    # Quotes, NUL bytes and carriage returns are parsed slightly differently by
    # Python's csv module; such files are left to it.
    if b'"' in data or b"\x00" in data or b"\r" in data:
        return None
    header = data.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    try:
        raw_names = header.decode().split(",")
    except UnicodeDecodeError:
        return None
    names = [name.strip() for name in raw_names]
    if len(set(names)) != len(names) or not set(required) <= set(names) <= {*required, *optional}:
        return None
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(data),
            parse_options=pa_csv.ParseOptions(newlines_in_values=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(raw_names, pa.string()),
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if table.num_rows == 0 or table.column_names != raw_names:
        return None
    text = {
        name: column.combine_chunks() for name, column in zip(names, table.columns, strict=True)
    }
    if any(_longest(column) > _CELL_LIMIT for column in text.values()):
        return None
    return text


def _check(
    text: dict[str, pa.StringArray],
    known: Collection[str] | None,
    parse_instant: Parser,
) -> MatchTable | None:
    ids = _strip(text["id"])
    program = _strip(text["program_id"])
    if _any(pc.equal(ids, _EMPTY)) or _any(pc.equal(program, _EMPTY)):
        return None
    if not _distinct(ids):
        return None
    program_codes = program.dictionary_encode()
    program_ids: list[str] = program_codes.dictionary.to_pylist()
    if known is not None and not set(program_ids) <= set(known):
        return None

    start = _instants(text["started_at"], parse_instant, ongoing_if_empty=False)
    ended = text.get("ended_at")
    end = None if ended is None else _instants(ended, parse_instant, ongoing_if_empty=True)
    if start is None or (ended is not None and end is None):
        return None
    start_us, start_offset = start
    if end is None:
        end_us = np.full(len(start_us), FOREVER, dtype=np.int64)
        end_offset = np.zeros(len(start_us), dtype=np.int64)
    else:
        end_us, end_offset = end
    if (end_us < start_us).any():
        return None

    people = _participants(text["participants"], len(ids))
    if people is None:
        return None
    participant_match, user, roles = people
    offsets, zone_codes = np.unique(np.concatenate([start_offset, end_offset]), return_inverse=True)
    zones = [_zone(offset) for offset in offsets.tolist()]
    user_codes = user.dictionary_encode()
    return MatchTable(
        ids=ids,
        program=_numpy(program_codes.indices).astype(np.int64),
        program_ids=program_ids,
        start_us=start_us,
        end_us=end_us,
        start_zone=zone_codes[: len(start_us)],
        end_zone=zone_codes[len(start_us) :],
        zones=zones,
        participant_match=participant_match,
        participant_user=_numpy(user_codes.indices).astype(np.int64),
        user_ids=user_codes.dictionary.to_pylist(),
        participant_role=roles,
    )


def _zone(offset: int) -> tzinfo:
    """The tzinfo dateutil's isoparse gives an instant with this offset (cached instances)."""
    return tz.UTC if offset == 0 else tz.tzoffset(None, offset)


def _longest(column: pa.StringArray) -> int:
    longest = pc.max(pc.binary_length(column)).as_py()
    return 0 if longest is None else int(longest)


def _distinct(column: pa.StringArray) -> bool:
    """Whether no value repeats (``unique`` hashes several times faster than ``count_distinct``)."""
    return len(pc.unique(column)) == len(column)


def _any(mask: Any) -> bool:
    return bool(pc.any(mask).as_py())


def _strip(column: pa.StringArray) -> pa.StringArray:
    return pc.utf8_trim(column, characters=_WHITESPACE)


def _participants(column: pa.StringArray, matches: int) -> tuple[Ints, pa.StringArray, Any] | None:
    """Participant rows (match row, user id, role code), or None if a cell is not plain.

    A cell is ``u1:mentor;u2:mentee;u3``: items split on ``;`` (blank items
    skipped), each stripped, its user before the first ``:`` (stripped, not
    empty), its role after it (stripped; none if empty).
    """
    items = pc.split_pattern(column, ";")
    parent = _numpy(pc.list_parent_indices(items)).astype(np.int64)
    item = _strip(pc.list_flatten(items))
    keep = pc.not_equal(item, _EMPTY)
    item = pc.filter(item, keep)
    parent = parent[_mask(keep)]
    if not np.bincount(parent, minlength=matches).all():
        return None  # a match without participants
    colon = _numpy(pc.find_substring(item, ":"))
    with_role = np.flatnonzero(colon >= 0)
    user = item
    roles = None
    if with_role.size:
        parts = pc.split_pattern(item, ":", max_splits=1)
        user = pc.list_element(parts, _ZERO)
        raw = pc.list_element(parts.take(_arrow(with_role)), _ONE)  # after the first ":"
        codes = np.full(len(item), MatchTable.NO_ROLE, dtype=np.int8)
        given = _mask(pc.not_equal(raw, _EMPTY))
        names = _strip(raw)
        found = np.full(len(raw), -1, dtype=np.int8)
        for code, name in enumerate(_ROLE_NAMES):
            found[_mask(pc.equal(names, name))] = code
        if (given & (found < 0)).any():
            return None  # an unknown role
        codes[with_role[given]] = found[given]
        roles = codes
    user = _strip(user)
    if _any(pc.equal(user, _EMPTY)):
        return None
    # Each user once per match: rows are grouped by match, so a repeat is within the
    # size of the largest match.
    user_codes = _numpy(user.dictionary_encode().indices)
    largest = int(np.bincount(parent).max())
    if largest > 16:  # a large group: one sort instead of a pass per distance
        pairs = np.sort(parent * (int(user_codes.max()) + 1) + user_codes)
        return None if (pairs[1:] == pairs[:-1]).any() else (parent, user, roles)
    for distance in range(1, largest):
        same = (parent[distance:] == parent[:-distance]) & (
            user_codes[distance:] == user_codes[:-distance]
        )
        if same.any():
            return None
    return parent, user, roles


def _instants(
    column: pa.StringArray,
    parse_instant: Parser,
    *,
    ongoing_if_empty: bool,
) -> tuple[Ints, Ints] | None:
    """UTC microseconds and offsets (seconds) of a column of instants, or None if one is bad.

    An empty cell is ``FOREVER`` when *ongoing_if_empty*, else bad.
    """
    size = len(column)
    micros = np.zeros(size, dtype=np.int64)
    offsets = np.zeros(size, dtype=np.int64)
    common = np.zeros(size, dtype=bool)
    starts, lengths, data = _cells(column)
    last = data[np.maximum(starts + lengths - 1, 0)] if size else starts
    zulu = last == ord("Z")
    for length in np.unique(lengths).tolist():
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
            if ongoing_if_empty and cell == "":
                micros[row] = FOREVER
                continue
            instant = parse_instant(cell)
            if instant is None:  # a bad cell: the row-by-row loader names it
                return None
            delta = instant.utcoffset()
            seconds = 0 if delta is None else int(delta.total_seconds())
            if instant.tzinfo is not _zone(seconds):
                return None  # not a zone the fast path rebuilds the same
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
    gathered: npt.NDArray[np.uint8] = data[starts[:, None] + np.arange(length)]
    return gathered


# The layout YYYY-MM-DDTHH:MM:SS: where each field's digits are, and the separators.
_DIGITS = {
    "year": (0, 4),
    "month": (5, 7),
    "day": (8, 10),
    "hour": (11, 13),
    "minute": (14, 16),
    "second": (17, 19),
}
_SEPARATORS = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":"}


def _parse_fixed(
    text: npt.NDArray[np.uint8], fraction: int, zulu: bool
) -> tuple[npt.NDArray[np.bool_], Ints, Ints] | None:
    """Instants of one layout, ``YYYY-MM-DDTHH:MM:SS[.f…](Z|±HH:MM)``, one row of bytes each.

    Returns which rows are such instants (with fields a datetime accepts),
    their UTC microseconds and their offsets in seconds.
    """
    is_digit = (text >= ord("0")) & (text <= ord("9"))

    def number(first: int, stop: int) -> Ints:
        value = np.zeros(len(text), dtype=np.int64)
        for column in range(first, stop):
            value = value * 10 + (text[:, column].astype(np.int64) - ord("0"))
        return value

    ok = is_digit[:, :4].all(axis=1) & is_digit[:, 5:7].all(axis=1) & is_digit[:, 8:10].all(axis=1)
    ok &= is_digit[:, 11:13].all(axis=1) & is_digit[:, 14:16].all(axis=1)
    ok &= is_digit[:, 17:19].all(axis=1)
    for position, separator in _SEPARATORS.items():
        ok &= text[:, position] == ord(separator)
    fields = {name: number(*span) for name, span in _DIGITS.items()}
    micros_part = np.zeros(len(text), dtype=np.int64)
    if fraction:
        ok &= text[:, 19] == ord(".")
        ok &= is_digit[:, 20 : 19 + fraction].all(axis=1)
        micros_part = number(20, 19 + fraction) * 10 ** (6 - (fraction - 1))
    offset = np.zeros(len(text), dtype=np.int64)
    if not zulu:
        tz = 19 + fraction
        sign = text[:, tz]
        ok &= (sign == ord("+")) | (sign == ord("-"))
        ok &= is_digit[:, tz + 1 : tz + 3].all(axis=1) & is_digit[:, tz + 4 : tz + 6].all(axis=1)
        ok &= text[:, tz + 3] == ord(":")
        hours, minutes = number(tz + 1, tz + 3), number(tz + 4, tz + 6)
        ok &= (hours <= 23) & (minutes <= 59)
        offset = np.where(sign == ord("-"), -1, 1) * (hours * 3600 + minutes * 60)
    year, month, day = fields["year"], fields["month"], fields["day"]
    ok &= _plausible(year, month, day, fields["hour"], fields["minute"], fields["second"])
    if not ok.any():
        return None
    days = _days_from_civil(year, np.where(ok, month, 1), np.where(ok, day, 1))
    seconds = (fields["hour"] * 60 + fields["minute"]) * 60 + fields["second"]
    local = days * _DAY_US + seconds * 1_000_000 + micros_part
    return ok, np.where(ok, local - offset * 1_000_000, 0), np.where(ok, offset, 0)


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
