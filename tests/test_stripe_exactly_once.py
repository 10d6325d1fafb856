"""Exactly-once usage reporting through Stripe, proven by crashing between every pair of calls.

For each place a report (or a whole ``close_period``) can die, the run is killed right
after that Stripe call answered, then run again, with Stripe's own Idempotency-Key
forgotten (as after its 24 hours): the organization's period must end up billed exactly
once, with the right quantity, and nothing left behind. Lost answers and the SDK's own
retries (which duplicate creates on a server that ignores Idempotency-Key) must not
bill twice either.
"""

from __future__ import annotations

import importlib.util
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

if importlib.util.find_spec("stripe") is None and os.environ.get("CI") != "true":
    pytest.skip('the Stripe adapter needs the "stripe" extra', allow_module_level=True)

import stamina

from matchusage import BillingCycle, Match, Organization, Program
from matchusage.billing import (
    CloseStatus,
    InvoiceStatus,
    ReportedUsage,
    billing_run,
    close_period,
    usage_idempotency_key,
)
from matchusage.exceptions import ProviderUnavailableError, UnknownRecordError, UsageConflictError
from matchusage.memory import InMemoryRepository, InMemorySnapshotStore
from matchusage.stripe import StripeBillingProvider

from . import _stripe

UTC = timezone.utc
CYCLE = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))
JANUARY = CYCLE.period(0)
# The Stripe calls of one report (asserted below); a crash can come after each of them.
CALLS = 11
TIERS = [{"up_to": 2, "unit_amount": 700}, {"up_to": "inf", "unit_amount": 500, "flat_amount": 90}]


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Any:
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


class Billing:
    """One customer on a tiered price, and a provider whose network the test controls."""

    def __init__(self, api_base: str, sdk_retries: int = 0) -> None:
        self.account = _stripe.Account(_stripe.client(api_base))
        self.customer = self.account.customer()
        self.account.subscribe(
            self.customer,
            self.account.price(billing_scheme="tiered", tiers_mode="graduated", tiers=TIERS),
        )
        self.http = _stripe.FaultyHTTP()
        self.provider = StripeBillingProvider(
            _stripe.client(api_base, self.http, retries=sdk_retries),
            customers={"acme": self.customer},
            document_format="text",
        )

    def usage_invoices(self) -> list[Any]:
        """Every invoice of the customer that carries a usage key (drafts included)."""
        found = self.account.client.v1.invoices.list(
            params={"customer": self.customer, "limit": 100}
        ).data
        return [i for i in found if i.metadata.to_dict().get("matchusage_idempotency_key")]

    def assert_billed_once(self, quantity: int) -> None:
        [invoice] = self.usage_invoices()
        lines = invoice.lines.data
        expected = self.provider.plan("acme").lines(quantity)
        assert ("open", quantity) == (invoice.status, int(invoice.metadata["matchusage_quantity"]))
        assert [(line.description, line.quantity) for line in expected] == [
            (line.description, line.quantity) for line in lines
        ]
        total = sum((line.amount for line in expected), Decimal(0))
        assert total.scaleb(2) == invoice.total
        [shown] = self.provider.invoices("acme")
        assert (InvoiceStatus.OPEN, quantity, total) == (shown.status, shown.quantity, shown.amount)
        pending = self.account.client.v1.invoice_items.list(params={"customer": self.customer})
        assert [] == pending.data


def _calls_of_one_report(api_base: str) -> list[str]:
    billing = Billing(api_base)
    billing.provider.report_usage("acme", JANUARY, 5, idempotency_key="k")
    return billing.http.calls


def test_a_report_makes_these_stripe_calls(localstripe_url: str) -> None:
    """The sequence the crash tests cut into (5 users on the tiers: three lines)."""
    assert [
        "GET invoices",
        "GET customers/{customer}",
        "GET subscriptions",
        "GET prices/{price}",
        "POST invoices",
        "GET invoices",
        "POST invoiceitems",
        "POST invoiceitems",
        "POST invoiceitems",
        "GET invoices/{invoice}/lines",
        "POST invoices/{invoice}/finalize",
    ] == [_generic(call) for call in _calls_of_one_report(localstripe_url)]


def _generic(call: str) -> str:
    method, path = call.split(" ", 1)
    names = {"cus": "customer", "in": "invoice", "plan": "price"}
    parts = [
        "{" + names[p.split("_", 1)[0]] + "}" if p.split("_", 1)[0] in names and "_" in p else p
        for p in path.split("/")
    ]
    return f"{method} {'/'.join(parts)}"


@pytest.mark.parametrize("crash_after", range(1, CALLS + 1))
def test_a_report_killed_after_any_call_bills_once_when_run_again(
    localstripe_url: str, crash_after: int
) -> None:
    billing = Billing(localstripe_url)
    billing.http.crash_after = crash_after
    with pytest.raises(_stripe.Crash):
        billing.provider.report_usage("acme", JANUARY, 5, idempotency_key="k")
    # Days later: Stripe has forgotten every Idempotency-Key of the first run.
    billing.http.forget_keys = True
    report = billing.provider.report_usage("acme", JANUARY, 5, idempotency_key="k")
    again = billing.provider.report_usage("acme", JANUARY, 5, idempotency_key="k")
    assert report == again
    billing.assert_billed_once(5)
    with pytest.raises(UsageConflictError):
        billing.provider.report_usage("acme", JANUARY, 6, idempotency_key="k")
    billing.assert_billed_once(5)


@pytest.mark.parametrize("lost", range(1, CALLS + 1))
def test_lost_answers_with_sdk_retries_bill_once(localstripe_url: str, lost: int) -> None:
    """An answer lost on the way back: the SDK retries the request, the server (which
    ignores Idempotency-Key) does it again, and the metadata lookup removes the twin."""
    billing = Billing(localstripe_url, sdk_retries=2)
    original = billing.http.request

    def lose_the_nth(*args: Any, **kwargs: Any) -> Any:
        if len(billing.http.calls) == lost - 1 and not getattr(lose_the_nth, "done", False):
            lose_the_nth.done = True  # type: ignore[attr-defined]
            billing.http.lose_answers = 1
        return original(*args, **kwargs)

    billing.http.request = lose_the_nth  # type: ignore[method-assign]
    billing.provider.report_usage("acme", JANUARY, 5, idempotency_key="k")
    assert CALLS + 1 <= len(billing.http.calls)  # the lost call was made twice
    billing.assert_billed_once(5)


def test_a_network_failure_is_retried_by_the_adapter_with_a_lookup(localstripe_url: str) -> None:
    billing = Billing(localstripe_url)
    billing.http.fail_before = 2
    billing.provider.report_usage("acme", JANUARY, 3, idempotency_key="k")
    billing.assert_billed_once(3)
    billing.http.fail_before = 10
    with pytest.raises(ProviderUnavailableError):
        billing.provider.report_usage("acme", CYCLE.period(1), 3, idempotency_key="k2")


# -- close_period and billing_run on Stripe


ACME = Organization("acme", "Acme", "UTC", CYCLE)


def _world() -> InMemoryRepository:
    repository = InMemoryRepository()
    repository.add(ACME, Program("p", "acme"))
    start = datetime(2024, 1, 5, tzinfo=UTC)
    repository.add(
        Match("m1", "p", {"ann", "bob"}, start, start + timedelta(days=3)),
        Match("m2", "p", {"ann", "cyd"}, start + timedelta(days=9)),
    )
    return repository


class FlakyStore(InMemorySnapshotStore):
    """Dies once when recording a report: the report reached Stripe, the record did not."""

    crash_on_record = False

    def record_report(self, report: ReportedUsage) -> ReportedUsage:
        if self.crash_on_record:
            self.crash_on_record = False
            raise _stripe.Crash("crashed before recording the report")
        return super().record_report(report)


NOW = datetime(2024, 2, 2, tzinfo=UTC)


@pytest.mark.parametrize("crash_after", [*range(1, CALLS + 1), "record"])
def test_close_period_killed_anywhere_bills_the_snapshot_once(
    localstripe_url: str, crash_after: int | str
) -> None:
    billing = Billing(localstripe_url)
    repository, store = _world(), FlakyStore()
    if crash_after == "record":
        store.crash_on_record = True
    else:
        billing.http.crash_after = crash_after
    with pytest.raises(_stripe.Crash):
        close_period(repository, billing.provider, store, ACME, JANUARY, NOW)
    billing.http.forget_keys = True
    later = NOW + timedelta(days=3)
    result = close_period(repository, billing.provider, store, ACME, JANUARY, later)
    assert (CloseStatus.CLOSED, 3) == (result.status, result.snapshot.count)
    assert usage_idempotency_key("acme", JANUARY) == result.report.idempotency_key
    billing.assert_billed_once(3)
    again = close_period(repository, billing.provider, store, ACME, JANUARY, later)
    assert CloseStatus.ALREADY_CLOSED is again.status
    billing.assert_billed_once(3)


def test_billing_run_reports_each_organizations_failure(localstripe_url: str) -> None:
    """Stripe down for one run: the failure is in the summary; the next run bills once."""
    billing = Billing(localstripe_url)
    repository, store = _world(), InMemorySnapshotStore()
    globex = Organization("globex", "Globex", "UTC", CYCLE)
    repository.add(globex, Program("g", "globex"))
    billing.http.fail_before = 100
    summary = billing_run(repository, billing.provider, store, now=NOW)
    failures = {f.organization_id: type(f.error) for f in summary.failed}
    assert {"acme": ProviderUnavailableError, "globex": UnknownRecordError} == failures
    billing.http.fail_before = 0
    summary = billing_run(repository, billing.provider, store, now=NOW + timedelta(days=1))
    assert [("acme", JANUARY)] == [(r.organization_id, r.period) for r in summary.closed]
    assert ["globex"] == [f.organization_id for f in summary.failed]
    billing.assert_billed_once(3)
