"""Deterministic synthetic data for the columnar benchmarks.

``generate(matches, organizations, seed)`` gives the same data for the same
arguments: matches over the two years before ``NOW``, ~2.3 participants per
match, 30% ongoing, a few zero-length matches, users drawn from a pool per
organization plus a small shared pool (people in several organizations), and
organizations each with its own anchor, time zone and months per period.

A ``Shape`` varies what the data looks like: how unequal the organizations'
sizes are, how many programs and users each has and how large groups are.
The default ``Shape()`` is the data the recorded figures were measured on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pendulum

from matchusage import (
    BillingCycle,
    BillingPeriod,
    Match,
    MatchColumns,
    Organization,
    Program,
    batch_periods,
)
from matchusage._time import FOREVER, from_micros

NOW = datetime(2026, 7, 1, tzinfo=timezone.utc)
PERIODS = 6
ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "UTC",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Europe/London",
]
_DAY_US = 86_400_000_000
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Shape:
    """How the generated data is shaped (the defaults give the recorded data).

    Attributes:
        org_skew: sigma of the log-normal spread of organization sizes; 0 gives
            every organization the same expected number of matches.
        programs: the fewest and most programs per organization (each match
            belongs to one of its organization's programs, drawn uniformly).
        users_per_match: an organization's pool of users, per match it holds.
        group_sizes: participants per match and their probabilities.
    """

    org_skew: float = 0.0
    programs: tuple[int, int] = (1, 1)
    users_per_match: float = 0.6
    group_sizes: dict[int, float] = field(default_factory=lambda: {2: 0.75, 3: 0.2, 4: 0.05})

    def describe(self) -> str:
        groups = ", ".join(f"{size}: {p:g}" for size, p in self.group_sizes.items())
        low, high = self.programs
        return (
            f"org-size skew sigma {self.org_skew:g}, {low}-{high} programs per organization, "
            f"{self.users_per_match:g} users per match in each organization's pool, "
            f"group sizes {{{groups}}}"
        )


@dataclass
class Dataset:
    """One benchmark input, as columns; objects are built on request."""

    start_us: Ints
    end_us: Ints  # ONGOING (2**62) for ongoing matches
    organization: npt.NDArray[np.int32]  # codes into organization_ids
    participant_match: Ints
    participant_user: Ints  # dense integer user ids
    organizations: list[Organization]
    program: Ints  # index into the match's organization's programs
    program_counts: list[int]  # programs per organization

    @property
    def organization_ids(self) -> list[str]:
        return [o.id for o in self.organizations]

    @cached_property
    def plan(self) -> dict[str, list[BillingPeriod]]:
        """Each organization's last closed periods at ``NOW``."""
        return batch_periods(self.organizations, now=NOW, count=PERIODS)

    def columns(self) -> MatchColumns:
        return MatchColumns(
            self.start_us,
            self.end_us,
            self.organization,
            self.participant_match,
            self.participant_user,
            organization_ids=self.organization_ids,
        )

    def programs(self) -> list[Program]:
        return [
            Program(f"{o.id}-p{k}", o.id)
            for o, count in zip(self.organizations, self.program_counts, strict=True)
            for k in range(count)
        ]

    def matches(self) -> list[Match]:
        """The same data as Match objects (slow: a few microseconds a match)."""
        programs = [p.id for p in self.programs()]
        first_program = np.concatenate(([0], np.cumsum(self.program_counts)[:-1]))
        program_of = (first_program[self.organization] + self.program).tolist()
        bounds = np.searchsorted(self.participant_match, np.arange(len(self.start_us) + 1))
        users = [str(u) for u in self.participant_user.tolist()]
        out = []
        for row, (start, end) in enumerate(
            zip(self.start_us.tolist(), self.end_us.tolist(), strict=True)
        ):
            out.append(
                Match(
                    str(row),
                    programs[program_of[row]],
                    users[bounds[row] : bounds[row + 1]],
                    from_micros(start),
                    None if end == FOREVER else from_micros(end),
                )
            )
        return out

    def periods_table(self) -> tuple[Ints, Ints, Ints, Ints]:
        """Columns (organization code, period number, start, end) of every period."""
        rows = [
            (code, number, p._start_us, p._end_us)
            for code, org in enumerate(self.organization_ids)
            for number, p in enumerate(self.plan[org])
        ]
        org, number, start, end = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
        return org, number, start, end


def _organizations(count: int, rng: np.random.Generator) -> list[Organization]:
    if count == 1:
        anchor = pendulum.datetime(2024, 3, 15, tz="Europe/Berlin")
        return [Organization("org0000", "Org 0", "Europe/Berlin", BillingCycle.monthly(anchor))]
    out = []
    for n in range(count):
        zone = ZONES[int(rng.integers(len(ZONES)))]
        month = int(rng.integers(1, 13))
        last = 28 if month == 2 else 30 if month in (4, 6, 9, 11) else 31
        day = min(int(rng.integers(1, 32)), last)  # month ends are common anchors
        anchor = pendulum.datetime(2023, month, day, int(rng.integers(0, 24)), tz=zone)
        every = 3 if rng.random() < 0.2 else 1
        cycle = BillingCycle.monthly(anchor, every=every)
        out.append(Organization(f"org{n:04d}", f"Org {n}", zone, cycle))
    return out


def _organization_weights(organizations: int, skew: float, seed: int) -> npt.NDArray[np.float64]:
    """Each organization's expected share of the matches (log-normal sizes)."""
    if skew == 0:
        return np.full(organizations, 1 / organizations)
    weights = np.random.default_rng([seed, organizations, 1]).lognormal(0, skew, organizations)
    return weights / weights.sum()  # type: ignore[no-any-return]


def generate(
    matches: int, organizations: int = 1, seed: int = 2026, shape: Shape | None = None
) -> Dataset:
    """*matches* matches spread over *organizations* organizations, shaped by *shape*."""
    shape = shape or Shape()
    rng = np.random.default_rng([seed, matches, organizations])
    orgs = _organizations(organizations, rng)
    now = int((NOW - datetime(1970, 1, 1, tzinfo=timezone.utc)) / timedelta(microseconds=1))
    start = now - rng.integers(0, 730 * _DAY_US, matches)
    duration = (rng.exponential(120, matches) * _DAY_US).astype(np.int64)
    duration[rng.random(matches) < 0.01] = 0  # zero-length: never active
    end = np.minimum(start + duration, now)
    end[rng.random(matches) < 0.3] = FOREVER
    weights = _organization_weights(organizations, shape.org_skew, seed)
    if shape.org_skew == 0:  # the recorded data: drawn exactly as before shapes existed
        organization = rng.integers(0, organizations, matches).astype(np.int32)
    else:
        organization = rng.choice(organizations, size=matches, p=weights).astype(np.int32)

    group = list(shape.group_sizes)
    sizes = rng.choice(group, size=matches, p=[shape.group_sizes[g] for g in group])
    participant_match = np.repeat(np.arange(matches, dtype=np.int64), sizes)
    rows = len(participant_match)
    # Each organization draws from its own pool of users (users_per_match per
    # expected match); 2% of participants come from a shared pool and so join
    # several organizations.
    pool = np.maximum(4, (shape.users_per_match * matches * weights).astype(np.int64))
    first_user = np.concatenate(([0], np.cumsum(pool)))
    row_org = organization[participant_match].astype(np.int64)
    # With equal pools the modulo changes nothing: the default data stays as recorded.
    user = first_user[row_org] + rng.integers(0, pool.max(), rows) % pool[row_org]
    shared = rng.random(rows) < 0.02
    shared_pool = max(4, int(shape.users_per_match * matches / organizations) // 10)
    user[shared] = first_user[-1] + rng.integers(0, shared_pool, int(shared.sum()))
    # Users are distinct within a match (they are a set on the object side).
    order = np.lexsort((user, participant_match))
    user, participant_match = user[order], participant_match[order]
    duplicate = np.zeros(rows, dtype=bool)
    duplicate[1:] = (user[1:] == user[:-1]) & (participant_match[1:] == participant_match[:-1])
    keep = ~duplicate
    low, high = shape.programs
    program_counts = rng.integers(low, high + 1, organizations)
    program = (rng.random(matches) * program_counts[organization]).astype(np.int64)
    return Dataset(
        start,
        end,
        organization,
        participant_match[keep],
        user[keep],
        orgs,
        program,
        program_counts.tolist(),
    )
