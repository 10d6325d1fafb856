"""Exports of active users: CSV and JSON Lines, streamed row by row."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal, Protocol, TextIO, TypeVar

import attrs

from ._model import User
from ._periods import BillingPeriod
from ._report import UsageReport
from ._time import FOREVER, from_micros, to_micros
from .billing._snapshots import MatchEvidence, UsageSnapshot
from .exceptions import InvalidRecordError

if TYPE_CHECKING:
    from ._columnar_report import ReportColumns

T = TypeVar("T")

EXPORT_COLUMNS = (
    "period_start",
    "period_end",
    "user_id",
    "name",
    "email",
    "programs",
    "match_ids",
    "active_from",
    "active_until",
)
"""The header of every CSV export and the keys of every JSON Lines record, in order.

An export of a report made with a snapshot store adds one last column,
[`BASIS_COLUMN`][matchusage.BASIS_COLUMN].
"""

BASIS_COLUMN = "basis"
"""The column saying where a row's user comes from, in exports of a report made with snapshots.

``billed``: the period's snapshot, i.e. the users the invoice counted (their
matches as they were when the period was closed); ``live``: today's data.
"""

Basis = Literal["billed", "live"]

# The OWASP CSV-injection rule: a spreadsheet treats a cell starting with one of
# these as a formula (or splits it), so such a cell gets a leading apostrophe.
# The apostrophe itself is escaped too, so that the change can be undone.
UNSAFE_FIRST = "=+-@\t\r'"
_UNSAFE = frozenset(UNSAFE_FIRST)
# The CSV dialect of exports (Python's csv module, csv.QUOTE_MINIMAL).
CSV_DELIMITER, CSV_QUOTE, CSV_LINE_END = ",", '"', "\r\n"


def neutralise(cell: str) -> str:
    """Make *cell* inert in a spreadsheet (the OWASP CSV-injection rule).

    A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return gets a leading apostrophe, so spreadsheets show it as text instead
    of evaluating it. A cell that already starts with an apostrophe gets one
    more, so the change can be undone without ambiguity: strip one leading
    apostrophe from any cell that starts with one.
    """
    return "'" + cell if cell[:1] in _UNSAFE else cell


@attrs.frozen
class ExportRow:
    """One active user in one billing period: a row of an export.

    Attributes:
        period: The billing period.
        user_id: The active user.
        name: The user's name from the directory (``""`` if unknown).
        email: The user's email from the directory (``None`` if unknown).
        programs: The distinct programs of the user's matches in the period, sorted.
        match_ids: The user's matches overlapping the period, by start then id.
        active_from: The first instant the user is active in the period.
        active_until: When the user's last overlapping match stops counting
            (exclusive): its end, or the period's end if it runs on.
        basis: ``"billed"`` or ``"live"`` (see [`BASIS_COLUMN`][matchusage.BASIS_COLUMN])
            for a report made with a snapshot store, ``None`` otherwise.
    """

    period: BillingPeriod
    user_id: str
    name: str
    email: str | None
    programs: tuple[str, ...]
    match_ids: tuple[str, ...]
    active_from: datetime
    active_until: datetime
    basis: Basis | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values, keyed by [`EXPORT_COLUMNS`][matchusage.EXPORT_COLUMNS].

        Instants are ISO 8601 strings with their offset, in the period's time
        zone; ``programs`` and ``match_ids`` are lists. A row with a ``basis``
        has that key too.
        """
        record = {
            "period_start": self.period.start.isoformat(),
            "period_end": self.period.end.isoformat(),
            "user_id": self.user_id,
            "name": self.name,
            "email": self.email,
            "programs": list(self.programs),
            "match_ids": list(self.match_ids),
            "active_from": self.active_from.isoformat(),
            "active_until": self.active_until.isoformat(),
        }
        if self.basis is not None:
            record[BASIS_COLUMN] = self.basis
        return record


def export_rows(
    report: UsageReport,
    *,
    period: BillingPeriod | None = None,
    users: Mapping[str, User] | None = None,
    live: bool = False,
) -> Iterator[ExportRow]:
    """The rows of an export, lazily: by period (oldest first), then by user id.

    Each row is what the user's [`Explanation`][matchusage.Explanation] in
    the report says, so every exported user can be explained with the same
    data. For a period the report knows was billed (a report made with a
    snapshot store), the rows are the users that were billed, from the
    period's snapshot, unless *live* is true.

    Args:
        report: A [`UsageReport`][matchusage.UsageReport].
        period: Export only this one of the report's closed periods, or its
            open period (the users active so far); default: every closed period.
        users: A user directory (id to [`User`][matchusage.User]) for the
            ``name`` and ``email`` columns; unknown ids get empty values.
        live: Export today's recount of billed periods instead of the billed users.

    Raises:
        matchusage.exceptions.InvalidPeriodError: *period* is neither one of
            the report's closed periods nor its open period.
    """
    programs: _Cache[tuple[str, ...], tuple[str, ...]] = _Cache(_sorted_ids)
    for each, evidence, basis in _periods(report, period, live):
        for user_id, matches, active_from, active_until in _clipped(each, evidence, _same):
            name, email = _person(users, user_id)
            yield ExportRow(
                period=each,
                user_id=user_id,
                name=name,
                email=email,
                programs=programs[tuple(map(_program_id, matches))],
                match_ids=tuple(map(_match_id, matches)),
                active_from=active_from,
                active_until=active_until,
                basis=basis,
            )


def export_csv(
    report: UsageReport,
    file: TextIO,
    *,
    period: BillingPeriod | None = None,
    users: Mapping[str, User] | None = None,
    live: bool = False,
) -> int:
    """Write the active users of *report* to *file* as CSV, one row at a time.

    The header is [`EXPORT_COLUMNS`][matchusage.EXPORT_COLUMNS] (and
    [`BASIS_COLUMN`][matchusage.BASIS_COLUMN] for a report made with a
    snapshot store); ``programs`` and ``match_ids`` hold ids joined by
    ``;``. Every cell is passed through [`neutralise`][matchusage.neutralise],
    so names such as ``=cmd()`` are inert in a spreadsheet. Open *file* with
    ``newline=""``.

    Args:
        report: A [`UsageReport`][matchusage.UsageReport].
        file: A text file object, written row by row.
        period: Export only this one of the report's closed periods, or its
            open period (the users active so far); default: every closed period.
        users: A user directory for the ``name`` and ``email`` columns.
        live: Export today's recount of billed periods instead of the billed
            users (see [`export_rows`][matchusage.export_rows]).

    Returns:
        The number of rows written, not counting the header.
    """

    writer = csv.writer(
        file, delimiter=CSV_DELIMITER, quotechar=CSV_QUOTE, lineterminator=CSV_LINE_END
    )
    writer.writerow(_columns(report))
    programs: _Cache[tuple[str, ...], str] = _Cache(
        lambda key: neutralise(";".join(_sorted_ids(key)))
    )
    in_columns = _ColumnsWriter(file, users)
    count = 0
    for each, evidence, basis in _periods(report, period, live):
        # Instants as ISO 8601 text never start with a character neutralise changes.
        bounds = [each.start.isoformat(), each.end.isoformat()]
        tail = () if basis is None else (basis,)
        if isinstance(evidence, UserRuns):
            written = in_columns.write(each, evidence, tail)
            if written is not None:
                count += written
                continue
        rows = _clipped(each, evidence, datetime.isoformat)
        for user_id, matches, active_from, active_until in rows:
            # Looked up per row, not cached: memory stays flat however many users are written.
            name, email = _person(users, user_id)
            writer.writerow(
                [
                    *bounds,
                    neutralise(user_id),
                    neutralise(name),
                    neutralise(email or ""),
                    programs[tuple(map(_program_id, matches))],
                    neutralise(";".join(map(_match_id, matches))),
                    active_from,
                    active_until,
                    *tail,
                ]
            )
            count += 1
    return count


class _ColumnsWriter:
    """The Arrow writer of an export's columns (`_export_arrow`), made when first needed."""

    def __init__(self, file: TextIO, users: Mapping[str, User] | None) -> None:
        self._file, self._users = file, users
        self._writer: Any = None

    def write(self, period: BillingPeriod, runs: UserRuns, tail: tuple[str, ...]) -> int | None:
        """Write the rows of *runs*; ``None`` (nothing written) if they are left to the csv module.

        They are left to it without pyarrow, and when their text is not UTF-8.
        """
        if self._writer is None:
            try:
                from ._export_arrow import RunsWriter
            except ImportError:
                self._writer = False
            else:
                self._writer = RunsWriter(self._file, self._users)
        if self._writer is False:
            return None
        written: int | None = self._writer.write(period, runs, tail)
        return written


def export_jsonl(
    report: UsageReport,
    file: TextIO,
    *,
    period: BillingPeriod | None = None,
    users: Mapping[str, User] | None = None,
    live: bool = False,
) -> int:
    """Write the active users of *report* to *file* as JSON Lines, one object a line.

    Each object has the keys of [`EXPORT_COLUMNS`][matchusage.EXPORT_COLUMNS]
    (and [`BASIS_COLUMN`][matchusage.BASIS_COLUMN] for a report made with a
    snapshot store; see [`ExportRow.as_dict`][matchusage.ExportRow.as_dict]);
    values are written as they are (JSON is not opened by spreadsheets, so
    nothing is neutralised).

    Args:
        report: A [`UsageReport`][matchusage.UsageReport].
        file: A text file object, written line by line.
        period: Export only this one of the report's closed periods, or its
            open period (the users active so far); default: every closed period.
        users: A user directory for the ``name`` and ``email`` keys.
        live: Export today's recount of billed periods instead of the billed
            users (see [`export_rows`][matchusage.export_rows]).

    Returns:
        The number of lines written.
    """
    programs: _Cache[tuple[str, ...], tuple[str, ...]] = _Cache(_sorted_ids)
    count = 0
    for each, evidence, basis in _periods(report, period, live):
        start, end = each.start.isoformat(), each.end.isoformat()
        rows = _clipped(each, evidence, datetime.isoformat)
        for user_id, matches, active_from, active_until in rows:
            name, email = _person(users, user_id)
            record = {
                "period_start": start,
                "period_end": end,
                "user_id": user_id,
                "name": name,
                "email": email,
                "programs": list(programs[tuple(map(_program_id, matches))]),
                "match_ids": list(map(_match_id, matches)),
                "active_from": active_from,
                "active_until": active_until,
            }
            if basis is not None:
                record[BASIS_COLUMN] = basis
            file.write(_JSON.encode(record).translate(_LINE_BREAKS) + "\n")
            count += 1
    return count


# One encoder for every line: json.dumps with options builds a new one per call.
_JSON = json.JSONEncoder(ensure_ascii=False)
# JSON leaves these unescaped, but str.splitlines() and some readers break lines at them:
# escaping keeps every record on one line for any reader.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})
_match_id = attrgetter("id")
_end_us = attrgetter("_end_us")
_program_id = attrgetter("program_id")
K = TypeVar("K", bound=Hashable)


class _Cache(dict[K, T]):
    """A value per key, made the first time the key is looked up.

    Emptied when it reaches *limit* keys, so an export's memory stays flat
    even when nearly every row brings a new key.
    """

    def __init__(self, make: Callable[[K], T], limit: int = 4096) -> None:
        super().__init__()
        self._make = make
        self._limit = limit

    def __missing__(self, key: K) -> T:
        if len(self) >= self._limit:
            self.clear()
        made = self[key] = self._make(key)
        return made


def _same(value: datetime) -> datetime:
    return value


_Person = tuple[str, str | None]


def _person(users: Mapping[str, User] | None, user_id: str) -> _Person:
    """The name and email of a user from the directory ("" and None if unknown)."""
    person = users.get(user_id) if users is not None else None
    return (person.name, person.email) if person is not None else ("", None)


def _sorted_ids(ids: tuple[str, ...]) -> tuple[str, ...]:
    """The distinct *ids*, sorted."""
    return ids if len(ids) == 1 else tuple(sorted(set(ids)))


class _Span(Protocol):
    """What an export row reads from a match: a live `Match` or one a snapshot recorded."""

    @property
    def id(self) -> str: ...
    @property
    def program_id(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def _start_us(self) -> int: ...
    @property
    def _end_us(self) -> int: ...


class _BilledMatch:
    """A match as a snapshot recorded it (ongoing then if it had no end)."""

    __slots__ = ("_end_us", "_start_us", "ended_at", "id", "program_id", "started_at")

    def __init__(self, evidence: MatchEvidence) -> None:
        self.id = evidence.match_id
        self.program_id = evidence.program_id
        self.started_at = evidence.started_at
        self.ended_at = evidence.ended_at
        self._start_us = to_micros(evidence.started_at)
        self._end_us = FOREVER if evidence.ended_at is None else to_micros(evidence.ended_at)


_Evidence = Iterable[tuple[str, Sequence[_Span]]]


def _billed(snapshot: UsageSnapshot) -> _Evidence:
    """The billed users of a snapshot by id, each with their matches by start then id."""
    for user_id, items in snapshot.evidence.items():
        yield user_id, [_BilledMatch(item) for item in items]


def _columns(report: UsageReport) -> tuple[str, ...]:
    if not isinstance(report, UsageReport):
        raise InvalidRecordError("export", "report", report, "a UsageReport")
    return (*EXPORT_COLUMNS, BASIS_COLUMN) if report.billing_checked else EXPORT_COLUMNS


def _periods(
    report: UsageReport, period: BillingPeriod | None, live: bool
) -> Iterator[tuple[BillingPeriod, _Evidence, Basis | None]]:
    """The periods to export, one at a time, each with its users' evidence and its basis.

    The evidence of a user is their matches overlapping the period, by start
    then id: what their [`Explanation`][matchusage.Explanation] lists, or, for
    a billed period, what its snapshot recorded. One period is sorted at a
    time, when its rows are written.
    """
    _columns(report)
    basis: Basis | None = "live" if report.billing_checked else None
    if period is not None and period == report.current.period:
        # The open period: its users so far, from the part of it up to the report's instant.
        yield period, next(report._evidence([report._so_far])), basis
        return
    usages = report.periods if period is None else (report.usage(period),)
    recounted = [u.period for u in usages if live or u.billed is None]
    evidence = report._evidence(recounted)
    for usage in usages:
        if live or usage.billed is None:
            yield usage.period, next(evidence), basis
        else:
            yield usage.period, _billed(usage.billed), "billed"


def _instants(period: BillingPeriod, write: Callable[[datetime], T]) -> Callable[[int], T]:
    """*write* applied to an instant (UTC microseconds) clipped to *period*, in its time zone.

    Each distinct instant is converted and written once.
    """
    low, high, zone = period._start_us, period._end_us, period.start.tzinfo
    written = {low: write(period.start), high: write(period.end)}

    def instant(micros: int) -> T:
        key = low if micros < low else high if micros > high else micros
        found = written.get(key)
        if found is None:
            found = written[key] = write(from_micros(key).astimezone(zone))
        return found

    return instant


def _clipped(
    period: BillingPeriod, evidence: _Evidence, write: Callable[[datetime], T]
) -> Iterator[tuple[str, Sequence[_Span], T, T]]:
    """Each user of *period* with their evidence and when they are active in the period.

    The user is active from the start of their earliest match and until the
    end of their latest-ending one (an ongoing match: the period's end), both
    clipped to the period and in its time zone, passed through *write*.
    """
    instant = _instants(period, write)
    for user_id, matches in evidence:
        first = matches[0]
        last = first if len(matches) == 1 else max(matches, key=_end_us)
        yield user_id, matches, instant(first._start_us), instant(last._end_us)


@attrs.define
class UserRuns:
    """One period's active users from columns: each user's matches as a run of rows.

    Rows go by user id, then match start, then match id. Iterating gives
    each user with their matches, as ``evidence_by_period`` does; a CSV
    export reads the columns instead, without an object per match.

    Attributes:
        source: The report's match columns (the labels of users, matches and
            programs; each match's start).
        user_codes: Each run's user, a code into ``source.user_labels`` (numpy).
        bounds: Where each run starts in the rows, then the number of rows.
        match_rows: Each row's match, a row of *source*.
        latest_ends: Each run's latest match end (UTC microseconds; `FOREVER` if ongoing).
    """

    source: ReportColumns
    user_codes: Any
    bounds: Any
    match_rows: Any
    latest_ends: Any

    def __iter__(self) -> Iterator[tuple[str, list[_Span]]]:
        data, rows = self.source, self.match_rows
        ids, programs = data.ids.labels(), data.program_labels
        columns = (
            [ids[row] for row in rows.tolist()],
            [programs[code] for code in data.program.codes[rows].tolist()],
            data.start[rows].tolist(),
            data.end[rows].tolist(),
        )
        labels, edges = data.user_labels, self.bounds.tolist()
        for user, first, stop in zip(self.user_codes.tolist(), edges, edges[1:], strict=False):
            yield labels[user], list(map(_RowMatch, *(column[first:stop] for column in columns)))


class _RowMatch:
    """A match as an export reads it from columns (no participants, no roles)."""

    __slots__ = ("_end_us", "_start_us", "id", "program_id")

    def __init__(self, match_id: str, program_id: str, start_us: int, end_us: int) -> None:
        self.id = match_id
        self.program_id = program_id
        self._start_us = start_us
        self._end_us = end_us

    @property
    def started_at(self) -> datetime:
        return from_micros(self._start_us)

    @property
    def ended_at(self) -> datetime | None:
        return None if self._end_us == FOREVER else from_micros(self._end_us)
