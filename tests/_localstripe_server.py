"""A localstripe server for the tests, extended where it falls short of Stripe's API.

Run as a script: ``python _localstripe_server.py`` binds 127.0.0.1 on a free port,
prints the port on its first line of output, and serves until it is terminated. The
store stays in memory (the stock ``localstripe`` command pickles it to one shared file
in the temporary directory after every write).

localstripe (1.15.10) is a fake written against older API versions. Each patch below
makes one endpoint behave as Stripe's API reference documents it, for what
matchusage's Stripe adapter uses; the adapter itself knows nothing of them. The list is
repeated in docs/billing-stripe.md ("Patches to the local server").
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError
from localstripe.resources import (
    Customer,
    Invoice,
    InvoiceItem,
    InvoiceLineItem,
    List,
    Plan,
    Product,
    SubscriptionItem,
    store,
)

# -- the store stays in memory --------------------------------------------------------------


def _keep_in_memory(self: Any) -> None:
    """Stock localstripe pickles its store to one file shared by every instance."""


resources.Store.dump_to_disk = _keep_in_memory


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def _int_or_none(value: Any) -> int | None:
    return None if value in (None, "", "inf") else int(value)


# -- 1. Customer: `shipping` is accepted when creating a customer ---------------------------
# docs.stripe.com/api/customers/create#create_customer-shipping

_customer_init = Customer.__init__


def _customer_with_shipping(self: Any, shipping: Any = None, **kwargs: Any) -> None:
    _customer_init(self, **kwargs)
    self.shipping = shipping


Customer.__init__ = _customer_with_shipping


# -- 2. Customer search by metadata: GET /v1/customers/search -------------------------------
# docs.stripe.com/api/customers/search, docs.stripe.com/search#search-query-language
# (only the clause `metadata['key']:'value'`, with backslash escapes, which the adapter uses)

_METADATA_CLAUSE = re.compile(r"metadata\['((?:[^'\\]|\\.)*)'\]:'((?:[^'\\]|\\.)*)'")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _search_customers(request: web.Request, path: dict[str, str]) -> web.Response:
    match = _METADATA_CLAUSE.fullmatch(request.query.get("query", ""))
    if match is None:
        raise UserError(400, "Unsupported search query")
    key, value = _unescape(match.group(1)), _unescape(match.group(2))
    found = [
        customer._export()
        for name, customer in store.items()
        if name.startswith("customer:") and (customer.metadata or {}).get(key) == value
    ]
    return server.json_response(
        {
            "object": "search_result",
            "data": found,
            "has_more": False,
            "next_page": None,
            "url": "/v1/customers/search",
        }
    )


# -- 3. Prices: GET /v1/prices/{id}, and `price` and the current period on subscription items
# docs.stripe.com/api/prices/object (a Plan is the older form of a recurring Price);
# docs.stripe.com/api/subscription_items/object#subscription_item_object-current_period_end


def _tiers(plan: Any) -> list[dict[str, Any]]:
    tiers = []
    for tier in plan.tiers or []:
        unit, flat = _decimal(tier.get("unit_amount") or 0), _decimal(tier.get("flat_amount") or 0)
        tiers.append(
            {
                "up_to": _int_or_none(tier.get("up_to")),
                "unit_amount": int(unit),
                "unit_amount_decimal": str(unit),
                "flat_amount": int(flat),
                "flat_amount_decimal": str(flat),
            }
        )
    return tiers


def _price(plan: Any, expand: list[str]) -> dict[str, Any]:
    product: Any = plan.product
    if "product" in expand:
        product = Product._api_retrieve(plan.product)._export()
    amount = plan.amount if plan.billing_scheme == "per_unit" else None
    return {
        "id": plan.id,
        "object": "price",
        "active": plan.active,
        "created": plan.created,
        "livemode": False,
        "billing_scheme": plan.billing_scheme,
        "currency": plan.currency,
        "metadata": plan.metadata,
        "nickname": plan.nickname,
        "product": product,
        "recurring": {
            "interval": plan.interval,
            "interval_count": plan.interval_count,
            "usage_type": plan.usage_type,
        },
        "tiers": _tiers(plan) if "tiers" in expand else None,
        "tiers_mode": plan.tiers_mode,
        "type": "recurring",
        "unit_amount": amount,
        "unit_amount_decimal": None if amount is None else str(amount),
        "transform_quantity": None,
        "custom_unit_amount": None,
    }


def _retrieve_price(request: web.Request, path: dict[str, str]) -> web.Response:
    expand = [value for name, value in request.query.items() if name.startswith("expand")]
    plan = Plan._api_retrieve(path["id"])
    return server.json_response(_price(plan, expand))


SubscriptionItem.price = property(lambda self: _price(self.plan, []))
SubscriptionItem.current_period_start = property(lambda self: self._current_period()["start"])
SubscriptionItem.current_period_end = property(lambda self: self._current_period()["end"])


# -- 4. Tier math as documented: flat_amount optional, graduated tiers summed per tier ------
# docs.stripe.com/products-prices/pricing-models#graduated-pricing and #volume-based-pricing


def _amount(self: Any) -> int:
    plan, quantity = self.plan, self.quantity
    if plan.billing_scheme == "per_unit":
        return int(plan.amount * quantity)
    tiers = _tiers(plan)
    if plan.tiers_mode == "volume":
        tier = next(t for t in tiers if t["up_to"] is None or quantity <= t["up_to"])
        return int(tier["unit_amount"] * quantity + (tier["flat_amount"] if quantity else 0))
    total, low = 0, 0
    for tier in tiers:
        high = quantity if tier["up_to"] is None else min(quantity, tier["up_to"])
        if high <= low:
            break
        total += tier["unit_amount"] * (high - low) + tier["flat_amount"]
        low = high
    return total


SubscriptionItem._calculate_amount = _amount


# -- 5. Invoices: standalone drafts, finalize, pay out of band, mark uncollectible ----------
# docs.stripe.com/api/invoices/create: a draft for the customer with only the items added to
# it (pending items excluded unless pending_invoice_items_behavior=include), keeping the
# metadata, currency, collection_method, days_until_due and auto_advance it was given.

_next_number: dict[str, int] = {}
_origin = ["http://127.0.0.1"]  # this server's address, for the links it hands out


def _create_invoice(
    customer: Any = None,
    currency: Any = None,
    metadata: Any = None,
    description: Any = None,
    collection_method: str = "charge_automatically",
    days_until_due: Any = None,
    auto_advance: Any = None,
    pending_invoice_items_behavior: str = "exclude",
    **unexpected: Any,
) -> Any:
    if unexpected:
        raise UserError(400, "Unexpected " + ", ".join(unexpected))
    if collection_method not in ("charge_automatically", "send_invoice"):
        raise UserError(400, "Invalid collection_method")
    if (collection_method == "send_invoice") != (days_until_due is not None):
        raise UserError(400, "days_until_due goes with collection_method=send_invoice")
    listing = InvoiceItem._api_list_all
    if pending_invoice_items_behavior == "exclude":
        InvoiceItem._api_list_all = classmethod(  # the constructor sweeps pending items in
            lambda cls, url, **kwargs: List(url)
        )
    try:
        invoice = Invoice(customer=customer, metadata=metadata, description=description)
    finally:
        InvoiceItem._api_list_all = listing
    invoice.currency = currency or invoice.currency
    invoice.collection_method = collection_method
    invoice.days_until_due = None if days_until_due is None else int(days_until_due)
    invoice.auto_advance = auto_advance in (True, "true")
    return invoice


Invoice._api_create = staticmethod(_create_invoice)
for _field in (
    "number",
    "hosted_invoice_url",
    "invoice_pdf",
    "customer_name",
    "customer_address",
    "customer_shipping",
):
    setattr(Invoice, _field, None)
Invoice.customer_tax_ids = ()
Invoice._paid_out_of_band = False
Invoice._uncollectible = False
Invoice.days_until_due = None
Invoice.auto_advance = False

_status = Invoice.status.fget


def _invoice_status(self: Any) -> str:
    if self._draft:
        return "draft"
    if self._voided:
        return "void"
    if self._paid_out_of_band:
        return "paid"
    found = _status(self)
    if found == "open" and self._uncollectible:
        return "uncollectible"
    return found


Invoice.status = property(_invoice_status)

_finalize = Invoice._finalize


def _finalize_with_number(self: Any) -> None:
    # docs.stripe.com/api/invoices/object#invoice_object-number: numbered at finalization,
    # and the customer's details frozen on the invoice (customer_name, customer_address, ...).
    _finalize(self)
    customer = Customer._api_retrieve(self.customer)
    sequence = _next_number.get(customer.id, 0) + 1
    _next_number[customer.id] = sequence
    self.number = f"{customer.id[4:12].upper()}-{sequence:04d}"
    self.customer_name = customer.name
    self.customer_address = customer.address
    self.customer_shipping = customer.shipping
    self.customer_tax_ids = [{"type": t.type, "value": t.value} for t in customer.tax_ids._list]
    # docs.stripe.com/api/invoices/object#invoice_object-invoice_pdf: links to the invoice's
    # PDF and hosted page, readable without an API key (served by _stripe_files below)
    self.invoice_pdf = f"{_origin[0]}/files/invoices/{self.id}.pdf"
    self.hosted_invoice_url = f"{_origin[0]}/files/invoices/{self.id}"
    if self.total <= 0:  # an invoice of zero is paid when it is finalized
        self.status_transitions["paid_at"] = self.status_transitions["finalized_at"]


Invoice._finalize = _finalize_with_number


def _finalize_invoice(id: str, auto_advance: Any = None, **unexpected: Any) -> Any:
    # docs.stripe.com/api/invoices/finalize
    if unexpected:
        raise UserError(400, "Unexpected " + ", ".join(unexpected))
    invoice = Invoice._api_retrieve(id)
    if invoice.status != "draft":
        raise UserError(400, "This invoice is already finalized", {"code": "invoice_not_editable"})
    invoice._finalize()
    if auto_advance is not None:
        invoice.auto_advance = auto_advance in (True, "true")
    return invoice


_pay = Invoice._api_pay_invoice


def _pay_invoice(id: str, paid_out_of_band: Any = None, **unexpected: Any) -> Any:
    # docs.stripe.com/api/invoices/pay#pay_invoice-paid_out_of_band
    if unexpected:
        raise UserError(400, "Unexpected " + ", ".join(unexpected))
    if paid_out_of_band not in (True, "true"):
        return _pay(id)
    invoice = Invoice._api_retrieve(id)
    if invoice.status not in ("open", "uncollectible"):
        raise UserError(400, "Only an open invoice can be paid out of band")
    invoice._paid_out_of_band = True
    invoice.status_transitions["paid_at"] = int(time.time())
    return invoice


_void = Invoice._api_void_invoice


def _void_invoice(id: str, **unexpected: Any) -> Any:
    # docs.stripe.com/api/invoices/void: open and uncollectible invoices can be voided, also
    # those never charged (localstripe cancels a payment intent that may not exist)
    if unexpected:
        raise UserError(400, "Unexpected " + ", ".join(unexpected))
    invoice = Invoice._api_retrieve(id)
    if invoice.payment_intent is not None or invoice.subscription is not None:
        return _void(id)
    if invoice.status not in ("open", "uncollectible"):
        raise UserError(400, "Only an open or uncollectible invoice can be voided")
    invoice._uncollectible = False
    invoice._voided = True
    invoice.status_transitions["voided_at"] = int(time.time())
    return invoice


def _mark_uncollectible(id: str, **unexpected: Any) -> Any:
    # docs.stripe.com/api/invoices/mark_uncollectible
    if unexpected:
        raise UserError(400, "Unexpected " + ", ".join(unexpected))
    invoice = Invoice._api_retrieve(id)
    if invoice.status != "open":
        raise UserError(400, "Only an open invoice can be marked uncollectible")
    invoice._uncollectible = True
    invoice.status_transitions["marked_uncollectible_at"] = int(time.time())
    return invoice


# -- 6. Invoice items on a draft invoice, with quantity, unit_amount_decimal and period -----
# docs.stripe.com/api/invoiceitems/create: `unit_amount_decimal` times `quantity` is the
# amount (rounded to the minor unit); an item given `invoice` lands on that draft
# invoice's lines; items can only be added to (or deleted from) draft invoices.

_item_init = InvoiceItem.__init__


def _item(
    self: Any,
    quantity: Any = None,
    unit_amount_decimal: Any = None,
    period: Any = None,
    **kwargs: Any,
) -> None:
    invoice = Invoice._api_retrieve(kwargs["invoice"]) if kwargs.get("invoice") else None
    if invoice is not None and invoice.status != "draft":
        raise UserError(400, "You can only add invoice items to draft invoices.")
    count = 1 if quantity is None else int(quantity)
    if unit_amount_decimal is not None:
        if kwargs.get("amount") is not None:
            raise UserError(400, "amount and unit_amount_decimal cannot both be given")
        unit = _decimal(unit_amount_decimal)
        kwargs["amount"] = int((unit * count).quantize(Decimal(1), ROUND_HALF_UP))
    if period is not None:
        kwargs["period_start"], kwargs["period_end"] = period["start"], period["end"]
    _item_init(self, **kwargs)
    self.quantity = count
    self.unit_amount_decimal = str(
        unit_amount_decimal
        if unit_amount_decimal is not None
        else _decimal(self.amount) / count
        if count
        else 0
    )
    if invoice is not None:
        invoice.lines._list.append(InvoiceLineItem(self))


InvoiceItem.__init__ = _item


def _delete_item(id: str) -> Any:
    item = InvoiceItem._api_retrieve(id)
    if item.invoice:
        invoice = Invoice._api_retrieve(item.invoice)
        if invoice.status != "draft":
            raise UserError(400, "Invoice items of a finalized invoice cannot be deleted.")
        invoice.lines._list = [
            line for line in invoice.lines._list if getattr(line, "invoice_item", None) != id
        ]
    return resources.StripeObject._api_delete.__func__(InvoiceItem, id)


InvoiceItem._api_delete = staticmethod(_delete_item)


def _line_pricing(self: Any) -> dict[str, Any] | None:
    if self.type != "invoiceitem":
        return None
    item = InvoiceItem._api_retrieve(self.invoice_item)
    return {
        "type": "price_details",
        "price_details": None,
        "unit_amount_decimal": getattr(item, "unit_amount_decimal", str(item.amount)),
    }


def _line_parent(self: Any) -> dict[str, Any] | None:
    if self.type != "invoiceitem":
        return None
    return {
        "type": "invoice_item_details",
        "invoice_item_details": {
            "invoice_item": self.invoice_item,
            "proration": False,
            "subscription": self.subscription,
        },
    }


InvoiceLineItem.pricing = property(_line_pricing)
InvoiceLineItem.parent = property(_line_parent)


def _pdf(invoice: Any) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    finalized = invoice.status_transitions["finalized_at"]
    pdf.set_creation_date(datetime.fromtimestamp(finalized, timezone.utc))
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, f"Invoice {invoice.number}: {invoice.total} {invoice.currency} (local Stripe)")
    return bytes(pdf.output())


@web.middleware
async def _stripe_files(request: web.Request, handler: Any) -> web.StreamResponse:
    """The invoice links Stripe hands out are public: served ahead of the API key check."""
    match = re.fullmatch(r"/files/invoices/(in_\w+)(\.pdf)?", request.path)
    if request.method != "GET" or match is None:
        return await handler(request)
    invoice = store.get("invoice:" + match.group(1))
    if invoice is None or invoice.status == "draft":
        return web.Response(status=404, text="Not Found")
    if match.group(2):
        return web.Response(body=_pdf(invoice), content_type="application/pdf")
    return web.Response(text=f"<h1>Invoice {invoice.number}</h1>", content_type="text/html")


# -- routes ahead of localstripe's own (it would read "search" as a customer id) ------------

_ROUTES = [
    ("GET", re.compile(r"/v1/customers/search"), _search_customers),
    ("GET", re.compile(r"/v1/prices/(?P<id>[^/]+)"), _retrieve_price),
]
_ACTIONS = [
    (re.compile(r"/v1/invoices/(?P<id>[^/]+)/finalize"), _finalize_invoice),
    (re.compile(r"/v1/invoices/(?P<id>[^/]+)/pay"), _pay_invoice),
    (re.compile(r"/v1/invoices/(?P<id>[^/]+)/mark_uncollectible"), _mark_uncollectible),
    (re.compile(r"/v1/invoices/(?P<id>[^/]+)/void"), _void_invoice),
]


@web.middleware
async def _extensions(request: web.Request, handler: Any) -> web.StreamResponse:
    _origin[0] = str(request.url.origin())
    for method, pattern, route in _ROUTES:
        match = pattern.fullmatch(request.path)
        if request.method == method and match:
            return route(request, match.groupdict())
    for pattern, action in _ACTIONS:
        match = pattern.fullmatch(request.path)
        if request.method == "POST" and match:
            data = await server.get_post_data(request) or {}
            data.pop("expand", None)
            return server.json_response(action(match.group("id"), **data)._export())
    if request.method == "DELETE" and request.path.startswith("/v1/invoiceitems/"):
        return server.json_response(_delete_item(request.path.rsplit("/", 1)[1])._export())
    return await handler(request)


def main() -> None:
    app = server.app
    app.middlewares.insert(0, _stripe_files)
    app.middlewares.append(_extensions)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    # Listening before the port is announced: a client connecting while aiohttp starts up
    # waits in the backlog instead of being refused.
    listener.listen(128)
    print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
    web.run_app(app, sock=listener, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    sys.exit(main())
