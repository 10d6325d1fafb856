"""Reporting a period's active users exactly once: one Stripe invoice per idempotency key.

The invoice and each of its invoice items carry the idempotency key in their metadata,
and every report looks them up before creating anything, so a rerun days later (long
after Stripe forgot its own Idempotency-Key) finds what an interrupted run made and
finishes it instead of billing again.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal

import attrs
import stripe

from .._periods import BillingPeriod
from .._time import UTC
from ..billing._pricing import InvoiceLine
from ..billing._values import Plan, ReportedUsage
from ..exceptions import (
    BillingProviderError,
    ProviderRequestError,
    UnknownRecordError,
    UsageConflictError,
)
from ._errors import PROVIDER, stripe_errors
from ._invoices import invoice_lines, period_of, usage_invoices
from ._metadata import IDEMPOTENCY_KEY, LINE, ORGANIZATION, PERIOD_END, PERIOD_START, QUANTITY
from ._objects import plain
from ._prices import instant, to_minor

CollectionMethod = Literal["charge_automatically", "send_invoice"]


def request_key(idempotency_key: str, step: str) -> str:
    """Stripe's Idempotency-Key for one create of a report (at most 255 characters)."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
    return f"matchusage-{digest}-{step}"


def _oldest_first(objects: list[Any]) -> list[Any]:
    return sorted(objects, key=lambda found: (found["created"], found["id"]))


def _item_id(line: Mapping[str, Any]) -> str | None:
    parent = line.get("parent") or {}
    details = parent.get("invoice_item_details") or {}
    item = details.get("invoice_item")
    return str(item) if item else None


@attrs.define
class UsageInvoices:
    """Issues and finds the per-period usage invoices of Stripe customers."""

    client: stripe.StripeClient
    collection_method: CollectionMethod
    days_until_due: int | None

    def report(
        self,
        customer_id: str,
        organization_id: str,
        period: BillingPeriod,
        quantity: int,
        idempotency_key: str,
        plan: Callable[[], Plan],
    ) -> ReportedUsage:
        """Bill *quantity* for *period* once under *idempotency_key*; safe to run again."""
        invoice = self._find(customer_id, idempotency_key)
        current_plan = None
        if invoice is None:
            current_plan = plan()
            self._create_invoice(
                customer_id, organization_id, period, quantity, idempotency_key, current_plan
            )
            # Found again by its metadata, so a create that was repeated (by a retry
            # against a server that ignores Idempotency-Key) leaves one invoice.
            invoice = self._find(customer_id, idempotency_key)
            if invoice is None:
                raise BillingProviderError(
                    f"the invoice created under key {idempotency_key!r} is not listed",
                    provider=PROVIDER,
                )
        self._check(invoice, organization_id, period, quantity, idempotency_key)
        if invoice["status"] == "draft":
            lines = (current_plan or plan()).lines(quantity)
            self._complete(invoice, customer_id, period, idempotency_key, lines)
            invoice = self._finalize(invoice["id"])
        return ReportedUsage(
            organization_id,
            period,
            quantity,
            idempotency_key,
            reference=invoice["id"],
            reported_at=instant(invoice["created"]),
        )

    def _find(self, customer_id: str, idempotency_key: str) -> Any:
        found = _oldest_first(
            [
                invoice
                for invoice in usage_invoices(self.client, customer_id)
                if invoice["metadata"][IDEMPOTENCY_KEY] == idempotency_key
            ]
        )
        if not found:
            return None
        for duplicate in found[1:]:
            if duplicate["status"] == "draft":
                self._delete(self.client.v1.invoices.delete, duplicate["id"])
        return found[0]

    @staticmethod
    def _delete(delete: Callable[[str], object], object_id: str) -> None:
        # A repeated delete (its first answer lost) finds the object gone: that is success.
        with contextlib.suppress(UnknownRecordError), stripe_errors():
            delete(object_id)

    def _finalize(self, invoice_id: str) -> dict[str, Any]:
        try:
            with stripe_errors():
                # auto_advance from here on: Stripe collects the finalized invoice itself.
                return plain(
                    self.client.v1.invoices.finalize_invoice(
                        invoice_id, params={"auto_advance": True}
                    )
                )
        except ProviderRequestError:
            # Finalized meanwhile (a repeated request whose first answer was lost, or a
            # concurrent run): what counts is that it is no longer a draft.
            with stripe_errors():
                invoice = plain(self.client.v1.invoices.retrieve(invoice_id))
            if invoice["status"] == "draft":
                raise
            return invoice

    def _create_invoice(
        self,
        customer_id: str,
        organization_id: str,
        period: BillingPeriod,
        quantity: int,
        idempotency_key: str,
        plan: Plan,
    ) -> None:
        params: dict[str, Any] = {
            "customer": customer_id,
            "currency": plan.currency.lower(),
            "collection_method": self.collection_method,
            # A draft must wait for its lines: Stripe would finalize it on its own
            # an hour after creation if auto_advance were on.
            "auto_advance": False,
            "pending_invoice_items_behavior": "exclude",
            "description": f"Active users, {period.start.isoformat()} to {period.end.isoformat()}",
            "metadata": {
                IDEMPOTENCY_KEY: idempotency_key,
                ORGANIZATION: organization_id,
                PERIOD_START: period.start.isoformat(),
                PERIOD_END: period.end.isoformat(),
                QUANTITY: str(quantity),
            },
        }
        if self.collection_method == "send_invoice":
            params["days_until_due"] = self.days_until_due
        with stripe_errors():
            self.client.v1.invoices.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": request_key(idempotency_key, "invoice")},
            )

    def _check(
        self,
        invoice: Mapping[str, Any],
        organization_id: str,
        period: BillingPeriod,
        quantity: int,
        idempotency_key: str,
    ) -> None:
        metadata = invoice["metadata"]
        reported = int(metadata[QUANTITY])
        billed, owner = period_of(metadata), metadata.get(ORGANIZATION)
        if owner != organization_id or billed != period:
            raise UsageConflictError(
                idempotency_key,
                reported,
                quantity,
                f" (the key belongs to {owner!r}, period {billed}; Stripe invoice {invoice['id']})",
            )
        if reported != quantity:
            raise UsageConflictError(
                idempotency_key, reported, quantity, f" (Stripe invoice {invoice['id']})"
            )

    def _complete(
        self,
        invoice: Mapping[str, Any],
        customer_id: str,
        period: BillingPeriod,
        idempotency_key: str,
        lines: tuple[InvoiceLine, ...],
    ) -> None:
        """Give a draft exactly one item per line, whatever an interrupted run left on it.

        The lines are read again after adding the missing ones: an item created
        twice (a create repeated after its answer was lost) is deleted before
        the invoice is finalized.
        """
        present = self._present_lines(invoice, idempotency_key)
        if self._add_missing(invoice, customer_id, period, idempotency_key, lines, present):
            with stripe_errors():
                page = self.client.v1.invoices.line_items.list(invoice["id"], params={"limit": 100})
                fresh = {
                    **invoice,
                    "lines": {"data": [plain(line) for line in page.auto_paging_iter()]},
                }
            present = self._present_lines(fresh, idempotency_key)
        missing = [str(index) for index in range(len(lines)) if str(index) not in present]
        if missing:
            raise BillingProviderError(
                f"invoice {invoice['id']} lacks lines {', '.join(missing)} after adding them",
                provider=PROVIDER,
            )

    def _present_lines(self, invoice: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
        """The draft's lines by index, deleting the twins of a line created twice.

        Stripe lists an invoice's lines in the order they were added (line
        items have no creation instant), so the first of twins is kept.
        """
        present: dict[str, Any] = {}
        for line in invoice_lines(self.client, invoice):
            metadata = line.get("metadata") or {}
            if metadata.get(IDEMPOTENCY_KEY) != idempotency_key:
                continue
            index = str(metadata.get(LINE))
            item = _item_id(line)
            if index in present and item is not None:
                self._delete(self.client.v1.invoice_items.delete, item)
            else:
                present[index] = line
        return present

    def _add_missing(
        self,
        invoice: Mapping[str, Any],
        customer_id: str,
        period: BillingPeriod,
        idempotency_key: str,
        lines: tuple[InvoiceLine, ...],
        present: Mapping[str, Any],
    ) -> bool:
        added = False
        currency = str(invoice["currency"]).upper()
        for position, line in enumerate(lines):
            index = str(position)
            if index in present:
                continue
            params: dict[str, Any] = {
                "customer": customer_id,
                "invoice": invoice["id"],
                "currency": currency.lower(),
                "quantity": line.quantity,
                "unit_amount_decimal": Decimal(to_minor(line.unit_price, currency)),
                "description": line.description,
                "period": {
                    "start": int(period.start.astimezone(UTC).timestamp()),
                    "end": int(period.end.astimezone(UTC).timestamp()),
                },
                "metadata": {IDEMPOTENCY_KEY: idempotency_key, LINE: index},
            }
            with stripe_errors():
                self.client.v1.invoice_items.create(
                    params=params,  # type: ignore[arg-type]
                    options={"idempotency_key": request_key(idempotency_key, f"line-{index}")},
                )
            added = True
        return added
