"""The example organization with a billing history: three periods closed, then an edit.

The last three closed periods at the example's instant (from 15 August, 15
September and 15 October 2026) were closed into a snapshot store. October was
closed while a match entered by mistake was still there (two people who were
never really in a match); it was deleted afterwards, so October's live recount
has two users fewer than its invoice. Earlier periods were never billed (the
organization started paying in August).
"""

from __future__ import annotations

from datetime import timedelta

from matchusage import BillingPeriod, Match, Organization
from matchusage._cli._example import EXAMPLE_NOW, EXAMPLE_ORGANIZATION_ID, example_repository
from matchusage.billing import (
    Address,
    BillingDetails,
    BillingPortal,
    PaymentMethod,
    Plan,
    billing_portal,
    close_period,
)
from matchusage.memory import InMemoryBillingProvider, InMemoryRepository
from matchusage.protocols import SnapshotStore

PLAN = Plan("Team", "4.50", "EUR")
DETAILS = BillingDetails(
    "Northwind Mentoring GmbH",
    "billing@northwind.example",
    Address("Hafenstraße 12", "Hamburg", "20457", "DE"),
    tax_id="DE812345678",
).with_shipping(
    Address("Lagerweg 3", "Bremen", "28195", "DE", line2="Tor 2"),
    name="Northwind Warehouse",
    phone="+49 421 555 0100",
)
MISTAKE = frozenset({"x-mistake-1", "x-mistake-2"})
"""The users of the match that was deleted after October was billed."""
ISSUED_AFTER = timedelta(hours=2)


def billed_periods(organization: Organization) -> list[BillingPeriod]:
    """The last three closed periods at the example's instant."""
    return organization.cycle.closed_periods(before=EXAMPLE_NOW, count=3)


def close_example_periods(store: SnapshotStore) -> InMemoryBillingProvider:
    """Close the billed periods into *store*; return the provider that invoiced them."""
    repository = example_repository()
    organization = repository.organization(EXAMPLE_ORGANIZATION_ID)
    # Each invoice is issued when its period is closed, two hours after the period's end.
    issued = [EXAMPLE_NOW]
    provider = InMemoryBillingProvider(clock=lambda: issued[-1], document_format="html")
    provider.subscribe(
        organization.id,
        PLAN,
        billing_details=DETAILS,
        payment_method=PaymentMethod("visa", "4242", 9, 2028),
    )
    august, september, october = billed_periods(organization)
    for period in (august, september):
        issued.append(period.end + ISSUED_AFTER)
        close_period(repository, provider, store, organization, period, issued[-1])
    issued.append(october.end + ISSUED_AFTER)
    close_period(_with_mistake(october), provider, store, organization, october, issued[-1])
    return provider


def _with_mistake(period: BillingPeriod) -> InMemoryRepository:
    """The example's data as it was when *period* closed: with the mistaken match in it."""
    repository = example_repository()
    start = period.start + timedelta(days=3)
    repository.save_match(Match("x-mistake", "onboarding", MISTAKE, start))
    return repository


def example_portal(store: SnapshotStore) -> BillingPortal:
    """The example's billing portal: three invoices, the two oldest paid."""
    provider = close_example_periods(store)
    organization = example_repository().organization(EXAMPLE_ORGANIZATION_ID)
    for invoice in provider.invoices(organization.id)[1:]:
        provider.mark_paid(
            organization.id, invoice.number, at=invoice.issued_at + timedelta(days=3)
        )
    return billing_portal(provider, organization, now=EXAMPLE_NOW)
