"""The values a billing provider hands over: plan, payment method, details, invoices."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from .._periods import BillingPeriod
from .._time import is_aware
from ..exceptions import InvalidRecordError
from ._pricing import (
    InvoiceLine,
    PriceTier,
    TierMode,
    check_currency,
    check_tiers,
    price_lines,
    to_money,
)
from ._pricing import check_count as _count


def _name(instance: Any) -> str:
    return type(instance).__name__


def _text(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRecordError(_name(instance), attribute.name, value, "a non-empty string")


def _optional_text(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _text(instance, attribute, value)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _one_line(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """Printed on invoices and sent to billing services: one line, no control characters."""
    if not isinstance(value, str) or _CONTROL.search(value):
        raise InvalidRecordError(
            _name(instance), attribute.name, value, "one line of text without control characters"
        )


def _optional_one_line(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _one_line(instance, attribute, value)


def _aware(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not is_aware(value):
        raise InvalidRecordError(
            _name(instance), attribute.name, value, "a timezone-aware datetime"
        )


def _optional_aware(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _aware(instance, attribute, value)


def _period(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, BillingPeriod):
        raise InvalidRecordError(_name(instance), attribute.name, value, "a BillingPeriod")


def _currency(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    check_currency(_name(instance), value)


def _plan_unit_price(value: object) -> Decimal:
    return to_money("Plan", "unit_price", value)


def _invoice_amount(value: object) -> Decimal:
    return to_money("Invoice", "amount", value)


def _plan_tiers(value: Iterable[PriceTier]) -> tuple[PriceTier, ...]:
    return check_tiers("Plan", value)


@attrs.frozen
class Plan:
    """The plan an organization is subscribed to, and how it prices active users.

    Without tiers every active user costs *unit_price*. With tiers, users are
    priced by the tiers (see [`TierMode`][matchusage.billing.TierMode]) and users above
    the last tier cost *unit_price*. A *minimum_quantity* bills at least that
    many users.

    Attributes:
        name: Display name, e.g. ``"Team"``.
        unit_price: Price per active user (beyond the last tier, if any and
            it is not open-ended).
        currency: ISO 4217 code; amounts are rounded to its minor unit.
        interval: How often the plan bills, as shown to people, e.g. ``"month"``.
        renews_at: When the subscription next renews, if the provider knows;
            otherwise the portal takes the end of the current billing period.
        tiers: Optional [`PriceTier`][matchusage.billing.PriceTier]s with increasing bounds.
        tier_mode: How the tiers apply.
        minimum_quantity: The least number of active users billed.
    """

    name: str = attrs.field(validator=_text)
    unit_price: Decimal = attrs.field(converter=_plan_unit_price)
    currency: str = attrs.field(validator=_currency)
    interval: str = attrs.field(default="month", validator=_text)
    renews_at: datetime | None = attrs.field(default=None, validator=_optional_aware)
    tiers: tuple[PriceTier, ...] = attrs.field(default=(), converter=_plan_tiers)
    tier_mode: TierMode = attrs.field(default=TierMode.GRADUATED, converter=TierMode)
    minimum_quantity: int = attrs.field(default=0, validator=_count)

    def lines(self, quantity: int) -> tuple[InvoiceLine, ...]:
        """The invoice lines billing *quantity* active users on this plan."""
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise InvalidRecordError("Plan.lines", "quantity", quantity, "a non-negative integer")
        return price_lines(
            quantity,
            unit_price=self.unit_price,
            currency=self.currency,
            tiers=self.tiers,
            mode=self.tier_mode,
            minimum_quantity=self.minimum_quantity,
        )

    def amount(self, quantity: int) -> Decimal:
        """What *quantity* active users cost on this plan (the sum of the rounded lines)."""
        return sum((line.amount for line in self.lines(quantity)), Decimal(0))


_LAST4 = re.compile(r"[0-9]{4}")
# More digits than a last4 or a year, maybe grouped by spaces or dashes: possibly (part
# of) a card number, which must never be echoed.
_CARD_NUMBER = re.compile(r"[0-9](?:[ -]?[0-9]){4,}")


def _redacted(value: object) -> object:
    """*value*, unless its text holds a card-number-like run of digits, which is masked.

    Error messages and the errors' ``value`` are logged; a full card number
    must never reach them, whatever type it came as (``int``, ``str``, ...).
    """
    text = str(value)
    if not _CARD_NUMBER.search(text):
        return value
    return _CARD_NUMBER.sub(lambda found: f"<redacted, ending {found[0][-4:]}>", text)


def _payment_field(field: str, value: object, expected: str) -> InvalidRecordError:
    return InvalidRecordError("PaymentMethod", field, _redacted(value), expected)


@attrs.frozen
class PaymentMethod:
    """The payment method on file, as a portal may show it: never a full card number.

    Attributes:
        brand: Card brand or payment type, e.g. ``"visa"`` or ``"sepa_debit"``.
        last4: The last four digits, exactly four.
        exp_month: Expiry month (1-12), if the method expires.
        exp_year: Expiry year (four digits), if the method expires.
    """

    brand: str
    last4: str
    exp_month: int | None = None
    exp_year: int | None = None

    def __attrs_post_init__(self) -> None:
        # Every field's bad value is redacted: a card number passed in the wrong
        # place (or as an int) must not be echoed.
        if not isinstance(self.brand, str) or not self.brand.strip():
            raise _payment_field("brand", self.brand, "a non-empty string")
        if not isinstance(self.last4, str) or not _LAST4.fullmatch(self.last4):
            raise _payment_field("last4", self.last4, "exactly four digits")
        month, year = self.exp_month, self.exp_year
        if (month is None) != (year is None):
            raise _payment_field("exp_year", year, "given together with exp_month")
        if month is not None and (
            not isinstance(month, int) or isinstance(month, bool) or not 1 <= month <= 12
        ):
            raise _payment_field("exp_month", month, "a month from 1 to 12")
        if year is not None and (
            not isinstance(year, int) or isinstance(year, bool) or not 1000 <= year <= 9999
        ):
            raise _payment_field("exp_year", year, "a four-digit year")

    @property
    def expiry(self) -> str | None:
        """The expiry as ``MM/YYYY``, or ``None``."""
        if self.exp_month is None:
            return None
        return f"{self.exp_month:02d}/{self.exp_year}"

    def is_expired(self, at: datetime) -> bool:
        """Whether the method has expired at *at* (cards work through their expiry month)."""
        if self.exp_month is None or self.exp_year is None:
            return False
        return (at.year, at.month) > (self.exp_year, self.exp_month)


@attrs.frozen
class Address:
    """A postal address.

    Attributes:
        line1: Street and number.
        city: City.
        postal_code: Postal code.
        country: ISO 3166-1 alpha-2 country code, e.g. ``"DE"``.
        line2: Optional second line.
        region: Optional state or region.
    """

    line1: str = attrs.field(validator=[_text, _one_line])
    city: str = attrs.field(validator=[_text, _one_line])
    postal_code: str = attrs.field(validator=_one_line)
    country: str = attrs.field()
    line2: str = attrs.field(default="", validator=_one_line)
    region: str = attrs.field(default="", validator=_one_line)

    @country.validator
    def _check_country(self, attribute: attrs.Attribute[str], value: object) -> None:
        if not isinstance(value, str) or not re.fullmatch(r"[A-Z]{2}", value):
            raise InvalidRecordError("Address", "country", value, "an ISO 3166-1 code like 'DE'")

    def lines(self) -> list[str]:
        """The address as printed, one string per line."""
        locality = " ".join(part for part in (self.postal_code, self.city) if part)
        return [
            part for part in (self.line1, self.line2, locality, self.region, self.country) if part
        ]


def _optional_address(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, Address):
        raise InvalidRecordError(_name(instance), attribute.name, value, "an Address or None")


@attrs.frozen
class BillingDetails:
    """Who invoices are addressed to and where goods would be shipped.

    Attributes:
        name: The billed legal name.
        email: Where invoices are sent.
        address: The billing address.
        shipping_address: The shipping address, if different from the billing one.
        tax_id: VAT number or other tax id, if any.
        shipping_name: Who receives shipments, when a shipping address is set.
        shipping_phone: A phone number for the shipping address, if any.
    """

    name: str = attrs.field(validator=[_text, _one_line])
    email: str = attrs.field()
    address: Address | None = attrs.field(default=None, validator=_optional_address)
    shipping_address: Address | None = attrs.field(default=None, validator=_optional_address)
    tax_id: str | None = attrs.field(default=None, validator=[_optional_text, _optional_one_line])
    shipping_name: str | None = attrs.field(
        default=None, validator=[_optional_text, _optional_one_line]
    )
    shipping_phone: str | None = attrs.field(
        default=None, validator=[_optional_text, _optional_one_line]
    )

    @email.validator
    def _check_email(self, attribute: attrs.Attribute[str], value: object) -> None:
        if not isinstance(value, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
            raise InvalidRecordError("BillingDetails", "email", value, "an email address")
        _one_line(self, attribute, value)

    def __attrs_post_init__(self) -> None:
        if self.shipping_address is None and (self.shipping_name or self.shipping_phone):
            raise InvalidRecordError(
                "BillingDetails",
                "shipping_address",
                None,
                "given when a shipping name or phone is (there is nowhere to ship)",
            )

    def with_address(self, address: Address | None) -> BillingDetails:
        """These details with another billing address (``None`` removes it)."""
        if address is not None and not isinstance(address, Address):
            raise InvalidRecordError("BillingDetails", "address", address, "an Address or None")
        return attrs.evolve(self, address=address)

    def with_shipping(
        self, address: Address | None, *, name: str | None = None, phone: str | None = None
    ) -> BillingDetails:
        """These details shipping to *address* (``None`` removes the shipping information).

        The recipient defaults to the billed *name*, as billing services do.
        """
        if address is None:
            if name is not None or phone is not None:
                raise InvalidRecordError(
                    "BillingDetails",
                    "shipping_address",
                    None,
                    "an Address when a name or phone is given",
                )
            return attrs.evolve(
                self, shipping_address=None, shipping_name=None, shipping_phone=None
            )
        if not isinstance(address, Address):
            raise InvalidRecordError(
                "BillingDetails", "shipping_address", address, "an Address or None"
            )
        return attrs.evolve(
            self,
            shipping_address=address,
            shipping_name=self.name if name is None else name,
            shipping_phone=phone or None,
        )


class InvoiceStatus(str, enum.Enum):
    """Where an invoice stands (the statuses billing services such as Stripe use)."""

    DRAFT = "draft"
    """Being prepared: not issued yet, so not owed yet."""
    OPEN = "open"
    """Issued and awaiting payment."""
    PAID = "paid"
    """Paid: its receipt can be downloaded."""
    VOID = "void"
    """Cancelled; it is not owed."""
    UNCOLLECTIBLE = "uncollectible"
    """Issued but written off as unlikely to be paid; it can still be paid."""


class DocumentKind(str, enum.Enum):
    """Which document of an invoice to download."""

    INVOICE = "invoice"
    RECEIPT = "receipt"


def _lines(value: Iterable[InvoiceLine]) -> tuple[InvoiceLine, ...]:
    lines = tuple(value)
    for line in lines:
        if not isinstance(line, InvoiceLine):
            raise InvalidRecordError("Invoice", "lines", line, "an InvoiceLine")
    return lines


@attrs.frozen
class Invoice:
    """One invoice of an organization, as the invoice history shows it.

    Attributes:
        number: The invoice number, unique at the provider.
        organization_id: The billed organization.
        issued_at: When it was issued.
        period: The billing period it bills.
        quantity: The number of active users reported for the period.
        amount: The total due.
        currency: ISO 4217 code of *amount*.
        status: Open, paid or void.
        lines: The invoice lines, if the provider gives them; their amounts
            add up to *amount*.
        paid_at: When it was paid, for a paid invoice.
    """

    number: str = attrs.field(validator=_text)
    organization_id: str = attrs.field(validator=_text)
    issued_at: datetime = attrs.field(validator=_aware)
    period: BillingPeriod = attrs.field(validator=_period)
    quantity: int = attrs.field(validator=_count)
    amount: Decimal = attrs.field(converter=_invoice_amount)
    currency: str = attrs.field(validator=_currency)
    status: InvoiceStatus = attrs.field(default=InvoiceStatus.OPEN, converter=InvoiceStatus)
    lines: tuple[InvoiceLine, ...] = attrs.field(default=(), converter=_lines)
    paid_at: datetime | None = attrs.field(default=None, validator=_optional_aware)

    def __attrs_post_init__(self) -> None:
        record = f"Invoice {self.number!r}"
        if self.lines and sum(line.amount for line in self.lines) != self.amount:
            raise InvalidRecordError(record, "amount", self.amount, "the sum of the line amounts")
        if (self.status is InvoiceStatus.PAID) != (self.paid_at is not None):
            raise InvalidRecordError(
                record, "paid_at", self.paid_at, "set exactly when the status is 'paid'"
            )

    @property
    def documents(self) -> tuple[DocumentKind, ...]:
        """The documents that can be downloaded: the invoice, and the receipt once paid."""
        if self.status is InvoiceStatus.PAID:
            return (DocumentKind.INVOICE, DocumentKind.RECEIPT)
        return (DocumentKind.INVOICE,)


@attrs.frozen
class InvoiceDocument:
    """A downloadable document: an invoice or a receipt.

    Attributes:
        kind: Invoice or receipt.
        invoice_number: The invoice it belongs to.
        content: The file's bytes.
        media_type: Its MIME type, e.g. ``"application/pdf"``.
        file_name: A file name to offer for download.
    """

    kind: DocumentKind = attrs.field(converter=DocumentKind)
    invoice_number: str = attrs.field(validator=_text)
    content: bytes = attrs.field(repr=lambda c: f"<{len(c)} bytes>")
    media_type: str = attrs.field(validator=_text)
    file_name: str = attrs.field(validator=_text)


@attrs.frozen
class ReportedUsage:
    """The provider's acknowledgement of a period's reported usage.

    Attributes:
        organization_id: The organization billed.
        period: The billing period the usage is for.
        quantity: The number of active users reported.
        idempotency_key: The key the usage was reported under.
        reference: The provider's id for what the report produced (the
            in-memory provider: the invoice number).
        reported_at: When the provider first accepted the report.
    """

    organization_id: str = attrs.field(validator=_text)
    period: BillingPeriod = attrs.field(validator=_period)
    quantity: int = attrs.field(validator=_count)
    idempotency_key: str = attrs.field(validator=_text)
    reference: str = attrs.field(validator=_text)
    reported_at: datetime = attrs.field(validator=_aware)
