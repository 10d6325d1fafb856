"""Invoice and receipt documents: every name prints whole, in any script, and safely."""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from decimal import Decimal
from importlib import resources

import pytest

from matchusage import BillingPeriod
from matchusage.billing import Address, BillingDetails, DocumentFormat, DocumentKind, Plan
from matchusage.memory import InMemoryBillingProvider

NOW = datetime(2024, 2, 3, 8, 0, tzinfo=timezone.utc)
JANUARY = BillingPeriod(
    datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 2, 1, tzinfo=timezone.utc)
)
LONG_NAME = (
    "Internationale Gesellschaft für berufliche Mentoring-Programme und nachhaltige "
    "Personalentwicklung in mittelständischen Unternehmen mbH & Co. KG"
)
LONG_STREET = "Straße des 17. Juni 135, Hinterhaus, Aufgang C, 4. Obergeschoss links, Zimmer 4.117"
HEBREW = "\u05e2\u05d1\u05e8\u05d9\u05ea"
SCRIPTS = {
    "latin": "Łódź Ærøskøbing Çağlayan",
    "greek": "Ελληνικά",
    "cyrillic": "Кириллица",
    "hebrew": HEBREW,
    "arabic": "العربية",
    "devanagari": "हिन्दी",
    "thai": "ภาษาไทย",
    "chinese": "北京市朝阳区",
    "japanese": "株式会社カタカナ",
    "korean": "한국어",
}


def document(details: BillingDetails, fmt: DocumentFormat, issuer: str = "matchusage") -> bytes:
    provider = InMemoryBillingProvider(clock=lambda: NOW, document_format=fmt, issuer=issuer)
    provider.subscribe("o", Plan("Team", Decimal("4.50"), "EUR"), billing_details=details)
    provider.report_usage("o", JANUARY, 3, idempotency_key="k")
    return provider.invoice_document("o", "INV-000001", DocumentKind.INVOICE).content


def pdf_lines(content: bytes) -> list[str]:
    from pypdf import PdfReader

    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    return [line for line in text.splitlines() if line.strip()]


def squeezed(text: str) -> str:
    # pypdf reads a NUL before each character of a two-byte (CID) font: not in the PDF's text.
    return re.sub(r"[\s\x00]+", "", text)


def test_long_names_and_address_lines_wrap_within_the_page() -> None:
    from fpdf import FPDF  # the test extra installs the pdf extra: never skipped

    details = BillingDetails(
        LONG_NAME, "billing@example.com", Address(LONG_STREET, "Berlin", "10623", "DE")
    )
    lines = pdf_lines(document(details, DocumentFormat.PDF))

    # The label column, then the value; both in DejaVu Sans 10 pt, as printed.
    measure = FPDF()
    measure.add_font("DejaVuSans", "", str(resources.files("matchusage.billing") / FONT))
    measure.set_font("DejaVuSans", size=10)
    printable_width = measure.w - measure.l_margin - measure.r_margin
    widths = [measure.get_string_width(line) for line in lines]
    measure.fonts["dejavusans"].close()  # type: ignore[union-attr]
    assert all(width <= printable_width + 1 for width in widths), lines
    assert squeezed(LONG_NAME) in squeezed("".join(lines))
    assert squeezed(LONG_STREET) in squeezed("".join(lines))


@pytest.mark.parametrize("name", list(SCRIPTS.values()), ids=list(SCRIPTS))
def test_names_in_any_script_print_in_the_pdf(name: str) -> None:
    details = BillingDetails(f"{name} GmbH", "billing@example.com", Address(name, name, "1", "DE"))

    content = document(details, DocumentFormat.PDF)

    text = squeezed("".join(pdf_lines(content)))
    assert squeezed(name) in text  # read back in logical order: shaped, in reading order
    assert "BilltoGmbH" in text or f"Billto{squeezed(name)}GmbH" in text
    assert b"?" * 3 not in content


def test_a_pdf_with_every_script_is_reproducible() -> None:
    details = BillingDetails(" ".join(SCRIPTS.values()), "billing@example.com")
    assert document(details, DocumentFormat.PDF) == document(details, DocumentFormat.PDF)


FONT = "_fonts/DejaVuSans.ttf"
# Names and addresses refuse control characters, but not direction overrides; the issuer
# is the operator's own text, taken as it is.
HOSTILE = "Acme\u202eevil Ltd"
HOSTILE_ISSUER = "Issuer\x00\x1b[2J Ltd\nsecond line"


def test_html_isolates_names_and_drops_control_characters() -> None:
    details = BillingDetails(HOSTILE, "billing@example.com", Address(HOSTILE, "Berlin", "1", "DE"))

    page = document(details, DocumentFormat.HTML, HOSTILE_ISSUER).decode()

    for character in "\u202e\x00\x1b\u2066\u2067\u2068\u2069":
        assert character not in page
    assert "<td><bdi>Acmeevil Ltd</bdi></td>" in page
    assert 2 == page.count("Acmeevil Ltd")
    assert "<p><bdi>Issuer[2J Ltd second line</bdi></p>" in page


def test_text_isolates_names_and_drops_control_characters() -> None:
    details = BillingDetails(
        HOSTILE, "billing@example.com", Address(f"{HEBREW} 5", "Berlin", "1", "DE")
    )

    text = document(details, DocumentFormat.TEXT, HOSTILE_ISSUER).decode()

    assert {"\u202e", "\x00", "\x1b"}.isdisjoint(text)
    lines = text.splitlines()
    assert "Issuer[2J Ltd second line" == lines[0]
    assert "Bill to:        Acmeevil Ltd" in lines
    assert f"                \u2068{HEBREW} 5\u2069" in lines


def test_pdf_drops_control_characters() -> None:
    details = BillingDetails(HOSTILE, "billing@example.com")

    text = "".join(pdf_lines(document(details, DocumentFormat.PDF, HOSTILE_ISSUER)))

    assert "Acmeevil Ltd" in text
    assert "Issuer[2J Ltd second line" in text
