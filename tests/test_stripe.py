"""The Stripe adapter against a local Stripe API server: the contract, prices, errors, strings."""

from __future__ import annotations

import importlib.util
import os
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest

if importlib.util.find_spec("stripe") is None and os.environ.get("CI") != "true":
    pytest.skip('the Stripe adapter needs the "stripe" extra', allow_module_level=True)

import stamina

from matchusage.billing import (
    Address,
    BillingDetails,
    DocumentKind,
    InvoiceStatus,
    Plan,
    PriceTier,
    TierMode,
)
from matchusage.exceptions import (
    DocumentUnavailableError,
    InvalidRecordError,
    PaymentDeclinedError,
    ProviderAuthenticationError,
    ProviderRequestError,
    ProviderUnavailableError,
    UnknownRecordError,
)
from matchusage.protocols import BillingProvider
from matchusage.stripe import StripeBillingProvider
from matchusage.testing.contracts import BillingProviderContract

from . import _stripe

# The Stripe docs' example tiers: 1-5 at 7.00, 6-10 at 6.50 plus a flat 1.00, then 6.00.
EXAMPLE_TIERS = [
    {"up_to": 5, "unit_amount": 700},
    {"up_to": 10, "unit_amount": 650, "flat_amount": 100},
    {"up_to": "inf", "unit_amount": 600},
]


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Any:
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


@pytest.fixture
def account(localstripe_url: str) -> _stripe.Account:
    return _stripe.Account(_stripe.client(localstripe_url))


class TestStripeBillingProvider(BillingProviderContract):
    @pytest.fixture
    def provider(self, account: _stripe.Account, organization_id: str) -> BillingProvider:
        customer = account.customer(name="Contract GmbH", email="billing@contract.example")
        account.subscribe(customer, account.price(amount=450))
        return account.provider({organization_id: customer})

    def pay(self, provider: BillingProvider, organization_id: str, invoice_number: str) -> None:
        assert isinstance(provider, StripeBillingProvider)
        [invoice] = [
            i
            for i in provider.client.v1.invoices.list(params={"limit": 100}).data
            if i.number == invoice_number
        ]
        provider.client.v1.invoices.pay(invoice.id)

    def payment_method_id(self, provider: BillingProvider, organization_id: str) -> str:
        return "pm_card_visa"


# -- prices


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"amount": 450}, Plan("Team", "4.50", "EUR")),
        (
            {"billing_scheme": "tiered", "tiers_mode": "graduated", "tiers": EXAMPLE_TIERS},
            Plan(
                "Team",
                "6",
                "EUR",
                tiers=[
                    PriceTier(5, "7"),
                    PriceTier(10, "6.50", flat_fee="1"),
                    PriceTier(None, "6"),
                ],
                tier_mode=TierMode.GRADUATED,
            ),
        ),
        (
            {"billing_scheme": "tiered", "tiers_mode": "volume", "tiers": EXAMPLE_TIERS},
            Plan(
                "Team",
                "6",
                "EUR",
                tiers=[
                    PriceTier(5, "7"),
                    PriceTier(10, "6.50", flat_fee="1"),
                    PriceTier(None, "6"),
                ],
                tier_mode=TierMode.VOLUME,
            ),
        ),
        ({"amount": 500, "currency": "jpy"}, Plan("Team", "500", "JPY")),
        ({"amount": 1250, "currency": "kwd"}, Plan("Team", "1.250", "KWD")),
        (
            {
                "billing_scheme": "tiered",
                "tiers_mode": "graduated",
                "tiers": [
                    {"up_to": 3, "unit_amount": 0},
                    {"up_to": "inf", "unit_amount": 300, "flat_amount": 2000},
                ],
                "currency": "jpy",
            },
            Plan("Team", "300", "JPY", tiers=[PriceTier(3, "0"), PriceTier(None, "300", "2000")]),
        ),
    ],
    ids=["per-unit", "graduated", "volume", "jpy", "kwd", "flat-fee-on-the-open-tier"],
)
def test_prices_become_plans(
    account: _stripe.Account, params: dict[str, Any], expected: Plan
) -> None:
    customer = account.customer()
    account.subscribe(customer, account.price(**params))
    plan = account.provider({"acme": customer}).plan("acme")
    assert plan.renews_at is not None
    assert expected == attrs.evolve(plan, renews_at=None)


@pytest.mark.parametrize(
    ("mode", "billed"),
    [("graduated", [700, 4250, 12850]), ("volume", [700, 4000, 12000])],
)
def test_invoices_follow_stripes_tier_math(
    account: _stripe.Account, mode: str, billed: list[int]
) -> None:
    """Graduated: each tier's units and flat amount; volume: the one tier the quantity is in."""
    price = account.price(billing_scheme="tiered", tiers_mode=mode, tiers=EXAMPLE_TIERS)
    customer = account.customer()
    account.subscribe(customer, price)
    provider = account.provider({"acme": customer})
    for index, quantity in enumerate([1, 6, 20]):
        provider.report_usage(
            "acme", BillingProviderContract.period(index), quantity, idempotency_key=f"k{index}"
        )
    invoices = provider.invoices("acme")
    assert [Decimal(cents).scaleb(-2) for cents in reversed(billed)] == [i.amount for i in invoices]
    assert [provider.plan("acme").amount(q) for q in (20, 6, 1)] == [i.amount for i in invoices]


@pytest.mark.parametrize("mode", ["graduated", "volume"])
def test_the_local_server_prices_subscriptions_as_stripe_documents(
    account: _stripe.Account, mode: str
) -> None:
    """The server patch: a subscription's own invoice follows Stripe's tier math too."""
    price = account.price(billing_scheme="tiered", tiers_mode=mode, tiers=EXAMPLE_TIERS)
    totals = []
    for quantity in (1, 6, 20):
        customer = account.customer()
        account.client.v1.subscriptions.create(
            params={"customer": customer, "items": [{"plan": price, "quantity": quantity}]}
        )
        [invoice] = account.client.v1.invoices.list(params={"customer": customer}).data
        totals.append(invoice.total)
    expected = {"graduated": [700, 4250, 12850], "volume": [700, 4000, 12000]}[mode]
    assert expected == totals


@pytest.mark.parametrize(
    ("currency", "amount", "expected"),
    [("jpy", 500, Decimal("1500")), ("kwd", 1250, Decimal("3.750")), ("usd", 199, Decimal("5.97"))],
)
def test_currency_minor_units_round_trip(
    account: _stripe.Account, currency: str, amount: int, expected: Decimal
) -> None:
    customer = account.customer()
    account.subscribe(customer, account.price(currency, amount=amount))
    provider = account.provider({"acme": customer})
    report = provider.report_usage(
        "acme", BillingProviderContract.period(0), 3, idempotency_key="k"
    )
    [invoice] = provider.invoices("acme")
    assert (expected, currency.upper()) == (invoice.amount, invoice.currency)
    assert expected == sum(line.amount for line in invoice.lines)
    assert amount * 3 == account.client.v1.invoices.retrieve(report.reference).total


def test_renewal_is_the_subscription_items_current_period_end(account: _stripe.Account) -> None:
    customer = account.customer()
    subscription = account.subscribe(customer, account.price(amount=100))
    item = account.client.v1.subscriptions.retrieve(subscription)["items"].data[0]
    plan = account.provider({"acme": customer}).plan("acme")
    assert plan.renews_at is not None
    assert item.current_period_end == plan.renews_at.timestamp()


def test_a_customer_without_subscription_has_no_plan(account: _stripe.Account) -> None:
    provider = account.provider({"acme": account.customer()})
    with pytest.raises(UnknownRecordError, match="no current subscription"):
        provider.plan("acme")


# -- invoices and documents


def _billed(account: _stripe.Account) -> tuple[StripeBillingProvider, str]:
    customer = account.customer(address={"line1": "Alt 1", "city": "Berlin", "country": "DE"})
    account.subscribe(customer, account.price(amount=450))
    provider = account.provider({"acme": customer})
    report = provider.report_usage(
        "acme", BillingProviderContract.period(0), 2, idempotency_key="k"
    )
    return provider, report.reference


def test_statuses_follow_stripe(account: _stripe.Account) -> None:
    provider, invoice_id = _billed(account)
    [invoice] = provider.invoices("acme")
    assert InvoiceStatus.OPEN is invoice.status
    account.client.v1.invoices.mark_uncollectible(invoice_id)
    assert InvoiceStatus.UNCOLLECTIBLE is provider.invoices("acme")[0].status
    account.client.v1.invoices.void_invoice(invoice_id)
    assert InvoiceStatus.VOID is provider.invoices("acme")[0].status


def test_a_paid_invoice_has_a_receipt_addressed_as_the_invoice_was(
    account: _stripe.Account,
) -> None:
    provider, invoice_id = _billed(account)
    provider.update_billing_address("acme", Address("Neu 9", "Potsdam", "14467", "DE"))
    account.client.v1.invoices.pay(invoice_id, params={"paid_out_of_band": True})
    [invoice] = provider.invoices("acme")
    assert (InvoiceStatus.PAID, True) == (invoice.status, invoice.paid_at is not None)
    receipt = provider.invoice_document("acme", invoice.number, DocumentKind.RECEIPT)
    text = receipt.content.decode()
    assert ("Alt 1" in text, "Neu 9" in text) == (True, False)
    assert receipt.file_name == f"{invoice.number}-receipt.txt"


def test_the_invoice_document_is_stripes_own_pdf(account: _stripe.Account) -> None:
    provider, invoice_id = _billed(account)
    [invoice] = provider.invoices("acme")
    document = provider.invoice_document("acme", invoice.number, DocumentKind.INVOICE)
    assert ("application/pdf", f"{invoice.number}.pdf") == (document.media_type, document.file_name)
    assert document.content.startswith(b"%PDF")
    assert document.content == _download(
        account.client.v1.invoices.retrieve(invoice_id).invoice_pdf
    )
    rendered = attrs.evolve(provider, stripe_documents=False)
    text = rendered.invoice_document("acme", invoice.number, DocumentKind.INVOICE).content
    assert f"Invoice {invoice.number}" in text.decode()


def _download(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url) as response:
        return bytes(response.read())


def test_a_missing_stripe_file_is_unavailable(account: _stripe.Account) -> None:
    from matchusage.stripe._files import download

    with pytest.raises(DocumentUnavailableError, match="404"):
        download(_base(account) + "/files/invoices/in_missing.pdf", timeout=5)
    with pytest.raises(DocumentUnavailableError):
        download("file:///etc/passwd", timeout=5)


def test_a_draft_left_by_a_crash_shows_as_a_draft(account: _stripe.Account) -> None:
    customer = account.customer()
    account.subscribe(customer, account.price(amount=450))
    http = _stripe.FaultyHTTP()
    provider = _stripe.Account(_stripe.client(_base(account), http)).provider({"acme": customer})
    http.crash_after = 6  # after the draft invoice was created and listed again
    with pytest.raises(_stripe.Crash):
        provider.report_usage("acme", BillingProviderContract.period(0), 2, idempotency_key="k")
    [draft] = provider.invoices("acme")
    assert (InvoiceStatus.DRAFT, draft.number.startswith("in_")) == (draft.status, True)
    document = provider.invoice_document("acme", draft.number, DocumentKind.INVOICE)
    assert "Status:         draft" in document.content.decode()


def _base(account: _stripe.Account) -> str:
    return str(account.client._requestor._options.base_addresses["api"])


# -- errors


def test_a_declined_card_is_refused_with_stripes_code(account: _stripe.Account) -> None:
    provider = account.provider({"acme": account.customer(card=None)})
    with pytest.raises(PaymentDeclinedError) as raised:
        provider.update_payment_method("acme", "pm_card_visa_chargeDeclined")
    assert ("stripe", 402, "card_declined") == (
        raised.value.provider,
        raised.value.http_status,
        raised.value.code,
    )
    assert provider.payment_method("acme") is None


def test_a_bad_api_key_is_an_authentication_error(localstripe_url: str) -> None:
    provider = StripeBillingProvider.from_api_key(
        "rk_not_a_secret_key", api_base=localstripe_url, customers={"acme": "cus_x"}
    )
    with pytest.raises(ProviderAuthenticationError, match="stripe"):
        provider.plan("acme")


def test_an_unreachable_stripe_is_retried_then_reported(account: _stripe.Account) -> None:
    provider = StripeBillingProvider.from_api_key(
        "sk_test_x",
        api_base="http://127.0.0.1:9",
        max_network_retries=0,
        customers={"acme": "cus_x"},
    )
    with pytest.raises(ProviderUnavailableError) as raised:
        provider.invoices("acme")
    assert "network" == raised.value.reason


def test_rate_limits_are_retried_with_backoff(account: _stripe.Account) -> None:
    customer = account.customer()
    account.subscribe(customer, account.price(amount=450))
    http = _stripe.FaultyHTTP()
    provider = _stripe.Account(_stripe.client(_base(account), http)).provider({"acme": customer})
    http.rate_limited = 2
    assert "Team" == provider.plan("acme").name
    http.rate_limited = 10
    with pytest.raises(ProviderUnavailableError) as raised:
        provider.plan("acme")
    assert ("rate_limited", "req_injected", 429) == (
        raised.value.reason,
        raised.value.request_id,
        raised.value.http_status,
    )


def test_unknown_stripe_ids_are_unknown_records(account: _stripe.Account) -> None:
    provider = account.provider({"acme": "cus_does_not_exist"})
    with pytest.raises(UnknownRecordError):
        provider.billing_details("acme")


# -- the organization's customer


HOSTILE_IDS = ['O\'Brien \\ "Co"', "acme:2024/01 <b>&amp;</b>", "東京 🏢 org", "a" * 500]


@pytest.mark.parametrize(
    "organization_id", HOSTILE_IDS, ids=["quotes", "markup", "unicode", "long"]
)
def test_customers_are_found_by_metadata(account: _stripe.Account, organization_id: str) -> None:
    """Customer Search finds the one customer tagged with the id, quotes and all."""
    customer = account.customer(organization_id)
    account.customer(organization_id[:-1] + "-other")
    account.subscribe(customer, account.price(amount=100))
    provider = account.provider(None)
    report = provider.report_usage(
        organization_id, BillingProviderContract.period(0), 2, idempotency_key="k"
    )
    invoice = account.client.v1.invoices.retrieve(report.reference)
    assert (customer, organization_id) == (
        invoice.customer,
        invoice.metadata["matchusage_organization_id"],
    )
    assert [organization_id] == [i.organization_id for i in provider.invoices(organization_id)]


def test_an_unmapped_organization_is_unknown(account: _stripe.Account) -> None:
    with pytest.raises(UnknownRecordError, match="no Stripe customer has it as metadata"):
        account.provider(None).billing_details("nobody-has-this-id")
    with pytest.raises(UnknownRecordError, match="no Stripe customer is mapped"):
        account.provider({}).billing_details("acme")


# -- hostile strings


def test_hostile_customer_data_round_trips(account: _stripe.Account) -> None:
    name = "Ünïcødé & <script>alert('x')</script> \"Ltd\" 🏢"
    customer = account.customer(name=name, email="o'brien+billing@xn--bcher-kva.example")
    details = account.provider({"acme": customer}).billing_details("acme")
    assert (name, "o'brien+billing@xn--bcher-kva.example") == (details.name, details.email)


@pytest.mark.parametrize(
    "key",
    [
        'matchusage-usage:O\'Brien "Co":2024-01-01T00:00:00Z/2024-02-01T00:00:00Z',
        "k=1&metadata[x]=2",
        "キー 🔑",
        "k" * 500,
    ],
    ids=["quotes", "form-syntax", "unicode", "longest"],
)
def test_hostile_idempotency_keys_round_trip(account: _stripe.Account, key: str) -> None:
    customer = account.customer()
    account.subscribe(customer, account.price(amount=100))
    provider = account.provider({"acme": customer})
    first = provider.report_usage("acme", BillingProviderContract.period(0), 4, idempotency_key=key)
    again = provider.report_usage("acme", BillingProviderContract.period(0), 4, idempotency_key=key)
    assert (first, key, 1) == (again, first.idempotency_key, len(provider.invoices("acme")))


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (
            lambda p: p.report_usage(
                "acme", BillingProviderContract.period(0), 1, idempotency_key="k" * 501
            ),
            "idempotency_key",
        ),
        (
            lambda p: p.report_usage(
                "o" * 501, BillingProviderContract.period(0), 1, idempotency_key="k"
            ),
            "organization_id",
        ),
        (
            lambda p: p.update_billing_address("acme", Address("x" * 5001, "Berlin", "1", "DE")),
            "line1",
        ),
        (
            lambda p: p.update_shipping(
                "acme", Address("Dock 1", "Hamburg", "2", "DE"), phone="1" * 5001
            ),
            "shipping_phone",
        ),
    ],
    ids=["long-key", "long-organization", "long-address", "long-phone"],
)
def test_what_stripe_cannot_store_is_refused_before_any_call(
    account: _stripe.Account, call: Any, field: str
) -> None:
    customer = account.customer()
    account.subscribe(customer, account.price(amount=100))
    http = _stripe.FaultyHTTP()
    provider = _stripe.Account(_stripe.client(_base(account), http)).provider({"acme": customer})
    before = provider.billing_details("acme")
    calls = len(http.calls)
    with pytest.raises(InvalidRecordError) as raised:
        call(provider)
    assert field == raised.value.field
    assert before == provider.billing_details("acme")
    assert [] == [c for c in http.calls[calls:] if not c.startswith("GET")]


def test_details_with_a_tax_id_and_shipping(account: _stripe.Account) -> None:
    customer = account.customer(
        tax_id_data=[{"type": "eu_vat", "value": "DE123456789"}],
        address={
            "line1": "Hauptstraße 1",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        shipping={
            "name": "Lager",
            "phone": "+49 40 1",
            "address": {"line1": "Dock 2", "city": "Hamburg", "country": "DE"},
        },
    )
    details = account.provider({"acme": customer}).billing_details("acme")
    assert (
        BillingDetails(
            "Acme GmbH",
            "billing@acme.example",
            Address("Hauptstraße 1", "Berlin", "10115", "DE"),
            Address("Dock 2", "Hamburg", "", "DE"),
            "DE123456789",
            shipping_name="Lager",
            shipping_phone="+49 40 1",
        )
        == details
    )


# -- conversions without a server


@pytest.mark.parametrize(
    ("field", "value"),
    [("transform_quantity", {"divide_by": 10, "round": "up"}), ("custom_unit_amount", {"x": 1})],
)
def test_prices_matchusage_cannot_reproduce_are_refused(field: str, value: object) -> None:
    from matchusage.stripe._prices import plan_from_price

    price = {"id": "price_x", "currency": "eur", "unit_amount": 100, field: value}
    with pytest.raises(InvalidRecordError, match="price_x") as raised:
        plan_from_price(price, name="Team", renews_at=None)
    assert field == raised.value.field


@pytest.mark.parametrize(
    ("currency", "minor", "amount"),
    [
        ("JPY", "500", "500"),
        ("KWD", "1250", "1.250"),
        ("EUR", "12.5", "0.125"),
        ("ISK", "10000", "100.00"),
        ("UGX", "3000", "3000"),
    ],
)
def test_stripe_minor_units(currency: str, minor: str, amount: str) -> None:
    from matchusage.stripe._prices import from_minor, to_minor

    assert Decimal(amount) == from_minor(minor, currency)
    assert Decimal(minor) == Decimal(to_minor(Decimal(amount), currency))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (lambda s: s.CardError("declined", "card", "card_declined"), PaymentDeclinedError),
        (lambda s: s.RateLimitError("slow down"), ProviderUnavailableError),
        (lambda s: s.APIConnectionError("reset"), ProviderUnavailableError),
        (lambda s: s.AuthenticationError("bad key"), ProviderAuthenticationError),
        (lambda s: s.PermissionError("restricted"), ProviderAuthenticationError),
        (
            lambda s: s.InvalidRequestError("no such", "id", code="resource_missing"),
            UnknownRecordError,
        ),
        (lambda s: s.InvalidRequestError("bad", "amount"), ProviderRequestError),
        (lambda s: s.APIError("boom", http_status=500), ProviderUnavailableError),
    ],
    ids=["card", "rate-limit", "network", "auth", "permission", "missing", "invalid", "5xx"],
)
def test_stripe_errors_become_matchusage_errors(error: Any, expected: type) -> None:
    import stripe

    from matchusage.stripe._errors import translate

    translated = translate(error(stripe))
    assert type(translated) is expected
    if isinstance(translated, ProviderRequestError):
        assert translated.param == "amount"


def test_invoice_numbers_order_naturally() -> None:
    from matchusage.billing import Invoice
    from matchusage.stripe._invoices import age

    def invoice(number: str) -> Invoice:
        return Invoice(number, "acme", NOON, BillingProviderContract.period(0), 1, "1", "EUR")

    numbers = ["ACME-9999", "ACME-10000", "ACME-0002"]
    ordered = sorted((invoice(n) for n in numbers), key=age, reverse=True)
    assert ["ACME-10000", "ACME-9999", "ACME-0002"] == [i.number for i in ordered]


NOON = datetime(2024, 2, 1, 12, tzinfo=timezone.utc)


def test_sent_invoices_are_due_after_the_days_given(account: _stripe.Account) -> None:
    customer = account.customer()
    account.subscribe(customer, account.price(amount=450))
    provider = account.provider(
        {"acme": customer}, collection_method="send_invoice", days_until_due=14
    )
    report = provider.report_usage(
        "acme", BillingProviderContract.period(0), 2, idempotency_key="k"
    )
    raw = account.client.v1.invoices.retrieve(report.reference)
    assert ("send_invoice", 14, "open") == (raw.collection_method, raw.days_until_due, raw.status)


@pytest.mark.parametrize(
    "options",
    [
        {"collection_method": "send_invoice"},
        {"days_until_due": 14},
        {"collection_method": "by_carrier_pigeon"},
    ],
    ids=["send-without-days", "days-without-send", "unknown-method"],
)
def test_collection_settings_are_checked(options: dict[str, Any]) -> None:
    import stripe

    with pytest.raises(InvalidRecordError):
        StripeBillingProvider(stripe.StripeClient("sk_test_x"), **options)
