"""The result of a batch over every organization: each one's periods, and those that failed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

import attrs

from .._periods import BillingPeriod
from ..exceptions import MatchUsageError

T = TypeVar("T")


@attrs.frozen(eq=False)
class BatchResults(Mapping[str, Mapping[BillingPeriod, T]], Generic[T]):
    """Organization id -> period -> result, for the organizations that could be counted.

    A mapping like the `dict` it replaces (and equal to one with the same
    items), plus the organizations that could not be counted: one bad stored
    organization (a billing cycle of 0 periods, an unknown time zone) fails
    alone, named, while every other organization is counted.

    Attributes:
        results: Organization id -> period -> result.
        failed: Organization id -> the error that kept it out, e.g. an
            [`InvalidCycleError`][matchusage.exceptions.InvalidCycleError]
            naming the organization and the bad column.
    """

    results: Mapping[str, Mapping[BillingPeriod, T]]
    failed: Mapping[str, MatchUsageError] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every organization was counted."""
        return not self.failed

    def __getitem__(self, organization_id: str) -> Mapping[BillingPeriod, T]:
        return self.results[organization_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)
