"""Every error matchusage raises.

Each error is a subclass of [`MatchUsageError`][matchusage.exceptions.MatchUsageError]
*and* of the fitting built-in exception, so callers can catch either:

```python
try:
    matchusage.active_users(matches, period)
except ValueError:  # or matchusage.exceptions.MatchUsageError
    ...
```
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = [
    "BillingProviderError",
    "CorruptSnapshotError",
    "DocumentUnavailableError",
    "DuplicateMatchError",
    "DuplicateRecordError",
    "InvalidColumnError",
    "InvalidCycleError",
    "InvalidInputError",
    "InvalidLineError",
    "InvalidMatchError",
    "InvalidPeriodError",
    "InvalidRecordError",
    "MatchUsageError",
    "PaymentDeclinedError",
    "PeriodNotClosedError",
    "PeriodOutOfRangeError",
    "ProviderAuthenticationError",
    "ProviderRequestError",
    "ProviderUnavailableError",
    "RepositoryError",
    "SnapshotConflictError",
    "UnknownRecordError",
    "UsageConflictError",
]


class MatchUsageError(Exception):
    """Base class of every error raised by matchusage."""


class InvalidRecordError(MatchUsageError, ValueError):
    """A value failed validation.

    Raised at construction time, so an invalid object never exists.
    The message names the record, the field and the bad value; the same
    facts are available as attributes.

    Attributes:
        record: What the bad value belongs to, e.g. ``"Match 'm-1'"``.
        field: The name of the offending field.
        value: The offending value, as received.
    """

    def __init__(self, record: str, field: str, value: object, expected: str) -> None:
        self.record = record
        self.field = field
        self.value = value
        got = repr(value)
        if isinstance(value, datetime):
            # The repr does not read as a date; the ISO form is what people search for.
            got += f", i.e. {value.isoformat()}"
        super().__init__(f"{record}: {field!r} must be {expected} (got {got})")


class InvalidMatchError(InvalidRecordError):
    """A [`Match`][matchusage.Match] was given a bad value.

    Attributes:
        match_id: The id of the offending match (``None`` when the id itself is bad).
    """

    def __init__(self, match_id: object, field: str, value: object, expected: str) -> None:
        self.match_id = match_id
        super().__init__(f"Match {match_id!r}", field, value, expected)


class InvalidPeriodError(InvalidRecordError):
    """A [`BillingPeriod`][matchusage.BillingPeriod] is empty, reversed or naive."""


class InvalidCycleError(InvalidRecordError):
    """A [`BillingCycle`][matchusage.BillingCycle] or organization setting is invalid."""


class PeriodOutOfRangeError(InvalidCycleError):
    """A billing period would start or end outside the years 1 to 9999 a date can hold.

    Raised for a cycle whose periods are too long (``every=100000`` months), an
    instant in the last or first period a cycle can express, or a report
    reaching back too many periods.

    Attributes:
        index: The period's index in its cycle (0 starts at the anchor).
        year: The year that boundary would fall in, outside 1 to 9999.
    """

    def __init__(self, cycle: str, index: int, year: int) -> None:
        self.index = index
        self.year = year
        MatchUsageError.__init__(
            self,
            f"{cycle}: period {index} (period 0 starts at the anchor) would start in the "
            f"year {year}; dates only go from the year 1 to 9999",
        )
        # The structured fields every InvalidRecordError carries.
        self.record, self.field, self.value = cycle, "index", index


class DuplicateMatchError(MatchUsageError, ValueError):
    """The same match id was passed twice to one computation.

    Attributes:
        match_id: The repeated id.
    """

    def __init__(self, match_id: str) -> None:
        self.match_id = match_id
        super().__init__(
            f"Match {match_id!r} appears more than once in one computation; "
            "match ids must be unique"
        )


class DuplicateRecordError(MatchUsageError, ValueError):
    """A repository was asked to add an organization, program or user whose id it already holds.

    Adding never replaces: the stored record stays and nothing of the call is
    written, even when the new record is identical (as for a match id, see
    [`DuplicateMatchError`][matchusage.exceptions.DuplicateMatchError]).

    Attributes:
        kind: ``"organization"``, ``"program"`` or ``"user"``.
        record_id: The id already stored.
    """

    def __init__(self, kind: str, record_id: object) -> None:
        self.kind = kind
        self.record_id = record_id
        super().__init__(f"{kind} {record_id!r} already exists; adding never replaces a record")


class UnknownRecordError(MatchUsageError, LookupError):
    """A record referenced by id does not exist (an unknown organization, program, snapshot...).

    The message reads ``"{context}: unknown {kind} {record_id!r}; {hint}"``, the
    context and the hint only when given, e.g. ``Match 'm1': unknown program 'p9'``.
    When several ids of one kind are unknown, one error names them all:
    ``unknown organizations 'o7', 'o9' and 'o12'`` (the first 20, then how
    many more).

    Attributes:
        kind: What was looked up: ``"organization"``, ``"program"``, ``"customer"``,
            ``"invoice"``, ``"payment method"``, ``"snapshot"``...
        record_id: The (first) id that was not found.
        record_ids: Every id that was not found, in the order given.
        context: The record or service that referred to it (``"Match 'm1'"``,
            ``"the billing provider"``), or None.
        hint: What to do about it, or ``""``.
    """

    _SHOWN = 20

    def __init__(
        self,
        kind: str,
        record_id: object,
        *more_ids: object,
        context: str | None = None,
        hint: str = "",
    ) -> None:
        self.kind = kind
        self.record_id = record_id
        self.record_ids = (record_id, *more_ids)
        self.context = context
        self.hint = hint
        where = f"{context}: " if context else ""
        advice = f"; {hint}" if hint else ""
        super().__init__(f"{where}unknown {self._named()}{advice}")

    def _named(self) -> str:
        """``organization 'o1'``, or ``organizations 'o1', 'o2' and 'o3'``."""
        ids = [repr(record_id) for record_id in self.record_ids]
        if len(ids) == 1:
            return f"{self.kind} {ids[0]}"
        shown, rest = ids[: self._SHOWN], len(ids) - self._SHOWN
        last = f"{rest} more" if rest > 0 else shown.pop()
        return f"{self.kind}s {', '.join(shown)} and {last}"


class UsageConflictError(MatchUsageError, ValueError):
    """Usage was reported again under an idempotency key with a different quantity or period.

    Reporting the same key with the same organization, period and quantity is
    a no-op; anything else would bill a period twice (or differently), so it
    is refused and nothing changes.

    Attributes:
        idempotency_key: The reused key.
        reported: The quantity stored under the key.
        attempted: The quantity of the refused report.
    """

    def __init__(
        self, idempotency_key: str, reported: int, attempted: int, detail: str = ""
    ) -> None:
        self.idempotency_key = idempotency_key
        self.reported = reported
        self.attempted = attempted
        super().__init__(
            f"usage under idempotency key {idempotency_key!r} was already reported "
            f"with quantity {reported}; refusing quantity {attempted}{detail}"
        )


class PeriodNotClosedError(MatchUsageError, ValueError):
    """A billing period was closed before its end (plus the grace window) had passed.

    Attributes:
        organization_id: The organization whose period it is.
        period: The period that is still open.
        closes_at: The first instant at which the period may be closed.
    """

    def __init__(self, organization_id: str, period: object, closes_at: datetime) -> None:
        self.organization_id = organization_id
        self.period = period
        self.closes_at = closes_at
        super().__init__(
            f"Organization {organization_id!r}: period {period} is still open; "
            f"it can be closed from {closes_at.isoformat()}"
        )


class DocumentUnavailableError(MatchUsageError, LookupError):
    """An invoice document does not exist (yet), e.g. the receipt of an unpaid invoice."""


class CorruptSnapshotError(MatchUsageError, ValueError):
    """A stored snapshot or report record does not match its fingerprint: it was altered.

    With a fingerprint key (an HMAC), content and fingerprint edited together
    are caught too, and so is a record stored without the key.
    """


class SnapshotConflictError(MatchUsageError, ValueError):
    """A snapshot or report record differs from the one stored for its organization and period.

    Snapshots and report records are written once; storing the same content
    again returns the stored record, but different content is refused, and
    nothing changes. The message says what differs.

    Attributes:
        organization_id: The organization.
        period: The period.
        stored: The stored snapshot or report record (which stays).
        attempted: The refused one.
        differences: What differs, one phrase each, e.g.
            ``"users only in the new snapshot: 'cyd'"``.
    """

    def __init__(
        self,
        organization_id: str,
        period: object,
        stored: object,
        attempted: object,
        differences: tuple[str, ...],
    ) -> None:
        self.organization_id = organization_id
        self.period = period
        self.stored = stored
        self.attempted = attempted
        self.differences = differences
        kind = type(stored).__name__
        super().__init__(
            f"Organization {organization_id!r}: a different {kind} of period {period} is "
            f"stored and stays; {'; '.join(differences)}"
        )


class InvalidLineError(InvalidRecordError):
    """One bad line of an input file: the file, the line, the field and the bad value.

    Never raised alone: the loaders collect every bad line of a file into one
    [`InvalidInputError`][matchusage.exceptions.InvalidInputError].

    Attributes:
        file: The file's name.
        line: The line number (1 is the first line; ``None`` for a problem of
            the whole file, such as a missing column).
    """

    def __init__(
        self, file: str, line: int | None, field: str, value: object, expected: str
    ) -> None:
        self.file = file
        self.line = line
        where = file if line is None else f"{file}, line {line}"
        super().__init__(where, field, value, expected)


class InvalidInputError(MatchUsageError, ValueError):
    """An input file (or a directory of them) has bad lines; nothing was loaded.

    The message names every bad line (up to 20, then how many more); all of
    them are in ``errors``.

    Attributes:
        errors: One [`InvalidLineError`][matchusage.exceptions.InvalidLineError]
            per problem, in file and line order.
    """

    _SHOWN = 20

    def __init__(self, errors: list[InvalidLineError]) -> None:
        self.errors = tuple(errors)
        files = ", ".join(dict.fromkeys(error.file for error in self.errors))
        shown = "; ".join(str(error) for error in self.errors[: self._SHOWN])
        more = len(self.errors) - self._SHOWN
        if more > 0:
            shown += f"; and {more} more"
        if len(self.errors) == 1:
            super().__init__(shown)
        else:
            super().__init__(f"{len(self.errors)} bad values in {files}: {shown}")


class InvalidColumnError(InvalidRecordError):
    """A column given to the columnar engine has a bad type, length or value.

    Raised before anything is counted. The message names the column, the
    first bad row (if one row is at fault) and its value.

    Attributes:
        column: The name of the offending column, e.g. ``"end_us"``.
        row: The first bad row, or ``None`` when the whole column is at fault
            (a wrong length or type).
    """

    def __init__(self, column: str, row: int | None, value: object, expected: str) -> None:
        self.column = column
        self.row = row
        record = "MatchColumns" if row is None else f"MatchColumns row {row}"
        super().__init__(record, column, value, expected)


class RepositoryError(MatchUsageError, RuntimeError):
    """A storage adapter failed to read or write; nothing was half-applied.

    Raised by [`SQLRepository`][matchusage.sql.SQLRepository] when the
    database reports an error (lost connection, missing table, constraint
    violation, an error in the middle of a result set). The database's own
    error is kept as ``__cause__``. A failed write is rolled back whole; a
    failed read returns nothing.
    """


class BillingProviderError(MatchUsageError, RuntimeError):
    """A billing service (such as Stripe) refused or failed a request.

    The subclasses say what went wrong; the service's own error is kept as
    ``__cause__``. Quote *request_id* to the service's support: it finds the
    request in their logs.

    Attributes:
        provider: Which service, e.g. ``"stripe"``.
        request_id: The service's id of the failed request, if it answered.
        http_status: The HTTP status of the answer, if there was one.
        code: The service's error code, e.g. ``"card_declined"``, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        request_id: str | None = None,
        http_status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.provider = provider
        self.request_id = request_id
        self.http_status = http_status
        self.code = code
        known = (("code", code), ("request", request_id))
        facts = [f"{label} {value}" for label, value in known if value]
        super().__init__(f"{provider}: {message}" + (f" ({', '.join(facts)})" if facts else ""))


class PaymentDeclinedError(BillingProviderError):
    """The service declined a payment method (e.g. a card declined when attached or charged).

    Attributes:
        decline_code: The issuer's reason, e.g. ``"insufficient_funds"``, if given.
    """

    def __init__(self, message: str, *, decline_code: str | None = None, **facts: Any) -> None:
        self.decline_code = decline_code
        super().__init__(message, **facts)


class ProviderUnavailableError(BillingProviderError):
    """The service could not be reached or asked to slow down, and retrying did not help.

    Transient: running the same operation again later is safe (reporting
    usage is exactly-once per idempotency key), which is what the next
    [`billing_run`][matchusage.billing.billing_run] does.

    Attributes:
        reason: ``"network"``, ``"rate_limited"`` or ``"server_error"``.
    """

    def __init__(self, message: str, *, reason: str, **facts: Any) -> None:
        self.reason = reason
        super().__init__(message, **facts)


class ProviderAuthenticationError(BillingProviderError):
    """The service refused the credentials (a wrong, revoked or under-privileged API key)."""


class ProviderRequestError(BillingProviderError, ValueError):
    """The service refused a request as invalid: a value it does not accept, or a wrong state.

    Attributes:
        param: The request parameter the service names, if it names one.
    """

    def __init__(self, message: str, *, param: str | None = None, **facts: Any) -> None:
        self.param = param
        super().__init__(message, **facts)
