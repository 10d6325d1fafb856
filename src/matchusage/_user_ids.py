"""A set of user ids kept as integer codes until its ids are read (reports on columns).

A report on columns counts hundreds of thousands of users per period, per
program and per attribution; most callers only count them (the command line
prints sizes). `UserIds` holds each figure as an array of user codes: its
size and its differences with figures of the same report need no strings,
and the `frozenset` of ids is made the first time an id is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.integer[Any]]


class UserLabels(Protocol):
    """Where the codes of a `UserIds` come from: the report's user column."""

    def id_set(self, codes: Ints) -> frozenset[str]:
        """The user ids of *codes*."""

    @property
    def user_count(self) -> int:
        """How many distinct users the column holds (codes are ``0 .. user_count - 1``)."""


class UserIds(AbstractSet[str]):
    """A read-only set of user ids that behaves as a `frozenset` of them.

    Equal to (and hashed like) the `frozenset` of the same ids; has the set
    operators and `frozenset`'s methods, which give `frozenset`s (a difference
    of two figures of the same report stays a `UserIds`).
    """

    __slots__ = ("_codes", "_labels", "_made")

    def __init__(self, codes: Ints, labels: UserLabels) -> None:
        self._codes = codes  # distinct codes
        self._labels = labels
        self._made: frozenset[str] | None = None

    def _ids(self) -> frozenset[str]:
        if self._made is None:
            self._made = self._labels.id_set(self._codes)
        return self._made

    def _same_source(self, other: object) -> bool:
        return isinstance(other, UserIds) and other._labels is self._labels

    def _without(self, other: UserIds) -> UserIds:
        """The codes of self not in *other* (a figure of the same report), as a `UserIds`."""
        taken = np.zeros(self._labels.user_count, dtype=bool)
        taken[other._codes] = True
        return UserIds(self._codes[~taken[self._codes]], self._labels)

    def __len__(self) -> int:
        return len(self._codes)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids())

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._ids()

    def __repr__(self) -> str:
        return repr(self._ids())

    def __hash__(self) -> int:
        return hash(self._ids())

    def __reduce__(self) -> tuple[Any, ...]:
        return (frozenset, (tuple(self._ids()),))

    def __eq__(self, other: object) -> bool:
        if self._same_source(other):
            assert isinstance(other, UserIds)
            return len(self) == len(other) and not len(self._without(other))
        plain = _plain(other)
        return NotImplemented if plain is None else self._ids() == plain

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __sub__(self, other: object) -> AbstractSet[str]:
        if self._same_source(other):
            assert isinstance(other, UserIds)
            return self._without(other)
        plain = _plain(other)
        return NotImplemented if plain is None else self._ids() - plain

    def __rsub__(self, other: object) -> AbstractSet[Any]:
        plain = _plain(other)
        return NotImplemented if plain is None else plain - self._ids()

    def __and__(self, other: object) -> frozenset[str]:
        plain = _plain(other)
        return NotImplemented if plain is None else self._ids() & plain

    def __or__(self, other: object) -> frozenset[str]:
        plain = _plain(other)
        return NotImplemented if plain is None else self._ids() | plain

    def __xor__(self, other: object) -> frozenset[str]:
        plain = _plain(other)
        return NotImplemented if plain is None else self._ids() ^ plain

    __rand__ = __and__
    __ror__ = __or__
    __rxor__ = __xor__

    def __le__(self, other: object) -> bool:
        plain = _plain(other)
        return NotImplemented if plain is None else self._ids() <= plain

    def __lt__(self, other: object) -> bool:
        plain = _plain(other)
        return NotImplemented if plain is None else self._ids() < plain

    def __ge__(self, other: object) -> bool:
        plain = _plain(other)
        return NotImplemented if plain is None else self._ids() >= plain

    def __gt__(self, other: object) -> bool:
        plain = _plain(other)
        return NotImplemented if plain is None else self._ids() > plain

    # frozenset's methods, which take any iterables.
    def union(self, *others: Iterable[Any]) -> frozenset[str]:
        """The ids in this set or any of *others*, as `frozenset.union`."""
        return self._ids().union(*others)

    def intersection(self, *others: Iterable[Any]) -> frozenset[str]:
        """The ids in this set and all of *others*, as `frozenset.intersection`."""
        return self._ids().intersection(*others)

    def difference(self, *others: Iterable[Any]) -> frozenset[str]:
        """The ids in this set and none of *others*, as `frozenset.difference`."""
        return self._ids().difference(*others)

    def symmetric_difference(self, other: Iterable[Any]) -> frozenset[str]:
        """The ids in exactly one of this set and *other*."""
        return self._ids().symmetric_difference(other)

    def issubset(self, other: Iterable[Any]) -> bool:
        """Whether every id of this set is in *other*."""
        return self._ids().issubset(other)

    def issuperset(self, other: Iterable[Any]) -> bool:
        """Whether every item of *other* is in this set."""
        return self._ids().issuperset(other)

    def isdisjoint(self, other: Iterable[Any]) -> bool:
        """Whether this set and *other* have no id in common."""
        return self._ids().isdisjoint(other)

    def copy(self) -> frozenset[str]:
        """The ids as a `frozenset`."""
        return self._ids()


def _plain(other: object) -> frozenset[Any] | set[Any] | None:
    """*other* as a built-in set for an operator, or None if it is not a set."""
    if isinstance(other, UserIds):
        return other._ids()
    if isinstance(other, (set, frozenset)):
        return other
    if isinstance(other, AbstractSet):
        return frozenset(other)
    return None
