"""UserIds: a report's set of user ids kept as codes behaves as the frozenset of its ids."""

from __future__ import annotations

import operator
import pickle
from collections.abc import Set as AbstractSet

import pytest
from hypothesis import given
from hypothesis import strategies as st

np = pytest.importorskip("numpy")

from matchusage._user_ids import UserIds  # noqa: E402

LABELS = ["ann", "bob", "cyd", "dan", "eve", "fay"]


class Labels:
    """A user column of LABELS, counting how often ids are made."""

    user_count = len(LABELS)

    def __init__(self) -> None:
        self.made = 0

    def id_set(self, codes: object) -> frozenset[str]:
        self.made += 1
        return frozenset(LABELS[code] for code in np.asarray(codes).tolist())


codes = st.sets(st.integers(0, len(LABELS) - 1)).map(lambda found: sorted(found))


def ids(found: list[int], labels: Labels) -> UserIds:
    return UserIds(np.array(found, dtype=np.int64), labels)


def plain(found: list[int]) -> frozenset[str]:
    return frozenset(LABELS[code] for code in found)


OPERATORS = [operator.sub, operator.or_, operator.and_, operator.xor]
COMPARISONS = [operator.eq, operator.ne, operator.le, operator.lt, operator.ge, operator.gt]


@given(codes, codes)
def test_user_ids_behave_as_the_frozenset_of_their_ids(first: list[int], second: list[int]) -> None:
    labels = Labels()
    mine, other, expected, expected_other = (
        ids(first, labels),
        ids(second, labels),
        plain(first),
        plain(second),
    )
    assert isinstance(mine, AbstractSet)
    assert (len(mine), bool(mine), set(mine)) == (len(expected), bool(expected), set(expected))
    assert all((label in mine) == (label in expected) for label in [*LABELS, "zed", 3])
    assert hash(mine) == hash(expected)
    assert repr(mine) == repr(expected)
    assert pickle.loads(pickle.dumps(mine)) == expected
    for partner, expected_partner in [
        (other, expected_other),  # the same report: differences need no ids
        (ids(second, Labels()), expected_other),  # another report
        (expected_other, expected_other),
        (set(expected_other), expected_other),
    ]:
        for combine in OPERATORS:
            assert combine(mine, partner) == combine(expected, expected_partner)
            assert combine(partner, mine) == combine(expected_partner, expected)
        for compare in COMPARISONS:
            assert compare(mine, partner) == compare(expected, expected_partner)
            assert compare(partner, mine) == compare(expected_partner, expected)
    assert mine.union(expected_other, ["zed"]) == expected.union(expected_other, ["zed"])
    assert mine.intersection(expected_other) == expected.intersection(expected_other)
    assert mine.difference(expected_other) == expected.difference(expected_other)
    assert mine.symmetric_difference(other) == expected.symmetric_difference(expected_other)
    assert mine.issubset(other) == expected.issubset(expected_other)
    assert mine.issuperset(other) == expected.issuperset(expected_other)
    assert mine.isdisjoint(other) == expected.isdisjoint(expected_other)
    assert mine.copy() == expected


@given(codes, codes)
def test_counting_and_differences_within_a_report_make_no_ids(
    first: list[int], second: list[int]
) -> None:
    labels = Labels()
    mine, other = ids(first, labels), ids(second, labels)
    new = mine - other
    assert isinstance(new, UserIds)
    assert (len(mine), len(new), mine == other) == (
        len(first),
        len(set(first) - set(second)),
        first == second,
    )
    assert labels.made == 0
    assert new == plain(first) - plain(second)


def test_user_ids_are_not_equal_to_what_is_not_a_set() -> None:
    mine = ids([0, 1], Labels())
    assert mine != ["ann", "bob"]
    assert mine == {"ann": 1, "bob": 2}.keys()  # a set view is a set
    with pytest.raises(TypeError):
        mine - ["ann"]  # type: ignore[operator]
    with pytest.raises(TypeError):
        mine < ["ann"]  # type: ignore[operator]  # noqa: B015
