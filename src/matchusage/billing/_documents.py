"""Rendering invoices and receipts: PDF (with the ``pdf`` extra), HTML or plain text."""

from __future__ import annotations

import contextlib
import enum
import html
from collections.abc import Iterable, Iterator
from datetime import datetime, tzinfo
from importlib import resources
from typing import TYPE_CHECKING

import attrs

from .._extras import install_hint
from .._text import printable
from ..exceptions import InvalidRecordError
from ._values import BillingDetails, DocumentKind, Invoice, InvoiceDocument

if TYPE_CHECKING:
    from fpdf import FPDF
    from fpdf.fonts import TTFFont

_FONTS = resources.files(__package__) / "_fonts"


class DocumentFormat(str, enum.Enum):
    """The file format invoice and receipt documents are rendered in."""

    PDF = "pdf"
    """``application/pdf``, through fpdf2 and HarfBuzz (``pip install "matchusage[pdf]"``).

    Names and addresses in any script of Unicode's Basic Multilingual Plane
    print, shaped and in reading order: the fonts (DejaVu Sans, GNU Unifont)
    ship with matchusage and the glyphs used are embedded in the document.
    """
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


_HEADER = ("Description", "Quantity", "Unit price", "Amount")


def _printable_rows(rows: Iterable[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return [tuple(map(printable, row)) for row in rows]


@attrs.frozen
class _Content:
    """What a document says, independent of its format: printable text only.

    Names, addresses and descriptions come from users; they are stripped of
    control characters and direction overrides once, here, for every format.
    """

    title: str = attrs.field(converter=printable)
    issuer: str = attrs.field(converter=printable)
    fields: list[tuple[str, ...]] = attrs.field(converter=_printable_rows)
    table: list[tuple[str, ...]] = attrs.field(converter=_printable_rows)
    total: tuple[str, str]

    def texts(self) -> Iterator[str]:
        """Every piece of text the document prints."""
        yield self.title
        yield self.issuer
        for row in [*self.fields, *self.table, self.total, _HEADER]:
            yield from row


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


def _isolated(text: str) -> str:
    """*text* between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE, unless plain ASCII.

    The plain-text ``<bdi>``: a right-to-left name cannot reorder the text
    around it in a viewer that applies the Unicode bidirectional algorithm.
    """
    return text if text.isascii() else f"\u2068{text}\u2069"


def _text(content: _Content) -> bytes:
    rows = [_isolated(content.issuer), _isolated(content.title), ""]
    rows += [
        f"{label + ':' if label else '':<16}{_isolated(value)}" for label, value in content.fields
    ]
    rows.append("")
    table = [_HEADER, *content.table]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        rows.append(
            "  ".join(
                _isolated(cell.ljust(width)) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    rows += ["", f"{content.total[0]}: {content.total[1]}", ""]
    return "\n".join(rows).encode()


def _html(content: _Content) -> bytes:
    def text(value: str) -> str:
        # <bdi>: a right-to-left name neither reorders the text around it nor is reordered.
        return f"<bdi>{html.escape(value)}</bdi>"

    fields = "".join(f"<tr><th>{text(k)}</th><td>{text(v)}</td></tr>" for k, v in content.fields)
    head = "".join(f"<th>{text(h)}</th>" for h in _HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{text(cell)}</td>" for cell in row) + "</tr>"
        for row in content.table
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(content.title)}</title></head><body>"
        f"<p>{text(content.issuer)}</p><h1>{text(content.title)}</h1>"
        f"<table>{fields}</table>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<p><strong>{html.escape(': '.join(content.total))}</strong></p>"
        "</body></html>\n"
    )
    return page.encode()


_FONT = "DejaVuSans"
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
_FALLBACK_FONT = "Unifont"
_FALLBACK_FONT_FILE = "unifont.otf"


def _ttf_fonts(pdf: FPDF) -> list[TTFFont]:
    """The fonts added to *pdf* (all TrueType or OpenType: no core fonts are used)."""
    from fpdf.fonts import TTFFont

    return [font for font in pdf.fonts.values() if isinstance(font, TTFFont)]


def _close_fonts(pdf: FPDF) -> None:
    for font in _ttf_fonts(pdf):
        font.close()


def _pdf(content: _Content, created: datetime) -> bytes:
    try:
        from fpdf import FPDF
    except ImportError as error:  # pragma: no cover - exercised without the extra only
        raise ImportError(
            f"PDF documents need fpdf2 and uharfbuzz: {install_hint('pdf')}"
            " (or choose DocumentFormat.HTML or TEXT)"
        ) from error
    pdf = FPDF()
    pdf.set_creation_date(created)
    pdf.set_title(content.title)
    pdf.set_author(content.issuer)
    with contextlib.ExitStack() as files:
        # fpdf2 reads fonts lazily and never closes their files.
        files.callback(_close_fonts, pdf)
        # DejaVu Sans prints most alphabets. Unifont has every character of the Basic
        # Multilingual Plane (CJK, Hangul, Indic, Thai, ...): it is loaded only for a
        # document that needs it, as it takes a good part of a second to read.
        for style, name in _FONT_FILES.items():
            pdf.add_font(_FONT, style, files.enter_context(resources.as_file(_FONTS / name)))
        used = {ord(char) for text in content.texts() for char in text}
        if any(code not in font.cmap for font in _ttf_fonts(pdf) for code in used):
            fallback = files.enter_context(resources.as_file(_FONTS / _FALLBACK_FONT_FILE))
            pdf.add_font(_FALLBACK_FONT, "", fallback)
            pdf.set_fallback_fonts([_FALLBACK_FONT], exact_match=False)
        # HarfBuzz (uharfbuzz): right-to-left runs in visual order, Arabic letters
        # joined, Indic vowel signs and conjuncts placed.
        pdf.set_text_shaping(True)
        _layout(pdf, content)
        return bytes(pdf.output())


def _layout(pdf: FPDF, content: _Content) -> None:
    """Lay the document out on A4 pages; every text wraps within the margins."""

    def paragraph(height: float, text: str, *, align: str = "L") -> None:
        pdf.multi_cell(0, height, text, align=align, new_x="LMARGIN", new_y="NEXT")

    pdf.add_page()
    pdf.set_font(_FONT, size=10)
    paragraph(6, content.issuer)
    pdf.set_font(_FONT, style="B", size=16)
    paragraph(9, content.title)
    pdf.ln(2)
    pdf.set_font(_FONT, size=10)
    for label, value in content.fields:
        pdf.cell(40, 6, label)
        paragraph(6, value)
    pdf.ln(4)
    with pdf.table(
        col_widths=(85, 25, 40, 40),
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
        borders_layout="HORIZONTAL_LINES",
        line_height=6,
    ) as table:
        for row in [_HEADER, *content.table]:
            table.row(row)
    pdf.ln(4)
    pdf.set_font(_FONT, style="B", size=12)
    paragraph(8, f"{content.total[0]}: {content.total[1]}", align="R")


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
