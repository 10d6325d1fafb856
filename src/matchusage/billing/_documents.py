"""Rendering invoices and receipts: PDF (with the ``pdf`` extra), HTML or plain text."""

from __future__ import annotations

import enum
import html
from datetime import datetime, tzinfo

import attrs

from ..exceptions import InvalidRecordError
from ._values import BillingDetails, DocumentKind, Invoice, InvoiceDocument


class DocumentFormat(str, enum.Enum):
    """The file format invoice and receipt documents are rendered in."""

    PDF = "pdf"
    """``application/pdf``, through fpdf2 (``pip install "matchusage[pdf]"``)."""
    HTML = "html"
    """A self-contained HTML page."""
    TEXT = "text"
    """Plain UTF-8 text."""

    @classmethod
    def default(cls) -> DocumentFormat:
        """PDF when fpdf2 is installed, HTML otherwise."""
        try:
            import fpdf  # noqa: F401
        except ImportError:
            return cls.HTML
        return cls.PDF


_MEDIA_TYPES = {
    DocumentFormat.PDF: ("application/pdf", "pdf"),
    DocumentFormat.HTML: ("text/html; charset=utf-8", "html"),
    DocumentFormat.TEXT: ("text/plain; charset=utf-8", "txt"),
}


@attrs.frozen
class _Content:
    """What a document says, independent of its format."""

    title: str
    issuer: str
    fields: list[tuple[str, str]]
    table: list[tuple[str, str, str, str]]
    total: tuple[str, str]


def _when(instant: datetime, zone: tzinfo | None) -> str:
    local = instant.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _content(
    invoice: Invoice, kind: DocumentKind, details: BillingDetails | None, issuer: str
) -> _Content:
    zone = invoice.period.start.tzinfo
    money = f"{{:,}} {invoice.currency}".format
    fields = [
        ("Invoice number", invoice.number),
        ("Issued", _when(invoice.issued_at, zone)),
        (
            "Billing period",
            f"{_when(invoice.period.start, zone)} to {_when(invoice.period.end, zone)}",
        ),
        ("Active users", str(invoice.quantity)),
    ]
    if details is not None:
        fields.append(("Bill to", details.name))
        fields.extend(("", line) for line in (details.address.lines() if details.address else []))
        fields.append(("Email", details.email))
        if details.tax_id:
            fields.append(("Tax id", details.tax_id))
    if kind is DocumentKind.RECEIPT:
        assert invoice.paid_at is not None  # only paid invoices have receipts
        title = f"Receipt for invoice {invoice.number}"
        fields.append(("Paid on", _when(invoice.paid_at, zone)))
        total = ("Amount paid", money(invoice.amount))
    else:
        title = f"Invoice {invoice.number}"
        fields.append(("Status", invoice.status.value))
        total = ("Total due" if invoice.status.value == "open" else "Total", money(invoice.amount))
    table = [
        (line.description, str(line.quantity), money(line.unit_price), money(line.amount))
        for line in invoice.lines
    ]
    return _Content(title, issuer, fields, table, total)


_HEADER = ("Description", "Quantity", "Unit price", "Amount")


def _text(content: _Content) -> bytes:
    rows = [content.issuer, content.title, ""]
    rows += [f"{label + ':' if label else '':<16}{value}" for label, value in content.fields]
    rows.append("")
    widths = [max(len(row[i]) for row in [_HEADER, *content.table]) for i in range(4)]
    for row in [_HEADER, *content.table]:
        rows.append(
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    rows += ["", f"{content.total[0]}: {content.total[1]}", ""]
    return "\n".join(rows).encode()


def _html(content: _Content) -> bytes:
    e = html.escape
    fields = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in content.fields)
    head = "".join(f"<th>{e(h)}</th>" for h in _HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>" for row in content.table
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(content.title)}</title></head><body>"
        f"<p>{e(content.issuer)}</p><h1>{e(content.title)}</h1>"
        f"<table>{fields}</table>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<p><strong>{e(content.total[0])}: {e(content.total[1])}</strong></p>"
        "</body></html>\n"
    )
    return page.encode()


def _latin1(text: str) -> str:
    # The PDF core fonts cover Latin-1 only; other characters print as "?".
    return text.encode("latin-1", "replace").decode("latin-1")


def _pdf(content: _Content, created: datetime) -> bytes:
    try:
        from fpdf import FPDF
    except ImportError as error:  # pragma: no cover - exercised without the extra only
        raise ImportError(
            'PDF documents need fpdf2: pip install "matchusage[pdf]"'
            " (or choose DocumentFormat.HTML or TEXT)"
        ) from error
    pdf = FPDF()
    pdf.set_creation_date(created)
    pdf.set_title(_latin1(content.title))
    pdf.set_author(_latin1(content.issuer))
    pdf.add_page()

    def line(height: float, text: str, *, label: str | None = None, align: str = "L") -> None:
        if label is not None:
            pdf.cell(40, height, _latin1(label))
        pdf.cell(0, height, _latin1(text), align=align)
        pdf.ln(height)

    pdf.set_font("Helvetica", size=10)
    line(6, content.issuer)
    pdf.set_font("Helvetica", style="B", size=16)
    line(12, content.title)
    pdf.set_font("Helvetica", size=10)
    for label, value in content.fields:
        line(6, value, label=label)
    pdf.ln(4)
    widths = (80, 25, 40, 40)
    pdf.set_font("Helvetica", style="B", size=10)
    for row in [_HEADER, *content.table]:
        for i, (cell, width) in enumerate(zip(row, widths, strict=True)):
            pdf.cell(width, 7, _latin1(cell), border="B", align="L" if i == 0 else "R")
        pdf.ln()
        pdf.set_font("Helvetica", size=10)
    pdf.ln(4)
    pdf.set_font("Helvetica", style="B", size=12)
    line(8, f"{content.total[0]}: {content.total[1]}", align="R")
    return bytes(pdf.output())


def render_document(
    invoice: Invoice,
    kind: DocumentKind,
    *,
    details: BillingDetails | None,
    issuer: str,
    format: DocumentFormat,
) -> InvoiceDocument:
    """Render an invoice or (for a paid invoice) its receipt in *format*."""
    content = _content(invoice, kind, details, issuer)
    if format is DocumentFormat.PDF:
        # The document's own date, so the same invoice always renders to the same bytes.
        created = invoice.issued_at
        if kind is DocumentKind.RECEIPT and invoice.paid_at is not None:
            created = invoice.paid_at
        data = _pdf(content, created)
    elif format is DocumentFormat.HTML:
        data = _html(content)
    elif format is DocumentFormat.TEXT:
        data = _text(content)
    else:
        raise InvalidRecordError("render_document", "format", format, "a DocumentFormat")
    media_type, extension = _MEDIA_TYPES[format]
    suffix = "-receipt" if kind is DocumentKind.RECEIPT else ""
    return InvoiceDocument(
        kind=kind,
        invoice_number=invoice.number,
        content=data,
        media_type=media_type,
        file_name=f"{invoice.number}{suffix}.{extension}",
    )
