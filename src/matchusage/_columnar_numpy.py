"""The vectorised engine of the columnar path (imported only when numpy is used).

Steps, each a handful of whole-array numpy operations:

1. Ids become dense integer codes (integer columns are used as they are when
   their values are small enough; strings are encoded once).
2. Each match gets a bitmask of the periods of its organization it overlaps:
   one comparison per period slot, not per (match, period) in Python.
3. Participants become dense (organization, user) pair codes: a user seen in
   one organization is their own code; the rare user in several
   organizations gets one extra code per further organization.
4. The masks of each pair are OR-ed together (``np.bitwise_or.at``), and a
   period's count is the number of pairs with its bit set, per organization.

More than 64 periods for one organization are handled 64 at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._columnar import MatchColumns, Plan, as_list, check_length, check_match_lengths, label_list
from ._time import FOREVER
from .exceptions import InvalidColumnError

IntArray = npt.NDArray[np.int64]
_LOW = np.iinfo(np.int64).min
_HIGH = np.iinfo(np.int64).max


def _int_column(column: Any, name: str) -> IntArray:
    array = np.asarray(column)
    if array.ndim == 1 and array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu" or array.ndim != 1:
        values = as_list(column) if array.ndim == 1 else []
        row = next((r for r, v in enumerate(values) if type(v) is not int), None)
        value = values[row] if row is not None else array.dtype
        raise InvalidColumnError(name, row, value, "an integer")
    if array.dtype == np.uint64 and array.size and array.max() > _HIGH:
        row = int(np.argmax(array > _HIGH))
        raise InvalidColumnError(name, row, int(array[row]), "an integer below 2**63")
    return array.astype(np.int64, copy=False)


class _Codes:
    """An id column as dense integer codes ``0 .. size - 1`` and a way back to the ids."""

    def __init__(
        self, column: Any, labels: Sequence[str] | None, name: str, *, checked: bool = False
    ) -> None:
        self.labels: Sequence[str] | None = None
        self.values: npt.NDArray[Any] | None = None  # sorted distinct integer ids
        self.direct = False  # codes are the integer ids themselves
        self._index: dict[str, int] | None = None
        if labels is not None and checked:  # codes and labels a loader built and checked
            self.codes: IntArray = column
            self.labels, self.size = labels, len(labels)
            return
        if labels is not None:
            self.labels = label_list(labels, name)
            self.codes = _int_column(column, name)
            self.size = len(self.labels)
            if self.codes.size and (self.codes.min() < 0 or self.codes.max() >= self.size):
                row = int(np.argmax((self.codes < 0) | (self.codes >= self.size)))
                bad = int(self.codes[row])
                raise InvalidColumnError(name, row, bad, f"a code in 0..{self.size - 1}")
            return
        array = np.asarray(column)
        if array.dtype.kind in "iu" and array.ndim == 1:
            array = _int_column(array, name)
            if array.size and array.min() >= 0 and array.max() < 4 * array.size + 1024:
                self.codes, self.size, self.direct = array, int(array.max()) + 1, True
            elif array.size:
                self.values, self.codes = np.unique(array, return_inverse=True)
                self.size = len(self.values)
            else:
                self.codes, self.size, self.direct = array, 0, True
            return
        index: dict[Any, int] = {}
        values = as_list(column)
        codes = np.fromiter(
            (index.setdefault(value, len(index)) for value in values), np.int64, len(values)
        )
        names = list(index)
        for code, value in enumerate(names):
            if type(value) is int:
                names[code] = str(value)
            elif not isinstance(value, str) or not value:
                row = int(np.argmax(codes == code))
                raise InvalidColumnError(name, row, value, "a non-empty string or an integer id")
        self.labels, self.codes, self.size = names, codes, len(names)
        # The same id may arrive as 17 and "17": they are one id.
        self.codes = self._merge_duplicates()

    def _merge_duplicates(self) -> IntArray:
        assert self.labels is not None
        first: dict[str, int] = {}
        remap = np.array([first.setdefault(label, code) for code, label in enumerate(self.labels)])
        if len(first) == len(self.labels):
            return self.codes
        return remap[self.codes].astype(np.int64)

    def code_of(self, label: str) -> int | None:
        """The code of id *label*, or ``None`` if the column does not hold it."""
        if self.labels is not None:
            if self._index is None:  # made on the first look-up: most uses never look up
                self._index = {label: code for code, label in enumerate(self.labels)}
            return self._index.get(label)
        try:
            value = int(label)
        except ValueError:
            return None
        if str(value) != label:
            return None
        if self.direct:
            return value if 0 <= value < self.size else None
        assert self.values is not None
        code = int(np.searchsorted(self.values, value))
        return code if code < self.size and self.values[code] == value else None

    def labeler(self) -> Callable[[list[int]], list[str]]:
        """Turn a list of codes into their ids."""
        if self.labels is not None:
            labels = self.labels if isinstance(self.labels, list) else list(self.labels)
            return lambda codes: [labels[c] for c in codes]
        if self.direct:
            return lambda codes: [str(c) for c in codes]
        values = self.values
        assert values is not None
        return lambda codes: [str(v) for v in values[codes].tolist()]


def _bits_dtype(slots: int) -> type[np.unsignedinteger[Any]]:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if slots <= np.iinfo(dtype).bits:
            return dtype
    return np.uint64


def numpy_engine(columns: MatchColumns, plan: Plan, ids: bool) -> dict[str, list[Any]]:
    """Counts (or id sets) per organization and period slot, vectorised."""
    start = _int_column(columns.start_us, "start_us")
    end = _int_column(columns.end_us, "end_us")
    organization = _Codes(columns.organization, columns.organization_ids, "organization")
    ongoing = None if columns.ongoing is None else np.asarray(columns.ongoing)
    check_match_lengths(start, end, organization.codes, ongoing)
    size = len(start)
    if ongoing is not None:
        if ongoing.dtype.kind != "b":
            # No rows, or Python booleans in an object column, are booleans too.
            flags = as_list(columns.ongoing)
            row = next((r for r, v in enumerate(flags) if type(v) is not bool), None)
            if row is not None:
                raise InvalidColumnError("ongoing", row, flags[row], "a boolean")
            ongoing = ongoing.astype(bool)
        end = np.where(ongoing, FOREVER, end)
    backwards = end < start
    if backwards.any():
        row = int(np.argmax(backwards))
        expected = f"at or after start_us ({start[row]})"
        raise InvalidColumnError("end_us", row, int(end[row]), expected)
    match_of = _int_column(columns.participant_match, "participant_match")
    user = _Codes(columns.participant_user, columns.user_ids, "participant_user")
    check_length("participant_user", len(user.codes), len(match_of), "participant_match row")
    outside = (match_of < 0) | (match_of >= size)
    if outside.any():
        row = int(np.argmax(outside))
        bad = int(match_of[row])
        raise InvalidColumnError("participant_match", row, bad, f"a match row in 0..{size - 1}")

    # Row r of the period tables is the r-th organization of the plan that the
    # columns hold; one more row, with no periods, takes every other match.
    organizations = [org for org in plan if organization.code_of(org) is not None and plan[org]]
    row_of_code = np.full(organization.size, len(organizations), dtype=np.int32)
    for row, org in enumerate(organizations):
        row_of_code[organization.code_of(org)] = row
    match_row = row_of_code[organization.codes]
    width = max((len(plan[org]) for org in organizations), default=0)

    found: dict[str, list[Any]] = {
        org: [frozenset() if ids else 0] * len(spans) for org, spans in plan.items()
    }
    pairs = _Pairs(match_row, match_of, user, len(organizations)) if organizations else None
    for first in range(0, width, 64):
        slots = min(64, width - first)
        table = [plan[org][first : first + slots] for org in organizations]
        padding = [_HIGH, _LOW] * slots
        bounds = np.array(
            [
                [b for p in spans for b in (p._start_us, p._end_us)] + padding[2 * len(spans) :]
                for spans in [*table, ()]
            ],
            dtype=np.int64,
        ).reshape(len(organizations) + 1, slots, 2)
        starts, ends = bounds[:, :, 0].copy(), bounds[:, :, 1].copy()
        bits = _match_bits(start, end, match_row, starts, ends)
        assert pairs is not None
        masks = pairs.masks(bits)
        if not ids and slots <= 8:
            # Counts only: tally the pairs by (organization, mask) in one bincount,
            # then add up, per slot, the masks that have the slot's bit.
            tally = np.bincount(
                pairs.organization * 256 + masks, minlength=(len(organizations) + 1) * 256
            ).reshape(-1, 256)
            has_bit = (np.arange(256)[:, None] >> np.arange(slots)) & 1
            per_slot = (tally @ has_bit).tolist()
            for row, org in enumerate(organizations):
                for slot in range(min(slots, len(plan[org]) - first)):
                    found[org][first + slot] = per_slot[row][slot]
            continue
        for slot in range(slots):
            hit = np.flatnonzero(masks & bits.dtype.type(1 << slot))
            org_of_hit = pairs.organization[hit]
            if not ids:
                counts = np.bincount(org_of_hit, minlength=len(organizations)).tolist()
                for row, org in enumerate(organizations):
                    if first + slot < len(plan[org]):
                        found[org][first + slot] = counts[row]
                continue
            order = np.argsort(org_of_hit, kind="stable")
            users = pairs.user[hit[order]]
            bounds = np.searchsorted(org_of_hit[order], np.arange(len(organizations) + 1))
            label = user.labeler()
            for row, org in enumerate(organizations):
                if first + slot < len(plan[org]):
                    codes = users[bounds[row] : bounds[row + 1]].tolist()
                    found[org][first + slot] = frozenset(label(codes))
    return found


def _match_bits(
    start: IntArray,
    end: IntArray,
    match_row: npt.NDArray[np.int32],
    starts: IntArray,
    ends: IntArray,
) -> npt.NDArray[Any]:
    """Each match's bitmask of the period slots of its organization that it overlaps."""
    rows, slots = starts.shape
    dtype = _bits_dtype(slots)
    bits = np.zeros(len(start), dtype=dtype)
    single = rows == 2  # one organization: compare with scalars, no gathers
    for slot in range(slots):
        if single:
            low, high = starts[0, slot], ends[0, slot]
        else:
            low, high = starts[:, slot].take(match_row), ends[:, slot].take(match_row)
        overlaps = (start < high) & (end > low)
        bits |= overlaps.astype(dtype) << dtype(slot)
    keep = end > start  # a zero-length match overlaps nothing
    if single:
        keep &= match_row == 0
    bits *= keep.astype(dtype)
    return bits


class _Pairs:
    """Dense codes of the (organization row, user) pairs of the participant rows."""

    def __init__(
        self,
        match_row: npt.NDArray[np.int32],
        match_of: IntArray,
        user: _Codes,
        organizations: int,
    ) -> None:
        self.match_of = match_of
        users = user.codes
        if organizations == 1:
            # Only the one organization's matches have bits: a user is a pair.
            self.code = users
            self.organization = np.zeros(user.size, dtype=np.intp)
            self.user = np.arange(user.size)
            return
        row_organization = match_row[match_of]
        first = np.full(user.size, organizations, dtype=np.int32)
        first[users] = row_organization
        other = np.flatnonzero(first[users] != row_organization)
        code = users
        pair_organization = first.astype(np.intp)
        pair_user = np.arange(user.size)
        if other.size:
            keys = row_organization[other].astype(np.int64) * user.size + users[other]
            extra, inverse = np.unique(keys, return_inverse=True)
            code = users.copy()
            code[other] = user.size + inverse
            pair_organization = np.concatenate([pair_organization, extra // user.size])
            pair_user = np.concatenate([pair_user, extra % user.size])
        self.code = code
        self.organization = pair_organization
        self.user = pair_user

    def masks(self, bits: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """The OR of the bits of every pair's matches."""
        masks = np.zeros(len(self.organization), dtype=bits.dtype)
        np.bitwise_or.at(masks, self.code, bits[self.match_of])
        return masks
