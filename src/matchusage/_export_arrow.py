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

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from ._arrow_loading import _arrow, _numpy
from ._columnar_report import ReportColumns
from ._export import CSV_DELIMITER, CSV_LINE_END, CSV_QUOTE, UNSAFE_FIRST, UserRuns
from ._loading import UserDirectory
from ._model import User
from ._periods import BillingPeriod
from ._time import from_micros

Ints = npt.NDArray[np.int64]

# Users per slice: a slice's text is a few megabytes.
_SLICE = 32_768
# At most this many (user, program) flags are made at once to find each user's programs.
_FLAGS = 2**25
_HOUR_US = 3_600_000_000
_DAY_US = 86_400_000_000
_STRING = pa.large_string()
# The two digits of 0 to 99, as bytes.
_TENS = np.array([ord(str(n // 10)) for n in range(100)], dtype=np.uint8)
_UNITS = np.array([ord(str(n % 10)) for n in range(100)], dtype=np.uint8)


def _byte_set(chars: str) -> npt.NDArray[np.bool_]:
    """A look-up table of bytes: true for *chars* (ASCII, so never part of another character)."""
    table = np.zeros(256, dtype=bool)
    table[list(chars.encode("ascii"))] = True
    return table


# A cell starting with one of these is neutralised (see `neutralise`).
_FORMULA = _byte_set(UNSAFE_FIRST)
# csv.QUOTE_MINIMAL quotes a cell holding the delimiter, the quote or a line-end character.
_NEEDS_QUOTES = _byte_set(CSV_DELIMITER + CSV_QUOTE + "\r\n" + CSV_LINE_END)


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
    offsets, data = _bytes(column)
    starts, stops = offsets[:-1], offsets[1:]
    unsafe = _FORMULA[data[np.minimum(starts, len(data) - 1)]] & (stops > starts)
    if unsafe.any():
        prefixed = pc.binary_join_element_wise(_APOSTROPHE, column, _NOTHING)
        column = pc.if_else(_arrow(unsafe), prefixed, column)
    needs_quotes = _NEEDS_QUOTES[data]
    if needs_quotes.any():  # which cells (the apostrophe changes no cell's quoting)
        seen = np.zeros(len(data) + 1, dtype=np.int64)
        np.cumsum(needs_quotes, out=seen[1:])
        special = seen[stops] > seen[starts]
        doubled = pc.replace_substring(column, CSV_QUOTE, CSV_QUOTE * 2)
        quoted = pc.binary_join_element_wise(_QUOTE, doubled, _QUOTE, _NOTHING)
        column = pc.if_else(_arrow(special), quoted, column)
    return column


def _bytes(column: pa.Array) -> tuple[Ints, npt.NDArray[np.uint8]]:
    """The offsets of a large-string array's strings into their bytes, and those bytes.

    Offsets count from the first string's start; there is always at least one byte.
    """
    _, offsets_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64, len(column) + 1, column.offset * 8)
    first, last = int(offsets[0]), int(offsets[-1])
    data = np.zeros(1, dtype=np.uint8)
    if last > first:
        data = np.frombuffer(data_buffer, np.uint8, last - first, first)
    return offsets - first, data


def _joined(values: pa.Array, bounds: Ints) -> pa.Array:
    """The *values* of each run (``bounds[i]:bounds[i + 1]``) joined by ``;``."""
    offsets = _arrow(bounds - bounds[0])
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
                self._user_cells.take(_arrow(users)),
                *self._names_and_emails(users),
                self._program_cells(rows, row_bounds),
                cells(_joined(self._match_ids.take(_arrow(rows)), row_bounds)),
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
        rows = _arrow(row_of[users])
        return [names.take(rows), emails.take(rows)]

    def _program_cells(self, rows: Ints, bounds: Ints) -> pa.Array:
        """Each run's distinct programs, sorted, joined by ``;``."""
        assert self._source is not None
        count = len(self._program_order)
        rank = self._program_order[self._source.program.codes[rows]]
        runs = len(bounds) - 1
        keys = np.repeat(np.arange(runs, dtype=np.int64) * count, np.diff(bounds)) + rank
        if runs * count <= _FLAGS:  # a flag per (run, program): no sort
            seen = np.zeros(runs * count, dtype=bool)
            seen[keys] = True
            pairs = np.flatnonzero(seen)  # by run, then program id
        else:
            pairs = np.unique(keys)
        per_run = np.bincount(pairs // count, minlength=len(bounds) - 1)
        edges = np.zeros(len(bounds), dtype=np.int64)
        np.cumsum(per_run, out=edges[1:])
        return cells(_joined(self._programs.take(_arrow(pairs % count)), edges))


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
        missing = _arrow(np.array([len(ids)]))[0]
        row_of = _numpy(pc.fill_null(pc.cast(found, pa.int64()), missing))
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
        # Each hour's offset code (-1: the offset changes within it; -2: not known yet).
        self._first_hour = self._low // _HOUR_US
        self._hours = np.full(self._high // _HOUR_US - self._first_hour + 1, -2, np.int64)
        self._codes: dict[timedelta, int] = {}
        self._deltas: list[int] = []  # each offset code's offset in microseconds
        self._suffixes: list[str] = []  # and how isoformat writes it
        # A bound written otherwise than its instant in the zone (a wall time in a gap, or
        # another zone) keeps its own text.
        self._odd_bounds = [
            (instant, text(bound.isoformat()))
            for bound, instant in ((period.start, self._low), (period.end, self._high))
            if bound.isoformat() != from_micros(instant).astimezone(self._zone).isoformat()
        ]

    def texts(self, micros: Ints) -> pa.Array:
        """The text of each instant (UTC microseconds), clipped to the period."""
        clipped = np.clip(micros, self._low, self._high)
        codes = self._offset_codes(clipped)
        local = clipped + np.array(self._deltas, np.int64)[codes]
        days, in_day = np.divmod(local, _DAY_US)
        seconds, fraction = np.divmod(in_day, 1_000_000)
        year, month, day = _civil_from_days(days)
        hour, minute, second = seconds // 3600, seconds // 60 % 60, seconds % 60
        whole = _digits(
            "####-##-##T##:##:##", [year // 100, year % 100, month, day, hour, minute, second]
        )
        part = _digits(".######", [fraction // 10_000, fraction // 100 % 100, fraction % 100])
        found = pc.binary_join_element_wise(
            whole,
            pc.if_else(_arrow(fraction != 0), part, _NOTHING),
            strings(self._suffixes).take(_arrow(codes)),
            _NOTHING,
        )
        for instant, bound in self._odd_bounds:
            found = pc.if_else(_arrow(clipped == instant), bound, found)
        return found

    def _offset_codes(self, clipped: Ints) -> Ints:
        """Each instant's UTC offset in the zone, as a code into the offsets seen so far.

        Worked out once per hour of UTC time, from the offsets at its first
        and last microsecond: time zones do not change their offset twice
        within an hour. An hour where it changes is worked out instant by instant.
        """
        hours = clipped // _HOUR_US - self._first_hour
        codes = self._hours[hours]
        unknown = codes == -2
        if unknown.any():
            for hour in np.unique(hours[unknown]).tolist():
                self._hours[hour] = self._hour(hour + self._first_hour)
            codes = self._hours[hours]
        for row in np.flatnonzero(codes < 0).tolist():
            codes[row] = self._code(self._offset_at(int(clipped[row])))
        return codes

    def _hour(self, hour: int) -> int:
        """The offset code of an hour of UTC time (-1 if the offset changes within it)."""
        first = max(hour * _HOUR_US, self._low)
        last = min((hour + 1) * _HOUR_US - 1, self._high)
        offset = self._offset_at(first)
        return self._code(offset) if offset == self._offset_at(last) else -1

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
            self._suffixes.append(written[19:])
        return code


def _digits(form: str, values: list[Ints]) -> pa.Array:
    """Strings shaped like *form*: each ``##`` is two digits, the next of *values* (0-99).

    Other characters are kept: ``_digits("##:##", [hours, minutes])``.
    """
    cells = np.tile(np.frombuffer(form.encode(), np.uint8), (len(values[0]), 1))
    pairs = [at for run in re.finditer("#+", form) for at in range(*run.span(), 2)]
    for column, value in zip(pairs, values, strict=True):
        cells[:, column] = _TENS.take(value)
        cells[:, column + 1] = _UNITS.take(value)
    offsets = np.arange(len(cells) + 1, dtype=np.int64) * len(form)
    return _from_bytes(offsets, cells)


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
