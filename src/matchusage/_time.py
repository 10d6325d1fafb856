"""Instants as integers: the one representation the sweep compares."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .exceptions import InvalidCycleError, InvalidRecordError

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS_PER_DAY = 86_400_000_000

# Ongoing matches end "never": larger than any instant a datetime can hold.
FOREVER = 2**62


def is_aware(value: object) -> bool:
    """Whether *value* is a datetime that knows its UTC offset."""
    return isinstance(value, datetime) and value.utcoffset() is not None


def to_micros(instant: datetime) -> int:
    """Microseconds since the Unix epoch, in UTC, of an aware *instant*.

    Uses timedelta's fields rather than ``timestamp()`` so there is no float
    rounding, and works for pendulum's timedelta subclasses too.
    """
    delta = instant - _EPOCH
    return delta.days * _MICROS_PER_DAY + delta.seconds * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The UTC datetime *micros* microseconds after the Unix epoch."""
    return _EPOCH + timedelta(microseconds=micros)


def require_aware(
    value: object, record: str, field: str, error: type[InvalidRecordError]
) -> datetime:
    """Return *value* if it is an aware datetime, else raise *error* naming it."""
    if not is_aware(value):
        raise error(record, field, value, "a timezone-aware datetime")
    return value  # type: ignore[return-value]  # is_aware checked the type


def time_zone(name: object, record: str, field: str) -> ZoneInfo:
    """The IANA time zone called *name*: the one way matchusage resolves zone names.

    Raises:
        matchusage.exceptions.InvalidCycleError: *name* is not the name of a zone
            of the IANA database (names are case-sensitive; no guessing).
    """
    try:
        return ZoneInfo(name)  # type: ignore[arg-type]  # anything else is refused below
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        # OSError: a name of a directory of the database, such as "Europe".
        raise InvalidCycleError(record, field, name, "an IANA time zone name") from None
