"""The ports of matchusage: protocols that storage and billing adapters implement."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

# Type-only imports: the ports name the values they exchange, and must not import the
# modules that implement them at run time.
if TYPE_CHECKING:
    from ._model import Match, Organization, Program, User
    from ._periods import BillingPeriod
    from .billing._snapshots import UsageSnapshot
    from .billing._values import (
        Address,
        BillingDetails,
        DocumentKind,
        Invoice,
        InvoiceDocument,
        PaymentMethod,
        Plan,
        ReportedUsage,
    )
    from .exceptions import MatchUsageError

__all__ = [
    "BillingProvider",
    "CheckedOrganizations",
    "MatchRepository",
    "MatchSource",
    "SnapshotStore",
]


@runtime_checkable
class MatchSource(Protocol):
    """Anything that can hand over the matches overlapping a time window.

    Every reporting entry point accepts either a plain iterable of
    [`Match`][matchusage.Match] objects or a `MatchSource`; with a source, the
    entry point asks only for the window it needs, so a database-backed
    source never loads matches that cannot count.
    """

    def matches_overlapping(self, start: datetime, end: datetime) -> Iterable[Match]:
        """Return the matches whose span overlaps ``[start, end)`` by a positive amount.

        Returning more matches than that is allowed (they are filtered out),
        returning fewer is not. Match ids must be unique.
        """
        ...


@runtime_checkable
class MatchRepository(Protocol):
    """Read access to an application's organizations, programs, users and matches.

    matchusage never owns the data: an application implements this port over
    its own storage (or uses [`InMemoryRepository`][matchusage.memory.InMemoryRepository]
    or the SQL adapter). Every method is used by a caller in the library.

    The port only reads. The repositories that also write
    ([`InMemoryRepository`][matchusage.memory.InMemoryRepository],
    [`SQLRepository`][matchusage.sql.SQLRepository]) agree on what ``add``
    does, and [`MatchRepositoryContract`][matchusage.testing.contracts.MatchRepositoryContract]
    holds every adapter with an ``add`` to it: ``add`` only ever inserts. An
    id already stored is refused, with
    [`DuplicateRecordError`][matchusage.exceptions.DuplicateRecordError] for an
    organization, program or user and
    [`DuplicateMatchError`][matchusage.exceptions.DuplicateMatchError] for a
    match, even when the new record equals the stored one (adding is not
    idempotent, so a mistaken second import is noticed rather than merged),
    and nothing of that call is written. ``save_match`` is the one write that
    replaces.
    """

    def organizations(self) -> Iterable[Organization]:
        """Return every organization, ordered by id (the billing batch walks them all)."""
        ...

    def organization(self, organization_id: str) -> Organization:
        """Return one organization.

        Raises:
            matchusage.exceptions.UnknownRecordError: No organization has that id.
        """
        ...

    def programs(self, organization_id: str) -> Sequence[Program]:
        """Return the programs of an organization, ordered by id.

        Raises:
            matchusage.exceptions.UnknownRecordError: No organization has that id.
        """
        ...

    def matches(
        self,
        organization_id: str,
        *,
        start: datetime,
        end: datetime,
        program_id: str | None = None,
    ) -> Iterable[Match]:
        """Return the matches of an organization that overlap ``[start, end)``.

        A match overlaps when ``started_at < end`` and it is ongoing or
        ``ended_at > start``; zero-length matches may be returned or not
        (they never count). With *program_id*, only that program's matches.

        Raises:
            matchusage.exceptions.UnknownRecordError: No organization has that id.
        """
        ...

    def users(self, user_ids: Iterable[str]) -> Mapping[str, User]:
        """Return the users with the given ids that exist, keyed by id."""
        ...


@runtime_checkable
class CheckedOrganizations(Protocol):
    """A repository that can list its organizations without one bad row stopping the list.

    Optional beside [`MatchRepository`][matchusage.protocols.MatchRepository]:
    [`billing_run`][matchusage.billing.billing_run] uses it when the
    repository has it, so an organization stored with an invalid billing
    cycle is reported as a failure while every other organization is billed.
    Check an adapter with
    [`CheckedOrganizationsContract`][matchusage.testing.contracts.CheckedOrganizationsContract].
    """

    def checked_organizations(self) -> tuple[list[Organization], dict[str, MatchUsageError]]:
        """Return the valid organizations ordered by id, and the error of each invalid one.

        The errors are keyed by organization id; each names the organization
        and the bad value (e.g. an
        [`InvalidCycleError`][matchusage.exceptions.InvalidCycleError] for a
        cycle of 0 months).
        """
        ...


@runtime_checkable
class BillingProvider(Protocol):
    """A billing service: the plan and payment data the portal shows, and where usage goes.

    An adapter implements this port over a real billing service (see the
    guide "Write a billing provider adapter");
    [`InMemoryBillingProvider`][matchusage.memory.InMemoryBillingProvider] is
    the complete reference implementation. Check an adapter with
    [`BillingProviderContract`][matchusage.testing.contracts.BillingProviderContract].

    Every method raises
    [`UnknownRecordError`][matchusage.exceptions.UnknownRecordError] for an
    organization the provider has no customer for. The three ``update_*``
    methods are the admin changes the billing portal offers; each validates
    its input the same way in every provider (bad input raises
    [`InvalidRecordError`][matchusage.exceptions.InvalidRecordError] and
    changes nothing) and returns what the portal shows afterwards.
    """

    def plan(self, organization_id: str) -> Plan:
        """Return the organization's current plan (its renewal instant if the provider knows it)."""
        ...

    def payment_method(self, organization_id: str) -> PaymentMethod | None:
        """Return the payment method on file, or ``None``; never a full card number."""
        ...

    def billing_details(self, organization_id: str) -> BillingDetails | None:
        """Return the billing and shipping details, or ``None`` if none were given."""
        ...

    def invoices(self, organization_id: str) -> Sequence[Invoice]:
        """Return the organization's invoices, newest first (by issue instant, then number)."""
        ...

    def invoice_document(
        self, organization_id: str, invoice_number: str, kind: DocumentKind
    ) -> InvoiceDocument:
        """Return a document of an invoice: the invoice itself, or its receipt once paid.

        Raises:
            matchusage.exceptions.UnknownRecordError: The organization has no
                invoice with that number.
            matchusage.exceptions.DocumentUnavailableError: The document does
                not exist (yet): the receipt of an unpaid invoice.
        """
        ...

    def update_payment_method(self, organization_id: str, payment_method_id: str) -> PaymentMethod:
        """Make a payment method the default for future invoices; return it as the portal shows it.

        Card numbers never pass through matchusage: *payment_method_id* is the
        provider's reference to a method its own secure form collected (with
        Stripe, a PaymentMethod id such as ``"pm_..."`` from Stripe.js).

        Raises:
            matchusage.exceptions.InvalidRecordError: *payment_method_id* is
                not a non-empty, single-line string.
            matchusage.exceptions.UnknownRecordError: The provider has no such
                payment method.
            matchusage.exceptions.PaymentDeclinedError: The provider refused the method.
        """
        ...

    def update_billing_address(
        self, organization_id: str, address: Address | None
    ) -> BillingDetails:
        """Replace the billing address (``None`` removes it); return the new details.

        Raises:
            matchusage.exceptions.InvalidRecordError: *address* is not an
                [`Address`][matchusage.billing.Address] or ``None``, or the
                organization has no billing details (name and email) yet.
        """
        ...

    def update_shipping(
        self,
        organization_id: str,
        address: Address | None,
        *,
        name: str | None = None,
        phone: str | None = None,
    ) -> BillingDetails:
        """Replace the shipping information (``None`` removes it); return the new details.

        The recipient *name* defaults to the billed name; *phone* is optional.
        See [`BillingDetails.with_shipping`][matchusage.billing.BillingDetails.with_shipping].

        Raises:
            matchusage.exceptions.InvalidRecordError: A bad address, name or
                phone, or the organization has no billing details yet.
        """
        ...

    def report_usage(
        self,
        organization_id: str,
        period: BillingPeriod,
        quantity: int,
        *,
        idempotency_key: str,
    ) -> ReportedUsage:
        """Bill *quantity* active users for *period*, at most once per *idempotency_key*.

        Reporting a key again with the same organization, period and quantity
        changes nothing and returns the first report's acknowledgement, for
        as long as the provider keeps invoices: this is what makes closing a
        period safe to retry.

        Raises:
            matchusage.exceptions.UsageConflictError: The key was already
                used with a different quantity, period or organization.
        """
        ...


@runtime_checkable
class SnapshotStore(Protocol):
    """Durable storage of [`UsageSnapshot`][matchusage.billing.UsageSnapshot]s and of reports.

    Snapshots are written once and never rewritten: [`add`][matchusage.protocols.SnapshotStore.add]
    keeps an existing snapshot and returns it. Implementations:
    [`InMemorySnapshotStore`][matchusage.memory.InMemorySnapshotStore] and
    [`SQLSnapshotStore`][matchusage.sql.SQLSnapshotStore].
    """

    def add(self, snapshot: UsageSnapshot) -> UsageSnapshot:
        """Store *snapshot* unless its organization and period have one; return the stored one.

        The check and the write are atomic: of two concurrent closers, one
        snapshot wins and both get it back.
        """
        ...

    def get(self, organization_id: str, period: BillingPeriod) -> UsageSnapshot | None:
        """Return the snapshot of an organization's period, or ``None``."""
        ...

    def snapshots(self, organization_id: str) -> Sequence[UsageSnapshot]:
        """Return every snapshot of an organization, oldest period first."""
        ...

    def record_report(self, report: ReportedUsage) -> ReportedUsage:
        """Record that a snapshot's usage was reported; return the recorded report.

        Recording a period again keeps the first record and returns it.

        Raises:
            matchusage.exceptions.UnknownRecordError: No snapshot exists for
                the report's organization and period.
        """
        ...

    def report(self, organization_id: str, period: BillingPeriod) -> ReportedUsage | None:
        """Return the recorded report of an organization's period, or ``None``."""
        ...

    def start_billing(self, organization_id: str, period: BillingPeriod) -> BillingPeriod:
        """Record *period* as the organization's first billable period, unless one is recorded.

        Written once, like snapshots: a later call keeps the recorded period and
        returns it. [`billing_run`][matchusage.billing.billing_run] records it
        before its first attempt to close a period of the organization, so a
        first close that fails is retried by later runs, however late.
        """
        ...

    def billing_start(self, organization_id: str) -> BillingPeriod | None:
        """Return the organization's recorded first billable period, or ``None``."""
        ...
