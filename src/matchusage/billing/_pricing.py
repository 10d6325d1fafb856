"""Money and per-active-user pricing: tiers, minimum quantities, rounding per currency."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import attrs

from ..exceptions import InvalidRecordError

# ISO 4217 currencies whose minor unit is not the cent. Every other code has 2 decimals.
_MINOR_UNITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"), 0),
    **dict.fromkeys(("RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4,
    "UYW": 4,
}
_CURRENCY = re.compile(r"[A-Z]{3}")

ZERO = Decimal(0)


def check_currency(record: str, value: object) -> str:
    """Return *value* if it is an ISO 4217 code (three capital letters), else raise."""
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise InvalidRecordError(record, "currency", value, "an ISO 4217 code such as 'EUR'")
    return value


def minor_units(currency: str) -> int:
    """How many decimals amounts in *currency* carry (JPY 0, EUR 2, KWD 3, ...)."""
    return _MINOR_UNITS.get(check_currency("minor_units", currency), 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round *amount* to the minor unit of *currency*, halves away from zero.

    Half-up ("commercial") rounding is what invoices are expected to show:
    ``0.125 EUR`` is ``0.13 EUR``, ``0.5 JPY`` is ``1 JPY``.
    """
    exponent = Decimal(1).scaleb(-minor_units(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


def to_money(record: str, field: str, value: object) -> Decimal:
    """*value* as a finite, non-negative `Decimal`; floats are refused (binary fractions)."""
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            amount = Decimal(value)
        except InvalidOperation:
            amount = Decimal("NaN")
    else:
        raise InvalidRecordError(record, field, value, "a Decimal, int or numeric string")
    if not amount.is_finite() or amount < 0:
        raise InvalidRecordError(record, field, value, "a finite, non-negative amount")
    return amount


def _pricetier_unit_price(value: object) -> Decimal:
    return to_money("PriceTier", "unit_price", value)


def _pricetier_flat_fee(value: object) -> Decimal:
    return to_money("PriceTier", "flat_fee", value)


def _invoiceline_unit_price(value: object) -> Decimal:
    return to_money("InvoiceLine", "unit_price", value)


def _invoiceline_amount(value: object) -> Decimal:
    return to_money("InvoiceLine", "amount", value)


def check_count(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """An attrs validator: *value* is a non-negative integer."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidRecordError(
            type(instance).__name__, attribute.name, value, "a non-negative integer"
        )


class TierMode(str, enum.Enum):
    """How [`PriceTier`][matchusage.billing.PriceTier]s price a quantity.

    ``GRADUATED``: each user is priced by the tier it falls in (the first 10 at
    one price, the next 40 at another, ...). ``VOLUME``: every user is priced
    by the one tier the whole quantity falls in.
    """

    GRADUATED = "graduated"
    VOLUME = "volume"


@attrs.frozen
class PriceTier:
    """One tier of a tiered price: users up to *up_to* cost *unit_price* each.

    Attributes:
        up_to: The last quantity of the tier (inclusive); tiers of a plan
            have increasing bounds. ``None`` makes the last tier open-ended
            (Stripe's ``up_to: "inf"``): it prices every quantity above the
            tier before it, flat fee included. Without an open-ended tier,
            quantities above the last tier are priced at the plan's own unit
            price.
        unit_price: Price per active user in this tier.
        flat_fee: A fixed amount charged once when the tier is used.
    """

    up_to: int | None = attrs.field()
    unit_price: Decimal = attrs.field(converter=_pricetier_unit_price)
    flat_fee: Decimal = attrs.field(default=ZERO, converter=_pricetier_flat_fee)

    @up_to.validator
    def _positive(self, attribute: attrs.Attribute[int | None], value: object) -> None:
        if value is None:
            return
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidRecordError(
                "PriceTier", "up_to", value, "a positive integer, or None for the open-ended tier"
            )

    def covers(self, quantity: int) -> bool:
        """Whether *quantity* falls within the tier's upper bound."""
        return self.up_to is None or quantity <= self.up_to


@attrs.frozen
class InvoiceLine:
    """One line of an invoice: *quantity* x *unit_price* (+ nothing hidden) = *amount*.

    Attributes:
        description: What the line bills, e.g. ``"Active users 11-50"``.
        quantity: How many units.
        unit_price: Price per unit.
        amount: The line total, rounded to the currency's minor unit.
    """

    description: str
    quantity: int = attrs.field(validator=check_count)
    unit_price: Decimal = attrs.field(converter=_invoiceline_unit_price)
    amount: Decimal = attrs.field(converter=_invoiceline_amount)


def _line(description: str, quantity: int, unit_price: Decimal, currency: str) -> InvoiceLine:
    try:
        amount = round_money(quantity * unit_price, currency)
    except ArithmeticError:  # decimal.Overflow, or InvalidOperation past 28 digits
        raise InvalidRecordError(
            f"InvoiceLine {description!r}",
            "amount",
            f"{quantity} x {unit_price}",
            "an amount of at most 28 digits (decimals included)",
        ) from None
    return InvoiceLine(description, quantity, unit_price, amount)


def check_tiers(record: str, tiers: Iterable[PriceTier]) -> tuple[PriceTier, ...]:
    """The tiers as a tuple, each a `PriceTier`, with strictly increasing bounds."""
    tiers = tuple(tiers)
    previous: int | None = 0
    for tier in tiers:
        if not isinstance(tier, PriceTier):
            raise InvalidRecordError(record, "tiers", tier, "a PriceTier")
        if previous is None:
            raise InvalidRecordError(
                record, "tiers", tiers, "tiers whose open-ended one (up_to=None) is the last"
            )
        if tier.up_to is not None and tier.up_to <= previous:
            raise InvalidRecordError(
                record, "tiers", tiers, "tiers with strictly increasing up_to bounds"
            )
        previous = tier.up_to
    return tiers


def _span(low: int, tier: PriceTier) -> str:
    """The quantities a tier prices after *low*, as invoices print them."""
    return f"above {low}" if tier.up_to is None else f"{low + 1}-{tier.up_to}"


def price_lines(
    quantity: int,
    *,
    unit_price: Decimal,
    currency: str,
    tiers: tuple[PriceTier, ...] = (),
    mode: TierMode = TierMode.GRADUATED,
    minimum_quantity: int = 0,
) -> tuple[InvoiceLine, ...]:
    """The invoice lines for *quantity* active users.

    The billed quantity is ``max(quantity, minimum_quantity)``. Each line is
    rounded to the currency's minor unit and the invoice total is the sum of
    the lines, so a printed invoice always adds up.
    """
    billed = max(quantity, minimum_quantity)
    label = "Active users" if billed == quantity else f"Active users (minimum {billed})"
    if not tiers:
        return (_line(label, billed, unit_price, currency),)
    if mode is TierMode.VOLUME:
        index = next((i for i, t in enumerate(tiers) if t.covers(billed)), None)
        if index is None:
            return (_line(label, billed, unit_price, currency),)
        tier = tiers[index]
        lines = [_line(label, billed, tier.unit_price, currency)]
        if tier.flat_fee and billed:
            if tier.up_to is None:  # only the last tier is open-ended: the one before is bounded
                fee = f"Flat fee above {tiers[index - 1].up_to if index else 0}"
            else:
                fee = f"Flat fee up to {tier.up_to}"
            lines.append(_line(fee, 1, tier.flat_fee, currency))
        return tuple(lines)
    lines = []
    low = 0
    for tier in tiers:
        units = (billed if tier.up_to is None else min(billed, tier.up_to)) - low
        if units <= 0:
            break
        span = _span(low, tier)
        lines.append(_line(f"{label} {span}", units, tier.unit_price, currency))
        if tier.flat_fee:
            lines.append(_line(f"Flat fee {span}", 1, tier.flat_fee, currency))
        low += units
    if billed > low:
        lines.append(_line(f"{label} above {low}", billed - low, unit_price, currency))
    if not lines:
        lines.append(_line(label, 0, tiers[0].unit_price, currency))
    return tuple(lines)
