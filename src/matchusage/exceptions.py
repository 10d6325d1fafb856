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

__all__ = [
    "DuplicateMatchError",
    "InvalidCycleError",
    "InvalidMatchError",
    "InvalidPeriodError",
    "InvalidRecordError",
    "MatchUsageError",
    "RepositoryError",
    "UnknownRecordError",
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
        super().__init__(f"{record}: {field!r} must be {expected} (got {value!r})")


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


class UnknownRecordError(MatchUsageError, LookupError):
    """A record referenced by id does not exist (an unknown program, organization or user)."""


class RepositoryError(MatchUsageError, RuntimeError):
    """A storage adapter failed to read or write; nothing was half-applied.

    Raised by [`SQLRepository`][matchusage.sql.SQLRepository] when the
    database reports an error (lost connection, missing table, constraint
    violation, an error in the middle of a result set). The database's own
    error is kept as ``__cause__``. A failed write is rolled back whole; a
    failed read returns nothing.
    """
