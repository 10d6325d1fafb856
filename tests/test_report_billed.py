"""A usage report that agrees with the invoices: billed figures from snapshots, live recounts.

A report made with a snapshot store shows, for each closed period, whether
it was billed; for a billed period, the snapshot's users (what the invoice
counted) against the live recount, exactly as ``reconcile`` compares them.
Exports of billed periods list the billed users unless asked for the live list.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchusage import (
    BASIS_COLUMN,
    EXPORT_COLUMNS,
    BillingCycle,
    BillingPeriod,
    BillingState,
    Match,
    MatchColumns,
    Organization,
    OrganizationMatches,
    Program,
    export_csv,
    export_jsonl,
    export_rows,
    usage_report,
)
from matchusage.billing import Plan, close_period, reconcile
from matchusage.exceptions import InvalidRecordError
from matchusage.memory import InMemoryBillingProvider, InMemoryRepository, InMemorySnapshotStore
from matchusage.testing import strategies as mst

UTC = timezone.utc
CYCLE = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))
ORGANIZATION = Organization("acme", "Acme", "UTC", CYCLE)
JANUARY, FEBRUARY, MARCH, APRIL = (CYCLE.period(i) for i in range(4))
NOW = datetime(2024, 5, 2, tzinfo=UTC)
PLAN = Plan("Team", "4", "EUR")


def at(month: int, day: int) -> datetime:
    return datetime(2024, month, day, tzinfo=UTC)


def repository_of(matches: list[Match]) -> InMemoryRepository:
    repository = InMemoryRepository()
    repository.add(ORGANIZATION, *(Program(p, "acme", p.upper()) for p in ("p1", "p2", "p3")))
    repository.add(*matches)
    return repository


def close(
    repository: InMemoryRepository, store: InMemorySnapshotStore, *periods: BillingPeriod
) -> None:
    """Close *periods* as the billing run would have, each right at its end."""
    provider = InMemoryBillingProvider(clock=lambda: NOW, document_format="text")
    provider.subscribe("acme", PLAN)
    for period in periods:
        close_period(repository, provider, store, ORGANIZATION, period, now=period.end)


def late_edit_world() -> tuple[InMemoryRepository, InMemorySnapshotStore]:
    """January and February billed; then a backdated match and a shortened one."""
    repository = repository_of(
        [
            Match("m1", "p1", {"ann", "bob"}, at(1, 5)),
            Match("m2", "p2", {"cyd", "dan"}, at(2, 3), at(3, 20)),
        ]
    )
    store = InMemorySnapshotStore()
    close(repository, store, JANUARY, FEBRUARY)
    # After the close: eve's match is entered backdated into February, and dan's
    # match is corrected to have ended before February began (entered by mistake).
    repository.save_match(Match("m3", "p1", {"ann", "eve"}, at(2, 10), at(2, 12)))
    repository.save_match(Match("m2", "p2", {"cyd", "dan"}, at(1, 20), at(1, 31)))
    return repository, store


def test_billed_periods_show_the_invoiced_quantity_and_the_difference() -> None:
    repository, store = late_edit_world()
    source = OrganizationMatches(repository, "acme")
    report = usage_report(source, CYCLE, now=NOW, periods=4, snapshots=store)

    assert report.billing_checked
    states = [usage.billing for usage in report.periods]
    assert [BillingState.BILLED] * 2 + [BillingState.NOT_BILLED] * 2 == states
    january, february, march, _ = report.periods
    # January: cyd and dan's corrected match now falls in January; they were not billed then.
    assert (2, 4) == (january.billed_count, january.count)
    assert january.adjustment is not None
    assert ({"cyd", "dan"}, set()) == (january.adjustment.added, january.adjustment.removed)
    # February: billed ann, bob, cyd, dan; now ann, bob, eve.
    assert february.adjustment is not None
    assert (4, 3) == (february.billed_count, february.count)
    assert {"eve"} == february.adjustment.added
    assert {"cyd", "dan"} == february.adjustment.removed
    assert -1 == february.adjustment.quantity_difference
    assert frozenset({"ann", "bob", "cyd", "dan"}) == february.billed_users
    # March was never billed: no billed figure, and it says so.
    assert (None, None, None) == (march.billed_count, march.billed_users, march.adjustment)


def test_the_adjustment_is_the_one_reconcile_computes() -> None:
    repository, store = late_edit_world()
    report = usage_report(
        OrganizationMatches(repository, "acme"), CYCLE, now=NOW, periods=4, snapshots=store
    )
    for usage in report.periods[:2]:
        assert reconcile(repository, store, ORGANIZATION, usage.period, now=NOW) == (
            usage.adjustment
        )


def test_without_a_store_the_report_is_unchanged() -> None:
    repository, store = late_edit_world()
    source = OrganizationMatches(repository, "acme")
    plain = usage_report(source, CYCLE, now=NOW, periods=4)
    billed = usage_report(source, CYCLE, now=NOW, periods=4, snapshots=store)

    assert not plain.billing_checked
    assert all(u.billing is BillingState.UNKNOWN for u in plain.periods)
    assert all(u.adjustment is None and u.billed_count is None for u in plain.periods)
    for before, after in zip(plain.periods, billed.periods, strict=True):
        assert (before.users, before.by_program, before.attributed, before.new, before.dropped) == (
            after.users,
            after.by_program,
            after.attributed,
            after.new,
            after.dropped,
        )
    assert plain.current == billed.current


# Edits reuse the ids of the first matches, so some replace a match (a correction).
some_matches = mst.matches(ids=st.sampled_from([f"m{n}" for n in range(30)]))


@settings(max_examples=40)
@given(
    st.lists(some_matches, max_size=15, unique_by=lambda m: m.id),
    st.sets(st.integers(0, 3)),
    st.lists(some_matches, max_size=8),
)
def test_any_close_and_edits_agree_with_reconcile(
    before: list[Match], billed: set[int], edited: list[Match]
) -> None:
    """Whatever was closed and edited since, each period's figures are reconcile's."""
    repository = repository_of(before)
    store = InMemorySnapshotStore()
    close(repository, store, *(CYCLE.period(i) for i in sorted(billed)))
    for match in edited:
        repository.save_match(match)
    source = OrganizationMatches(repository, "acme")

    report = usage_report(source, CYCLE, now=NOW, periods=4, snapshots=store)

    plain = usage_report(source, CYCLE, now=NOW, periods=4)
    for index, usage in enumerate(report.periods):
        assert plain.periods[index].users == usage.users
        if index in billed:
            expected = reconcile(repository, store, ORGANIZATION, usage.period, now=NOW)
            assert (BillingState.BILLED, expected) == (usage.billing, usage.adjustment)
            assert (expected.added, expected.removed) == (
                usage.added_since_billed,
                usage.removed_since_billed,
            )
            assert expected.snapshot == usage.billed
            rows = list(export_rows(report, period=usage.period))
            assert expected.snapshot.user_ids == tuple(row.user_id for row in rows)
            assert {"billed"} >= {row.basis for row in rows}
        else:
            assert (BillingState.NOT_BILLED, None) == (usage.billing, usage.adjustment)
            assert (None, None) == (usage.added_since_billed, usage.removed_since_billed)
        live = list(export_rows(report, period=usage.period, live=True))
        assert [
            r.as_dict() | {"basis": "live"} for r in export_rows(plain, period=usage.period)
        ] == [r.as_dict() for r in live]


# -- exports


def test_export_of_a_billed_period_lists_the_billed_users_and_says_so() -> None:
    repository, store = late_edit_world()
    report = usage_report(
        OrganizationMatches(repository, "acme"), CYCLE, now=NOW, periods=4, snapshots=store
    )
    out = io.StringIO(newline="")
    count = export_csv(report, out, period=FEBRUARY)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))

    assert (*EXPORT_COLUMNS, BASIS_COLUMN) == tuple(rows[0])
    assert 4 == count
    assert ["ann", "bob", "cyd", "dan"] == [row["user_id"] for row in rows]
    assert {"billed"} == {row[BASIS_COLUMN] for row in rows}
    dan = rows[-1]
    # As the snapshot recorded it: m2 from February 3 to March 20, clipped to February.
    assert ("m2", "2024-02-03T00:00:00+00:00", "2024-03-01T00:00:00+00:00") == (
        dan["match_ids"],
        dan["active_from"],
        dan["active_until"],
    )


def test_export_live_option_lists_todays_recount() -> None:
    repository, store = late_edit_world()
    report = usage_report(
        OrganizationMatches(repository, "acme"), CYCLE, now=NOW, periods=4, snapshots=store
    )
    out = io.StringIO()
    assert 3 == export_jsonl(report, out, period=FEBRUARY, live=True)
    records = [json.loads(line) for line in out.getvalue().splitlines()]

    assert ["ann", "bob", "eve"] == [r["user_id"] for r in records]
    assert {"live"} == {r[BASIS_COLUMN] for r in records}


def test_export_of_an_unbilled_period_is_live() -> None:
    repository, store = late_edit_world()
    report = usage_report(
        OrganizationMatches(repository, "acme"), CYCLE, now=NOW, periods=4, snapshots=store
    )
    bases = {(row.period, row.basis) for row in export_rows(report)}
    assert {(JANUARY, "billed"), (FEBRUARY, "billed"), (MARCH, "live"), (APRIL, "live")} == bases


def test_export_without_a_store_has_no_basis_column() -> None:
    repository, _ = late_edit_world()
    report = usage_report(OrganizationMatches(repository, "acme"), CYCLE, now=NOW, periods=4)
    out = io.StringIO(newline="")
    export_csv(report, out)
    assert ",".join(EXPORT_COLUMNS) == out.getvalue().splitlines()[0]
    assert all(row.basis is None for row in export_rows(report))
    assert all(BASIS_COLUMN not in row.as_dict() for row in export_rows(report))


# -- bad arguments


def test_snapshots_need_an_organization() -> None:
    with pytest.raises(InvalidRecordError, match="organization_id"):
        usage_report([], CYCLE, now=NOW, snapshots=InMemorySnapshotStore())


def test_snapshots_need_the_whole_organization() -> None:
    repository, store = late_edit_world()
    one_program = OrganizationMatches(repository, "acme", program_id="p1")
    with pytest.raises(InvalidRecordError, match="every program at once"):
        usage_report(one_program, CYCLE, now=NOW, snapshots=store)


def test_a_list_of_matches_with_an_organization_id() -> None:
    repository, store = late_edit_world()
    matches = list(repository.matches("acme", start=at(1, 1), end=NOW))
    report = usage_report(
        matches, CYCLE, now=NOW, periods=4, snapshots=store, organization_id="acme"
    )
    assert [(2, 4), (4, 3)] == [(u.billed_count, u.count) for u in report.periods[:2]]


@pytest.mark.parametrize("live", [False, True])
def test_exports_of_a_billed_report_on_columns_are_identical(live: bool) -> None:
    """Billed and live rows (with their basis) are the same from columns as from matches."""
    _, store = late_edit_world()
    matches = [
        Match("m1", "p1", {"ann", "bob"}, at(1, 5)),
        Match("m2", "p2", {"cyd", "dan"}, at(1, 20), at(1, 31)),
        Match("m3", "p1", {"ann", "eve"}, at(2, 10), at(2, 12)),
    ]
    columns = MatchColumns.from_matches(matches, {"p1": "acme", "p2": "acme"})
    expected = usage_report(
        matches, CYCLE, now=NOW, periods=4, snapshots=store, organization_id="acme"
    )
    found = usage_report(
        columns, CYCLE, now=NOW, periods=4, snapshots=store, organization_id="acme"
    )

    for write in (export_csv, export_jsonl):
        expected_text, found_text = io.StringIO(newline=""), io.StringIO(newline="")
        assert write(expected, expected_text, live=live) == write(found, found_text, live=live)
        assert expected_text.getvalue() == found_text.getvalue()
