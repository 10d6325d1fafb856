"""A realistic example organization, generated deterministically for the demo."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pendulum

from ._memory_repository import InMemoryRepository
from ._model import Match, Organization, Program, Role, User
from ._periods import BillingCycle

EXAMPLE_NOW = pendulum.datetime(2026, 11, 20, 9, 30, tz="Europe/Berlin")
"""The instant the example's figures are computed at."""

EXAMPLE_ORGANIZATION_ID = "northwind"


def example_repository(seed: int = 2026) -> InMemoryRepository:
    """An organization with three programs, a few hundred users and two years of matches.

    Mostly one-to-one matches, some group matches, matches that end in the
    middle of a period and ongoing ones; the same *seed* gives the same data.
    """
    rng = random.Random(seed)
    zone = "Europe/Berlin"
    anchor = pendulum.datetime(2024, 11, 15, tz=zone)
    organization = Organization(
        id=EXAMPLE_ORGANIZATION_ID,
        name="Northwind Mentoring",
        timezone=zone,
        cycle=BillingCycle.monthly(anchor),
    )
    programs = [
        Program(id=key, organization_id=organization.id, name=name)
        for key, name in [
            ("engineering", "Engineering Mentorship"),
            ("leadership", "Leadership Circle"),
            ("onboarding", "New Hire Buddies"),
        ]
    ]
    users = [User(id=f"u{n:03d}", name=f"User {n:03d}", email=f"u{n:03d}@northwind.example")
             for n in range(1, 301)]  # fmt: skip
    repository = InMemoryRepository()
    repository.add(organization, *programs, *users)
    first = datetime(2024, 11, 15, tzinfo=anchor.tzinfo)
    span = EXAMPLE_NOW.timestamp() - first.timestamp()
    for n in range(1, 241):
        program = rng.choice(programs)
        started = first + timedelta(seconds=rng.uniform(0, span))
        group = rng.random() < 0.1
        people = rng.sample(users, 4 if group else 2)
        roles = {people[0].id: Role.MENTOR} | {p.id: Role.MENTEE for p in people[1:]}
        ended: datetime | None = None
        if rng.random() < 0.6:
            ended = started + timedelta(days=rng.uniform(20, 300))
            if ended > EXAMPLE_NOW:
                ended = None
        repository.add(
            Match(
                id=f"m{n:03d}",
                program_id=program.id,
                participants=roles,
                started_at=started,
                ended_at=ended,
                roles=roles,
            )
        )
    return repository
