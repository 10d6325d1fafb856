"""The domain records reject bad values at construction, naming them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pendulum
import pytest
from hypothesis import given
from hypothesis import strategies as st

from matchusage import BillingCycle, Match, Organization, Program, Role, User
from matchusage.exceptions import (
    InvalidCycleError,
    InvalidMatchError,
    InvalidRecordError,
    MatchUsageError,
)

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
NAIVE = datetime(2024, 1, 1)


def make(**changes: Any) -> Match:
    fields: dict[str, Any] = {
        "id": "m-1",
        "program_id": "p",
        "participants": {"ann", "bob"},
        "started_at": T0,
        "ended_at": None,
    }
    fields.update(changes)
    return Match(**fields)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"started_at": NAIVE}, "started_at"),
        ({"ended_at": NAIVE}, "ended_at"),
        ({"started_at": pendulum.naive(2024, 1, 1)}, "started_at"),
        ({"ended_at": T0 - timedelta(microseconds=1)}, "ended_at"),
        ({"participants": set()}, "participants"),
        ({"participants": "ann"}, "participants"),
        ({"participants": {"ann", ""}}, "participants"),
        ({"participants": {"ann", 7}}, "participants"),
        ({"participants": 7}, "participants"),
        ({"program_id": ""}, "program_id"),
        ({"roles": {"zed": "mentor"}}, "roles"),
        ({"roles": {"ann": "boss"}}, "roles"),
        ({"roles": ["ann"]}, "roles"),
        ({"started_at": "2024-01-01T00:00:00+00:00"}, "started_at"),
    ],
    ids=[
        "naive-start",
        "naive-end",
        "naive-pendulum-start",
        "end-before-start",
        "no-participants",
        "participants-a-string",
        "empty-user-id",
        "non-string-user-id",
        "participants-not-a-collection",
        "empty-program",
        "role-of-stranger",
        "unknown-role",
        "roles-not-a-mapping",
        "start-a-string",
    ],
)
def test_bad_match_names_id_field_and_value(changes: dict[str, Any], field: str) -> None:
    """A bad match raises InvalidMatchError (a ValueError) naming match id, field and value."""
    with pytest.raises(InvalidMatchError) as info:
        make(**changes)

    error = info.value
    assert isinstance(error, ValueError)
    assert isinstance(error, MatchUsageError)
    assert (error.match_id, error.field) == ("m-1", field)
    assert "'m-1'" in str(error)
    assert repr(field) in str(error)


def test_bad_id_is_named() -> None:
    with pytest.raises(InvalidMatchError, match="'id'"):
        make(id="")


def test_naive_message_shows_the_value() -> None:
    with pytest.raises(InvalidMatchError) as info:
        make(started_at=NAIVE)

    assert repr(NAIVE) in str(info.value)
    assert NAIVE.isoformat() in str(info.value)
    assert "timezone-aware" in str(info.value)


@pytest.mark.parametrize(
    "collect",
    [list, tuple, set, frozenset, iter, lambda ids: (user for user in ids)],
    ids=["list", "tuple", "set", "frozenset", "iterator", "generator"],
)
def test_participants_are_a_frozenset(collect: Callable[[list[str]], Any]) -> None:
    match = make(participants=collect(["ann", "bob", "ann"]))

    assert frozenset({"ann", "bob"}) == match.participants


def test_matches_are_equal_by_instants_even_in_a_repeated_hour() -> None:
    # 01:30 on 2024-11-03 happens twice in New York; fold=0 is the first one (EDT).
    first = datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo("America/New_York"))

    assert make(started_at=first) == make(started_at=first.astimezone(timezone.utc))
    assert make(started_at=first) != make(started_at=first.replace(fold=1))


def test_zero_length_match_is_valid() -> None:
    assert make(ended_at=T0).ended_at == T0


def test_pendulum_and_stdlib_datetimes_are_accepted_alike() -> None:
    stdlib = make(started_at=T0, ended_at=T0 + timedelta(days=3))
    pend = make(
        started_at=pendulum.datetime(2024, 1, 1, 1, tz="Europe/Berlin"),
        ended_at=pendulum.datetime(2024, 1, 4, tz="UTC"),
    )

    assert stdlib == pend
    assert hash(stdlib) == hash(pend)


def test_roles_are_optional_and_read_only() -> None:
    match = make(roles={"ann": "mentor", "bob": Role.MENTEE})

    assert Role.MENTOR == match.role_of("ann")
    assert Role.MENTEE == match.role_of("bob")
    assert make().role_of("ann") is None
    with pytest.raises(TypeError):
        match.roles["ann"] = Role.OTHER  # type: ignore[index]


def test_roles_do_not_change_equality_of_spans() -> None:
    """Roles are part of equality but not of the hash, so matches stay hashable."""
    assert hash(make(roles={"ann": "mentor"})) == hash(make())


@pytest.mark.parametrize(
    ("at", "current"),
    [
        (T0 - timedelta(microseconds=1), False),
        (T0, True),
        (T0 + timedelta(days=9, hours=23), True),
        (T0 + timedelta(days=10), False),
    ],
    ids=["before-start", "at-start", "just-before-end", "at-end"],
)
def test_is_active_at_is_half_open(at: datetime, current: bool) -> None:
    assert current == make(ended_at=T0 + timedelta(days=10)).is_active_at(at)


def test_user_and_program_require_ids() -> None:
    with pytest.raises(InvalidRecordError, match="'id'"):
        User(id="")
    with pytest.raises(InvalidRecordError, match="'organization_id'"):
        Program(id="p", organization_id="")


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "Europe", "europe/paris", "", "../etc/passwd", 7], ids=repr
)
def test_an_organization_needs_an_iana_time_zone_name(name: object) -> None:
    cycle = BillingCycle.monthly(T0)
    with pytest.raises(InvalidCycleError, match="'timezone'") as info:
        Organization("o", "Org", name, cycle)  # type: ignore[arg-type]
    assert name == info.value.value


def test_organization_checks_its_time_zone() -> None:
    cycle = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Paris")))

    assert Organization("o", "Org", "Europe/Paris", cycle).tzinfo.utcoffset(T0) == timedelta(
        hours=1
    )
    assert ZoneInfo("Europe/Paris") == Organization("o", "Org", "Europe/Paris", cycle).tzinfo
    with pytest.raises(InvalidCycleError, match="'cycle'"):
        Organization("o", "Org", "Europe/Berlin", cycle)


@given(
    st.fixed_dictionaries(
        {
            "id": st.one_of(st.text(max_size=3), st.none(), st.integers()),
            "program_id": st.one_of(st.text(max_size=3), st.none()),
            "participants": st.one_of(
                st.frozensets(st.text(max_size=3), max_size=3), st.text(max_size=3), st.none()
            ),
            "started_at": st.one_of(st.datetimes(), st.datetimes(timezones=st.timezones())),
            "ended_at": st.one_of(
                st.none(), st.datetimes(), st.datetimes(timezones=st.timezones())
            ),
        }
    )
)
def test_match_builds_or_raises_the_documented_error(fields: dict[str, Any]) -> None:
    """Any input either builds a valid match or raises InvalidMatchError naming the value."""
    try:
        match = Match(**fields)
    except InvalidMatchError as error:
        failure = error
    else:
        assert match.participants
        assert match.started_at.utcoffset() is not None
        assert match.ended_at is None or match.ended_at >= match.started_at
        return
    assert repr(failure.value) in str(failure)
    assert failure.field in fields
