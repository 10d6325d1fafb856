"""Loading users, programs, matches and billing settings from CSV and JSON Lines files.

Every loader validates the whole file before returning anything: all bad
lines are collected into one
[`InvalidInputError`][matchusage.exceptions.InvalidInputError], so nothing is
ever half-loaded. The formats are documented in ``docs/input-format.md``.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar, Union

import attrs
from dateutil.parser import isoparse

from ._match_table import MatchTable
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
_JSON_LINE = "one JSON object per line (integers of at most 4,300 digits)"
_BOM = b"\xef\xbb\xbf"
# Bytes that are not UTF-8, as decoded with errors="surrogateescape".
_UNDECODABLE = re.compile("[\udc80-\udcff]+")


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

    def _bytes(self) -> bytes | None:
        """The file's bytes (without a byte order mark), or None for a text stream."""
        source = self.source
        if hasattr(source, "read"):
            return None
        if isinstance(source, (str, os.PathLike)):
            data = Path(source).read_bytes()
        else:
            data = source.read_bytes()
        # Spreadsheets often write a byte order mark.
        return data.removeprefix(_BOM)

    def open_binary(self) -> IO[bytes] | None:
        """The file opened for reading bytes, or None for a text stream."""
        source = self.source
        if hasattr(source, "read"):
            return None
        if isinstance(source, (str, os.PathLike)):
            return open(source, "rb")  # closed by the caller
        return source.open("rb")

    def _text(self) -> str:
        """The whole file as text; bytes that are not UTF-8 are kept as lone surrogates."""
        data = self._bytes()
        if data is not None:
            return data.decode("utf-8", "surrogateescape")
        try:
            return self.source.read()  # type: ignore[union-attr]  # a text stream
        except UnicodeDecodeError as error:  # the stream's own decoding: no line to name
            self.fail(None, "encoding", error.object[error.start : error.end], "UTF-8 text")
            return ""

    def read(self) -> str | None:
        """The whole file as text, or None (a recorded problem) if it is not UTF-8."""
        text = self._text()
        bad = _UNDECODABLE.search(text)
        if bad is None:
            return text
        self._undecodable(text.count("\n", 0, bad.start()) + 1, bad.group())
        return None

    def _undecodable(self, line: int | None, text: str) -> None:
        raw = text.encode("utf-8", "surrogateescape")
        self.fail(line, "encoding", raw, "UTF-8 text")

    def _decodable(self, line: int, cells: Iterable[str]) -> bool:
        """Whether every cell is UTF-8 text; if not, the line is recorded as bad."""
        for cell in cells:
            bad = _UNDECODABLE.search(cell)
            if bad is not None:
                self._undecodable(line, bad.group())
                return False
        return True

    def records(
        self, required: tuple[str, ...], optional: tuple[str, ...]
    ) -> Iterator[tuple[int, Mapping[str, object]]]:
        """Yield ``(line number, record)`` for each record, checking the columns.

        A line with bytes that are not UTF-8 is reported (with its line) and
        skipped; the other lines are still read.
        """
        if self.errors:
            return
        text = self._text()
        if self.errors:
            return
        # newline="": line ends are read as written, like open(newline="") does.
        stream = io.StringIO(text, newline="")
        check = _UNDECODABLE.search(text) is not None
        if self.format == "csv":
            yield from self._csv(stream, required, optional, check)
        else:
            yield from self._jsonl(stream, required, optional, check)

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
        self, stream: IO[str], required: tuple[str, ...], optional: tuple[str, ...], check: bool
    ) -> Iterator[tuple[int, Mapping[str, object]]]:
        reader = csv.reader(stream)
        try:
            header = next(reader, None)
            if header is None:
                self.fail(None, "header", "", f"a header line: {','.join(required + optional)}")
                return
            if check and not self._decodable(1, header):
                return
            header = [column.strip() for column in header]
            if not self._columns(1, header, required, optional):
                return
            end = reader.line_num
            for row in reader:
                line, end = end + 1, reader.line_num
                if not row or row == [""]:
                    continue
                if check and not self._decodable(line, row):
                    continue
                if len(row) != len(header):
                    self.fail(line, "columns", row, f"{len(header)} cells, like the header")
                    continue
                yield line, dict(zip(header, row, strict=True))
        except csv.Error as error:  # e.g. an oversized cell; the rest cannot be read
            self.fail(reader.line_num or None, "csv", str(error), "well-formed CSV")

    def _jsonl(
        self, stream: IO[str], required: tuple[str, ...], optional: tuple[str, ...], check: bool
    ) -> Iterator[tuple[int, Mapping[str, object]]]:
        for line, text in enumerate(stream, start=1):
            if not text.strip() or (check and not self._decodable(line, [text])):
                continue
            try:
                record = json.loads(text)
            except ValueError:  # malformed, or an integer too long to convert
                self.fail(line, "json", text.strip(), _JSON_LINE)
                continue
            if not isinstance(record, dict):
                self.fail(line, "json", record, "a JSON object")
            elif self._columns(line, record, required, optional):
                yield line, record

    def get(
        self, line: int | None, record: Mapping[str, object], key: str, parse: Callable[[object], T]
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


def _instant_or_none(value: str) -> datetime | None:
    try:
        return _instant(value)
    except _Bad:
        return None


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
    return _records(_File(source, format), kind, optional, build)


def _records(
    file: _File,
    kind: str,
    optional: tuple[str, ...],
    build: Callable[[str, Mapping[str, object]], T],
) -> list[T]:
    """The records of *file*, row by row (see `_load_records`)."""
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

    return list(read_users(source, format=format).values())


def read_users(source: Source, *, format: str | None = None) -> Mapping[str, User]:
    """The users of a file by id: from columns when the fast path read it (see `read_matches`)."""
    file = _File(source, format)
    if not file.errors and fast_loading_available():
        if file.format == "csv":
            from ._arrow_loading import read_csv_records as read_records
        else:
            from ._arrow_jsonl import read_jsonl_records as read_records

        found = _read_binary(file, lambda stream: read_records(stream, ("name", "email")))
        if found is not None:
            return UserDirectory(*found)

    def build(user_id: str, fields: Mapping[str, object]) -> User:
        return User(user_id, str(fields["name"]), str(fields["email"]) or None)

    users = _records(file, "user", ("name", "email"), build)
    return {user.id: user for user in users}


class UserDirectory(Mapping[str, User]):
    """Users kept as (Arrow) columns, each `User` made when it is looked up."""

    def __init__(self, ids: Any, names: Any, emails: Any) -> None:
        self._ids, self._names, self._emails = ids, names, emails
        self._rows: dict[str, int] | None = None

    def _row(self, user_id: str) -> int:
        if self._rows is None:
            self._rows = {user: row for row, user in enumerate(self._ids.to_pylist())}
        return self._rows[user_id]

    def columns(self) -> tuple[Any, Any, Any]:
        """The Arrow columns of ids, names and emails (``None`` for a column the file lacks)."""
        return self._ids, self._names, self._emails

    def __getitem__(self, user_id: str) -> User:
        row = self._row(user_id)
        name = "" if self._names is None else self._names[row].as_py()
        email = None if self._emails is None else self._emails[row].as_py()
        return User(user_id, name, email or None)

    def __contains__(self, user_id: object) -> bool:
        try:
            self._row(user_id)  # type: ignore[arg-type]
        except (KeyError, TypeError):
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids.to_pylist())

    def __len__(self) -> int:
        return len(self._ids)


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
    found = read_matches(source, program_ids=program_ids, format=format)
    return found.matches() if isinstance(found, MatchTable) else found


def read_matches(
    source: Source, *, program_ids: Iterable[str] | None = None, format: str | None = None
) -> MatchTable | list[Match]:
    """The matches of a file: as columns when the fast path read it, else as objects.

    The fast path (pyarrow and numpy installed, a CSV or JSON Lines file) checks whole
    columns; when it cannot vouch for every line, the row-by-row loader reads
    the file and names every bad line.
    """
    file = _File(source, format)
    known = None if program_ids is None else frozenset(program_ids)
    if not file.errors and fast_loading_available():
        if file.format == "csv":
            from ._arrow_loading import read_csv_matches as read
        else:
            from ._arrow_jsonl import read_jsonl_matches as read

        table = _read_binary(file, lambda stream: read(stream, known, _instant_or_none))
        if table is not None:
            return table
    return _match_objects(file, known)


def _read_binary(file: _File, read: Callable[[IO[bytes]], T | None]) -> T | None:
    """What *read* makes of the file's bytes (None for a text stream)."""
    stream = file.open_binary()
    if stream is None:
        return None
    with stream:
        return read(stream)


def fast_loading_available() -> bool:
    """Whether the loaders' fast path can run (pyarrow and numpy are installed)."""
    return all(_installed(name) for name in ("numpy", "pyarrow"))


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:  # sys.modules[name] is None: the module was blocked
        return False


def _match_objects(file: _File, known: frozenset[str] | None) -> list[Match]:
    """The row-by-row loader: every line checked and every bad one named."""
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
    except ValueError:  # an integer too long to convert
        file.fail(
            None, "json", text.strip()[:80], "one JSON object (integers of at most 4,300 digits)"
        )
        raise InvalidInputError(file.errors) from None
    if not isinstance(settings, dict):
        file.fail(1, "json", settings, "one JSON object")
        raise InvalidInputError(file.errors)
    lines = _KeyLines(text)
    file._columns(1, settings, ("id", "name", "timezone", "cycle"), ())
    cycle = settings.get("cycle")
    if not isinstance(cycle, dict):
        file.fail(lines.of("cycle"), "cycle", cycle, "an object with anchor, unit and every")
        cycle = {}
    org_id = file.get(lines.of("id"), settings, "id", _id)
    name = file.get(lines.of("name"), settings, "name", _text)
    zone_name = settings.get("timezone")
    try:
        zone = time_zone(zone_name, "organization", "timezone")
    except InvalidRecordError:
        expected = "an IANA time zone name, e.g. 'Europe/Paris'"
        file.fail(lines.of("timezone"), "timezone", zone_name, expected)
        zone = None
    anchor = file.get(lines.of("anchor", within="cycle"), cycle, "anchor", _instant)
    unit = cycle.get("unit", "month")
    if unit not in ("month", "week"):
        file.fail(lines.of("unit", within="cycle"), "cycle.unit", unit, "'month' or 'week'")
    every = cycle.get("every", 1)
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        file.fail(lines.of("every", within="cycle"), "cycle.every", every, "a positive integer")
    file.done([])
    # No problem in the file, so every setting parsed.
    assert org_id is not None
    assert name is not None
    assert zone is not None
    assert anchor is not None
    assert isinstance(zone_name, str)
    cycle_value = BillingCycle(anchor.astimezone(zone), CycleUnit(unit), every)
    return Organization(org_id, name, zone_name, cycle_value)


class _KeyLines:
    """The line of a key of a JSON object in its text, to name it in errors."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _position(self, key: str, start: int) -> int | None:
        # The last occurrence wins, as in json.loads.
        found = None
        for hit in re.finditer(re.escape(json.dumps(key)) + r"\s*:", self.text[start:]):
            found = start + hit.start()
        return found

    def of(self, key: str, *, within: str | None = None) -> int | None:
        """The line of *key* (of the object under key *within*), or None if not found."""
        start = 0
        if within is not None:
            outer = self._position(within, 0)
            if outer is None:
                return None
            start = outer
        position = self._position(key, start)
        if position is None:
            return None if within is None else self.text.count("\n", 0, start) + 1
        return self.text.count("\n", 0, position) + 1


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


class _MissingFile(InvalidLineError):
    """A data directory lacks a file it needs."""

    def __init__(self, directory: str, stem: str, names: str) -> None:
        super().__init__(directory, None, stem, None, names)
        # Said plainly: there is no value to show.
        Exception.__init__(self, f"{directory}: no {stem} file (expected {names})")


def _require(directory: Traversable, stem: str) -> Traversable:
    """Like `_find`, but the file must exist."""
    found = _find(directory, stem)
    if found is None:
        names = f"{stem}.csv, {stem}.jsonl or {stem}.ndjson"
        raise InvalidInputError([_MissingFile(str(directory), stem, names)])
    return found


@attrs.frozen
class DirectoryData:
    """What a data directory holds: one organization, its programs, users and matches."""

    organization: Organization
    programs: list[Program]
    users: Mapping[str, User]
    matches: MatchTable | list[Match]


def read_directory(directory: str | os.PathLike[str] | Traversable) -> DirectoryData:
    """Read and check every file of a data directory (see `load_directory`)."""
    root: Traversable = Path(directory) if isinstance(directory, (str, os.PathLike)) else directory
    if not root.is_dir():
        raise InvalidInputError(
            [InvalidLineError(str(root), None, "directory", str(root), "an existing directory")]
        )
    organization_file = root / "organization.json"
    if not organization_file.is_file():
        raise InvalidInputError([_MissingFile(str(root), "organization", "organization.json")])
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
    known = _program_ids(programs_file) if programs is None else [p.id for p in programs]
    users = {} if users_file is None else attempt(lambda: read_users(users_file))
    matches = attempt(lambda: read_matches(matches_file, program_ids=known))
    if errors:
        raise InvalidInputError(errors)
    assert organization is not None
    assert programs is not None
    assert matches is not None
    assert users is not None
    return DirectoryData(organization, programs, users, matches)


def _program_ids(source: Source) -> list[str] | None:
    """The ids on the lines of a programs file with bad lines, to check matches against.

    ``None`` (no check) when the file as a whole cannot be read (bad header,
    not UTF-8): its ids are unknown, and every match would be named.
    """
    file = _File(source, None)
    found = []
    for line, record in file.records(("id",), ("name",)):
        program_id = file.get(line, record, "id", _id)
        if program_id is not None:
            found.append(program_id)
    if any(
        error.line is None or error.field in ("columns", "encoding", "csv") for error in file.errors
    ):
        return None
    return found


def load_directory(directory: str | os.PathLike[str] | Traversable) -> InMemoryRepository:
    """Load one organization's data from a directory into a repository.

    The directory holds ``organization.json``, ``programs.csv`` (or ``.jsonl``),
    ``matches.csv`` (or ``.jsonl``) and optionally ``users.csv`` (or ``.jsonl``).
    Every file is checked; the bad lines of all of them are reported together
    and nothing is loaded.

    ```python
    repository = load_directory("data/acme")
    organization = repository.organizations()[0]
    report = usage_report(OrganizationMatches(repository, organization.id),
                          organization.cycle, now=now)
    ```

    Returns:
        An [`InMemoryRepository`][matchusage.memory.InMemoryRepository] with the
        one organization, its programs, users and matches.

    Raises:
        matchusage.exceptions.InvalidInputError: A missing file or bad lines.
    """
    data = read_directory(directory)
    matches = data.matches.matches() if isinstance(data.matches, MatchTable) else data.matches
    repository = InMemoryRepository()
    repository.add(data.organization, *data.programs, *data.users.values(), *matches)
    return repository
