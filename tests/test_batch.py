"""The multi-organization batch gives the same figures from objects, a repository and columns."""

from __future__ import annotations

from datetime import datetime

import pendulum
import pytest
from hypothesis import given, settings

from matchusage import (
    BillingCycle,
    BillingPeriod,
    Match,
    MatchColumns,
    Organization,
    Program,
    active_users_by_period,
    batch_active_users,
    batch_counts,
    batch_periods,
)
from matchusage._columnar import Engine
from matchusage.exceptions import DuplicateMatchError, InvalidRecordError, UnknownRecordError
from matchusage.memory import InMemoryRepository
from matchusage.testing import strategies as mst

ENGINES: list[Engine] = ["numpy", "python"]
Batch = tuple[list[Organization], list[Program], list[Match], datetime]


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=100, deadline=None)
@given(batch=mst.billing_batches())
def test_every_source_gives_the_same_batch(engine: Engine, batch: Batch) -> None:
    """Objects, a repository and columns (both engines) agree with the per-org sweep."""
    organizations, programs, matches, now = batch
    organization_of = {p.id: p.organization_id for p in programs}
    expected = {
        org.id: active_users_by_period(
            [m for m in matches if organization_of[m.program_id] == org.id],
            org.cycle.closed_periods(before=now, count=6),
        )
        for org in organizations
    }
    repository = InMemoryRepository()
    repository.add(*organizations, *programs, *matches)
    columns = MatchColumns.from_matches(matches, programs)
    expected_counts = {
        org: {p: len(users) for p, users in spans.items()} for org, spans in expected.items()
    }
    given_ = {"now": now, "organizations": organizations}

    assert expected == batch_active_users(matches, programs=programs, **given_)
    assert expected == batch_active_users(repository, now=now)
    assert expected == batch_active_users(columns, engine=engine, **given_)
    assert expected_counts == batch_counts(matches, programs=programs, **given_)
    assert expected_counts == batch_counts(repository, now=now)
    assert expected_counts == batch_counts(columns, engine=engine, **given_)


def two_organizations() -> tuple[list[Organization], list[Program], list[Match]]:
    paris = pendulum.datetime(2025, 1, 31, tz="Europe/Paris")
    tokyo = pendulum.datetime(2025, 1, 15, 9, tz="Asia/Tokyo")
    organizations = [
        Organization("paris", "Paris", "Europe/Paris", BillingCycle.monthly(paris)),
        Organization("tokyo", "Tokyo", "Asia/Tokyo", BillingCycle.monthly(tokyo, every=3)),
    ]
    programs = [Program("p-paris", "paris"), Program("p-tokyo", "tokyo")]
    march = pendulum.datetime(2025, 3, 31, tz="Europe/Paris").in_tz("UTC")
    matches = [
        # Ends one microsecond into Paris's March period (it starts March 31, Paris time).
        Match("m1", "p-paris", {"ann", "bob"}, paris.add(months=1), march.add(microseconds=1)),
        Match("m2", "p-paris", {"ann", "cid"}, paris.add(months=2)),
        Match("m3", "p-tokyo", {"ann"}, tokyo.subtract(days=1)),
        Match("m4", "p-tokyo", {"dan"}, tokyo, tokyo),  # zero-length: never counts
    ]
    return organizations, programs, matches


def test_each_organization_uses_its_own_cycle() -> None:
    """Monthly in Paris (anchored on the 31st), quarterly in Tokyo; the last 2 closed periods."""
    organizations, programs, matches = two_organizations()
    now = pendulum.datetime(2025, 5, 1, tz="UTC")
    feb_end = pendulum.datetime(2025, 3, 31, tz="Europe/Paris")
    expected = {
        "paris": {
            BillingPeriod(pendulum.datetime(2025, 2, 28, tz="Europe/Paris"), feb_end): 2,
            BillingPeriod(feb_end, pendulum.datetime(2025, 4, 30, tz="Europe/Paris")): 3,
        },
        "tokyo": {
            BillingPeriod(
                pendulum.datetime(2024, 10, 15, 9, tz="Asia/Tokyo"),
                pendulum.datetime(2025, 1, 15, 9, tz="Asia/Tokyo"),
            ): 1,
            BillingPeriod(
                pendulum.datetime(2025, 1, 15, 9, tz="Asia/Tokyo"),
                pendulum.datetime(2025, 4, 15, 9, tz="Asia/Tokyo"),
            ): 1,
        },
    }

    actual = batch_counts(matches, now=now, count=2, organizations=organizations, programs=programs)

    assert expected == actual


def test_batch_periods_are_each_cycles_closed_periods() -> None:
    organizations, _, _ = two_organizations()
    now = pendulum.datetime(2025, 5, 1, tz="UTC")

    expected = {o.id: o.cycle.closed_periods(before=now, count=3) for o in organizations}

    assert expected == batch_periods(organizations, now=now, count=3)


def test_repository_batch_can_be_limited_to_some_organizations() -> None:
    organizations, programs, matches = two_organizations()
    repository = InMemoryRepository()
    repository.add(*organizations, *programs, *matches)
    now = pendulum.datetime(2025, 5, 1, tz="UTC")

    found = batch_counts(repository, now=now, organizations=organizations[1:])

    assert list(found) == ["tokyo"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"organizations": None}, InvalidRecordError, "organizations"),
        ({"programs": None}, InvalidRecordError, "programs"),
        ({"programs": []}, UnknownRecordError, "'m1'.*'p-paris'"),
        ({"now": datetime(2025, 5, 1)}, InvalidRecordError, "now"),
        ({"count": -1}, InvalidRecordError, "count"),
    ],
    ids=["no-organizations", "no-programs", "unknown-program", "naive-now", "negative-count"],
)
def test_bad_batch_arguments(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    organizations, programs, matches = two_organizations()
    arguments: dict[str, object] = {
        "now": pendulum.datetime(2025, 5, 1, tz="UTC"),
        "organizations": organizations,
        "programs": programs,
        **kwargs,
    }

    with pytest.raises(error, match=message):
        batch_counts(matches, **arguments)  # type: ignore[arg-type]


def test_duplicate_match_ids_across_organizations() -> None:
    organizations, programs, matches = two_organizations()
    twin = Match("m1", "p-tokyo", {"eve"}, matches[0].started_at)

    with pytest.raises(DuplicateMatchError, match="'m1'"):
        batch_counts(
            [*matches, twin],
            now=pendulum.datetime(2025, 5, 1, tz="UTC"),
            organizations=organizations,
            programs=programs,
        )


def test_columns_batch_needs_organizations() -> None:
    columns = MatchColumns([], [], [], [], [])

    with pytest.raises(InvalidRecordError, match="organizations"):
        batch_counts(columns, now=pendulum.datetime(2025, 5, 1, tz="UTC"))
