"""Usage reports, explanations and exports from columns (imported only when numpy is used).

The figures of a report (users per period, per program, attribution, new
and dropped users, the open period) come from whole-array operations over
the match and participant columns: each match gets a bitmask of the report's
periods it overlaps, as in the columnar engine. `Match` objects are made
only where the report hands matches out: the matches current at the
report's instant, and the evidence behind explanations and exports.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import timezone
from itertools import pairwise
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._columnar import MatchColumns, as_list, check_length, check_match_lengths
from ._columnar_numpy import _bits_dtype, _Codes, _int_column
from ._model import _NO_ROLES, Match, Role
from ._periods import BillingPeriod
from ._time import FOREVER
from ._user_ids import UserIds
from .exceptions import DuplicateMatchError, InvalidColumnError

if TYPE_CHECKING:
    from ._export import UserRuns

Ints = npt.NDArray[np.int64]
_UTC_ZONES = (timezone.utc, timezone.utc)
_ROLES = {role.value: role for role in Role}


class ReportColumns:
    """Checked columns of a report's matches: codes, spans and a way to build `Match` objects.

    Columns a loader built from a file it checked (`CheckedColumns`) are
    taken as they are; any other columns are checked first.
    """

    def __init__(self, columns: MatchColumns) -> None:
        from ._match_table import CheckedColumns

        if isinstance(columns, CheckedColumns):
            self._take_checked(columns)
        else:
            self._check(columns)
        # Where each match's participant rows begin (rows are grouped by match), and the end.
        self.bounds = np.zeros(len(self.start) + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.match_of, minlength=len(self.start)), out=self.bounds[1:])
        self._user_labels: list[str] | None = None
        self._user_array: npt.NDArray[np.object_] | None = None
        self._program_labels: list[str] | None = None
        self._made: dict[int, Match] = {}

    def _take_checked(self, columns: MatchColumns) -> None:
        self.start, self.end = columns.start_us, columns.end_us
        self.ids = MatchIds(columns.match_id, checked=True)
        self.program = _Codes(columns.program, columns.program_ids, "program", checked=True)
        self.user = _Codes(columns.participant_user, columns.user_ids, "user", checked=True)
        # Participant rows come grouped by match, in file order.
        self.match_of, self.user_codes = columns.participant_match, self.user.codes
        self.roles = columns.participant_role

    def _check(self, columns: MatchColumns) -> None:
        self.start = _int_column(columns.start_us, "start_us")
        end = _int_column(columns.end_us, "end_us")
        size = len(self.start)
        if columns.match_id is None:
            raise InvalidColumnError("match_id", None, None, "the match ids (for a report)")
        if columns.program is None:
            raise InvalidColumnError("program", None, None, "each match's program (for a report)")
        self.ids = MatchIds(columns.match_id)
        self.program = _Codes(columns.program, columns.program_ids, "program")
        check_match_lengths(self.start, end, self.program.codes, columns.ongoing)
        check_length("match_id", len(self.ids), size, "match")
        if columns.ongoing is not None:
            flags = np.asarray(columns.ongoing)
            if flags.dtype.kind != "b":
                raise InvalidColumnError("ongoing", None, flags.dtype, "booleans")
            end = np.where(flags, FOREVER, end)
        backwards = end < self.start
        if backwards.any():
            row = int(np.argmax(backwards))
            expected = f"at or after start_us ({self.start[row]})"
            raise InvalidColumnError("end_us", row, int(end[row]), expected)
        self.end = end
        match_of = _int_column(columns.participant_match, "participant_match")
        self.user = _Codes(columns.participant_user, columns.user_ids, "participant_user")
        check_length(
            "participant_user", len(self.user.codes), len(match_of), "participant_match row"
        )
        outside = (match_of < 0) | (match_of >= size)
        if outside.any():
            row = int(np.argmax(outside))
            bad = int(match_of[row])
            raise InvalidColumnError("participant_match", row, bad, f"a match row in 0..{size - 1}")
        # Participant rows grouped by match (stable: in the order given); loaders give
        # them grouped already.
        order = np.arange(len(match_of))
        if (np.diff(match_of) < 0).any():
            order = np.argsort(match_of, kind="stable")
        self.match_of = match_of[order]
        self.user_codes = self.user.codes[order]
        self.roles = None
        if columns.participant_role is not None:
            roles = np.asarray(as_list(columns.participant_role), dtype=object)
            check_length("participant_role", len(roles), len(match_of), "participant_match row")
            self.roles = roles[order]

    @property
    def user_labels(self) -> list[str]:
        """Every user id, by code."""
        if self._user_labels is None:
            self._user_labels = self.user.labeler()(list(range(self.user.size)))
        return self._user_labels

    @property
    def user_count(self) -> int:
        """How many distinct users the columns hold."""
        return self.user.size

    def id_set(self, codes: npt.NDArray[np.integer[Any]]) -> frozenset[str]:
        """The user ids of *codes*."""
        if self._user_array is None:
            self._user_array = np.array(self.user_labels, dtype=object)
        return frozenset(self._user_array[codes].tolist())

    def users_of(self, codes: Ints) -> UserIds:
        """The users of *codes* (distinct), as a set whose ids are made when read."""
        # A report holds dozens of these: half the memory in 32 bits.
        small = codes.astype(np.int32) if self.user.size < 2**31 else codes
        return UserIds(small, self)

    @property
    def program_labels(self) -> list[str]:
        """Every program id, by code."""
        if self._program_labels is None:
            self._program_labels = self.program.labeler()(list(range(self.program.size)))
        return self._program_labels

    def match(self, row: int) -> Match:
        """The match of *row*, made once."""
        made = self._made.get(row)
        if made is not None:
            return made
        first, stop = int(self.bounds[row]), int(self.bounds[row + 1])
        labels = self.user_labels
        people = tuple(dict.fromkeys(labels[c] for c in self.user_codes[first:stop].tolist()))
        if not people:
            raise InvalidColumnError("participant_match", None, row, "participants for every match")
        roles: Mapping[str, Role] = _NO_ROLES
        if self.roles is not None:
            given = {labels[int(self.user_codes[r])]: self.roles[r] for r in range(first, stop)}
            named = {user: _role(user, role) for user, role in given.items() if role}
            if named:
                roles = MappingProxyType(named)
        made = self._made[row] = Match._trusted(
            self.ids[row],
            self.program_labels[int(self.program.codes[row])],
            people,
            int(self.start[row]),
            int(self.end[row]),
            _UTC_ZONES,
            roles,
        )
        return made

    def bits(self, periods: Sequence[BillingPeriod]) -> npt.NDArray[np.unsignedinteger[Any]]:
        """Each match's bitmask of the *periods* it overlaps by a positive amount.

        As narrow an integer as the periods allow (bit *j* for the *j*-th period).
        """
        dtype = _bits_dtype(len(periods))
        bits = np.zeros(len(self.start), dtype=dtype)
        live = self.end > self.start
        for slot, period in enumerate(periods):
            hit = live & (self.start < period._end_us) & (self.end > period._start_us)
            bits |= hit.astype(dtype) << dtype(slot)
        return bits


def _role(user: str, role: object) -> Role:
    found = _ROLES.get(role) if isinstance(role, str) else role if isinstance(role, Role) else None
    if found is None:
        raise InvalidColumnError("participant_role", None, role, f"a role of {user!r}, or none")
    return found


class MatchIds:
    """The match id column, checked: non-empty, unique strings; Arrow columns stay Arrow."""

    def __init__(self, column: Any, *, checked: bool = False) -> None:
        self._arrow: Any = None
        self._list: list[str] | None = None
        if checked and not isinstance(column, list):
            self._arrow = column
        elif checked:
            self._list = column
        elif _plain_arrow_strings(column):
            self._arrow = column
        else:
            self._list = _checked_ids(column)

    def __len__(self) -> int:
        source = self._arrow if self._list is None else self._list
        return len(source)

    def __getitem__(self, row: int) -> str:
        if self._list is not None:
            return self._list[row]
        value: str = self._arrow[row].as_py()
        return value

    def arrow(self) -> Any:
        """The Arrow column the ids came in, or ``None`` if they came as a list."""
        return self._arrow

    def labels(self) -> list[str]:
        """Every id, by row (an Arrow column is turned into a list once)."""
        if self._list is None:
            self._list = self._arrow.to_pylist()
        return self._list

    def ranks(self) -> Ints:
        """Each id's position in id order."""
        if self._list is not None:
            order = np.argsort(np.array(self._list, dtype=object), kind="stable")
        else:
            import pyarrow.compute as pc

            indices = pc.sort_indices(self._arrow)
            order = np.frombuffer(
                indices.buffers()[1], dtype=np.uint64, count=len(indices), offset=indices.offset * 8
            )
        ranks = np.empty(len(order), dtype=np.int64)
        ranks[order] = np.arange(len(order))
        return ranks


def _plain_arrow_strings(column: Any) -> bool:
    """Whether *column* is an Arrow string array of non-empty, unique values (no nulls)."""
    if type(column).__module__.split(".")[0] != "pyarrow" or not hasattr(column, "null_count"):
        return False
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_string(column.type) or column.null_count:
        return False
    shortest = pc.min(pc.binary_length(column)).as_py()
    return bool(shortest) and len(pc.unique(column)) == len(column)


def _checked_ids(column: Any) -> list[str]:
    ids = as_list(column)
    for row, value in enumerate(ids):
        if not isinstance(value, str) or not value:
            raise InvalidColumnError("match_id", row, value, "a non-empty string")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        for value in ids:
            if value in seen:
                raise DuplicateMatchError(value)
            seen.add(value)
    return ids


class ColumnEvidence:
    """The matches behind each user's activity, from columns: what a `Sweep` gives objects."""

    def __init__(self, data: ReportColumns, periods: Sequence[BillingPeriod]) -> None:
        self.data = data
        self.periods = tuple(periods)
        self.slot = {period: slot for slot, period in enumerate(self.periods)}
        self.match_bits = data.bits(self.periods)
        self.row_bits = self.match_bits[data.match_of]
        self._rank: Ints | None = None
        self._user_ranks: Ints | None = None
        self._by_user: dict[int, Ints] | None = None

    def _order(self, rows: Ints) -> Ints:
        """*rows* (participant rows) ordered by match start, then match id."""
        return rows[np.argsort(self._match_rank()[self.data.match_of[rows]], kind="stable")]

    def _match_rank(self) -> Ints:
        """Each match's place in the order of match start, then match id (made once)."""
        if self._rank is None:
            data = self.data
            order = np.lexsort((data.ids.ranks(), data.start))
            self._rank = np.empty(len(order), dtype=np.int64)
            self._rank[order] = np.arange(len(order))
        return self._rank

    def _user_rank(self) -> Ints:
        """Each user's place in the order of user ids (made once)."""
        if self._user_ranks is None:
            labels = self.data.user_labels
            order = np.array(sorted(range(len(labels)), key=labels.__getitem__), dtype=np.int64)
            self._user_ranks = np.empty(len(order), dtype=np.int64)
            self._user_ranks[order] = np.arange(len(order))
        return self._user_ranks

    def evidence(self, user_id: str, period: BillingPeriod) -> list[Match]:
        """The matches of *user_id* overlapping *period* (one of the periods), by start then id."""
        code = self.data.user.code_of(user_id)
        if code is None:
            return []
        bit = 1 << self.slot[period]
        rows = np.flatnonzero((self.data.user_codes == code) & ((self.row_bits & bit) != 0))
        return [self.data.match(int(self.data.match_of[r])) for r in self._order(rows).tolist()]

    def evidence_by_period(
        self, periods: Sequence[BillingPeriod]
    ) -> Iterator[Iterator[tuple[str, list[Match]]]]:
        """For each of *periods* in turn, its active users by id, each with their evidence."""
        for period in periods:
            yield self._users_of(period)

    def spans_by_period(self, periods: Sequence[BillingPeriod]) -> Iterator[UserRuns]:
        """What `evidence_by_period` gives, kept in columns: what exports read."""
        for period in periods:
            yield self._spans_of(period)

    def _period_rows(self, period: BillingPeriod) -> Ints:
        """The participant rows of *period*, by user id, then match start, then match id."""
        bit = 1 << self.slot[period]
        rows = np.flatnonzero((self.row_bits & bit) != 0)
        match_rank, user_rank = self._match_rank(), self._user_rank()
        matches = match_rank[self.data.match_of[rows]]
        users = user_rank[self.data.user_codes[rows]]
        if len(user_rank) * len(match_rank) < 2**63:
            # One key, one sort: rows of equal keys (a user listed twice in a match) are alike.
            return rows[np.argsort(users * len(match_rank) + matches)]
        return rows[np.lexsort((matches, users))]

    def _users_of(self, period: BillingPeriod) -> Iterator[tuple[str, list[Match]]]:
        data = self.data
        labels = data.user_labels
        rows = self._period_rows(period)
        users = data.user_codes[rows]
        matches = data.match_of[rows].tolist()
        for first, stop in _runs(users):
            yield labels[int(users[first])], [data.match(m) for m in matches[first:stop]]

    def _spans_of(self, period: BillingPeriod) -> UserRuns:
        from ._export import UserRuns

        data = self.data
        rows = self._period_rows(period)
        users = data.user_codes[rows]
        matches = data.match_of[rows]
        first = np.flatnonzero(np.diff(users, prepend=-1))  # codes are not negative
        ends = np.zeros(0, dtype=np.int64)
        if len(first):
            ends = np.maximum.reduceat(data.end[matches], first)
        return UserRuns(data, users[first], np.append(first, len(rows)), matches, ends)


def _or_by_key(
    keys: Ints, bits: npt.NDArray[np.unsignedinteger[Any]], space: int
) -> tuple[Ints, npt.NDArray[np.unsignedinteger[Any]]]:
    """The distinct *keys* (in ``0 .. space - 1``), in order, and the OR of each one's *bits*.

    A table over every possible key when it is not much larger than *keys*,
    else a sort.
    """
    if space <= 8 * len(keys) + 65536:
        table = np.zeros(space, dtype=bits.dtype)
        np.bitwise_or.at(table, keys, bits)
        found = np.flatnonzero(table)
        return found, table[found]
    found, inverse = np.unique(keys, return_inverse=True)
    masks = np.zeros(len(found), dtype=bits.dtype)
    np.bitwise_or.at(masks, inverse, bits)
    return found, masks


def _small_codes(size: int) -> type[np.signedinteger[Any]]:
    """The smallest integer type for codes below *size* (numpy sorts 16-bit ones by radix)."""
    return np.int16 if size <= 2**15 else np.int64


def _runs(codes: Ints) -> Iterator[tuple[int, int]]:
    """The (first, stop) row bounds of each run of equal *codes*."""
    bounds = [0, *(np.flatnonzero(np.diff(codes)) + 1).tolist(), len(codes)]
    if len(codes):
        yield from pairwise(bounds)


class ReportFigures:
    """The figures of a usage report over *periods*, computed on columns."""

    def __init__(self, evidence: ColumnEvidence) -> None:
        self.evidence = evidence
        data = evidence.data
        self.rows = np.flatnonzero(evidence.row_bits)  # rows of a match in some period
        self.row_users = data.user_codes[self.rows]
        self.row_bits = evidence.row_bits[self.rows]
        self.user_bits = np.zeros(data.user.size, dtype=self.row_bits.dtype)  # by user code
        np.bitwise_or.at(self.user_bits, self.row_users, self.row_bits)
        self._pairs: tuple[Ints, npt.NDArray[np.unsignedinteger[Any]]] | None = None

    def users(self, slot: int) -> UserIds:
        """The users active in period *slot*."""
        bit = 1 << slot
        return self.evidence.data.users_of(np.flatnonzero(self.user_bits & bit))

    def _program_pairs(self) -> tuple[Ints, npt.NDArray[np.unsignedinteger[Any]]]:
        """Each (program, user) pair with a match, in order, and its mask of periods."""
        if self._pairs is None:
            data = self.evidence.data
            programs = data.program.codes[data.match_of[self.rows]]
            keys = programs * data.user.size + self.row_users
            self._pairs = _or_by_key(keys, self.row_bits, data.program.size * data.user.size)
        return self._pairs

    def by_program(self, slots: Sequence[int]) -> list[Mapping[str, AbstractSet[str]]]:
        """For each of *slots*: each program's users, keyed by sorted program id."""
        pairs, masks = self._program_pairs()
        size = self.evidence.data.user.size
        found = []
        for slot in slots:
            hit = pairs[(masks & (1 << slot)) != 0]
            found.append(self._grouped(hit // size, hit % size))  # by program, then user
        return found

    def attributed(self, slots: Sequence[int]) -> list[Mapping[str, AbstractSet[str]]]:
        """For each of *slots*: each user under the program of their earliest match in it.

        Ties on the start go to the smallest program id, as in the object path.
        """
        data = self.evidence.data
        matches = data.match_of[self.rows]
        # Rows by user, then by their match's rank in (start, program id) order.
        rank = self._match_ranks()
        order = np.argsort(self.row_users * len(rank) + rank[matches])
        users, bits = self.row_users[order], self.row_bits[order]
        programs = data.program.codes[matches[order]]
        found = []
        for slot in slots:
            hit = np.flatnonzero((bits & (1 << slot)) != 0)
            slot_users = users[hit]
            first = np.ones(len(hit), dtype=bool)
            first[1:] = slot_users[1:] != slot_users[:-1]
            slot_programs = programs[hit[first]]
            by_program = np.argsort(
                slot_programs.astype(_small_codes(data.program.size)), kind="stable"
            )
            found.append(self._grouped(slot_programs[by_program], slot_users[first][by_program]))
        return found

    def _match_ranks(self) -> Ints:
        """Each match's rank by start, then program id (equal pairs in any order)."""
        data = self.evidence.data
        labels = data.program_labels
        program_rank = np.argsort(np.argsort(np.array(labels, dtype=object), kind="stable"))
        counted = np.flatnonzero(self.evidence.match_bits)  # only these are ranked
        start, ranks = data.start[counted], program_rank[data.program.codes[counted]]
        programs = len(labels) or 1
        low = int(start.min()) if len(start) else 0
        span = int(start.max()) - low + 1 if len(start) else 1
        if span * programs < 2**62:  # start and program in one key: one sort
            order = np.argsort((start - low) * programs + ranks)
        else:
            order = np.lexsort((ranks, start))
        found = np.zeros(len(data.start), dtype=np.int64)
        found[counted[order]] = np.arange(len(order))
        return found

    def _grouped(self, programs: Ints, users: Ints) -> Mapping[str, AbstractSet[str]]:
        """Each program's *users* (rows sorted by program code), keyed by sorted program id."""
        data = self.evidence.data
        program_labels = data.program_labels
        bounds = np.flatnonzero(np.diff(programs)) + 1
        groups = {}
        for part_programs, part_users in zip(
            np.split(programs, bounds), np.split(users, bounds), strict=True
        ):
            if len(part_programs):
                groups[program_labels[int(part_programs[0])]] = data.users_of(part_users)
        return MappingProxyType({key: groups[key] for key in sorted(groups)})

    def current_matches(self, slot: int) -> Mapping[str, tuple[Match, ...]]:
        """The matches overlapping period *slot* per program; made when a program is read."""
        from ._report import MatchesByProgram

        data = self.evidence.data
        bit = 1 << slot
        rows = np.flatnonzero((self.evidence.match_bits & bit) != 0)
        programs = data.program.codes[rows]
        order = np.argsort(programs, kind="stable")
        rows, programs = rows[order], programs[order]
        bounds = np.flatnonzero(np.diff(programs)) + 1
        labels = data.program_labels
        grouped = {
            labels[int(part[0])]: found.tolist()
            for part, found in zip(np.split(programs, bounds), np.split(rows, bounds), strict=True)
            if len(part)
        }
        return MatchesByProgram(grouped, data.match, self.by_program([slot])[0])
