"""The columnar engine: active users per (organization, period) from column arrays.

Matches arrive as columns (start, end, organization) and participants as a
match-to-user table, the shape a data engineer gets from a warehouse, Arrow,
pandas or polars. The overlap rule is the core's: a match counts in a period
when it overlaps ``[period.start, period.end)`` by a positive amount, and
each person counts once per organization and period.

Two engines give identical results: a vectorised one (``numpy``, an optional
extra, imported only when used) and a pure-Python one. Both first give every
match a bitmask of the periods it overlaps (bit *j* for the *j*-th period of
its organization), then OR the masks of each (organization, user) pair, so
the cost is one pass over the matches and one over the participants.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping, Sequence, Sized
from typing import Any, ClassVar, Literal

import attrs

from ._extras import install_hint
from ._model import Match, Program
from ._periods import BillingPeriod
from ._sweep import check_periods, check_unique_ids
from ._time import FOREVER, from_micros
from .exceptions import InvalidColumnError, InvalidRecordError, UnknownRecordError

Engine = Literal["auto", "numpy", "python"]
"""Which engine computes columnar results: ``"auto"`` uses numpy when it is installed."""

Plan = dict[str, tuple[BillingPeriod, ...]]

# A report on columns gives each match one 64-bit mask of its periods; more go the object way.
MAX_SLOTS = 63
"""Each organization's periods, deduplicated, in the order given."""


@attrs.frozen(eq=False)
class MatchColumns:
    """Matches and their participants as columns, the input of the columnar engine.

    Any array-like column works: numpy arrays, Python lists, pyarrow arrays,
    pandas or polars series. With numpy they are used without copying where
    their type allows (integer columns without nulls). Columns are checked
    when counted, and a bad value raises
    [`InvalidColumnError`][matchusage.exceptions.InvalidColumnError] naming
    the column and the first bad row.

    Ids (organizations, users) are non-empty strings or integers; integer ids
    are reported as their decimal strings (organization ``17`` is ``"17"``).
    Dictionary-encoded columns (pandas categoricals, Arrow dictionaries) are
    passed as their integer codes with the labels in *organization_ids* or
    *user_ids*.

    Attributes:
        start_us: One row per match: its start, in integer microseconds since
            the Unix epoch, UTC.
        end_us: Each match's end in the same unit. An ongoing match has an
            end of [`ONGOING`][matchusage.MatchColumns.ONGOING] (or any value
            after every period), or is flagged in *ongoing*.
        organization: Each match's organization id (or code into
            *organization_ids*).
        participant_match: One row per participant: the row number of its
            match in the match columns.
        participant_user: Each participant row's user id (or code into
            *user_ids*).
        organization_ids: The labels of organization codes, if *organization*
            holds codes.
        user_ids: The labels of user codes, if *participant_user* holds codes.
        ongoing: Optional booleans, one per match: true for an ongoing match
            (its *end_us* is then ignored).
        match_id: Optional: each match's id (non-empty, unique strings).
            Needed, with *program*, by [`usage_report`][matchusage.usage_report]
            and [`explain`][matchusage.explain] on columns.
        program: Optional: each match's program id (or code into
            *program_ids*).
        program_ids: The labels of program codes, if *program* holds codes.
        participant_role: Optional: each participant row's role
            (``"mentor"``, ``"mentee"``, ``"other"``, or ``None``/``""`` for none).
    """

    ONGOING: ClassVar[int] = FOREVER
    """The end of a match that has not ended: after any instant a datetime can hold."""

    start_us: Any
    end_us: Any
    organization: Any
    participant_match: Any
    participant_user: Any
    organization_ids: Sequence[str] | None = None
    user_ids: Sequence[str] | None = None
    ongoing: Any = None
    match_id: Any = None
    program: Any = None
    program_ids: Sequence[str] | None = None
    participant_role: Any = None

    @classmethod
    def from_matches(
        cls, matches: Iterable[Match], programs: Iterable[Program] | Mapping[str, str]
    ) -> MatchColumns:
        """Columns (Python lists) holding the same facts as *matches*, ids, programs and roles too.

        Args:
            matches: The matches.
            programs: The programs the matches belong to, or a mapping from
                program id to organization id.

        Raises:
            matchusage.exceptions.UnknownRecordError: A match's program is not
                among *programs*.
            matchusage.exceptions.DuplicateMatchError: Two matches share an id.
        """
        organization_of = organizations_of_programs(programs)
        matches = list(matches)
        check_unique_ids(matches)
        starts, ends, organizations, ids, program_of = [], [], [], [], []
        rows: list[int] = []
        users: list[str] = []
        roles: list[str | None] = []
        for row, match in enumerate(matches):
            starts.append(match._start_us)
            ends.append(match._end_us)
            organizations.append(organization_of_match(match, organization_of))
            ids.append(match.id)
            program_of.append(match.program_id)
            people = sorted(match._people)
            users.extend(people)
            rows.extend([row] * len(people))
            given = match.roles
            roles.extend(given[user].value if user in given else None for user in people)
        return cls(
            starts,
            ends,
            organizations,
            rows,
            users,
            match_id=ids,
            program=program_of,
            participant_role=roles,
        )


def organizations_of_programs(programs: Iterable[Program] | Mapping[str, str]) -> dict[str, str]:
    """Program id -> organization id, from programs or such a mapping."""
    if isinstance(programs, Mapping):
        return dict(programs)
    return {program.id: program.organization_id for program in programs}


def organization_of_match(match: Match, organization_of: Mapping[str, str]) -> str:
    """The organization of *match*'s program, or an error naming the match."""
    try:
        return organization_of[match.program_id]
    except KeyError:
        raise UnknownRecordError(
            "program", match.program_id, context=f"Match {match.id!r}"
        ) from None


def plan_periods(periods: Mapping[str, Iterable[BillingPeriod]]) -> Plan:
    """Each organization's periods as a tuple without repeats, checked to be periods."""
    if not isinstance(periods, Mapping):
        raise InvalidRecordError(
            "columnar", "periods", periods, "a mapping of organization id to billing periods"
        )
    return {
        organization: _distinct(check_periods(spans)) for organization, spans in periods.items()
    }


def _distinct(periods: tuple[BillingPeriod, ...]) -> tuple[BillingPeriod, ...]:
    # Equal periods cover the same instants; comparing the integers is much
    # cheaper than hashing the datetimes.
    keys = [(p._start_us, p._end_us) for p in periods]
    if len(set(keys)) == len(keys):
        return periods
    first: dict[tuple[int, int], BillingPeriod] = {}
    for key, period in zip(keys, periods, strict=True):
        first.setdefault(key, period)
    return tuple(first.values())


def numpy_available() -> bool:
    """Whether numpy can be imported (the ``numpy`` extra is installed)."""
    try:
        return importlib.util.find_spec("numpy") is not None
    except ValueError:  # sys.modules["numpy"] is None: numpy was blocked
        return False


def _use_numpy(engine: Engine) -> bool:
    if engine == "python":
        return False
    if engine == "numpy":
        if not numpy_available():
            raise ModuleNotFoundError(
                f"engine='numpy' needs numpy: {install_hint('numpy')}", name="numpy"
            )
        return True
    if engine == "auto":
        return numpy_available()
    raise InvalidRecordError("columnar", "engine", engine, "'auto', 'numpy' or 'python'")


def _run(
    columns: MatchColumns, periods: Mapping[str, Iterable[BillingPeriod]], engine: Engine, ids: bool
) -> dict[str, dict[BillingPeriod, Any]]:
    if not isinstance(columns, MatchColumns):
        raise InvalidRecordError("columnar", "columns", columns, "a MatchColumns")
    plan = plan_periods(periods)
    if _use_numpy(engine):
        from ._columnar_numpy import numpy_engine

        found = numpy_engine(columns, plan, ids)
    else:
        found = python_engine(columns, plan, ids)
    return {org: dict(zip(spans, found[org], strict=True)) for org, spans in plan.items()}


def columnar_counts(
    columns: MatchColumns,
    periods: Mapping[str, Iterable[BillingPeriod]],
    *,
    engine: Engine = "auto",
) -> dict[str, dict[BillingPeriod, int]]:
    """The number of active users of each organization in each of its periods.

    The same rule as [`active_users_by_period`][matchusage.active_users_by_period]:
    a user is active in a period when one of their matches overlaps it by a
    positive amount, and counts once per organization and period.

    ```python
    columns = MatchColumns(start_us, end_us, organization, participant_match, participant_user)
    columnar_counts(columns, {"acme": cycle.closed_periods(before=now, count=6)})
    ```

    Args:
        columns: The matches and participants.
        periods: Organization id -> the periods to count (any periods: they
            may overlap or leave gaps). Matches of other organizations are
            ignored.
        engine: ``"numpy"``, ``"python"`` (pure Python, identical results) or
            ``"auto"`` (numpy when installed).

    Returns:
        Organization id -> period -> count, with every organization and
        period of *periods* (zero where nobody was active).

    Raises:
        matchusage.exceptions.InvalidColumnError: A column has a bad type,
            length or value.
    """
    return _run(columns, periods, engine, ids=False)


def columnar_active_users(
    columns: MatchColumns,
    periods: Mapping[str, Iterable[BillingPeriod]],
    *,
    engine: Engine = "auto",
) -> dict[str, dict[BillingPeriod, frozenset[str]]]:
    """The ids of the active users of each organization in each of its periods.

    Like [`columnar_counts`][matchusage.columnar_counts], with the user ids
    instead of their number.

    Returns:
        Organization id -> period -> user ids (integer ids as decimal strings).

    Raises:
        matchusage.exceptions.InvalidColumnError: A column has a bad type,
            length or value.
    """
    return _run(columns, periods, engine, ids=True)


# --- the pure-Python engine -------------------------------------------------


def as_list(column: Any) -> list[Any]:
    """A column as a Python list (numpy, pyarrow, pandas and polars all convert)."""
    if isinstance(column, list):
        return column
    for method in ("tolist", "to_pylist", "to_list"):
        convert = getattr(column, method, None)
        if convert is not None:
            return list(convert())
    return list(column)


def _ints(column: Any, name: str) -> list[int]:
    values = as_list(column)
    for row, value in enumerate(values):
        if type(value) is not int:
            raise InvalidColumnError(name, row, value, "an integer")
    return values


def _labels(column: Any, labels: Sequence[str] | None, name: str) -> list[str]:
    values = as_list(column)
    if labels is not None:
        names = label_list(labels, name)
        out = []
        for row, value in enumerate(values):
            if type(value) is not int or not 0 <= value < len(names):
                raise InvalidColumnError(name, row, value, f"a code in 0..{len(names) - 1}")
            out.append(names[value])
        return out
    out = []
    for row, value in enumerate(values):
        if type(value) is int:
            out.append(str(value))
        elif isinstance(value, str) and value:
            out.append(value)
        else:
            raise InvalidColumnError(name, row, value, "a non-empty string or an integer id")
    return out


def label_list(labels: Sequence[str], name: str) -> list[str]:
    """The labels of a dictionary-encoded id column, each checked to be a non-empty string."""
    names = as_list(labels)
    for row, label in enumerate(names):
        if not isinstance(label, str) or not label:
            raise InvalidColumnError(f"{name} labels", row, label, "a non-empty string")
    return names


def check_length(name: str, size: int, expected: int, of: str) -> None:
    """Raise unless column *name* has *expected* rows (one per *of*)."""
    if size != expected:
        raise InvalidColumnError(name, None, size, f"a column of {expected} rows (one per {of})")


def check_match_lengths(
    start: Sized, end: Sized, organization: Sized, ongoing: Sized | None
) -> None:
    """Raise unless every per-match column has as many rows as *start*."""
    columns = {"end_us": end, "organization": organization, "ongoing": ongoing}
    for name, column in columns.items():
        if column is not None:
            check_length(name, len(column), len(start), "match")


def python_engine(columns: MatchColumns, plan: Plan, ids: bool) -> dict[str, list[Any]]:
    """Counts (or id sets) per organization and period slot, in pure Python."""
    start = _ints(columns.start_us, "start_us")
    end = _ints(columns.end_us, "end_us")
    organization = _labels(columns.organization, columns.organization_ids, "organization")
    ongoing = None if columns.ongoing is None else as_list(columns.ongoing)
    check_match_lengths(start, end, organization, ongoing)
    size = len(start)
    if ongoing is not None:
        for row, flag in enumerate(ongoing):
            if type(flag) is not bool:
                raise InvalidColumnError("ongoing", row, flag, "a boolean")
        end = [FOREVER if flag else e for flag, e in zip(ongoing, end, strict=True)]
    for row, (s, e) in enumerate(zip(start, end, strict=True)):
        if e < s:
            raise InvalidColumnError("end_us", row, e, f"at or after start_us ({s})")
    match_of = _ints(columns.participant_match, "participant_match")
    user = _labels(columns.participant_user, columns.user_ids, "participant_user")
    check_length("participant_user", len(user), len(match_of), "participant_match row")
    for row, match in enumerate(match_of):
        if not 0 <= match < size:
            expected = f"a match row in 0..{size - 1}"
            raise InvalidColumnError("participant_match", row, match, expected)

    spans = {org: [(p._start_us, p._end_us) for p in periods] for org, periods in plan.items()}
    bits = [0] * size
    for row, (s, e, org) in enumerate(zip(start, end, organization, strict=True)):
        slots = spans.get(org)
        if e <= s or not slots:
            continue
        mask = 0
        for slot, (low, high) in enumerate(slots):
            if s < high and e > low:
                mask |= 1 << slot
        bits[row] = mask
    masks: dict[tuple[str, str], int] = {}
    for match, person in zip(match_of, user, strict=True):
        mask = bits[match]
        if mask:
            key = (organization[match], person)
            masks[key] = masks.get(key, 0) | mask

    if ids:
        sets: dict[str, list[set[str]]] = {org: [set() for _ in s] for org, s in spans.items()}
        for (org, person), mask in masks.items():
            for slot in _slots(mask):
                sets[org][slot].add(person)
        return {org: [frozenset(s) for s in found] for org, found in sets.items()}
    counts: dict[str, list[int]] = {org: [0] * len(s) for org, s in spans.items()}
    for (org, _), mask in masks.items():
        for slot in _slots(mask):
            counts[org][slot] += 1
    return dict(counts)


def matches_of_columns(columns: MatchColumns) -> list[Match]:
    """The matches the columns hold (for the pure-Python path of reports on columns)."""
    if columns.match_id is None or columns.program is None:
        missing = "match_id" if columns.match_id is None else "program"
        raise InvalidColumnError(missing, None, None, "match ids and programs (for a report)")
    start = _ints(columns.start_us, "start_us")
    end = _ints(columns.end_us, "end_us")
    program = _labels(columns.program, columns.program_ids, "program")
    ids = as_list(columns.match_id)
    ongoing = None if columns.ongoing is None else as_list(columns.ongoing)
    check_match_lengths(start, end, program, ongoing)
    check_length("match_id", len(ids), len(start), "match")
    if ongoing is not None:
        end = [FOREVER if flag is True else e for flag, e in zip(ongoing, end, strict=True)]
    match_of = _ints(columns.participant_match, "participant_match")
    user = _labels(columns.participant_user, columns.user_ids, "participant_user")
    check_length("participant_user", len(user), len(match_of), "participant_match row")
    roles = None if columns.participant_role is None else as_list(columns.participant_role)
    people: list[list[str]] = [[] for _ in start]
    given: list[dict[str, str]] = [{} for _ in start]
    for row, (match, person) in enumerate(zip(match_of, user, strict=True)):
        if not 0 <= match < len(start):
            raise InvalidColumnError(
                "participant_match", row, match, f"a match row in 0..{len(start) - 1}"
            )
        people[match].append(person)
        if roles is not None and roles[row]:
            given[match][person] = roles[row]
    found = []
    for row, match_id in enumerate(ids):
        if end[row] < start[row]:
            expected = f"at or after start_us ({start[row]})"
            raise InvalidColumnError("end_us", row, end[row], expected)
        try:
            begun = from_micros(start[row])
            ended = None if end[row] >= FOREVER else from_micros(end[row])
            found.append(Match(match_id, program[row], people[row], begun, ended, roles=given[row]))
        except (OverflowError, InvalidRecordError) as error:
            field = getattr(error, "field", "start_us")
            raise InvalidColumnError(
                field, row, getattr(error, "value", None), "a valid match"
            ) from None
    return found


def _slots(mask: int) -> Iterable[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low
