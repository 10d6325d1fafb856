"""Matches as columns: what the loaders read a matches file into.

A `MatchTable` holds one row per match and one per participant, with ids
as integer codes into label lists. It is checked when it is built (by the
loaders), so matches and `MatchColumns` are made from it without checks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import tzinfo
from types import MappingProxyType
from typing import Any, overload

import attrs

from ._columnar import MatchColumns
from ._model import _NO_ROLES, Match, Role


@attrs.frozen(eq=False)
class MatchTable:
    """Checked match columns; arrays are numpy arrays (or lists in the pure-Python path).

    Attributes:
        ids: Each match's id (a list, or an Arrow string array).
        program: Each match's program, a code into *program_ids*.
        program_ids: The program labels.
        start_us: Each match's start, UTC microseconds.
        end_us: Each match's end (``FOREVER`` when ongoing).
        start_zone: Each match's start offset, a code into *zones*.
        end_zone: Each match's end offset, a code into *zones*.
        zones: The fixed offsets the instants were written with.
        participant_match: One row per participant: its match's row; sorted.
        participant_user: Each participant's user, a code into *user_ids*.
        user_ids: The user labels.
        participant_role: Each participant's role, a code into *ROLES*
            (``NO_ROLE`` for none); ``None`` when no participant has a role.
    """

    ROLES = (Role.MENTOR, Role.MENTEE, Role.OTHER)
    NO_ROLE = 3

    ids: Any
    program: Any
    program_ids: Sequence[str]
    start_us: Any
    end_us: Any
    start_zone: Any
    end_zone: Any
    zones: Sequence[tzinfo]
    participant_match: Any
    participant_user: Any
    user_ids: Sequence[str]
    participant_role: Any = None

    def __len__(self) -> int:
        return len(self.ids)

    def matches(self) -> list[Match]:
        """The matches, in file order, each equal to the one the row-by-row loader builds."""
        lists = [
            _as_list(column)
            for column in (self.program, self.start_us, self.end_us, self.start_zone, self.end_zone)
        ]
        programs, starts, ends, start_zones, end_zones = lists
        match_of = _as_list(self.participant_match)
        user_labels = list(self.user_ids)
        users = [user_labels[code] for code in _as_list(self.participant_user)]
        roles = None if self.participant_role is None else _as_list(self.participant_role)
        labels, zones = self.program_ids, self.zones
        pairs: dict[tuple[int, int], tuple[tzinfo, tzinfo]] = {}
        bounds = _bounds(match_of, len(self.ids))
        trusted = Match._trusted
        found = []
        ids = self.ids if isinstance(self.ids, list) else self.ids.to_pylist()
        for row, match_id in enumerate(ids):
            first, stop = bounds[row], bounds[row + 1]
            key = (start_zones[row], end_zones[row])
            pair = pairs.get(key)
            if pair is None:
                pair = pairs[key] = (zones[key[0]], zones[key[1]])
            given = _NO_ROLES if roles is None else _roles_of(users, roles, first, stop)
            found.append(
                trusted(
                    match_id,
                    labels[programs[row]],
                    tuple(users[first:stop]),
                    starts[row],
                    ends[row],
                    pair,
                    given,
                )
            )
        return found

    def columns(self, organization_id: str) -> MatchColumns:
        """The matches as columns of the one organization *organization_id*.

        They are `CheckedColumns`: a report takes them without checking them again.
        """
        import numpy as np

        roles = None
        if self.participant_role is not None:
            names = np.array([role.value for role in self.ROLES] + [None], dtype=object)
            roles = names[self.participant_role]
        return CheckedColumns(
            self.start_us,
            self.end_us,
            np.zeros(len(self.ids), dtype=np.int64),
            self.participant_match,
            self.participant_user,
            organization_ids=[organization_id],
            user_ids=self.user_ids,
            match_id=self.ids,
            program=self.program,
            program_ids=self.program_ids,
            participant_role=roles,
        )


class TextLabels(Sequence[str]):
    """Labels kept as an Arrow string array, made into a list the first time one is read.

    A report that only counts never reads its hundreds of thousands of user ids.
    """

    def __init__(self, array: Any) -> None:
        self._array = array
        self._list: list[str] | None = None

    def _labels(self) -> list[str]:
        if self._list is None:
            self._list = self._array.to_pylist()
        return self._list

    def __len__(self) -> int:
        return len(self._array)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self._labels()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._labels())


@attrs.frozen(eq=False)
class CheckedColumns(MatchColumns):
    """Columns of a `MatchTable`, checked by the loader that read them.

    Participant rows are grouped by match; ids and programs are integer codes
    into their labels.
    """


def _roles_of(users: list[str], roles: list[int], first: int, stop: int) -> Mapping[str, Role]:
    given = {
        users[row]: MatchTable.ROLES[roles[row]]
        for row in range(first, stop)
        if roles[row] != MatchTable.NO_ROLE
    }
    return MappingProxyType(given) if given else _NO_ROLES


def _bounds(match_of: list[int], size: int) -> list[int]:
    """Where each match's participant rows start (rows are sorted by match), plus the end."""
    bounds = [0] * (size + 1)
    for match in match_of:
        bounds[match + 1] += 1
    for row in range(size):
        bounds[row + 1] += bounds[row]
    return bounds


def _as_list(column: Any) -> list[Any]:
    return column if isinstance(column, list) else list(column.tolist())
