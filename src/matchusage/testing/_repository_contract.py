"""The contract every MatchRepository adapter must meet, as a base test class."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeAlias

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .._model import Match, Organization, Program, Role, User
from .._periods import BillingCycle, BillingPeriod
from .._source import OrganizationMatches
from .._time import UTC
from .._usage import active_users_by_period, current_active_matches
from ..exceptions import (
    DuplicateMatchError,
    DuplicateRecordError,
    InvalidRecordError,
    UnknownRecordError,
)
from ..protocols import MatchRepository
from . import oracle
from . import strategies as mst

Record: TypeAlias = Organization | Program | User | Match
"""One record a repository holds: an organization, a program, a user or a match."""

MakeRepository: TypeAlias = Callable[[Sequence[Record]], MatchRepository]
"""Builds a repository holding exactly the given records (in dependency order)."""

# Each example builds a repository through the function-scoped fixture on purpose.
_property = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)

_T0 = datetime(2024, 3, 1, tzinfo=UTC)
_HOSTILE = 'Robert\'); DROP TABLE matches; -- "x" ; \\ % _ \u00e9\u4e2d\U0001f600'


_CYCLE = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))


def example_records(*matches: Match) -> list[Record]:
    """The records the contract tests use, in dependency order, then *matches*.

    Two organizations billed monthly from 2024-01-01 in UTC: ``"o1"``
    (programs ``"p1"`` and ``"p2"``) and ``"o2"`` (program ``"p3"``); users
    ``"u0"`` to ``"u7"``. The same ids as
    [`repository_records`][matchusage.testing.strategies.repository_records]
    draws, for an adapter's own example-based tests.
    """
    return [
        Organization("o1", "One", "UTC", _CYCLE),
        Organization("o2", "Two", "UTC", _CYCLE),
        Program("p1", "o1", "First"),
        Program("p2", "o1", "Second"),
        Program("p3", "o2", "Third"),
        *(User(f"u{n}", f"User {n}", f"u{n}@example.org") for n in range(8)),
        *matches,
    ]


def matches_of(records: Sequence[Record], organization_id: str) -> list[Match]:
    """The matches among *records* whose program (among *records*) belongs to the organization.

    The expected input of an organization's counts, for an oracle.
    """
    programs = {
        r.id for r in records if isinstance(r, Program) and r.organization_id == organization_id
    }
    return [r for r in records if isinstance(r, Match) and r.program_id in programs]


class MatchRepositoryContract:
    """Tests that any [`MatchRepository`][matchusage.protocols.MatchRepository] must pass.

    The tests use only the protocol. Subclass this class in your test suite
    and provide one fixture, ``make_repository``: a function that takes a
    list of records (organizations, programs, users and matches, in
    dependency order) and returns a repository holding exactly those
    records. Each call may start from scratch (and so invalidate the
    previous repository).

    ```python
    import pytest
    from matchusage.testing.contracts import MatchRepositoryContract

    class TestMyRepository(MatchRepositoryContract):
        @pytest.fixture
        def make_repository(self):
            def make(records):
                repository = MyRepository(...)
                repository.save(records)
                return repository
            return make
    ```

    A repository that also writes, with an ``add(*records)`` method like
    the bundled ones, is held to the rule the
    [`MatchRepository`][matchusage.protocols.MatchRepository] docstring
    states: ``add`` refuses every id already stored, identical record or
    not, and writes nothing of that call. For a read-only repository those
    tests are skipped.

    Several tests are Hypothesis property tests, so ``make_repository`` is
    called many times per test: keep it cheap (truncate tables rather than
    create a database).
    """

    def test_organizations_are_ordered_by_id_and_round_trip(
        self, make_repository: MakeRepository
    ) -> None:
        records = example_records()
        repository = make_repository(list(reversed(records[:2])) + records[2:])
        assert records[:2] == list(repository.organizations())

    @_property
    @given(records=mst.repository_records(max_matches=0))
    def test_billing_cycles_round_trip(
        self, make_repository: MakeRepository, records: list[Record]
    ) -> None:
        """The stored cycle gives the same periods: same anchor instant, unit, every and zone."""
        repository = make_repository(records)
        for stored in records[:2]:
            assert isinstance(stored, Organization)
            found = repository.organization(stored.id)
            assert (stored.id, stored.name, stored.timezone) == (
                found.id,
                found.name,
                found.timezone,
            )
            expected = [stored.cycle.period(k) for k in (-13, -1, 0, 1, 2, 11, 25)]
            assert expected == [found.cycle.period(k) for k in (-13, -1, 0, 1, 2, 11, 25)]

    @pytest.mark.parametrize("method", ["organization", "programs", "matches"])
    def test_unknown_organization_raises(
        self, make_repository: MakeRepository, method: str
    ) -> None:
        repository = make_repository(example_records())
        call = getattr(repository, method)
        window = {"start": _T0, "end": _T0 + timedelta(days=1)} if method == "matches" else {}
        with pytest.raises(UnknownRecordError, match="nowhere"):
            call("nowhere", **window)

    def test_programs_are_those_of_the_organization_ordered_by_id(
        self, make_repository: MakeRepository
    ) -> None:
        records = example_records()
        repository = make_repository(records)
        assert [records[2], records[3]] == list(repository.programs("o1"))
        assert [records[4]] == list(repository.programs("o2"))

    def test_users_returns_the_known_ones_keyed_by_id(
        self, make_repository: MakeRepository
    ) -> None:
        repository = make_repository(example_records())
        expected = {
            "u1": User("u1", "User 1", "u1@example.org"),
            "u3": User("u3", "User 3", "u3@example.org"),
        }
        assert expected == dict(repository.users(["u3", "nobody", "u1", "u1"]))
        assert dict(repository.users([])) == {}

    def test_matches_round_trip(self, make_repository: MakeRepository) -> None:
        """Participants, roles and instants come back as stored (instants compare as instants)."""
        group = Match(
            "g",
            "p1",
            {"u1", "u2", "u3"},
            _T0,
            _T0 + timedelta(days=3, microseconds=7),
            roles={"u1": Role.MENTOR, "u2": Role.MENTEE, "u3": Role.OTHER},
        )
        pair = Match(
            "m",
            "p2",
            {"u1", "u4"},
            _T0 - timedelta(hours=1),
            roles={"u1": "mentor", "u4": "mentee"},
        )
        repository = make_repository(example_records(group, pair))
        found = repository.matches("o1", start=_T0, end=_T0 + timedelta(days=1))
        assert [group, pair] == sorted(found, key=lambda m: m.id)
        assert [group.roles, pair.roles] == [m.roles for m in sorted(found, key=lambda m: m.id)]

    @_property
    @given(
        records=mst.repository_records(),
        window=mst.billing_periods(),
        program=st.none() | st.sampled_from(["p1", "p2"]),
    )
    def test_matches_returns_every_overlapping_match_of_the_organization(
        self,
        make_repository: MakeRepository,
        records: list[Record],
        window: BillingPeriod,
        program: str | None,
    ) -> None:
        """Every match overlapping the window by a positive amount, none of another scope."""
        repository = make_repository(records)
        scope = [m for m in matches_of(records, "o1") if program is None or m.program_id == program]
        found = list(
            repository.matches("o1", start=window.start, end=window.end, program_id=program)
        )
        ids = [m.id for m in found]
        assert len(ids) == len(set(ids))
        required = {m.id for m in scope if oracle.overlaps(m, window.start, window.end)}
        assert required <= set(ids)
        stored = {m.id: m for m in scope}
        assert all(stored.get(m.id) == m for m in found)

    @_property
    @given(
        records=mst.repository_records(),
        periods=st.lists(mst.billing_periods(), min_size=1, max_size=4),
        program=st.none() | st.sampled_from(["p1", "p2"]),
    )
    def test_counting_from_the_repository_equals_counting_its_matches(
        self,
        make_repository: MakeRepository,
        records: list[Record],
        periods: list[BillingPeriod],
        program: str | None,
    ) -> None:
        """The engine over ``OrganizationMatches`` agrees with the engine over the plain list."""
        repository = make_repository(records)
        scope = [m for m in matches_of(records, "o1") if program is None or m.program_id == program]
        expected = active_users_by_period(scope, periods)
        source = OrganizationMatches(repository, "o1", program)
        assert expected == active_users_by_period(source, periods)

    @_property
    @given(records=mst.repository_records(), at=mst.aware_datetimes())
    def test_current_active_matches_from_the_repository(
        self, make_repository: MakeRepository, records: list[Record], at: datetime
    ) -> None:
        repository = make_repository(records)
        expected = current_active_matches(matches_of(records, "o2"), at=at)
        assert expected == current_active_matches(OrganizationMatches(repository, "o2"), at=at)

    def test_hostile_text_round_trips(self, make_repository: MakeRepository) -> None:
        """Quotes, semicolons, SQL and unicode in ids and names are data, nothing more."""
        cycle = BillingCycle.monthly(datetime(2024, 1, 31, 9, tzinfo=UTC))
        organization = Organization(_HOSTILE, _HOSTILE, "UTC", cycle)
        program = Program(_HOSTILE + "p", _HOSTILE, _HOSTILE)
        user = User(_HOSTILE + "u", _HOSTILE, _HOSTILE)
        match = Match(
            _HOSTILE + "m",
            program.id,
            {user.id, "o'brien"},
            _T0,
            roles={user.id: Role.MENTOR, "o'brien": Role.MENTEE},
        )
        repository = make_repository([organization, program, user, match])
        assert [organization] == list(repository.organizations())
        assert [program] == list(repository.programs(_HOSTILE))
        assert {user.id: user} == dict(repository.users([user.id, "o'brien"]))
        found = repository.matches(_HOSTILE, start=_T0, end=_T0 + timedelta(days=1))
        assert [match] == list(found)

    @pytest.mark.parametrize("bound", ["start", "end"])
    def test_naive_window_is_rejected(self, make_repository: MakeRepository, bound: str) -> None:
        repository = make_repository(example_records())
        window = {"start": _T0, "end": _T0 + timedelta(days=1)}
        window[bound] = window[bound].replace(tzinfo=None)
        with pytest.raises(InvalidRecordError, match=bound):
            repository.matches("o1", start=window["start"], end=window["end"])

    @pytest.mark.parametrize(
        ("kind", "again"),
        [
            ("organization", Organization("o1", "Renamed", "UTC", _CYCLE)),
            ("organization", Organization("o1", "One", "UTC", _CYCLE)),  # identical
            ("program", Program("p1", "o2", "Moved")),
            ("program", Program("p1", "o1", "First")),  # identical
            ("user", User("u1", "Someone else", "else@example.org")),
            ("user", User("u1", "User 1", "u1@example.org")),  # identical
            ("match", Match("m", "p1", {"u5"}, _T0)),
            ("match", Match("m", "p1", {"u1"}, _T0)),  # identical
        ],
        ids=lambda value: value if isinstance(value, str) else type(value).__name__,
    )
    def test_add_refuses_an_id_already_stored_and_writes_nothing(
        self, make_repository: MakeRepository, kind: str, again: Record
    ) -> None:
        """Adding never replaces, even an identical record; the rest of the call is not written."""
        repository = make_repository(example_records(Match("m", "p1", {"u1"}, _T0)))
        add = getattr(repository, "add", None)
        if add is None:
            pytest.skip("a read-only repository (no add method)")
        error = DuplicateMatchError if kind == "match" else DuplicateRecordError
        with pytest.raises(error, match=f"{again.id!r}") as info:
            add(Organization("o3", "Three", "UTC", _CYCLE), again)
        if isinstance(info.value, DuplicateRecordError):
            assert (kind, again.id) == (info.value.kind, info.value.record_id)
        with pytest.raises(UnknownRecordError):
            repository.organization("o3")
        assert [example_records()[0]] == [o for o in repository.organizations() if o.id == "o1"]
        assert [example_records()[2]] == [p for p in repository.programs("o1") if p.id == "p1"]
        assert {"u1": example_records()[6]} == dict(repository.users(["u1"]))
        [match] = repository.matches("o1", start=_T0, end=_T0 + timedelta(days=1))
        assert {"u1"} == match.participants

    @pytest.mark.parametrize("kind", ["organization", "program", "user"])
    def test_add_refuses_an_id_given_twice_in_one_call(
        self, make_repository: MakeRepository, kind: str
    ) -> None:
        repository = make_repository(example_records())
        add = getattr(repository, "add", None)
        if add is None:
            pytest.skip("a read-only repository (no add method)")
        twice: dict[str, list[Record]] = {
            "organization": [Organization("o3", "", "UTC", _CYCLE)] * 2,
            "program": [Program("p9", "o1"), Program("p9", "o2")],
            "user": [User("u9", "A"), User("u9", "B")],
        }
        with pytest.raises(DuplicateRecordError, match=f"{kind} '"):
            add(*twice[kind])
        assert "o3" not in [o.id for o in repository.organizations()]
        assert "p9" not in [p.id for p in repository.programs("o1")]
        assert dict(repository.users(["u9"])) == {}
