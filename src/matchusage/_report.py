"""Usage reports: active users of the last closed billing periods and of the open one."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta
from itertools import repeat
from operator import attrgetter
from types import MappingProxyType
from typing import Any

import attrs

from ._columnar import MAX_SLOTS, MatchColumns, _use_numpy, matches_of_columns
from ._explain import Explanation, explanation
from ._model import Match
from ._periods import BillingCycle, BillingPeriod
from ._source import OrganizationMatches
from ._sweep import Evidence, Sweep
from ._time import require_aware
from ._usage import Matches, sweep
from .billing._close import Adjustment, changes, snapshot_of
from .billing._snapshots import UsageSnapshot
from .exceptions import InvalidPeriodError, InvalidRecordError
from .protocols import SnapshotStore

_INSTANT = timedelta(microseconds=1)
_Programs = tuple[Mapping[str, AbstractSet[str]], Mapping[str, AbstractSet[str]]]
_match_id = attrgetter("id")
_program_id = attrgetter("program_id")
_start_us = attrgetter("_start_us")


def _frozen_map(groups: Mapping[str, Iterable[str]]) -> Mapping[str, frozenset[str]]:
    return MappingProxyType({key: frozenset(groups[key]) for key in sorted(groups)})


class BillingState(str, enum.Enum):
    """Whether a closed period of a [`UsageReport`][matchusage.UsageReport] was billed."""

    UNKNOWN = "unknown"
    """The report was made without a snapshot store, so it cannot tell."""
    NOT_BILLED = "not billed"
    """The snapshot store has no snapshot of the period: it was not billed yet."""
    BILLED = "billed"
    """The period was closed: its snapshot holds the users that were billed."""


class MatchesByProgram(Mapping[str, tuple[Match, ...]]):
    """Matches per program (programs sorted, matches by id), made when a program is read.

    A report on columns holds its current matches this way: counting them
    needs no `Match` objects.
    """

    def __init__(
        self,
        rows: Mapping[str, Sequence[int]],
        make: Callable[[int], Match],
        users: Mapping[str, AbstractSet[str]],
    ) -> None:
        self._rows = {key: rows[key] for key in sorted(rows)}
        self.users = users  # each program's users in these matches
        self._make = make
        self._made: dict[str, tuple[Match, ...]] = {}
        self.sizes: Mapping[str, int] = MappingProxyType(
            {key: len(found) for key, found in self._rows.items()}
        )

    def __getitem__(self, key: str) -> tuple[Match, ...]:
        made = self._made.get(key)
        if made is None:
            found = [self._make(row) for row in self._rows[key]]
            made = self._made[key] = tuple(sorted(found, key=_match_id))
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return repr(dict(self))


@attrs.frozen
class PeriodUsage:
    """The active users of one closed billing period.

    Every figure is counted from the data as it is now (the *live* recount).
    A report made with a snapshot store also tells whether the period was
    billed and, when it was, compares what was billed with the live recount
    in ``adjustment``: late or backdated edits made after the close show up
    there, while the invoice stays as it was.

    Sets of user ids are read-only sets (`collections.abc.Set`) that behave as
    `frozenset`s: equal to and hashed like the `frozenset` of the same ids, with
    its operators and methods. A report computed on columns keeps them as user
    codes and makes the ids the first time they are read, so counting is cheap.

    Attributes:
        period: The billing period.
        users: The ids of the users active in the period; each person once.
        by_program: For each program with an active match, the distinct users
            active in it. A user active in two programs appears under both,
            so these counts may add up to more than ``count``.
        attributed: Every active user under exactly one program (see
            [`usage_report`][matchusage.usage_report] for the rule), so these
            counts add up to ``count``: the split for internal chargeback.
        new: Users active in this period but not in the period before it.
        dropped: Users active in the period before it but not in this one.
        billing: Whether the period was billed ([`UNKNOWN`][matchusage.BillingState.UNKNOWN]
            for a report made without a snapshot store).
        billed: The period's snapshot (what was billed), or ``None`` if not billed.
    """

    period: BillingPeriod
    users: AbstractSet[str]
    by_program: Mapping[str, AbstractSet[str]] = attrs.field(hash=False)
    attributed: Mapping[str, AbstractSet[str]] = attrs.field(hash=False)
    new: AbstractSet[str]
    dropped: AbstractSet[str]
    billing: BillingState = BillingState.UNKNOWN
    billed: UsageSnapshot | None = attrs.field(default=None, hash=False)
    # Makes the live recount as a snapshot, for the adjustment: evidence for every user
    # and a fingerprint cost several times the report itself, so only on demand.
    _recount: Callable[[], UsageSnapshot] | None = attrs.field(
        default=None, eq=False, repr=False, alias="recount"
    )
    _adjustment: list[Adjustment] = attrs.field(factory=list, init=False, eq=False, repr=False)

    @property
    def count(self) -> int:
        """The number of active users counted from today's data (the live recount).

        It is the quantity the period's invoice shows unless the data changed
        after the period was billed; then ``billed_count`` is the invoiced one.
        """
        return len(self.users)

    @property
    def billed_count(self) -> int | None:
        """The quantity billed for the period (from its snapshot), or ``None`` if not billed."""
        return None if self.billed is None else self.billed.count

    @property
    def billed_users(self) -> frozenset[str] | None:
        """The users billed for the period (from its snapshot), or ``None`` if not billed."""
        return None if self.billed is None else self.billed.users

    @property
    def added_since_billed(self) -> frozenset[str] | None:
        """Users active now who were not billed for the period (``None`` if not billed).

        The same set as the [`adjustment`][matchusage.PeriodUsage.adjustment]'s
        ``added``, without building the recount's evidence.
        """
        return None if self.billed is None else changes(self.billed.users, frozenset(self.users))[0]

    @property
    def removed_since_billed(self) -> frozenset[str] | None:
        """Users billed for the period who are no longer active in it (``None`` if not billed).

        The same set as the [`adjustment`][matchusage.PeriodUsage.adjustment]'s ``removed``.
        """
        return None if self.billed is None else changes(self.billed.users, frozenset(self.users))[1]

    @property
    def adjustment(self) -> Adjustment | None:
        """For a billed period, what was billed against the live recount; ``None`` otherwise.

        The [`Adjustment`][matchusage.billing.Adjustment] that
        [`reconcile`][matchusage.billing.reconcile] gives at the report's
        instant: the users added and removed since the close, with the
        evidence of both sides. It is computed from the report's own data the
        first time it is read (a snapshot of the recount costs several times
        the report; ``added_since_billed`` and ``removed_since_billed`` give
        the two sets without it).
        """
        if self.billed is None or self._recount is None:
            return None
        if not self._adjustment:
            self._adjustment.append(Adjustment(self.billed, self._recount()))
        return self._adjustment[0]


@attrs.frozen
class CurrentUsage:
    """The open billing period, as far as it has gone: three distinct figures.

    Attributes:
        period: The open period, the one containing ``at``.
        at: The instant the figures are taken at ("now").
        users_so_far: Users active in the period up to and including ``at``
            (a match overlapping ``[period.start, at]``): the number the
            period's invoice will show at least.
        current_users: Users in a match current at ``at``: the program
            pages' "current active users".
        current_matches: For each program with a current match, its matches
            current at ``at``, ordered by id.
    """

    period: BillingPeriod
    at: datetime
    users_so_far: AbstractSet[str]
    current_users: AbstractSet[str]
    current_matches: Mapping[str, tuple[Match, ...]] = attrs.field(hash=False)

    @property
    def current_match_counts(self) -> Mapping[str, int]:
        """For each program with a current match, how many matches are current."""
        if isinstance(self.current_matches, MatchesByProgram):
            return self.current_matches.sizes
        return MappingProxyType({key: len(found) for key, found in self.current_matches.items()})

    @property
    def current_users_by_program(self) -> Mapping[str, AbstractSet[str]]:
        """For each program with a current match, the users in its current matches."""
        if isinstance(self.current_matches, MatchesByProgram):
            return self.current_matches.users
        return MappingProxyType(
            {
                program: frozenset().union(*(m._people for m in matches))
                for program, matches in self.current_matches.items()
            }
        )


@attrs.frozen
class UsageReport:
    """The usage report of an organization: the last closed periods and the open one.

    Built by [`usage_report`][matchusage.usage_report]. It keeps the single
    sweep it was computed from, so every user it counts can be explained from
    the same data with [`explain`][matchusage.UsageReport.explain].

    Attributes:
        cycle: The billing cycle.
        at: The instant the report was made at ("now").
        periods: The closed periods, oldest first.
        current: The open period containing ``at``.
        billing_checked: Whether the report was made with a snapshot store,
            so that each closed period says whether (and what) it was billed.
    """

    cycle: BillingCycle
    at: datetime
    periods: tuple[PeriodUsage, ...]
    current: CurrentUsage
    billing_checked: bool = attrs.field(default=False, kw_only=True)
    _sweep: Evidence = attrs.field(eq=False, repr=False, alias="sweep")
    _so_far: BillingPeriod = attrs.field(eq=False, repr=False, alias="so_far")

    def usage(self, period: BillingPeriod) -> PeriodUsage:
        """The [`PeriodUsage`][matchusage.PeriodUsage] of one of the report's closed periods.

        Raises:
            matchusage.exceptions.InvalidPeriodError: *period* is not in the report.
        """
        for usage in self.periods:
            if usage.period == period:
                return usage
        raise InvalidPeriodError(
            "UsageReport", "period", period, "one of the report's closed periods"
        )

    def _evidence(
        self, periods: Sequence[BillingPeriod]
    ) -> Iterator[Iterable[tuple[str, Sequence[Any]]]]:
        """For each of *periods* (of the report) in turn, its users by id and their evidence.

        Each match is as light as an export needs (see `Evidence.spans_by_period`).
        """
        return self._sweep.spans_by_period(periods)

    def explain(self, user_id: str, period: BillingPeriod) -> Explanation:
        """Why *user_id* is counted (or not) in *period*, from the report's own data.

        Args:
            user_id: The user to explain.
            period: One of the report's closed periods, or the open period
                (explained up to the report's instant).

        Raises:
            matchusage.exceptions.InvalidPeriodError: *period* is not in the report.
        """
        if period == self.current.period:
            so_far = explanation(self._sweep, user_id, self._so_far)
            return Explanation(user_id, period, so_far.overlaps)
        self.usage(period)
        return explanation(self._sweep, user_id, period)


def usage_report(
    matches: Matches | MatchColumns,
    cycle: BillingCycle,
    *,
    now: datetime,
    periods: int = 6,
    snapshots: SnapshotStore | None = None,
    organization_id: str | None = None,
) -> UsageReport:
    """The usage report of the last *periods* closed billing periods and the open one.

    Everything is computed from one sweep of the matches over all the periods
    (plus the period before the oldest, for its new and dropped users, and
    the open period up to *now*), so the figures agree with each other and
    with [`active_users_by_period`][matchusage.active_users_by_period].

    **Attribution.** Each active user of a period is attributed to the program
    of the earliest-starting match that makes them active in that period;
    when several such matches start at the same instant, the smallest
    program id wins. Attributed counts therefore add up to the total.

    **What was billed.** With *snapshots*, each closed period also says
    whether it was billed ([`PeriodUsage.billing`][matchusage.PeriodUsage]);
    a billed period carries its snapshot, and compares it with the live
    recount on demand ([`PeriodUsage.adjustment`][matchusage.PeriodUsage.adjustment],
    the [`Adjustment`][matchusage.billing.Adjustment] that
    [`reconcile`][matchusage.billing.reconcile] gives), so a page can show
    the invoiced quantity and the users added or removed since the close.
    Without *snapshots* the report is exactly what it always was.

    Args:
        matches: The matches to consider (or a [`MatchSource`][matchusage.protocols.MatchSource],
            such as [`OrganizationMatches`][matchusage.OrganizationMatches]), or
            [`MatchColumns`][matchusage.MatchColumns] with match ids and programs:
            then the figures are computed on the columns (numpy), with identical
            results, and `Match` objects are made only for the matches the report
            hands out (current matches, explanations, exports).
        cycle: The organization's billing cycle.
        now: The instant of the report, timezone-aware; periods ending at or
            before it are closed.
        periods: How many closed periods to report.
        snapshots: Where the organization's closed periods were snapshotted
            (a [`SnapshotStore`][matchusage.protocols.SnapshotStore]).
        organization_id: The organization the snapshots belong to; defaults
            to the organization of an [`OrganizationMatches`][matchusage.OrganizationMatches].

    Returns:
        The report, closed periods oldest first.

    Raises:
        matchusage.exceptions.InvalidRecordError: *now* is naive, *periods*
            is not a non-negative integer, or *snapshots* is given without an
            organization (or with the matches of one program only).
        matchusage.exceptions.DuplicateMatchError: Two matches share an id.
    """
    if not isinstance(cycle, BillingCycle):
        raise InvalidRecordError("usage_report", "cycle", cycle, "a BillingCycle")
    require_aware(now, "usage_report", "now", InvalidRecordError)
    if not isinstance(periods, int) or isinstance(periods, bool) or periods < 0:
        raise InvalidRecordError("usage_report", "periods", periods, "a non-negative integer")
    billed = (
        None if snapshots is None else (snapshots, _billed_organization(matches, organization_id))
    )
    closed = cycle.closed_periods(before=now, count=periods + 1)
    current = cycle.period_containing(now)
    so_far = BillingPeriod(current.start, now + _INSTANT)
    instant = BillingPeriod(now, now + _INSTANT)
    spans = [*closed, so_far, instant]
    found: Evidence
    if isinstance(matches, MatchColumns) and _use_numpy("auto") and len(spans) <= MAX_SLOTS:
        usages, open_usage, found = _columnar_figures(matches, cycle, now, spans)
    else:
        if isinstance(matches, MatchColumns):
            matches = matches_of_columns(matches)
        usages, open_usage, found = _object_figures(matches, now, current, spans)
    if billed is not None:
        usages = _with_billing(usages, found, *billed, now)
    return UsageReport(
        cycle,
        now,
        tuple(usages),
        open_usage,
        billing_checked=billed is not None,
        sweep=found,
        so_far=so_far,
    )


_Figures = tuple[list["PeriodUsage"], "CurrentUsage", Evidence]


def _period_usages(
    closed: Sequence[BillingPeriod],
    users: Sequence[AbstractSet[str]],
    programs: Sequence[_Programs],
) -> list[PeriodUsage]:
    """The usage of each closed period but the first, which only gives the second its new users.

    *users* are the active users of each of *closed*; *programs* each period's
    users per program and attributed users, from the second period on.
    """
    usages = []
    for period, previous, now_users, (by_program, attributed) in zip(
        closed[1:], users[:-1], users[1:], programs, strict=True
    ):
        usages.append(
            PeriodUsage(
                period=period,
                users=now_users,
                by_program=by_program,
                attributed=attributed,
                new=now_users - previous,
                dropped=previous - now_users,
            )
        )
    return usages


def _object_figures(
    matches: Matches, now: datetime, current: BillingPeriod, spans: list[BillingPeriod]
) -> _Figures:
    """The figures of a report from one sweep of the matches over *spans*."""
    *closed, so_far, instant = spans
    found = sweep(matches, spans)
    users = [found.users(period) for period in closed]
    usages = _period_usages(closed, users, _programs(found, closed[1:]))

    now_matches: dict[str, list[Match]] = defaultdict(list)
    for match in found.matches(instant):
        now_matches[match.program_id].append(match)
    open_usage = CurrentUsage(
        period=current,
        at=now,
        users_so_far=found.users(so_far),
        current_users=found.users(instant),
        current_matches=MappingProxyType(
            {key: tuple(now_matches[key]) for key in sorted(now_matches)}
        ),
    )
    return usages, open_usage, found


def _billed_organization(matches: Matches | MatchColumns, organization_id: str | None) -> str:
    """The organization whose snapshots the report compares with (checked)."""
    record = "usage_report"
    if isinstance(matches, OrganizationMatches):
        if matches.program_id is not None:
            raise InvalidRecordError(
                record,
                "matches",
                matches,
                "the matches of the whole organization when snapshots are given "
                "(a period is billed for every program at once)",
            )
        if organization_id is None:
            organization_id = matches.organization_id
    if not isinstance(organization_id, str) or not organization_id:
        raise InvalidRecordError(
            record,
            "organization_id",
            organization_id,
            "the id of the organization whose snapshots are given",
        )
    return organization_id


def _with_billing(
    usages: list[PeriodUsage],
    found: Evidence,
    snapshots: SnapshotStore,
    organization_id: str,
    now: datetime,
) -> list[PeriodUsage]:
    """Each period with what was billed for it, and how to recount it for the adjustment."""

    def recount(period: BillingPeriod) -> Callable[[], UsageSnapshot]:
        # The live side of the comparison: a snapshot taken now from the report's own
        # sweep, exactly what `reconcile` takes from the repository.
        def take() -> UsageSnapshot:
            (evidence,) = found.evidence_by_period([period])
            return snapshot_of(organization_id, period, evidence, now=now)

        return take

    billed = []
    for usage in usages:
        snapshot = snapshots.get(organization_id, usage.period)
        if snapshot is None:
            billed.append(attrs.evolve(usage, billing=BillingState.NOT_BILLED))
        else:
            billed.append(
                attrs.evolve(
                    usage,
                    billing=BillingState.BILLED,
                    billed=snapshot,
                    recount=recount(usage.period),
                )
            )
    return billed


def _columnar_figures(
    columns: MatchColumns, cycle: BillingCycle, now: datetime, spans: list[BillingPeriod]
) -> _Figures:
    """The same figures on columns, computed on whole arrays."""
    from ._columnar_report import ColumnEvidence, ReportColumns, ReportFigures

    closed = spans[:-2]
    evidence = ColumnEvidence(ReportColumns(columns), spans)
    figures = ReportFigures(evidence)
    slots = range(1, len(closed))
    users = [figures.users(slot) for slot in range(len(closed))]
    programs = list(zip(figures.by_program(slots), figures.attributed(slots), strict=True))
    usages = _period_usages(closed, users, programs)
    open_usage = CurrentUsage(
        period=cycle.period_containing(now),
        at=now,
        users_so_far=figures.users(len(closed)),
        current_users=figures.users(len(closed) + 1),
        current_matches=figures.current_matches(len(closed) + 1),
    )
    return usages, open_usage, evidence


def _programs(found: Sweep, periods: Sequence[BillingPeriod]) -> list[_Programs]:
    """Per-program users of each period, and the attribution of each user to one program.

    One pass over the sweep's groups for all the periods: the matches of a
    group overlap the same periods, so each group's users per program are
    merged once, and the matches are sorted once for the attribution.
    """
    parts: list[dict[str, list[frozenset[str]]]] = [defaultdict(list) for _ in periods]
    seen: list[set[str]] = [set() for _ in periods]
    shares: list[dict[str, set[str]]] = [defaultdict(set) for _ in periods]
    claims: list[Match] = []
    targets_of: dict[str, list[tuple[set[str], dict[str, set[str]]]]] = {}
    for hit, bucket in found.groups(periods):
        in_group: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        for match in bucket:
            in_group[match.program_id].append(match._people)
        for program, people in in_group.items():
            users = frozenset().union(*people)
            for index in hit:
                parts[index][program].append(users)
        claims.extend(bucket)
        targets = [(seen[index], shares[index]) for index in hit]
        targets_of.update(zip(map(_match_id, bucket), repeat(targets)))
    # Earliest first (two stable sorts: by program id, then by start), so the
    # first match to claim a user in a period is the one the rule names.
    claims.sort(key=_program_id)
    claims.sort(key=_start_us)
    for match in claims:
        for claimed, share in targets_of[match.id]:
            new = [user for user in match._people if user not in claimed]
            if new:
                claimed.update(new)
                share[match.program_id].update(new)
    return [
        (
            MappingProxyType({key: frozenset().union(*groups[key]) for key in sorted(groups)}),
            _frozen_map(share),
        )
        for groups, share in zip(parts, shares, strict=True)
    ]
