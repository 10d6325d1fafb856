"""Exports of active users: CSV and JSON Lines, streamed row by row."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, TextIO

import attrs

from ._model import User
from ._periods import BillingPeriod
from ._report import UsageReport
from .exceptions import InvalidRecordError

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
"""The header of every CSV export and the keys of every JSON Lines record, in order."""

# The OWASP CSV-injection rule: a spreadsheet treats a cell starting with one of
# these as a formula (or splits it), so such a cell gets a leading apostrophe.
# The apostrophe itself is escaped too, so that the change can be undone.
_UNSAFE = frozenset("=+-@\t\r'")


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
    """

    period: BillingPeriod
    user_id: str
    name: str
    email: str | None
    programs: tuple[str, ...]
    match_ids: tuple[str, ...]
    active_from: datetime
    active_until: datetime

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values, keyed by [`EXPORT_COLUMNS`][matchusage.EXPORT_COLUMNS].

        Instants are ISO 8601 strings with their offset, in the period's time
        zone; ``programs`` and ``match_ids`` are lists.
        """
        return {
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


def export_rows(
    report: UsageReport,
    *,
    period: BillingPeriod | None = None,
    users: Mapping[str, User] | None = None,
) -> Iterator[ExportRow]:
    """The rows of an export, lazily: by period (oldest first), then by user id.

    Each row is built from the user's [`Explanation`][matchusage.Explanation]
    in the report, so every exported user can be explained with the same data.

    Args:
        report: A [`UsageReport`][matchusage.UsageReport].
        period: Export only this one of the report's closed periods (default: all).
        users: A user directory (id to [`User`][matchusage.User]) for the
            ``name`` and ``email`` columns; unknown ids get empty values.

    Raises:
        matchusage.exceptions.InvalidPeriodError: *period* is not one of the
            report's closed periods.
    """
    if not isinstance(report, UsageReport):
        raise InvalidRecordError("export", "report", report, "a UsageReport")
    usages = report.periods if period is None else (report.usage(period),)
    directory: Mapping[str, User] = users if users is not None else {}
    for usage in usages:
        for user_id in sorted(usage.users):
            found = report.explain(user_id, usage.period)
            person = directory.get(user_id)
            active_from, active_until = found.active_from, found.active_until
            # An active user's explanation is non-empty, so both bounds exist.
            assert active_from is not None
            assert active_until is not None
            yield ExportRow(
                period=usage.period,
                user_id=user_id,
                name=person.name if person is not None else "",
                email=person.email if person is not None else None,
                programs=found.program_ids,
                match_ids=found.match_ids,
                active_from=active_from,
                active_until=active_until,
            )


def export_csv(
    report: UsageReport,
    file: TextIO,
    *,
    period: BillingPeriod | None = None,
    users: Mapping[str, User] | None = None,
) -> int:
    """Write the active users of *report* to *file* as CSV, one row at a time.

    The header is [`EXPORT_COLUMNS`][matchusage.EXPORT_COLUMNS]; ``programs``
    and ``match_ids`` hold ids joined by ``;``. Every cell is passed through
    [`neutralise`][matchusage.neutralise], so names such as ``=cmd()`` are
    inert in a spreadsheet. Open *file* with ``newline=""``.

    Args:
        report: A [`UsageReport`][matchusage.UsageReport].
        file: A text file object, written row by row.
        period: Export only this one of the report's closed periods (default: all).
        users: A user directory for the ``name`` and ``email`` columns.

    Returns:
        The number of rows written, not counting the header.
    """
    writer = csv.writer(file, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    bounds: tuple[BillingPeriod, list[str]] | None = None
    for row in export_rows(report, period=period, users=users):
        if bounds is None or bounds[0] is not row.period:
            bounds = (row.period, [row.period.start.isoformat(), row.period.end.isoformat()])
        cells = [
            *bounds[1],
            row.user_id,
            row.name,
            row.email or "",
            ";".join(row.programs),
            ";".join(row.match_ids),
            row.active_from.isoformat(),
            row.active_until.isoformat(),
        ]
        writer.writerow([neutralise(cell) for cell in cells])
        count += 1
    return count


def export_jsonl(
    report: UsageReport,
    file: TextIO,
    *,
    period: BillingPeriod | None = None,
    users: Mapping[str, User] | None = None,
) -> int:
    """Write the active users of *report* to *file* as JSON Lines, one object a line.

    Each object has the keys of [`EXPORT_COLUMNS`][matchusage.EXPORT_COLUMNS]
    (see [`ExportRow.as_dict`][matchusage.ExportRow.as_dict]); values are
    written as they are (JSON is not opened by spreadsheets, so nothing is
    neutralised).

    Args:
        report: A [`UsageReport`][matchusage.UsageReport].
        file: A text file object, written line by line.
        period: Export only this one of the report's closed periods (default: all).
        users: A user directory for the ``name`` and ``email`` keys.

    Returns:
        The number of lines written.
    """
    count = 0
    for row in export_rows(report, period=period, users=users):
        file.write(json.dumps(row.as_dict(), ensure_ascii=False) + "\n")
        count += 1
    return count
