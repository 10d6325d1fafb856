"""Errors carry structured attributes and one message template each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from matchusage import BillingCycle, Match, MatchColumns, Organization, Program
from matchusage.billing import Plan, ReportedUsage
from matchusage.exceptions import MatchUsageError, UnknownRecordError
from matchusage.memory import InMemoryBillingProvider, InMemoryRepository, InMemorySnapshotStore

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
CYCLE = BillingCycle.monthly(T0)
ACME = Organization("acme", "Acme", "UTC", CYCLE)


def repository() -> InMemoryRepository:
    found = InMemoryRepository()
    found.add(ACME, Program("p1", "acme"))
    return found


def provider() -> InMemoryBillingProvider:
    found = InMemoryBillingProvider(clock=lambda: T0)
    found.subscribe("acme", Plan("Team", "4", "EUR"))
    return found


REPORT = ReportedUsage("acme", CYCLE.period(0), 3, "key", "ref", T0)


@pytest.mark.parametrize(
    ("call", "kind", "record_id", "context", "message"),
    [
        (
            lambda: repository().organization("nowhere"),
            "organization",
            "nowhere",
            None,
            "unknown organization 'nowhere'",
        ),
        (
            lambda: repository().add(Program("p2", "nowhere")),
            "organization",
            "nowhere",
            "Program 'p2'",
            "Program 'p2': unknown organization 'nowhere'",
        ),
        (
            lambda: repository().save_match(Match("m1", "p9", {"ann"}, T0)),
            "program",
            "p9",
            "Match 'm1'",
            "Match 'm1': unknown program 'p9'",
        ),
        (
            lambda: MatchColumns.from_matches([Match("m1", "p9", {"ann"}, T0)], {"p1": "acme"}),
            "program",
            "p9",
            "Match 'm1'",
            "Match 'm1': unknown program 'p9'",
        ),
        (
            lambda: provider().invoices("nobody"),
            "customer",
            "nobody",
            "the billing provider",
            "the billing provider: unknown customer 'nobody'",
        ),
        (
            lambda: provider().mark_paid("acme", "INV-404", at=T0),
            "invoice",
            "INV-404",
            "Organization 'acme'",
            "Organization 'acme': unknown invoice 'INV-404'",
        ),
        (
            lambda: InMemorySnapshotStore().record_report(REPORT),
            "snapshot",
            str(CYCLE.period(0)),
            "Organization 'acme'",
            "; add the snapshot before recording its report",
        ),
    ],
    ids=[
        "organization",
        "organization-of-a-program",
        "program-of-a-match",
        "program-of-a-column-row",
        "customer",
        "invoice",
        "snapshot-to-report",
    ],
)
def test_unknown_records_are_named_by_kind_and_id(
    call: Callable[[], object], kind: str, record_id: str, context: str | None, message: str
) -> None:
    with pytest.raises(UnknownRecordError) as info:
        call()

    error = info.value
    assert isinstance(error, LookupError)
    assert isinstance(error, MatchUsageError)
    assert (kind, record_id, context) == (error.kind, error.record_id, error.context)
    assert message in str(error)


def test_the_unknown_record_template() -> None:
    error = UnknownRecordError("invoice", "INV-1", context="Organization 'acme'", hint="sync first")

    assert "Organization 'acme': unknown invoice 'INV-1'; sync first" == str(error)
    assert ("sync first", "unknown customer 7") == (
        error.hint,
        str(UnknownRecordError("customer", 7)),
    )
