"""CSV exports written from columns with Arrow: every cell and every line made on whole arrays.

Imported only when an export's evidence comes in columns (`UserRuns`) and
pyarrow is installed. The text is byte for byte what `export_csv` writes
row by row with Python's csv module: the same cells (neutralised, then
quoted as ``csv.QUOTE_MINIMAL`` quotes them), the same instants (what
``datetime.isoformat`` writes in the period's time zone). Rows are made and
written a slice of users at a time, so memory stays flat however many rows
an export has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from ._columnar_report import ReportColumns
from ._export import CSV_DELIMITER, CSV_LINE_END, CSV_QUOTE, UNSAFE_FIRST, UserRuns
from ._loading import UserDirectory
from ._model import User
from ._periods import BillingPeriod
from ._time import from_micros

Ints = npt.NDArray[np.int64]

# Users per slice: a slice's text is a few megabytes.
_SLICE = 32_768
_HOUR_US = 3_600_000_000
_DAY_US = 86_400_000_000
_STRING = pa.large_string()


def _escaped(chars: str) -> str:
    """A regular expression class of *chars* (RE2 syntax, each char by its code point)."""
    return "[" + "".join(f"\\x{{{ord(char):x}}}" for char in sorted(chars)) + "]"


# A cell starting with one of these is neutralised (see `neutralise`).
_FORMULA = "^" + _escaped(UNSAFE_FIRST)
# csv.QUOTE_MINIMAL quotes a cell holding the delimiter, the quote or a line-end character.
_NEEDS_QUOTES = _escaped(CSV_DELIMITER + CSV_QUOTE + "\r\n" + CSV_LINE_END)


def text(value: str) -> pa.Scalar:
    """An Arrow string scalar made without ``pa.scalar`` (which imports pandas, if installed)."""
    return strings([value])[0]


def strings(values: Sequence[str]) -> pa.Array:
    """Arrow strings from Python ones, without ``pa.array`` (which imports pandas, if installed).

    Raises:
        UnicodeEncodeError: A string holds a lone surrogate (not UTF-8).
    """
    encoded = [value.encode() for value in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=offsets[1:])
    return _from_bytes(offsets, b"".join(encoded))


def _from_bytes(offsets: Ints, data: Any) -> pa.Array:
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(_STRING, len(offsets) - 1, buffers)


def _indices(values: npt.NDArray[Any]) -> pa.Array:
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _numpy(column: pa.Array) -> Ints:
    """An int64 Arrow array without nulls as numpy (``to_numpy`` would import pandas)."""
    return np.frombuffer(column.buffers()[1], np.int64, len(column), column.offset * 8)


_NOTHING, _APOSTROPHE, _QUOTE = text(""), text("'"), text(CSV_QUOTE)
_SEPARATOR, _LINE_END = text(CSV_DELIMITER), text(CSV_LINE_END)
_LIST_SEPARATOR = text(";")


def cells(column: pa.Array) -> pa.Array:
    """Each string of *column* as `export_csv` writes it in a cell.

    Neutralised (see `neutralise`), then quoted as ``csv.QUOTE_MINIMAL``
    does: a cell holding the delimiter, a quote or a line break is wrapped
    in quotes, its quotes doubled.
    """
    column = pc.cast(column, _STRING)
    unsafe = pc.match_substring_regex(column, _FORMULA)
    if pc.any(unsafe).as_py():
        column = pc.if_else(
            unsafe, pc.binary_join_element_wise(_APOSTROPHE, column, _NOTHING), column
        )
    special = pc.match_substring_regex(column, _NEEDS_QUOTES)
    if pc.any(special).as_py():
        doubled = pc.replace_substring(column, CSV_QUOTE, CSV_QUOTE * 2)
        quoted = pc.binary_join_element_wise(_QUOTE, doubled, _QUOTE, _NOTHING)
        column = pc.if_else(special, quoted, column)
    return column


def _joined(values: pa.Array, bounds: Ints) -> pa.Array:
    """The *values* of each run (``bounds[i]:bounds[i + 1]``) joined by ``;``."""
    offsets = _indices(bounds - bounds[0])
    return pc.binary_join(pa.LargeListArray.from_arrays(offsets, values), _LIST_SEPARATOR)


class RunsWriter:
    """Writes the CSV rows of `UserRuns` to one file, for one export.

    Text made once for the whole export (the cells of every user id, name
    and email, the match ids as Arrow) is kept between periods.
    """

    def __init__(self, file: TextIO, users: Mapping[str, User] | None) -> None:
        self._file = file
        self._users = users
        self._source: ReportColumns | None = None
        self._user_cells: pa.Array = None
        self._match_ids: pa.Array = None
        self._program_order: Ints = np.zeros(0, dtype=np.int64)
        self._programs: pa.Array = None
        self._people: tuple[Ints, pa.Array, pa.Array] | None = None  # see `_people_cells`

    def write(self, period: BillingPeriod, runs: UserRuns, tail: tuple[str, ...]) -> int | None:
        """Write the rows of *runs*; ``None`` (nothing written) if they cannot be made as text.

        Ids or names with lone surrogates are not UTF-8: the caller writes
        those rows with the csv module.
        """
        try:
            self._prepare(runs.source)
        except UnicodeEncodeError:
            return None
        instants = _InstantWriter(period)
        fixed = [text(period.start.isoformat()), text(period.end.isoformat())]
        last = [text(value) for value in tail]
        size = len(runs.user_codes)
        for first in range(0, size, _SLICE):
            stop = min(first + _SLICE, size)
            row_bounds = runs.bounds[first : stop + 1]
            rows = runs.match_rows[row_bounds[0] : row_bounds[-1]]
            users = runs.user_codes[first:stop]
            columns = [
                *fixed,
                self._user_cells.take(_indices(users)),
                *self._names_and_emails(users),
                self._program_cells(rows, row_bounds),
                cells(_joined(self._match_ids.take(_indices(rows)), row_bounds)),
                instants.texts(runs.source.start[rows[row_bounds[:-1] - row_bounds[0]]]),
                instants.texts(runs.latest_ends[first:stop]),
                *last,
            ]
            line = pc.binary_join_element_wise(*columns, _SEPARATOR)
            self._write(pc.binary_join_element_wise(line, _LINE_END, _NOTHING))
        return size

    def _write(self, lines: pa.Array) -> None:
        offsets = np.frombuffer(lines.buffers()[1], np.int64, len(lines) + 1, lines.offset * 8)
        data = lines.buffers()[2]
        start, stop = int(offsets[0]), int(offsets[-1])
        self._file.write(memoryview(data)[start:stop].tobytes().decode())

    def _prepare(self, source: ReportColumns) -> None:
        """The text of *source*'s users, match ids and programs, made on its first period."""
        if source is self._source:
            return
        labels = strings(source.user_labels)
        self._user_cells = cells(labels)
        ids = source.ids.arrow()
        self._match_ids = pc.cast(strings(source.ids.labels()) if ids is None else ids, _STRING)
        programs = source.program_labels
        order = sorted(range(len(programs)), key=programs.__getitem__)
        self._program_order = np.empty(len(programs), dtype=np.int64)
        self._program_order[order] = np.arange(len(programs))
        self._programs = strings([programs[code] for code in order])
        self._people = _people_cells(self._users, source.user_labels, labels)
        self._source = source

    def _names_and_emails(self, users: Ints) -> list[pa.Array | pa.Scalar]:
        """The name and email cells of users (by code); empty for users not in the directory."""
        if self._people is None:
            return [_NOTHING, _NOTHING]
        row_of, names, emails = self._people
        rows = _indices(row_of[users])
        return [names.take(rows), emails.take(rows)]

    def _program_cells(self, rows: Ints, bounds: Ints) -> pa.Array:
        """Each run's distinct programs, sorted, joined by ``;``."""
        assert self._source is not None
        count = len(self._program_order)
        rank = self._program_order[self._source.program.codes[rows]]
        run = np.repeat(np.arange(len(bounds) - 1, dtype=np.int64), np.diff(bounds))
        pairs = np.unique(run * count + rank)  # by run, then program id
        per_run = np.bincount(pairs // count, minlength=len(bounds) - 1)
        edges = np.zeros(len(bounds), dtype=np.int64)
        np.cumsum(per_run, out=edges[1:])
        return cells(_joined(self._programs.take(_indices(pairs % count)), edges))


def _people_cells(
    users: Mapping[str, User] | None, labels: Sequence[str], arrow_labels: pa.Array
) -> tuple[Ints, pa.Array, pa.Array] | None:
    """For each user code, a row of name and email cells (``None`` without a directory).

    A `UserDirectory` is read on its columns; a user not in it gets the row
    after its last one, with empty cells. Another mapping is looked up once
    per user.
    """
    if users is None:
        return None
    if isinstance(users, UserDirectory):
        ids, *columns = users.columns()
        found = pc.index_in(arrow_labels, value_set=pc.cast(ids, _STRING))
        row_of = _numpy(pc.fill_null(pc.cast(found, pa.int64()), len(ids)))
        empty = strings([""])
        names, emails = (
            strings([""] * (len(ids) + 1))
            if column is None
            else pa.concat_arrays([cells(column), empty])
            for column in columns
        )
        return row_of, names, emails
    people = list(map(users.get, labels))
    names = strings(["" if person is None else person.name for person in people])
    emails = strings(["" if person is None else person.email or "" for person in people])
    return np.arange(len(labels), dtype=np.int64), cells(names), cells(emails)


class _InstantWriter:
    """ISO 8601 text of instants clipped to a period, in its time zone: `_instants`, on arrays.

    What ``datetime.isoformat`` writes: ``YYYY-MM-DDTHH:MM:SS``, then
    ``.ffffff`` unless the microseconds are 0, then the UTC offset. The
    period's own bounds are written as the period writes them.
    """

    def __init__(self, period: BillingPeriod) -> None:
        self._low, self._high = period._start_us, period._end_us
        self._zone: tzinfo = period.start.tzinfo  # type: ignore[assignment]  # periods are aware
        self._bounds = [period.start.isoformat().encode(), period.end.isoformat().encode()]
        self._hours: dict[int, int] = {}  # an hour's offset code, -1 if it changes
        self._codes: dict[timedelta, int] = {}
        self._deltas: list[int] = []  # each offset code's offset in microseconds
        self._suffixes: list[bytes] = []  # and how isoformat writes it

    def texts(self, micros: Ints) -> pa.Array:
        """The text of each instant (UTC microseconds), clipped to the period."""
        clipped = np.clip(micros, self._low, self._high)
        codes = self._offset_codes(clipped)
        local = clipped + np.array(self._deltas, np.int64)[codes]
        days, in_day = np.divmod(local, _DAY_US)
        seconds, fraction = np.divmod(in_day, 1_000_000)
        year, month, day = _civil_from_days(days)
        longest = max(len(s) for s in [*self._suffixes, b""])
        width = max(26 + longest, *map(len, self._bounds))
        text = np.empty((len(clipped), width), dtype=np.uint8)
        for column, value, digits in (
            (0, year, 4),
            (5, month, 2),
            (8, day, 2),
            (11, seconds // 3600, 2),
            (14, seconds // 60 % 60, 2),
            (17, seconds % 60, 2),
            (20, fraction, 6),
        ):
            for place in range(digits):
                text[:, column + digits - 1 - place] = 48 + value // 10**place % 10
        for column, char in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, ".")):
            text[:, column] = ord(char)
        lengths = np.where(fraction == 0, 19, 26)
        for code, suffix in enumerate(self._suffixes):
            for length in (19, 26):
                where = (codes == code) & (lengths == length)
                text[where, length : length + len(suffix)] = np.frombuffer(suffix, np.uint8)
        lengths += np.array([len(s) for s in self._suffixes], np.int64)[codes]
        for bound, instant in zip(self._bounds, (self._low, self._high), strict=True):
            where = clipped == instant
            text[where, : len(bound)] = np.frombuffer(bound, np.uint8)
            lengths[where] = len(bound)
        offsets = np.zeros(len(clipped) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return _from_bytes(offsets, text[np.arange(width) < lengths[:, None]])

    def _offset_codes(self, clipped: Ints) -> Ints:
        """Each instant's UTC offset in the zone, as a code into the offsets seen so far.

        Worked out once per hour of UTC time, from the offsets at its first
        and last microsecond: time zones do not change their offset twice
        within an hour. An hour where it changes is worked out instant by instant.
        """
        hours, inverse = np.unique(clipped // _HOUR_US, return_inverse=True)
        per_hour = np.array([self._hour(hour) for hour in hours.tolist()], np.int64)
        codes = per_hour[inverse]
        for row in np.flatnonzero(codes < 0).tolist():
            codes[row] = self._code(self._offset_at(int(clipped[row])))
        return codes

    def _hour(self, hour: int) -> int:
        """The offset code of an hour (-1 if the offset changes within it)."""
        found = self._hours.get(hour)
        if found is None:
            first = max(hour * _HOUR_US, self._low)
            last = min((hour + 1) * _HOUR_US - 1, self._high)
            offset = self._offset_at(first)
            same = offset == self._offset_at(last)
            found = self._hours[hour] = self._code(offset) if same else -1
        return found

    def _offset_at(self, micros: int) -> timedelta:
        offset = from_micros(micros).astimezone(self._zone).utcoffset()
        assert offset is not None  # an aware zone
        return offset

    def _code(self, offset: timedelta) -> int:
        code = self._codes.get(offset)
        if code is None:
            code = self._codes[offset] = len(self._suffixes)
            self._deltas.append(offset // timedelta(microseconds=1))
            # What isoformat writes for this offset: "+01:00", "+05:45:30", ...
            written = datetime(2000, 1, 1, tzinfo=timezone(offset)).isoformat()
            self._suffixes.append(written[19:].encode())
        return code


def _civil_from_days(days: Ints) -> tuple[Ints, Ints, Ints]:
    """Year, month and day of days since 1970-01-01 (H. Hinnant's algorithm)."""
    z = days + 719468
    era = np.floor_divide(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day
