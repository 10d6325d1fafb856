"""Acceptance checks of issues 4, 5 and 6 through the public API.

Repository protocol, SQL adapter and pushdown (SQLite and PostgreSQL);
billing provider, portal and the exactly-once period close; columnar engine
and the multi-organization batch. Each test name states the rule it checks.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import matchusage
from matchusage import (
    BillingCycle,
    BillingPeriod,
    Match,
    MatchColumns,
    Organization,
    OrganizationMatches,
    Program,
    User,
    active_users_by_period,
    batch_active_users,
    batch_counts,
    batch_periods,
    columnar_active_users,
    columnar_counts,
)
from matchusage.billing import (
    Address,
    Adjustment,
    BillingDetails,
    CloseStatus,
    DocumentKind,
    InvoiceStatus,
    PaymentMethod,
    Plan,
    PriceTier,
    ReportedUsage,
    TierMode,
    UsageSnapshot,
    billing_portal,
    billing_run,
    close_period,
    reconcile,
    usage_idempotency_key,
)
from matchusage.exceptions import (
    DocumentUnavailableError,
    InvalidMatchError,
    InvalidPeriodError,
    InvalidRecordError,
    MatchUsageError,
    PeriodNotClosedError,
    RepositoryError,
    UnknownRecordError,
    UsageConflictError,
)
from matchusage.memory import InMemoryBillingProvider, InMemoryRepository, InMemorySnapshotStore
from matchusage.protocols import BillingProvider, MatchRepository, SnapshotStore
from matchusage.sql import SQLRepository, SQLSnapshotStore
from matchusage.testing import strategies as mst
from matchusage.testing.contracts import BillingProviderContract

from .test_sql import _failing_view, load, world

UTC = timezone.utc
US = timedelta(microseconds=1)
DAY = timedelta(days=1)
MONTHLY = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))
FEBRUARY, MARCH, APRIL = MONTHLY.period(1), MONTHLY.period(2), MONTHLY.period(3)
Record = Organization | Program | User | Match
_FEW = settings(max_examples=20, deadline=None)


def micros(instant: datetime) -> int:
    """An instant as integer microseconds since the Unix epoch, the columnar unit."""
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // US


def at(month: int, day: int = 1, hour: int = 0) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


def memory(records: Sequence[Record]) -> InMemoryRepository:
    repository = InMemoryRepository()
    repository.add(*records)
    return repository


@pytest.fixture
def sql_repository(sql_engine: sa.Engine) -> SQLRepository:
    """An empty SQLRepository with its schema, on SQLite and on PostgreSQL."""
    repository = SQLRepository(sql_engine)
    repository.create_schema()
    return repository


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Collect every SQL statement the engine sends to the database meanwhile."""
    seen: list[str] = []

    def keep(*args: Any) -> None:
        seen.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", keep)


# --- issue 4: the ports and the adapters ------------------------------------------------


@pytest.mark.parametrize(
    ("make", "port"),
    [
        (InMemoryRepository, MatchRepository),
        (lambda: SQLRepository(sa.create_engine("sqlite://")), MatchRepository),
        (InMemoryBillingProvider, BillingProvider),
        (InMemorySnapshotStore, SnapshotStore),
        (lambda: SQLSnapshotStore(sa.create_engine("sqlite://")), SnapshotStore),
    ],
    ids=["memory-repo", "sql-repo", "memory-provider", "memory-store", "sql-store"],
)
def test_adapters_implement_their_ports(make: Callable[[], object], port: type) -> None:
    assert isinstance(make(), port)


class TestInMemoryProviderMeetsTheContract(BillingProviderContract):
    @pytest.fixture
    def provider(self, organization_id: str) -> BillingProvider:
        provider = InMemoryBillingProvider(clock=lambda: at(6))
        details = BillingDetails("Contract GmbH", "billing@contract.example")
        provider.subscribe(organization_id, Plan("Team", "4.00", "EUR"), billing_details=details)
        return provider

    def pay(self, provider: BillingProvider, organization_id: str, invoice_number: str) -> None:
        assert isinstance(provider, InMemoryBillingProvider)
        provider.mark_paid(organization_id, invoice_number, at=at(6, 2))

    def payment_method_id(self, provider: BillingProvider, organization_id: str) -> str:
        assert isinstance(provider, InMemoryBillingProvider)
        return provider.tokenize_payment_method(PaymentMethod("visa", "4242", 12, 2030))


# Each case: the matches, then the expected active users of o1 in February, March, April.
BOUNDARY_CASES = {
    "ongoing-from-before": (
        [Match("m", "p1", {"u1", "u2"}, at(1, 10))],
        [{"u1", "u2"}, {"u1", "u2"}, {"u1", "u2"}],
    ),
    "ongoing-starting-exactly-at-march-end": (
        [Match("m", "p1", {"u1"}, APRIL.start)],
        [set(), set(), {"u1"}],
    ),
    "ended-exactly-at-march-start": (
        [Match("m", "p1", {"u1"}, at(2, 10), MARCH.start)],
        [{"u1"}, set(), set()],
    ),
    "ended-one-microsecond-into-march": (
        [Match("m", "p1", {"u1"}, at(2, 10), MARCH.start + US)],
        [{"u1"}, {"u1"}, set()],
    ),
    "started-one-microsecond-before-march-end": (
        [Match("m", "p1", {"u1"}, APRIL.start - US, APRIL.start)],
        [set(), {"u1"}, set()],
    ),
    "zero-length-inside-march": (
        [Match("m", "p1", {"u1"}, at(3, 10), at(3, 10))],
        [set(), set(), set()],
    ),
    "zero-length-at-march-start": (
        [Match("m", "p1", {"u1"}, MARCH.start, MARCH.start)],
        [set(), set(), set()],
    ),
    "ended-mid-march-still-billed-for-march": (
        [Match("m", "p1", {"u1", "u2"}, at(3, 1), at(3, 15))],
        [set(), {"u1", "u2"}, set()],
    ),
    "group-match-counts-every-participant": (
        [Match("m", "p1", {"u1", "u2", "u3", "u4"}, at(3, 2), at(3, 3))],
        [set(), {"u1", "u2", "u3", "u4"}, set()],
    ),
    "mentor-with-two-mentees-is-three-users": (
        [
            Match("m1", "p1", {"u1", "u2"}, at(3, 2)),
            Match("m2", "p1", {"u1", "u3"}, at(3, 5), at(3, 9)),
        ],
        [set(), {"u1", "u2", "u3"}, {"u1", "u2"}],
    ),
    "user-in-two-programs-counts-once": (
        [
            Match("m1", "p1", {"u1", "u2"}, at(3, 2)),
            Match("m2", "p2", {"u1", "u3"}, at(3, 5)),
        ],
        [set(), {"u1", "u2", "u3"}, {"u1", "u2", "u3"}],
    ),
    "other-organization-does-not-count": (
        [Match("m1", "p3", {"u1", "u2"}, at(1, 2)), Match("m2", "p1", {"u1"}, at(3, 2))],
        [set(), {"u1"}, {"u1"}],
    ),
}


@pytest.mark.parametrize(
    ("matches", "expected"), list(BOUNDARY_CASES.values()), ids=list(BOUNDARY_CASES)
)
def test_sql_equals_memory_on_boundary_cases(
    sql_repository: SQLRepository, matches: list[Match], expected: list[set[str]]
) -> None:
    records = world(*matches)
    periods = [FEBRUARY, MARCH, APRIL]
    wanted = {p: frozenset(users) for p, users in zip(periods, expected, strict=True)}
    load(sql_repository, records)
    in_memory = active_users_by_period(OrganizationMatches(memory(records), "o1"), periods)
    from_sql_objects = active_users_by_period(OrganizationMatches(sql_repository, "o1"), periods)
    assert wanted == in_memory
    assert wanted == from_sql_objects
    assert wanted == sql_repository.active_users_by_period("o1", periods)
    assert {p: len(u) for p, u in wanted.items()} == sql_repository.count_active_users(
        "o1", periods
    )
    assert {"o1": {p: len(u) for p, u in wanted.items()}} == sql_repository.count_by_organization(
        {"o1": periods}
    )


@_FEW
@given(
    records=mst.repository_records(max_matches=15),
    periods=st.lists(mst.billing_periods(), min_size=1, max_size=4),
)
def test_sql_pushdown_equals_memory_engine_on_any_input(
    sql_repository: SQLRepository, records: list[Record], periods: list[BillingPeriod]
) -> None:
    load(sql_repository, records)
    reference = memory(records)
    for org in ("o1", "o2"):
        expected = active_users_by_period(OrganizationMatches(reference, org), periods)
        assert expected == sql_repository.active_users_by_period(org, periods)
        assert {p: len(u) for p, u in expected.items()} == sql_repository.count_active_users(
            org, periods
        )
    by_program = active_users_by_period(OrganizationMatches(reference, "o1", "p2"), periods)
    assert {p: len(u) for p, u in by_program.items()} == sql_repository.count_active_users(
        "o1", periods, program_id="p2"
    )


def test_counting_many_periods_is_one_statement(sql_repository: SQLRepository) -> None:
    load(sql_repository, world(Match("m", "p1", {"u1", "u2"}, at(2, 10))))
    periods = [MONTHLY.period(k) for k in range(12)]
    with statements(sql_repository.engine) as seen:
        counts = sql_repository.count_active_users("o1", periods)
    assert [0] + [2] * 11 == list(counts.values())
    assert 1 == len(seen), seen


def test_active_user_ids_of_many_periods_are_one_statement(
    sql_repository: SQLRepository,
) -> None:
    load(sql_repository, world(Match("m", "p1", {"u1", "u2"}, at(2, 10))))
    periods = [MONTHLY.period(k) for k in range(6)]
    with statements(sql_repository.engine) as seen:
        found = sql_repository.active_users_by_period("o1", periods)
    assert [frozenset()] + [frozenset({"u1", "u2"})] * 5 == list(found.values())
    assert 1 == len(seen), seen


def test_counting_every_organization_is_one_statement(sql_repository: SQLRepository) -> None:
    load(
        sql_repository,
        world(Match("m1", "p1", {"u1"}, at(1, 10)), Match("m2", "p3", {"u1", "u2"}, at(2, 10))),
    )
    periods = {"o1": [FEBRUARY, MARCH], "o2": [MARCH, APRIL]}
    with statements(sql_repository.engine) as seen:
        counts = sql_repository.count_by_organization(periods)
    assert {"o1": {FEBRUARY: 1, MARCH: 1}, "o2": {MARCH: 2, APRIL: 2}} == counts
    assert 1 == len(seen), seen


def test_closed_periods_of_every_organization_read_matches_in_one_statement(
    sql_repository: SQLRepository,
) -> None:
    load(sql_repository, world(Match("m1", "p1", {"u1"}, at(1, 10))))
    with statements(sql_repository.engine) as seen:
        counts = sql_repository.count_closed_periods(before=at(5), count=3)
    assert {
        "o1": {FEBRUARY: 1, MARCH: 1, APRIL: 1},
        "o2": dict.fromkeys([FEBRUARY, MARCH, APRIL], 0),
    } == counts
    assert 1 == len([s for s in seen if "matchusage_matches" in s]), seen


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.count_active_users("nope", [MARCH]),
        lambda r: r.active_users_by_period("nope", [MARCH]),
        lambda r: list(r.iter_active_users("nope", [MARCH])),
        lambda r: r.count_by_organization({"o1": [MARCH], "nope": [MARCH]}),
        lambda r: r.matches("nope", start=MARCH.start, end=MARCH.end),
        lambda r: r.programs("nope"),
        lambda r: r.organization("nope"),
    ],
    ids=["count", "ids", "stream", "by-organization", "matches", "programs", "organization"],
)
def test_an_unknown_organization_is_an_unknown_record(
    sql_repository: SQLRepository, call: Callable[[SQLRepository], object]
) -> None:
    load(sql_repository, world(Match("m1", "p1", {"u1"}, at(1, 10))))
    with pytest.raises(UnknownRecordError, match="nope"):
        call(sql_repository)


def _insert_raw_match(engine: sa.Engine, started: str, ended: str | None) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO matchusage_matches VALUES ('raw', 'p1', :s, :e)"),
            {"s": started, "e": ended},
        )
        connection.execute(
            sa.text("INSERT INTO matchusage_participants VALUES ('raw', 'u9', NULL)")
        )


@pytest.mark.parametrize(
    ("started", "ended"),
    [
        ("2024-03-01 00:00:00.000000", None),
        ("2024-02-10 00:00:00.000000+00:00", "2024-03-01 00:00:00.000000"),
        ("2024-03-01T00:00:00", None),
        ("2024-03-01 01:00:00.000000+01:00", None),
    ],
    ids=["naive-start", "naive-end", "iso-naive", "not-utc-text"],
)
def test_sqlite_instants_not_in_the_utc_form_are_rejected_by_every_read(
    tmp_path: Path, started: str, ended: str | None
) -> None:
    """Stored text the mapping does not declare never counts silently (nor miscounts)."""
    repository = SQLRepository(sa.create_engine(f"sqlite:///{tmp_path / 'naive.db'}"))
    repository.create_schema()
    repository.add(*world())
    _insert_raw_match(repository.engine, started, ended)
    if "+01:00" not in started:  # an aware value in another zone reads back fine as an object
        with pytest.raises(InvalidMatchError, match="raw"):
            repository.matches("o1", start=FEBRUARY.start, end=APRIL.end)
    field, text = ("started_at", started) if ended is None else ("ended_at", ended)
    message = f"'raw': '{field}' .* \\(got {re.escape(repr(text))}\\)"
    with pytest.raises(InvalidMatchError, match=message):
        repository.count_active_users("o1", [FEBRUARY, MARCH])
    with pytest.raises(InvalidMatchError, match="raw"):
        repository.active_users_by_period("o1", [FEBRUARY, MARCH])
    with pytest.raises(InvalidMatchError, match="raw"):
        repository.count_closed_periods(before=at(4), count=2)


@pytest.mark.parametrize("declared", [False, True], ids=["undeclared", "declared-utc"])
def test_naive_instants_are_rejected_unless_declared_utc(
    sql_engine: sa.Engine, declared: bool
) -> None:
    """A naive column (timestamp without time zone / text without offset) needs naive_utc."""
    from matchusage.sql import SchemaMapping

    writer = SQLRepository(sql_engine, SchemaMapping(naive_utc=True))
    writer.create_schema()
    writer.add(*world(Match("m", "p1", {"u1", "u2"}, at(3, 1, 10))))
    reader = SQLRepository(sql_engine, SchemaMapping(naive_utc=declared))
    if declared:
        [match] = reader.matches("o1", start=MARCH.start, end=MARCH.end)
        assert at(3, 1, 10) == match.started_at
        assert {FEBRUARY: 0, MARCH: 2} == reader.count_active_users("o1", [FEBRUARY, MARCH])
        return
    with pytest.raises(InvalidRecordError):
        reader.matches("o1", start=MARCH.start, end=MARCH.end)
    with pytest.raises(InvalidRecordError):
        reader.count_active_users("o1", [FEBRUARY, MARCH])
    with pytest.raises(InvalidRecordError):
        reader.organizations()


HOSTILE = [
    "Robert'); DROP TABLE matchusage_matches; --",
    'double "quoted" \\ backslash',
    "semi;colon % _ wildcards",
    "unicode \u00e9\u4e2d\u6587 \U0001f600 \u202e",
]


def test_hostile_ids_and_names_round_trip(sql_repository: SQLRepository) -> None:
    orgs = [
        Organization(f"org {text}", text, "Europe/Berlin", BillingCycle.monthly(
            datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Berlin"))))
        for text in HOSTILE
    ]  # fmt: skip
    programs = [Program(f"prog {o.id}", o.id, o.name) for o in orgs]
    users = [User(f"user {text}", text, None) for text in HOSTILE]
    matches = [
        Match(f"match {n} {text}", programs[n].id, {users[n].id, users[-1 - n].id}, at(3, 2))
        for n, text in enumerate(HOSTILE)
    ]
    sql_repository.add(*orgs, *programs, *users, *matches)
    assert sorted(orgs, key=lambda o: o.id) == sql_repository.organizations()
    for n, org in enumerate(orgs):
        assert [programs[n]] == sql_repository.programs(org.id)
        assert [matches[n]] == sql_repository.matches(org.id, start=MARCH.start, end=MARCH.end)
        expected = frozenset(matches[n].participants)
        period = org.cycle.period_containing(at(3, 10))
        assert {period: expected} == sql_repository.active_users_by_period(org.id, [period])
    assert {u.id: u for u in users} == sql_repository.users([u.id for u in users])
    assert 4 == len(sql_repository.organizations())  # no table was dropped


@pytest.mark.parametrize(
    "read",
    [
        lambda r: r.matches("o1", start=FEBRUARY.start, end=APRIL.end),
        lambda r: r.count_active_users("o1", [FEBRUARY, MARCH]),
        lambda r: r.active_users_by_period("o1", [FEBRUARY, MARCH]),
        lambda r: r.count_closed_periods(before=at(5)),
        lambda r: matchusage.usage_report(OrganizationMatches(r, "o1"), MONTHLY, now=at(5)),
    ],
    ids=["matches", "count", "ids", "closed-periods", "usage-report"],
)
def test_a_database_failure_mid_read_raises_a_matchusage_error_caused_by_it(
    sql_engine: sa.Engine, read: Callable[[SQLRepository], object]
) -> None:
    from matchusage.sql import MatchTable, SchemaMapping

    writer = SQLRepository(sql_engine)
    writer.create_schema()
    writer.add(*world(*(Match(f"m{n}", "p1", {f"u{n}"}, at(2, 1 + n)) for n in range(6))))
    _failing_view(sql_engine)
    reader = SQLRepository(sql_engine, SchemaMapping(matches=MatchTable("failing")))
    with pytest.raises(RepositoryError) as caught:
        read(reader)
    assert isinstance(caught.value, MatchUsageError)
    assert isinstance(caught.value.__cause__, sa.exc.DBAPIError)


# --- issue 5: billing provider, pricing, documents, portal --------------------------------


def provider_on(plan: Plan, organization_id: str = "o1") -> InMemoryBillingProvider:
    provider = InMemoryBillingProvider(clock=lambda: at(6), document_format="html")
    provider.subscribe(organization_id, plan)
    return provider


def test_same_key_same_quantity_is_a_no_op_returning_the_first_result() -> None:
    provider = provider_on(Plan("Team", "4.00", "EUR"))
    first = provider.report_usage("o1", MARCH, 7, idempotency_key="k-march")
    again = provider.report_usage("o1", MARCH, 7, idempotency_key="k-march")
    assert first == again
    assert [7] == [invoice.quantity for invoice in provider.invoices("o1")]
    assert [first] == provider.usage_reports("o1")


@pytest.mark.parametrize(
    ("organization_id", "period", "quantity"),
    [("o1", MARCH, 8), ("o1", APRIL, 7), ("o2", MARCH, 7)],
    ids=["other-quantity", "other-period", "other-organization"],
)
def test_same_key_with_a_different_report_is_a_conflict_and_bills_nothing(
    organization_id: str, period: BillingPeriod, quantity: int
) -> None:
    provider = provider_on(Plan("Team", "4.00", "EUR"))
    provider.subscribe("o2", Plan("Team", "4.00", "EUR"))
    provider.report_usage("o1", MARCH, 7, idempotency_key="k-march")
    with pytest.raises(UsageConflictError) as caught:
        provider.report_usage(organization_id, period, quantity, idempotency_key="k-march")
    assert isinstance(caught.value, MatchUsageError)
    assert [(MARCH, 7)] == [(i.period, i.quantity) for i in provider.invoices("o1")]
    assert [] == provider.invoices("o2")


Q = TierMode  # short alias for the table below
GRADUATED = (PriceTier(10, "5.00"), PriceTier(50, "4.00"))
FLAT = (PriceTier(10, "5.00", flat_fee="20.00"), PriceTier(50, "4.00", flat_fee="10.00"))


@pytest.mark.parametrize(
    ("plan", "quantity", "expected"),
    [
        (Plan("Unit", "4.99", "EUR"), 7, "34.93"),
        (Plan("Unit", "4.99", "EUR"), 0, "0.00"),
        (Plan("Unit", "0.125", "EUR"), 1, "0.13"),
        (Plan("Unit", "0.333", "USD"), 3, "1.00"),
        (Plan("Unit", "500", "JPY"), 3, "1500"),
        (Plan("Unit", "333.5", "JPY"), 3, "1001"),
        (Plan("Grad", "3.00", "EUR", tiers=GRADUATED), 10, "50.00"),
        (Plan("Grad", "3.00", "EUR", tiers=GRADUATED), 11, "54.00"),
        (Plan("Grad", "3.00", "EUR", tiers=GRADUATED), 50, "210.00"),
        (Plan("Grad", "3.00", "EUR", tiers=GRADUATED), 51, "213.00"),
        (Plan("Vol", "3.00", "USD", tiers=GRADUATED, tier_mode=Q.VOLUME), 10, "50.00"),
        (Plan("Vol", "3.00", "USD", tiers=GRADUATED, tier_mode=Q.VOLUME), 11, "44.00"),
        (Plan("Vol", "3.00", "USD", tiers=GRADUATED, tier_mode=Q.VOLUME), 50, "200.00"),
        (Plan("Vol", "3.00", "USD", tiers=GRADUATED, tier_mode=Q.VOLUME), 51, "153.00"),
        (
            Plan("VolJ", "100", "JPY", tiers=(PriceTier(5, "150.5"),), tier_mode=Q.VOLUME),
            3,
            "452",
        ),
        (Plan("GradFlat", "3.00", "EUR", tiers=FLAT), 11, "84.00"),
        (Plan("VolFlat", "3.00", "EUR", tiers=FLAT, tier_mode=Q.VOLUME), 10, "70.00"),
        (Plan("VolFlat", "3.00", "EUR", tiers=FLAT, tier_mode=Q.VOLUME), 11, "54.00"),
        (Plan("Min", "10.00", "USD", minimum_quantity=5), 2, "50.00"),
        (Plan("Min", "10.00", "USD", minimum_quantity=5), 0, "50.00"),
        (Plan("Min", "10.00", "USD", minimum_quantity=5), 7, "70.00"),
        (Plan("MinJ", "1000", "JPY", minimum_quantity=3), 1, "3000"),
        (Plan("MinGrad", "3.00", "EUR", tiers=GRADUATED, minimum_quantity=15), 3, "70.00"),
    ],
    ids=[
        "unit-eur", "unit-zero", "half-cent-rounds-up", "usd-rounding", "jpy-unit",
        "jpy-no-decimals", "graduated-up-to-is-inclusive", "graduated-next-tier",
        "graduated-end-of-last-tier", "graduated-above-last-tier", "volume-up-to-is-inclusive",
        "volume-next-tier", "volume-end-of-last-tier", "volume-above-last-tier",
        "volume-jpy-rounds", "graduated-flat-fee-per-tier-entered", "volume-flat-fee-of-its-tier",
        "volume-flat-fee-of-the-next-tier", "minimum-applies", "minimum-with-zero-users",
        "above-minimum", "minimum-jpy", "minimum-then-graduated",
    ],
)  # fmt: skip
def test_invoice_amount_follows_the_plan(plan: Plan, quantity: int, expected: str) -> None:
    provider = provider_on(plan)
    report = provider.report_usage("o1", MARCH, quantity, idempotency_key="k")
    [invoice] = provider.invoices("o1")
    assert (expected, plan.currency, quantity) == (
        str(invoice.amount),
        invoice.currency,
        invoice.quantity,
    )
    assert report.reference == invoice.number
    assert invoice.amount == sum(line.amount for line in invoice.lines)


def test_a_receipt_exists_only_once_the_invoice_is_paid() -> None:
    provider = provider_on(Plan("Team", "4.00", "EUR"))
    number = provider.report_usage("o1", MARCH, 3, idempotency_key="k").reference
    document = provider.invoice_document("o1", number, DocumentKind.INVOICE)
    assert (DocumentKind.INVOICE, number) == (document.kind, document.invoice_number)
    assert document.content
    assert (True, True) == (bool(document.media_type), bool(document.file_name))
    with pytest.raises(DocumentUnavailableError):
        provider.invoice_document("o1", number, DocumentKind.RECEIPT)
    provider.mark_paid("o1", number, at=at(6, 3))
    receipt = provider.invoice_document("o1", number, DocumentKind.RECEIPT)
    assert (DocumentKind.RECEIPT, number) == (receipt.kind, receipt.invoice_number)
    assert receipt.content
    assert receipt.file_name != document.file_name
    assert InvoiceStatus.PAID == provider.invoices("o1")[0].status


@pytest.mark.parametrize("number", ["4242424242424242", "424", "42424", "abcd"])
def test_a_payment_method_holds_only_the_last_four_digits(number: str) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        PaymentMethod("visa", number)
    if len(number) > 4:
        assert number not in str(caught.value)


BERLIN = ZoneInfo("Europe/Berlin")
BERLIN_ORG = Organization(
    "o1", "One", "Europe/Berlin", BillingCycle.monthly(datetime(2024, 1, 15, tzinfo=BERLIN))
)


@pytest.mark.parametrize(
    ("renews_at", "expected"),
    [
        (None, datetime(2024, 4, 15, tzinfo=BERLIN)),
        (datetime(2024, 12, 31, tzinfo=UTC), datetime(2024, 12, 31, tzinfo=UTC)),
    ],
    ids=["from-the-cycle", "from-the-provider"],
)
def test_the_portal_shows_plan_renewal_payment_details_and_history(
    renews_at: datetime | None, expected: datetime
) -> None:
    address = Address("1 Main St", "Berlin", "10115", "DE")
    shipping = Address("2 Dock Rd", "Hamburg", "20457", "DE")
    details = BillingDetails("One GmbH", "billing@one.example", address, shipping, "DE123")
    card = PaymentMethod("visa", "4242", 12, 2030)
    provider = InMemoryBillingProvider(clock=lambda: at(4), document_format="html")
    plan = Plan("Team", "4.00", "EUR", renews_at=renews_at)
    provider.subscribe("o1", plan, billing_details=details, payment_method=card)
    january, february = BERLIN_ORG.cycle.period(0), BERLIN_ORG.cycle.period(1)
    first = provider.report_usage("o1", january, 3, idempotency_key="jan").reference
    second = provider.report_usage("o1", february, 5, idempotency_key="feb").reference
    provider.mark_paid("o1", first, at=at(4, 2))
    portal = billing_portal(provider, BERLIN_ORG, now=datetime(2024, 3, 20, tzinfo=BERLIN))
    assert (plan, expected) == (portal.plan, portal.renews_at)
    assert ("Team", Decimal("4.00"), "EUR", "month") == (
        portal.plan.name,
        portal.plan.unit_price,
        portal.plan.currency,
        portal.plan.interval,
    )
    assert ("visa", "4242", "12/2030") == (
        portal.payment_method.brand,
        portal.payment_method.last4,
        portal.payment_method.expiry,
    )
    assert (address, shipping, "billing@one.example", "DE123") == (
        portal.billing_details.address,
        portal.billing_details.shipping_address,
        portal.billing_details.email,
        portal.billing_details.tax_id,
    )
    assert [(second, february, 5, InvoiceStatus.OPEN), (first, january, 3, InvoiceStatus.PAID)] == [
        (i.number, i.period, i.quantity, i.status) for i in portal.invoices
    ]
    assert [(DocumentKind.INVOICE,), (DocumentKind.INVOICE, DocumentKind.RECEIPT)] == [
        i.documents for i in portal.invoices
    ]


# --- issue 5: closing periods exactly once --------------------------------------------------


def billing_world(*extra: Match) -> InMemoryRepository:
    return memory(
        world(
            Match("m1", "p1", {"u1", "u2"}, at(1, 10)),
            Match("m2", "p1", {"u3", "u4"}, at(3, 5), at(3, 20)),
            Match("m3", "p2", {"u1", "u5"}, at(3, 7), at(4, 2)),
            Match("m4", "p3", {"u6", "u7"}, at(2, 1)),
            *extra,
        )
    )


def billing_setup() -> tuple[InMemoryRepository, InMemoryBillingProvider, InMemorySnapshotStore]:
    """The billing world, a provider billing 1 EUR per active user, an empty store."""
    return billing_world(), provider_on(Plan("T", 1, "EUR")), InMemorySnapshotStore()


def close_march(
    repository: MatchRepository, provider: BillingProvider, store: SnapshotStore, **kwargs: Any
) -> Any:
    org = repository.organization("o1")
    return close_period(repository, provider, store, org, MARCH, **kwargs)


@pytest.mark.parametrize(
    ("now", "grace"),
    [
        (MARCH.end - US, timedelta(0)),
        (MARCH.start, timedelta(0)),
        (MARCH.end, timedelta(days=3)),
        (MARCH.end + timedelta(days=3) - US, timedelta(days=3)),
    ],
    ids=["last-instant", "at-start", "inside-grace", "last-instant-of-grace"],
)
def test_close_period_refuses_an_open_period(now: datetime, grace: timedelta) -> None:
    repository, provider, store = billing_setup()
    with pytest.raises(PeriodNotClosedError):
        close_march(repository, provider, store, now=now, grace=grace)
    assert (None, [], []) == (
        store.get("o1", MARCH),
        provider.invoices("o1"),
        store.snapshots("o1"),
    )


@pytest.mark.parametrize(
    ("now", "grace"),
    [(MARCH.end, timedelta(0)), (MARCH.end + timedelta(days=3), timedelta(days=3))],
    ids=["at-end", "at-end-of-grace"],
)
def test_close_period_closes_from_the_end_of_the_grace_window(
    now: datetime, grace: timedelta
) -> None:
    repository, provider, store = billing_setup()
    result = close_march(repository, provider, store, now=now, grace=grace)
    assert (CloseStatus.CLOSED, 5) == (result.status, result.report.quantity)


def test_close_period_takes_repository_provider_store_organization_period_and_now() -> None:
    repository, provider, store = billing_setup()
    organization = repository.organization("o1")
    result = close_period(repository, provider, store, organization, MARCH, at(4, 2))
    assert (CloseStatus.CLOSED, 5, at(4, 2)) == (
        result.status,
        result.report.quantity,
        result.snapshot.computed_at,
    )


def test_close_period_refuses_a_period_not_of_the_organizations_cycle() -> None:
    repository, provider, store = billing_setup()
    shifted = BillingPeriod(MARCH.start + DAY, MARCH.end + DAY)
    with pytest.raises(InvalidPeriodError):
        close_period(repository, provider, store, repository.organization("o1"), shifted, now=at(6))


def test_a_closed_period_snapshot_holds_users_count_evidence_fingerprint_and_time() -> None:
    repository, provider, store = billing_setup()
    snapshot = close_march(repository, provider, store, now=at(4, 2)).snapshot
    assert ("o1", MARCH, at(4, 2)) == (
        snapshot.organization_id,
        snapshot.period,
        snapshot.computed_at,
    )
    assert (("u1", "u2", "u3", "u4", "u5"), 5) == (snapshot.user_ids, snapshot.count)
    assert ["m1", "m3"] == [e.match_id for e in snapshot.evidence["u1"]]
    assert snapshot.fingerprint.startswith("sha256:")
    assert [(usage_idempotency_key("o1", MARCH), 5)] == [
        (r.idempotency_key, r.quantity) for r in provider.usage_reports()
    ]


def test_snapshots_are_immutable_and_never_rewritten() -> None:
    repository, provider, store = billing_setup()
    snapshot = close_march(repository, provider, store, now=at(4, 2)).snapshot
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snapshot.evidence = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.evidence["u9"] = ()  # type: ignore[index]
    other = UsageSnapshot("o1", MARCH, {}, computed_at=at(5))
    assert snapshot == store.add(other)
    repository.save_match(Match("late", "p1", {"u9"}, at(3, 3)))
    again = close_march(repository, provider, store, now=at(5))
    assert (CloseStatus.ALREADY_CLOSED, snapshot) == (again.status, again.snapshot)
    assert snapshot.fingerprint == store.get("o1", MARCH).fingerprint


class Crash(Exception):
    """An injected failure."""


@attrs.define
class CrashingStore:
    """A snapshot store that crashes once at a chosen step."""

    inner: SnapshotStore
    crash_at: str | None

    def _maybe(self, step: str) -> None:
        if self.crash_at == step:
            self.crash_at = None
            raise Crash(step)

    def add(self, snapshot: UsageSnapshot) -> UsageSnapshot:
        stored = self.inner.add(snapshot)
        self._maybe("after-snapshot")
        return stored

    def get(self, organization_id: str, period: BillingPeriod) -> UsageSnapshot | None:
        return self.inner.get(organization_id, period)

    def snapshots(self, organization_id: str) -> Sequence[UsageSnapshot]:
        return self.inner.snapshots(organization_id)

    def record_report(self, report: ReportedUsage) -> ReportedUsage:
        self._maybe("before-recording")
        return self.inner.record_report(report)

    def report(self, organization_id: str, period: BillingPeriod) -> ReportedUsage | None:
        return self.inner.report(organization_id, period)


@attrs.define
class CrashingProvider:
    """A provider whose usage call fails once before, or after, the provider billed."""

    inner: InMemoryBillingProvider
    crash_at: str | None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def report_usage(self, *args: Any, **kwargs: Any) -> ReportedUsage:
        if self.crash_at == "before-report":
            self.crash_at = None
            raise Crash("before-report")
        report = self.inner.report_usage(*args, **kwargs)
        if self.crash_at == "after-report":  # billed, but the acknowledgement is lost
            self.crash_at = None
            raise Crash("after-report")
        return report


def _stores(tmp_path: Path) -> dict[str, Callable[[], SnapshotStore]]:
    def sql() -> SnapshotStore:
        store = SQLSnapshotStore(sa.create_engine(f"sqlite:///{tmp_path / 'snapshots.db'}"))
        store.create_schema()
        return store

    return {"memory": InMemorySnapshotStore, "sql": sql}


@pytest.mark.parametrize("store_kind", ["memory", "sql"])
@pytest.mark.parametrize(
    "step", ["after-snapshot", "before-report", "after-report", "before-recording"]
)
def test_a_crash_at_any_step_then_a_rerun_reports_exactly_once(
    tmp_path: Path, store_kind: str, step: str
) -> None:
    clean_repo, clean_provider = billing_world(), provider_on(Plan("T", "2.50", "EUR"))
    clean = close_march(clean_repo, clean_provider, InMemorySnapshotStore(), now=at(4, 2))

    repository, plain = billing_world(), provider_on(Plan("T", "2.50", "EUR"))
    inner = _stores(tmp_path)[store_kind]()
    store = CrashingStore(inner, step)
    provider = CrashingProvider(plain, step)
    with pytest.raises(Crash):
        close_march(repository, provider, store, now=at(4, 2))
    # Late data arrives between the crash and the rerun: the quantity must not change.
    repository.save_match(Match("late", "p1", {"u8", "u9"}, at(3, 9)))
    rerun = close_march(repository, provider, store, now=at(4, 3))
    final = close_march(repository, provider, store, now=at(4, 4))

    assert CloseStatus.CLOSED == rerun.status
    assert CloseStatus.ALREADY_CLOSED == final.status
    assert [(MARCH, 5)] == [(r.period, r.quantity) for r in plain.usage_reports()]
    assert [(MARCH, 5, Decimal("12.50"))] == [
        (i.period, i.quantity, i.amount) for i in plain.invoices("o1")
    ]
    assert clean.snapshot.fingerprint == inner.get("o1", MARCH).fingerprint
    assert (clean.report.quantity, clean.report.idempotency_key) == (
        inner.report("o1", MARCH).quantity,
        inner.report("o1", MARCH).idempotency_key,
    )


@pytest.mark.parametrize(
    ("late", "expected_error"),
    [(None, None), (Match("late", "p1", {"u8"}, at(3, 9)), UsageConflictError)],
    ids=["same-data", "changed-data"],
)
def test_a_lost_snapshot_store_never_bills_a_period_twice(
    late: Match | None, expected_error: type[Exception] | None
) -> None:
    """The provider's idempotency key, not the store, is the last line of defence."""
    repository, provider = billing_world(), provider_on(Plan("T", 1, "EUR"))
    first = close_march(repository, provider, InMemorySnapshotStore(), now=at(4, 2))
    if late is not None:
        repository.save_match(late)
    fresh = InMemorySnapshotStore()
    if expected_error is None:
        again = close_march(repository, provider, fresh, now=at(4, 3))
        assert (CloseStatus.CLOSED, first.report) == (again.status, again.report)
    else:
        with pytest.raises(expected_error):
            close_march(repository, provider, fresh, now=at(4, 3))
    assert [(MARCH, 5)] == [(i.period, i.quantity) for i in provider.invoices("o1")]


def test_reconcile_needs_a_closed_period() -> None:
    repository = billing_world()
    with pytest.raises(UnknownRecordError):
        reconcile(
            repository, InMemorySnapshotStore(), repository.organization("o1"), MARCH, now=at(5)
        )


def test_billing_run_goes_on_past_a_failing_organization_and_summarises() -> None:
    records = [
        *(Organization(key, key, "UTC", MONTHLY) for key in ("a", "b", "c")),
        *(Program(f"{key}-p", key) for key in ("a", "b", "c")),
        Match("a1", "a-p", {"u1", "u2"}, at(1, 5)),
        Match("b1", "b-p", {"u1"}, at(1, 5)),
        Match("c1", "c-p", {"u3"}, at(3, 5), at(3, 6)),
    ]
    repository = memory(records)
    provider = InMemoryBillingProvider(clock=lambda: at(4, 2))
    for key in ("a", "c"):  # "b" has no customer at the provider: it fails
        provider.subscribe(key, Plan("T", 1, "EUR"))
    store = InMemorySnapshotStore()
    first = billing_run(repository, provider, store, now=at(4, 2))
    assert [("a", MARCH, 2), ("c", MARCH, 1)] == [
        (r.organization_id, r.period, r.report.quantity) for r in first.closed
    ]
    assert [] == list(first.already_closed)
    assert [("b", MARCH)] == [(f.organization_id, f.period) for f in first.failed]
    assert "UnknownRecordError" in first.failed[0].reason
    assert not first.ok

    again = billing_run(repository, provider, store, now=at(4, 3))
    assert [] == list(again.closed)
    assert [("a", MARCH), ("c", MARCH)] == [
        (r.organization_id, r.period) for r in again.already_closed
    ]
    assert ["b"] == [f.organization_id for f in again.failed]

    provider.subscribe("b", Plan("T", 1, "EUR"))
    fixed = billing_run(repository, provider, store, now=at(4, 4))
    assert [("b", MARCH, 1)] == [
        (r.organization_id, r.period, r.report.quantity) for r in fixed.closed
    ]
    assert fixed.ok
    assert [1, 1, 1] == [len(provider.invoices(key)) for key in ("a", "b", "c")]


def test_reconcile_returns_exactly_the_difference_and_touches_nothing() -> None:
    repository, provider, store = billing_setup()
    closed = close_march(repository, provider, store, now=at(4, 2))
    # Backdated: a new group match in March; m2 corrected to have ended in February.
    repository.save_match(Match("late", "p2", {"u7", "u8", "u9"}, at(3, 12), at(3, 13)))
    repository.save_match(Match("m2", "p1", {"u3", "u4"}, at(2, 5), at(2, 20)))
    adjustment = reconcile(repository, store, repository.organization("o1"), MARCH, now=at(5))
    assert isinstance(adjustment, Adjustment)
    assert ({"u7", "u8", "u9"}, {"u3", "u4"}, 1) == (
        adjustment.added,
        adjustment.removed,
        adjustment.quantity_difference,
    )
    assert closed.snapshot == adjustment.snapshot
    assert closed.snapshot.fingerprint == store.get("o1", MARCH).fingerprint
    assert [5] == [i.quantity for i in provider.invoices("o1")]
    assert 6 == adjustment.recomputed.count


def test_reconcile_without_changes_is_empty() -> None:
    repository, provider, store = billing_setup()
    close_march(repository, provider, store, now=at(4, 2))
    adjustment = reconcile(repository, store, repository.organization("o1"), MARCH, now=at(5))
    assert (set(), set(), 0, False) == (
        adjustment.added,
        adjustment.removed,
        adjustment.quantity_difference,
        adjustment.has_changes,
    )


def test_close_period_runs_on_the_sql_repository_and_store(sql_engine: sa.Engine) -> None:
    repository = SQLRepository(sql_engine)
    repository.create_schema()
    repository.add(*world(Match("m1", "p1", {"u1", "u2"}, at(1, 10))))
    store = SQLSnapshotStore(sql_engine)
    store.create_schema()
    provider = provider_on(Plan("T", 1, "EUR"))
    first = close_march(repository, provider, store, now=at(4))
    again = close_march(repository, provider, store, now=at(4, 2))
    assert (CloseStatus.CLOSED, CloseStatus.ALREADY_CLOSED) == (first.status, again.status)
    assert (first.snapshot, 2) == (store.get("o1", MARCH), store.report("o1", MARCH).quantity)
    assert 1 == len(provider.invoices("o1"))


# --- issue 6: columnar engine and batch ---------------------------------------------------


def _ongoing_masked(columns: MatchColumns) -> MatchColumns:
    """The same columns with ongoing matches flagged by a mask (and a junk end)."""
    ongoing = [end == MatchColumns.ONGOING for end in columns.end_us]
    ends = [0 if flag else end for flag, end in zip(ongoing, columns.end_us, strict=True)]
    return attrs.evolve(columns, end_us=ends, ongoing=ongoing)


def _as_numpy(columns: MatchColumns) -> MatchColumns:
    return MatchColumns(
        np.asarray(columns.start_us, dtype=np.int64),
        np.asarray(columns.end_us, dtype=np.int64),
        np.asarray(columns.organization, dtype=object),
        np.asarray(columns.participant_match, dtype=np.int64),
        np.asarray(columns.participant_user, dtype=object),
        ongoing=None if columns.ongoing is None else np.asarray(columns.ongoing, dtype=bool),
    )


COLUMN_FORMS: dict[str, Callable[[MatchColumns], MatchColumns]] = {
    "lists-sentinel": lambda c: c,
    "lists-mask": _ongoing_masked,
    "numpy-sentinel": _as_numpy,
    "numpy-mask": lambda c: _as_numpy(_ongoing_masked(c)),
}


@_FEW
@given(batch=mst.billing_batches(max_matches=20), count=st.integers(1, 4))
@pytest.mark.parametrize("engine", ["numpy", "python"])
@pytest.mark.parametrize("form", list(COLUMN_FORMS))
def test_columnar_equals_objects_on_any_input(
    batch: tuple[list[Organization], list[Program], list[Match], datetime],
    count: int,
    engine: str,
    form: str,
) -> None:
    orgs, programs, matches, now = batch
    plan = batch_periods(orgs, now=now, count=count)
    organization_of = {p.id: p.organization_id for p in programs}
    expected = {
        org: active_users_by_period(
            [m for m in matches if organization_of[m.program_id] == org], periods
        )
        for org, periods in plan.items()
    }
    columns = COLUMN_FORMS[form](MatchColumns.from_matches(matches, programs))
    assert expected == columnar_active_users(columns, plan, engine=engine)
    counts = {o: {p: len(u) for p, u in found.items()} for o, found in expected.items()}
    assert counts == columnar_counts(columns, plan, engine=engine)


def test_columnar_named_boundaries() -> None:
    """Ongoing (sentinel and mask), zero-length, group and a user in two organizations."""
    march = MARCH
    start, end = micros(march.start), micros(march.end)
    columns = MatchColumns(
        start_us=[start - 10, start, end - 1, start + 5, start - 10, start + 1, end],
        end_us=[
            start,
            start + 1,
            MatchColumns.ONGOING,
            start + 5,
            0,
            start + 2,
            MatchColumns.ONGOING,
        ],
        organization=["o1", "o1", "o1", "o1", "o2", "o2", "o1"],
        participant_match=[0, 1, 2, 3, 3, 4, 5, 5, 6],
        participant_user=["a", "b", "c", "d", "e", "b", "b", "x", "y"],
        ongoing=[False, False, False, False, True, False, False],
    )
    expected = {"o1": {march: frozenset({"b", "c"})}, "o2": {march: frozenset({"b", "x"})}}
    for engine in ("numpy", "python"):
        assert expected == columnar_active_users(
            columns, {"o1": [march], "o2": [march]}, engine=engine
        )


def test_import_matchusage_does_not_import_numpy() -> None:
    """The core imports only attrs, pendulum, dateutil and the stdlib."""
    code = (
        "import json, sys, matchusage; heavy = {'numpy', 'sqlalchemy', 'pandas', 'fpdf'}; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert [] == json.loads(out)


_WITHOUT_NUMPY = """
import json, sys
sys.modules["numpy"] = None  # blocked: importing it fails
from datetime import datetime
import matchusage
data = json.load(sys.stdin)
plan = {
    org: [matchusage.BillingPeriod(datetime.fromisoformat(a), datetime.fromisoformat(b))
          for a, b in spans]
    for org, spans in data["periods"].items()
}
counts = matchusage.columnar_counts(matchusage.MatchColumns(*data["columns"]), plan)
users = matchusage.columnar_active_users(matchusage.MatchColumns(*data["columns"]), plan)
print(json.dumps({
    "counts": {org: list(found.values()) for org, found in counts.items()},
    "users": {org: [sorted(u) for u in found.values()] for org, found in users.items()},
    "numpy": sys.modules["numpy"] is not None,
}))
"""


def test_without_numpy_the_columnar_entry_points_give_the_same_results() -> None:
    """numpy blocked: the default engine runs in pure Python with numpy's results."""
    orgs, programs, matches = _batch_world()
    columns = MatchColumns.from_matches(matches, programs)
    plan = batch_periods(orgs, now=at(3, 20), count=6)
    counts = columnar_counts(columns, plan, engine="numpy")
    users = columnar_active_users(columns, plan, engine="numpy")
    data = {
        "columns": list(attrs.astuple(columns, recurse=False)[:5]),
        "periods": {
            o: [[p.start.isoformat(), p.end.isoformat()] for p in s] for o, s in plan.items()
        },
    }
    out = subprocess.run(
        [sys.executable, "-c", _WITHOUT_NUMPY],
        input=json.dumps(data),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert {
        "counts": {org: list(found.values()) for org, found in counts.items()},
        "users": {org: [sorted(u) for u in found.values()] for org, found in users.items()},
        "numpy": False,
    } == json.loads(out)


def _batch_world() -> tuple[list[Organization], list[Program], list[Match]]:
    paris, sydney, ny = (
        ZoneInfo("Europe/Paris"),
        ZoneInfo("Australia/Sydney"),
        ZoneInfo("America/New_York"),
    )
    fr = BillingCycle.monthly(datetime(2023, 11, 15, 9, tzinfo=paris))
    au = BillingCycle.monthly(datetime(2023, 10, 31, tzinfo=sydney), every=2)
    us = BillingCycle.weekly(datetime(2024, 1, 1, tzinfo=ny))
    orgs = [
        Organization("fr", "Fr", "Europe/Paris", fr),
        Organization("au", "Au", "Australia/Sydney", au),
        Organization("us", "Us", "America/New_York", us),
        Organization("idle", "Idle", "UTC", MONTHLY),
    ]
    programs = [Program(f"{o.id}-p{n}", o.id) for o in orgs for n in (1, 2)]
    matches = []
    for n in range(60):
        program = programs[n % 6]  # "idle" has none
        start = datetime(2023, 12, 1, tzinfo=UTC) + timedelta(hours=37 * n)
        end = None if n % 3 == 0 else start + timedelta(hours=11 * (n % 7))
        people = {f"u{n % 9}", f"u{(n * 5) % 11}"} | ({"u99"} if n % 10 == 0 else set())
        matches.append(Match(f"m{n}", program.id, people, start, end))
    boundary = orgs[0].cycle.boundary(2)
    matches.append(Match("edge-end", "fr-p1", {"edge"}, boundary - DAY, boundary))
    matches.append(Match("edge-start", "fr-p2", {"edge2"}, boundary))
    return orgs, programs, matches


def test_batch_from_objects_columns_repository_and_sql_agree(sql_repository: SQLRepository) -> None:
    orgs, programs, matches = _batch_world()
    now = datetime(2024, 3, 20, 12, tzinfo=UTC)
    from_objects = batch_active_users(matches, now=now, organizations=orgs, programs=programs)
    columns = MatchColumns.from_matches(matches, programs)
    assert set(from_objects) == {"fr", "au", "us", "idle"}
    assert all(len(found) == 6 for found in from_objects.values())
    assert sum(len(users) for found in from_objects.values() for users in found.values()) > 0
    for engine in ("numpy", "python"):
        assert from_objects == batch_active_users(
            columns, now=now, organizations=orgs, engine=engine
        )
    counts = {o: {p: len(u) for p, u in f.items()} for o, f in from_objects.items()}
    assert counts == batch_counts(_as_numpy(columns), now=now, organizations=orgs)
    load(sql_repository, [*orgs, *programs, *matches])
    assert from_objects == batch_active_users(sql_repository, now=now)
    assert counts == batch_counts(sql_repository, now=now)
    assert counts == sql_repository.count_closed_periods(before=now, count=6)
    assert from_objects == sql_repository.active_users_closed_periods(before=now, count=6)


@_FEW
@given(batch=mst.billing_batches(max_matches=15))
def test_sql_batch_equals_object_batch_on_any_input(
    sql_repository: SQLRepository,
    batch: tuple[list[Organization], list[Program], list[Match], datetime],
) -> None:
    orgs, programs, matches, now = batch
    expected = batch_counts(matches, now=now, count=3, organizations=orgs, programs=programs)
    load(sql_repository, [*orgs, *programs, *matches])
    assert expected == sql_repository.count_closed_periods(before=now, count=3)


# --- more of issue 4: one API from a repository or from matches -----------------------------


@pytest.mark.parametrize("kind", ["memory", "sql"])
def test_every_reporting_entry_point_works_from_a_repository_as_from_matches(
    sql_repository: SQLRepository, kind: str
) -> None:
    matches = [
        Match("m1", "p1", {"u1", "u2"}, at(1, 10), roles={"u1": "mentor"}),
        Match("m2", "p2", {"u1", "u3"}, at(3, 5), at(3, 20)),
        Match("m3", "p3", {"u4"}, at(2, 1)),
        Match("m4", "p1", {"u5"}, at(4, 1), at(4, 1)),
    ]
    records = world(*matches)
    repository = memory(records) if kind == "memory" else load(sql_repository, records)
    source = OrganizationMatches(repository, "o1")
    own = [m for m in matches if m.program_id in {"p1", "p2"}]
    now = at(4, 10)
    assert matchusage.usage_report(own, MONTHLY, now=now) == matchusage.usage_report(
        source, MONTHLY, now=now
    )
    assert matchusage.current_active_matches(own, at=now) == matchusage.current_active_matches(
        source, at=now
    )
    assert matchusage.current_active_users(
        own, at=now, program_id="p1"
    ) == matchusage.current_active_users(OrganizationMatches(repository, "o1", "p1"), at=now)
    assert matchusage.explain(own, "u1", MARCH) == matchusage.explain(source, "u1", MARCH)
    report = matchusage.usage_report(source, MONTHLY, now=now)
    assert list(matchusage.export_rows(matchusage.usage_report(own, MONTHLY, now=now))) == list(
        matchusage.export_rows(report)
    )


def test_the_schema_stores_utc_instants_and_indexes_the_overlap_query(
    sql_repository: SQLRepository,
) -> None:
    inspector = sa.inspect(sql_repository.engine)
    columns = {c["name"]: c["type"] for c in inspector.get_columns("matchusage_matches")}
    if sql_repository.engine.dialect.name == "postgresql":
        assert (True, True) == (columns["started_at"].timezone, columns["ended_at"].timezone)
    indexed = [tuple(i["column_names"]) for i in inspector.get_indexes("matchusage_matches")]
    assert ("program_id", "started_at") in indexed
    assert ("program_id", "ended_at", "started_at") in indexed


# --- more of issue 5: documents and the SQL snapshot store ----------------------------------


def test_invoice_documents_are_pdf_with_the_pdf_extra() -> None:
    provider = InMemoryBillingProvider(clock=lambda: at(6))  # default format
    provider.subscribe("o1", Plan("Team", "4.00", "EUR"))
    number = provider.report_usage("o1", MARCH, 3, idempotency_key="k").reference
    provider.mark_paid("o1", number, at=at(6, 2))
    for kind in DocumentKind:
        document = provider.invoice_document("o1", number, kind)
        assert ("application/pdf", True, True) == (
            document.media_type,
            document.content.startswith(b"%PDF"),
            document.file_name.endswith(".pdf"),
        )


@pytest.mark.parametrize("store_kind", ["memory", "sql"])
def test_a_stored_snapshot_is_never_replaced(tmp_path: Path, store_kind: str) -> None:
    store = _stores(tmp_path)[store_kind]()
    from matchusage.billing import MatchEvidence

    first = UsageSnapshot(
        "o1", MARCH, {"u1": [MatchEvidence("m1", "p1", at(3, 2))]}, computed_at=at(4)
    )
    other = UsageSnapshot("o1", MARCH, {}, computed_at=at(5))
    assert first == store.add(first)
    assert first == store.add(other)
    assert (first.fingerprint, 1) == (
        store.get("o1", MARCH).fingerprint,
        store.get("o1", MARCH).count,
    )
    assert [first] == list(store.snapshots("o1"))


# --- more of issue 6: columns from pandas, pyarrow and polars ------------------------------


@pytest.mark.parametrize("library", ["pandas", "pyarrow", "polars"])
@pytest.mark.parametrize("engine", ["numpy", "python"])
def test_columnar_accepts_dataframe_library_columns(library: str, engine: str) -> None:
    orgs, programs, matches = _batch_world()
    columns = MatchColumns.from_matches(matches, programs)
    plan = batch_periods(orgs, now=at(3, 20), count=4)
    expected = columnar_active_users(columns, plan, engine="python")
    if library == "pandas":
        import pandas as convert

        column: Callable[[list[Any]], Any] = convert.Series
    elif library == "pyarrow":
        import pyarrow as convert

        column = convert.array
    else:
        import polars as convert

        column = convert.Series
    converted = MatchColumns(
        *(column(list(values)) for values in attrs.astuple(columns, recurse=False)[:5])
    )
    assert expected == columnar_active_users(converted, plan, engine=engine)
