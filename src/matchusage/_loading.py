"""Loading users, programs, matches and billing settings from CSV and JSON Lines files.

Every loader validates the whole file before returning anything: all bad
lines are collected into one
[`InvalidInputError`][matchusage.exceptions.InvalidInputError], so nothing is
ever half-loaded. The formats are documented in ``docs/input-format.md``.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, TypeVar, Union

from dateutil.parser import isoparse

from ._model import Match, Organization, Program, Role, User
from ._periods import BillingCycle, CycleUnit
from ._time import is_aware, time_zone
from .exceptions import InvalidInputError, InvalidLineError, InvalidRecordError
from .memory._repository import InMemoryRepository

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable as Traversable
else:  # pragma: no cover - Python 3.10
    from importlib.abc import Traversable as Traversable

Source = Union[str, "os.PathLike[str]", Traversable, IO[str]]
"""A file to load: a path, an `importlib.resources` file, or an open text stream."""

T = TypeVar("T")

_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_ROLES = ", ".join(repr(role.value) for role in Role)
_INSTANT = "an ISO 8601 instant with a UTC offset, e.g. '2024-03-01T09:00:00+01:00'"


class _Bad(Exception):
    """A field failed to parse; turned into an InvalidLineError with file and line."""

    def __init__(self, value: object, expected: str) -> None:
        self.value = value
        self.expected = expected


class _File:
    """One input file being read: its records and the problems found so far."""

    def __init__(self, source: Source, format: str | None) -> None:
        self.source = source
        if isinstance(source, (str, os.PathLike)):
            self.name = os.fspath(source)
        else:
            self.name = str(getattr(source, "name", None) or "<stream>")
        suffix = os.path.splitext(self.name)[1].lower()
        self.format = format or _FORMATS.get(suffix, "")
        self.errors: list[InvalidLineError] = []
        if self.format not in ("csv", "jsonl"):
            self.fail(
                None, "format", format or suffix, "'csv' or 'jsonl' (by file name or format=)"
            )

    def fail(self, line: int | None, field: str, value: object, expected: str) -> None:
        self.errors.append(InvalidLineError(self.name, line, field, value, expected))

    def _open(self) -> IO[str]:
        source = self.source
        if hasattr(source, "read"):
            return source  # type: ignore[return-value]  # an open text stream
        # utf-8-sig: spreadsheets often write a byte order mark.
        if isinstance(source, (str, os.PathLike)):
            return Path(source).open("r", encoding="utf-8-sig", newline="")
        return source.open("r", encoding="utf-8-sig")

    def read(self) -> str | None:
        """The whole file as text, or None (a recorded problem) if it is not UTF-8."""
        stream = self._open()
        try:
            return stream.read()
        except UnicodeDecodeError as error:
            self._undecodable(error)
            return None
        finally:
            if stream is not self.source:
                stream.close()

    def _undecodable(self, error: UnicodeDecodeError) -> None:
        self.fail(None, "encoding", error.object[error.start : error.end], "UTF-8 text")

    def records(
        self, required: tuple[str, ...], optional: tuple[str, ...]
    ) -> Iterator[tuple[int, Mapping[str, object]]]:
        """Yield ``(line number, record)`` for each record, checking the columns."""
        if self.errors:
            return
        stream = self._open()
        try:
            if self.format == "csv":
                yield from self._csv(stream, required, optional)
            else:
                yield from self._jsonl(stream, required, optional)
        except UnicodeDecodeError as error:
            self._undecodable(error)
        finally:
            if stream is not self.source:
                stream.close()

    def _columns(
        self, line: int, keys: Iterable[str], required: tuple[str, ...], optional: tuple[str, ...]
    ) -> bool:
        keys = list(keys)
        missing = [key for key in required if key not in keys]
        unknown = [key for key in keys if key not in required + optional]
        if missing:
            self.fail(line, "columns", keys, f"a record with {', '.join(missing)}")
        if unknown:
            self.fail(line, "columns", keys, f"only {', '.join(required + optional)}")
        return not missing and not unknown

    def _csv(
        self, stream: IO[str], required: tuple[str, ...], optional: tuple[str, ...]
    ) -> Iterator[tuple[int, Mapping[str, object]]]:
        reader = csv.reader(stream)
        try:
            header = next(reader, None)
            if header is None:
                self.fail(None, "header", "", f"a header line: {','.join(required + optional)}")
                return
            header = [column.strip() for column in header]
            if not self._columns(1, header, required, optional):
                return
            end = reader.line_num
            for row in reader:
                line, end = end + 1, reader.line_num
                if not row or row == [""]:
                    continue
                if len(row) != len(header):
                    self.fail(line, "columns", row, f"{len(header)} cells, like the header")
                    continue
                yield line, dict(zip(header, row, strict=True))
        except csv.Error as error:  # e.g. an oversized cell; the rest cannot be read
            self.fail(reader.line_num or None, "csv", str(error), "well-formed CSV")

    def _jsonl(
        self, stream: IO[str], required: tuple[str, ...], optional: tuple[str, ...]
    ) -> Iterator[tuple[int, Mapping[str, object]]]:
        for line, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError:
                self.fail(line, "json", text.strip(), "one JSON object per line")
                continue
            if not isinstance(record, dict):
                self.fail(line, "json", record, "a JSON object")
            elif self._columns(line, record, required, optional):
                yield line, record

    def get(
        self, line: int, record: Mapping[str, object], key: str, parse: Callable[[object], T]
    ) -> T | None:
        """Parse one field, recording a problem (and returning None) if it is bad."""
        try:
            return parse(record.get(key))
        except _Bad as bad:
            self.fail(line, key, bad.value, bad.expected)
            return None

    def done(self, loaded: list[T]) -> list[T]:
        if self.errors:
            raise InvalidInputError(self.errors)
        return loaded


def _blank(value: object) -> bool:
    return value is None or value == ""


def _id(value: object) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise _Bad(value, "a non-empty id")


def _text(value: object) -> str:
    if _blank(value):
        return ""
    if isinstance(value, str):
        return value
    raise _Bad(value, "a string")


def _instant(value: object) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise _Bad(value, _INSTANT)
    try:
        parsed = isoparse(value.strip())
    except (ValueError, OverflowError):
        raise _Bad(value, _INSTANT) from None
    if not is_aware(parsed):
        raise _Bad(value, _INSTANT + " (this one has no offset)")
    return parsed


def _optional_instant(value: object) -> datetime | None:
    return None if _blank(value) else _instant(value)


def _participant(value: object) -> tuple[str, Role | None]:
    if isinstance(value, dict):
        user, role = value.get("user_id"), value.get("role")
        if set(value) - {"user_id", "role"}:
            raise _Bad(value, "an object with 'user_id' and an optional 'role'")
    elif isinstance(value, str):
        user, _, role = value.strip().partition(":")
    else:
        raise _Bad(value, "a user id or {'user_id': ..., 'role': ...}")
    if not isinstance(user, str) or not user.strip():
        raise _Bad(value, "a non-empty user id")
    if _blank(role):
        return user.strip(), None
    try:
        return user.strip(), Role(str(role).strip())
    except ValueError:
        raise _Bad(role, f"a role: {_ROLES}") from None


def _participants(value: object) -> dict[str, Role | None]:
    if isinstance(value, str):
        items: list[object] = [item for item in value.split(";") if item.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise _Bad(value, "participants: 'u1:mentor;u2:mentee' or a JSON list")
    people: dict[str, Role | None] = {}
    for item in items:
        user, role = _participant(item)
        if user in people:
            raise _Bad(value, f"each participant once ({user!r} is repeated)")
        people[user] = role
    if not people:
        raise _Bad(value, "at least one participant")
    return people


def _unique(file: _File, kind: str, seen: dict[str, int], key: str | None, line: int) -> None:
    """Record a problem if *key* (None: the id itself is bad) was used on an earlier line."""
    if key is None:
        return
    first = seen.setdefault(key, line)
    if first != line:
        file.fail(line, "id", key, f"a {kind} id not used before (line {first} has it)")


def _load_records(
    source: Source,
    format: str | None,
    kind: str,
    optional: tuple[str, ...],
    build: Callable[[str, Mapping[str, object]], T],
) -> list[T]:
    """Load records with a unique ``id`` and optional text fields."""
    file = _File(source, format)
    loaded: list[T] = []
    seen: dict[str, int] = {}
    for line, record in file.records(("id",), optional):
        before = len(file.errors)
        record_id = file.get(line, record, "id", _id)
        fields = {key: file.get(line, record, key, _text) for key in optional}
        # A repeated id is named even when its first line is bad too.
        _unique(file, kind, seen, record_id, line)
        if len(file.errors) == before:
            assert record_id is not None  # no problem on this line
            loaded.append(build(record_id, fields))
    return file.done(loaded)


def load_users(source: Source, *, format: str | None = None) -> list[User]:
    """Load users: columns ``id`` and optional ``name``, ``email``.

    Args:
        source: A path (``.csv``, ``.jsonl``), a resources file or a text stream.
        format: ``"csv"`` or ``"jsonl"``, when the file name does not tell.

    Returns:
        The users, in file order.

    Raises:
        matchusage.exceptions.InvalidInputError: Bad lines (all of them are named).
    """

    def build(user_id: str, fields: Mapping[str, object]) -> User:
        return User(user_id, str(fields["name"]), str(fields["email"]) or None)

    return _load_records(source, format, "user", ("name", "email"), build)


def load_programs(
    source: Source, organization_id: str, *, format: str | None = None
) -> list[Program]:
    """Load the programs of an organization: columns ``id`` and optional ``name``.

    Args:
        source: A path (``.csv``, ``.jsonl``), a resources file or a text stream.
        organization_id: The organization that runs the programs.
        format: ``"csv"`` or ``"jsonl"``, when the file name does not tell.

    Raises:
        matchusage.exceptions.InvalidInputError: Bad lines (all of them are named).
    """

    def build(program_id: str, fields: Mapping[str, object]) -> Program:
        return Program(program_id, organization_id, str(fields["name"]))

    return _load_records(source, format, "program", ("name",), build)


def load_matches(
    source: Source, *, program_ids: Iterable[str] | None = None, format: str | None = None
) -> list[Match]:
    """Load matches: ``id``, ``program_id``, ``participants``, ``started_at``, ``ended_at``.

    ``participants`` is ``u1:mentor;u2:mentee;u3`` in CSV (roles optional) and a
    list of user ids or ``{"user_id": ..., "role": ...}`` objects in JSON
    Lines. ``started_at`` and ``ended_at`` are ISO 8601 instants with an
    offset; an empty (or null, or absent) ``ended_at`` means ongoing.

    Args:
        source: A path (``.csv``, ``.jsonl``), a resources file or a text stream.
        program_ids: The known programs; a match of any other program is bad.
            ``None`` accepts every program id.
        format: ``"csv"`` or ``"jsonl"``, when the file name does not tell.

    Returns:
        The matches, in file order.

    Raises:
        matchusage.exceptions.InvalidInputError: Bad lines: a naive or malformed
            timestamp, an end before the start, an unknown program, a repeated
            match id, no participants, an unknown role (all of them are named).
    """
    file = _File(source, format)
    known = None if program_ids is None else frozenset(program_ids)
    matches: list[Match] = []
    seen: dict[str, int] = {}
    columns = ("id", "program_id", "participants", "started_at")
    for line, record in file.records(columns, ("ended_at",)):
        before = len(file.errors)
        match_id = file.get(line, record, "id", _id)
        program_id = file.get(line, record, "program_id", _id)
        people = file.get(line, record, "participants", _participants)
        started = file.get(line, record, "started_at", _instant)
        ended = file.get(line, record, "ended_at", _optional_instant)
        if program_id is not None and known is not None and program_id not in known:
            expected = f"a program id from the programs file ({', '.join(sorted(known))})"
            file.fail(line, "program_id", program_id, expected)
        if started is not None and ended is not None and ended < started:
            expected = f"at or after started_at ({started.isoformat()})"
            file.fail(line, "ended_at", record["ended_at"], expected)
        # A repeated id is named even when its first line is bad too.
        _unique(file, "match", seen, match_id, line)
        if len(file.errors) > before:
            continue
        # No problem on this line, so every field parsed.
        assert match_id is not None
        assert program_id is not None
        assert people is not None
        assert started is not None
        roles = {user: role for user, role in people.items() if role is not None}
        try:
            matches.append(Match(match_id, program_id, people, started, ended, roles=roles))
        except InvalidRecordError as error:  # pragma: no cover - every field is checked above
            file.fail(line, error.field, error.value, "valid: " + str(error))
    return file.done(matches)


def load_organization(source: Source) -> Organization:
    """Load an organization and its billing cycle from a JSON object.

    ```json
    {"id": "acme", "name": "Acme", "timezone": "Europe/Paris",
     "cycle": {"anchor": "2024-01-15T00:00:00+01:00", "unit": "month", "every": 1}}
    ```

    The anchor is an ISO 8601 instant with an offset; it is read in the
    organization's time zone, where the periods follow the local calendar.

    Raises:
        matchusage.exceptions.InvalidInputError: A bad or missing setting (all are named).
    """
    file = _File(source, "jsonl")
    text = file.read()
    if text is None:
        raise InvalidInputError(file.errors)
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as error:
        file.fail(error.lineno, "json", error.msg, "one JSON object")
        raise InvalidInputError(file.errors) from None
    if not isinstance(settings, dict):
        file.fail(1, "json", settings, "one JSON object")
        raise InvalidInputError(file.errors)
    file._columns(1, settings, ("id", "name", "timezone", "cycle"), ())
    cycle = settings.get("cycle")
    if not isinstance(cycle, dict):
        file.fail(None, "cycle", cycle, "an object with anchor, unit and every")
        cycle = {}
    org_id = file.get(1, settings, "id", _id)
    name = file.get(1, settings, "name", _text)
    zone_name = settings.get("timezone")
    try:
        zone = time_zone(zone_name, "organization", "timezone")
    except InvalidRecordError:
        file.fail(None, "timezone", zone_name, "an IANA time zone name, e.g. 'Europe/Paris'")
        zone = None
    anchor = file.get(1, cycle, "anchor", _instant)
    unit = cycle.get("unit", "month")
    if unit not in ("month", "week"):
        file.fail(None, "cycle.unit", unit, "'month' or 'week'")
    every = cycle.get("every", 1)
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        file.fail(None, "cycle.every", every, "a positive integer")
    file.done([])
    # No problem in the file, so every setting parsed.
    assert org_id is not None
    assert name is not None
    assert zone is not None
    assert anchor is not None
    assert isinstance(zone_name, str)
    cycle_value = BillingCycle(anchor.astimezone(zone), CycleUnit(unit), every)
    return Organization(org_id, name, zone_name, cycle_value)


def _find(directory: Traversable, stem: str) -> Traversable | None:
    """The one file ``stem.csv``, ``.jsonl`` or ``.ndjson`` in *directory*, if any."""
    found = [directory / f"{stem}{suffix}" for suffix in _FORMATS]
    found = [entry for entry in found if entry.is_file()]
    if len(found) > 1:
        names = ", ".join(entry.name for entry in found)
        raise InvalidInputError(
            [InvalidLineError(str(directory), None, stem, names, "one file per kind of record")]
        )
    return found[0] if found else None


def _require(directory: Traversable, stem: str) -> Traversable:
    """Like `_find`, but the file must exist."""
    found = _find(directory, stem)
    if found is None:
        raise InvalidInputError(
            [InvalidLineError(str(directory), None, stem, None, f"a file {stem}.csv or .jsonl")]
        )
    return found


def load_directory(directory: str | os.PathLike[str] | Traversable) -> InMemoryRepository:
    """Load one organization's data from a directory into a repository.

    The directory holds ``organization.json``, ``programs.csv`` (or ``.jsonl``),
    ``matches.csv`` (or ``.jsonl``) and optionally ``users.csv`` (or ``.jsonl``).
    Every file is checked; the bad lines of all of them are reported together
    and nothing is loaded.

    Returns:
        An [`InMemoryRepository`][matchusage.memory.InMemoryRepository] with the
        one organization, its programs, users and matches.

    Raises:
        matchusage.exceptions.InvalidInputError: A missing file or bad lines.
    """
    root: Traversable = Path(directory) if isinstance(directory, (str, os.PathLike)) else directory
    if not root.is_dir():
        raise InvalidInputError(
            [InvalidLineError(str(root), None, "directory", str(root), "an existing directory")]
        )
    organization_file = root / "organization.json"
    if not organization_file.is_file():
        raise InvalidInputError(
            [InvalidLineError(str(root), None, "organization", None, "a file organization.json")]
        )
    programs_file = _require(root, "programs")
    matches_file = _require(root, "matches")
    users_file = _find(root, "users")
    errors: list[InvalidLineError] = []

    def attempt(load: Callable[[], T]) -> T | None:
        try:
            return load()
        except InvalidInputError as error:
            errors.extend(error.errors)
            return None

    organization = attempt(lambda: load_organization(organization_file))
    org_id = organization.id if organization is not None else "?"
    programs = attempt(lambda: load_programs(programs_file, org_id))
    known = None if programs is None else [program.id for program in programs]
    users = [] if users_file is None else attempt(lambda: load_users(users_file))
    matches = attempt(lambda: load_matches(matches_file, program_ids=known))
    if errors:
        raise InvalidInputError(errors)
    assert organization is not None
    assert programs is not None
    assert matches is not None
    assert users is not None
    repository = InMemoryRepository()
    repository.add(organization, *programs, *users, *matches)
    return repository
