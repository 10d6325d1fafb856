"""The multi-organization batch: the last closed periods of every organization at once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

from ._columnar import (
    Engine,
    MatchColumns,
    columnar_active_users,
    columnar_counts,
    organization_of_match,
    organizations_of_programs,
)
from ._model import Match, Organization, Program
from ._periods import BillingPeriod
from ._source import OrganizationMatches
from ._sweep import Sweep, check_unique_ids
from ._time import require_aware
from ._usage import active_users_by_period
from .exceptions import InvalidRecordError, MatchUsageError
from .protocols import MatchRepository

T = TypeVar("T")

BatchSource = MatchRepository | MatchColumns | Iterable[Match]
"""What the batch reads: a repository, columns, or matches (with their programs)."""

Plan = Mapping[str, Sequence[BillingPeriod]]


@runtime_checkable
class _BatchInPlace(Protocol):
    """A repository that runs the batch over a plan where its matches are (SQLRepository).

    Each method returns every organization's results and the error of each
    organization that failed: the error reading its matches as objects
    raises (``UnknownRecordError`` for an unknown organization), so that the
    batch raises what the batch over objects raises.
    """

    def _batch_counts(
        self, plan: Plan
    ) -> tuple[dict[str, dict[BillingPeriod, int]], dict[str, MatchUsageError]]: ...

    def _batch_active_users(
        self, plan: Plan
    ) -> tuple[dict[str, dict[BillingPeriod, frozenset[str]]], dict[str, MatchUsageError]]: ...


def _first_failure_raised(
    found: tuple[dict[str, dict[BillingPeriod, T]], dict[str, MatchUsageError]], plan: Plan
) -> dict[str, dict[BillingPeriod, T]]:
    """The results, once the first organization that failed (in plan order) has raised.

    The batch over objects reads one organization after the other and stops
    at the first error: the same error comes out of a batch run in place.
    """
    results, failed = found
    for key in plan:
        if key in failed:
            raise failed[key]
    return results


def batch_periods(
    organizations: Iterable[Organization], *, now: datetime, count: int = 6
) -> dict[str, list[BillingPeriod]]:
    """The last *count* closed periods of each organization, in its own cycle.

    Args:
        organizations: The organizations to bill.
        now: The instant the batch runs at (timezone-aware); a period ending
            exactly at *now* is closed.
        count: How many closed periods per organization.

    Returns:
        Organization id -> its periods, oldest first.
    """
    require_aware(now, "batch", "now", InvalidRecordError)
    return {
        organization.id: organization.cycle.closed_periods(before=now, count=count)
        for organization in organizations
    }


def batch_active_users(
    source: BatchSource,
    *,
    now: datetime,
    count: int = 6,
    organizations: Iterable[Organization] | None = None,
    programs: Iterable[Program] | None = None,
    engine: Engine = "auto",
) -> dict[str, dict[BillingPeriod, frozenset[str]]]:
    """The active users of every organization in each of its last *count* closed periods.

    Each organization keeps its own billing cycle (anchor, time zone, months
    per period). The same batch runs from three sources with identical
    results:

    - a [`MatchRepository`][matchusage.protocols.MatchRepository]: every
      organization of the repository (or those given), each counted with
      [`active_users_by_period`][matchusage.active_users_by_period] over the
      window it needs; an [`SQLRepository`][matchusage.sql.SQLRepository]
      counts them all at once, by its fastest method (``method="auto"``:
      columns read out on PostgreSQL, one counting statement elsewhere),
      with the same results and the same errors;
    - an iterable of [`Match`][matchusage.Match] objects, with the
      *organizations* and the *programs* that map matches to organizations;
    - [`MatchColumns`][matchusage.MatchColumns], with the *organizations*: the
      columnar engine.

    Args:
        source: Where the matches come from.
        now: The instant the batch runs at (timezone-aware).
        count: How many closed periods per organization.
        organizations: The organizations to bill (default with a repository:
            all of them).
        programs: With matches: the programs they belong to.
        engine: With columns: the columnar engine (see
            [`columnar_counts`][matchusage.columnar_counts]).

    Returns:
        Organization id -> period -> user ids.

    Raises:
        matchusage.exceptions.UnknownRecordError: A match's program is not
            among *programs*, or with a repository, an organization given is
            not stored.
        matchusage.exceptions.InvalidMatchError: With a repository, a stored
            match is invalid (the first organization with one, in order, raises).
        matchusage.exceptions.DuplicateMatchError: Two matches share an id.
        matchusage.exceptions.InvalidColumnError: A column has a bad value.
    """
    plan = _plan(source, organizations, now, count)
    if isinstance(source, MatchColumns):
        return columnar_active_users(source, plan, engine=engine)
    if isinstance(source, _BatchInPlace):
        return _first_failure_raised(source._batch_active_users(plan), plan)
    if isinstance(source, MatchRepository):
        return {
            org: active_users_by_period(OrganizationMatches(source, org), periods)
            for org, periods in plan.items()
        }
    return objects_by_plan(source, _required(programs, "programs"), plan)


def _plan(
    source: BatchSource, organizations: Iterable[Organization] | None, now: datetime, count: int
) -> dict[str, list[BillingPeriod]]:
    """The periods of each organization; a repository's own organizations by default."""
    if organizations is None and isinstance(source, MatchRepository):
        organizations = source.organizations()
    return batch_periods(_required(organizations, "organizations"), now=now, count=count)


def objects_by_plan(
    matches: Iterable[Match], programs: Iterable[Program], plan: Mapping[str, list[BillingPeriod]]
) -> dict[str, dict[BillingPeriod, frozenset[str]]]:
    """The object path of the batch: group the matches by organization, sweep each."""
    organization_of = organizations_of_programs(programs)
    matches = list(matches)
    check_unique_ids(matches)
    by_program: dict[str, list[Match]] = defaultdict(list)
    for match in matches:
        by_program[match.program_id].append(match)
    grouped: dict[str, list[Match]] = defaultdict(list)
    for found in by_program.values():
        grouped[organization_of_match(found[0], organization_of)].extend(found)
    # The ids were checked once for all the organizations above.
    return {org: Sweep(grouped.get(org, []), periods).by_period() for org, periods in plan.items()}


def batch_counts(
    source: BatchSource,
    *,
    now: datetime,
    count: int = 6,
    organizations: Iterable[Organization] | None = None,
    programs: Iterable[Program] | None = None,
    engine: Engine = "auto",
) -> dict[str, dict[BillingPeriod, int]]:
    """The number of active users of every organization in each of its last closed periods.

    Takes the same arguments as
    [`batch_active_users`][matchusage.batch_active_users]; from columns, only
    the counts are computed.

    Returns:
        Organization id -> period -> count.
    """
    if isinstance(source, MatchColumns):
        return columnar_counts(source, _plan(source, organizations, now, count), engine=engine)
    if isinstance(source, _BatchInPlace):
        plan = _plan(source, organizations, now, count)
        return _first_failure_raised(source._batch_counts(plan), plan)
    found = batch_active_users(
        source, now=now, count=count, organizations=organizations, programs=programs
    )
    return {org: {p: len(users) for p, users in periods.items()} for org, periods in found.items()}


def _required(value: Iterable[T] | None, name: str) -> list[T]:
    if value is None:
        raise InvalidRecordError(
            "batch", name, None, f"the {name} (required unless the source is a MatchRepository)"
        )
    return list(value)
