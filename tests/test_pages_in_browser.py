"""The HTML pages in a real browser: Debian's Chromium, driven by Playwright.

Each page is loaded from a file, with every network request refused and
recorded: the figures in the DOM must be the library's, the chart must have
its text alternative, the page must not be blank on screen nor in print,
and hostile names must stay inert text. The screenshots of the documentation
(docs/assets/*.png) are taken here, from the pages these tests check.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image, ImageStat
from pypdf import PdfReader

from matchusage import (
    BillingCycle,
    Match,
    Organization,
    OrganizationMatches,
    Program,
    UsageReport,
    export_csv,
    render_usage_html,
    usage_report,
)
from matchusage._cli._example import EXAMPLE_NOW, EXAMPLE_ORGANIZATION_ID, example_repository
from matchusage.billing import BillingPortal, DocumentKind, Invoice, render_portal_html
from matchusage.memory import InMemorySnapshotStore

from ._billed_example import close_example_periods, example_portal

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

MINUS = "\u2212"  # the page writes dropped and removed users with a real minus sign
ASSETS = Path(__file__).parents[1] / "docs" / "assets"
UTC = timezone.utc
REPOSITORY = example_repository()
ORGANIZATION = REPOSITORY.organization(EXAMPLE_ORGANIZATION_ID)
PROGRAMS = REPOSITORY.programs(ORGANIZATION.id)
USERS = REPOSITORY.users([f"u{n:03d}" for n in range(1, 301)])
A4_PRINTABLE_PX = round((210 - 2 * 14) / 25.4 * 96)  # A4 less the page's 14 mm margins


def billed_report() -> UsageReport:
    store = InMemorySnapshotStore()
    close_example_periods(store)
    return usage_report(
        OrganizationMatches(REPOSITORY, ORGANIZATION.id),
        ORGANIZATION.cycle,
        now=EXAMPLE_NOW,
        snapshots=store,
    )


REPORT = billed_report()


class Opened:
    """A page loaded from a file, with the requests it tried to make."""

    def __init__(self, page: Page, requests: list[str]) -> None:
        self.page = page
        self.requests = requests

    def figure(self, row: str, name: str) -> str:
        return self.page.locator(f"{row} [data-figure='{name}']").first.inner_text().strip()


@pytest.fixture
def open_page(browser: Browser, tmp_path: Path) -> Iterator[object]:
    """Opens HTML in a fresh browser context from a file; refuses and records any request."""
    contexts = []

    def open_html(html: str, *, width: int = 1000, name: str = "page.html") -> Opened:
        context = browser.new_context(viewport={"width": width, "height": 800})
        contexts.append(context)
        requests: list[str] = []

        def refuse(route: Route) -> None:
            url = route.request.url
            if url.startswith(("file:", "data:")):
                route.continue_()
            else:
                requests.append(url)
                route.abort()

        context.route("**/*", refuse)
        page = context.new_page()
        path = tmp_path / name
        path.write_text(html, encoding="utf-8")
        page.goto(path.as_uri())
        return Opened(page, requests)

    yield open_html
    for context in contexts:
        context.close()


def not_blank(png: bytes) -> Image.Image:
    """The screenshot, checked to show something: many colours, varied pixels."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 24) or []
    assert len(colours) > 30, f"only {len(colours)} colours"
    assert max(ImageStat.Stat(image).stddev) > 20
    return image


def pdf_pages(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def usage_page(open_page: object, report: UsageReport = REPORT, **options: object) -> Opened:
    html = render_usage_html(
        report, organization=ORGANIZATION, programs=PROGRAMS, users=USERS, **options
    )  # type: ignore[arg-type]
    return open_page(html)  # type: ignore[operator, no-any-return]


# -- the usage page


def test_usage_figures_in_the_dom_are_the_reports(open_page: object) -> None:
    opened = usage_page(open_page)
    page = opened.page
    rows = page.locator("#periods tbody tr")
    assert len(REPORT.periods) == rows.count()
    for index, usage in enumerate(REPORT.periods):
        row = f"#periods tbody tr:nth-child({index + 1})"
        assert usage.period.start.isoformat() == page.locator(row).get_attribute(
            "data-period-start"
        )
        assert str(usage.count) == opened.figure(row, "live")
        billed = "not billed yet" if usage.billed_count is None else str(usage.billed_count)
        assert billed == opened.figure(row, "billed")
        assert (f"+{len(usage.new)}" if usage.new else "0") == opened.figure(row, "new")
        assert (f"{MINUS}{len(usage.dropped)}" if usage.dropped else "0") == opened.figure(
            row, "dropped"
        )
        if usage.adjustment is not None and usage.adjustment.removed:
            assert f"{MINUS}{len(usage.adjustment.removed)}" == opened.figure(row, "removed")
    bars = page.locator("svg rect[data-kind='live']")
    assert [str(u.count) for u in REPORT.periods] == [
        bars.nth(i).get_attribute("data-value") for i in range(bars.count())
    ]
    last = REPORT.periods[-1]
    for program, users in last.by_program.items():
        row = f"#program-table tr[data-program='{program}']"
        assert str(len(users)) == opened.figure(row, "active")
        assert str(len(last.attributed[program])) == opened.figure(row, "attributed")
    current = REPORT.current
    assert str(len(current.users_so_far)) == opened.figure("#current", "so-far")
    assert str(len(current.current_users)) == opened.figure("#current", "right-now")
    for program, matches in current.current_matches.items():
        row = f"#current-table tr[data-program='{program}']"
        assert str(len(matches)) == opened.figure(row, "matches")
    assert [] == opened.requests


def test_the_chart_has_its_text_alternative(open_page: object) -> None:
    page = usage_page(open_page).page
    chart = page.get_by_role("img", name=re.compile("^Active users in the last 6 closed"))
    assert 1 == chart.count()
    description = page.locator("#chart-desc").text_content() or ""
    for usage in REPORT.periods:
        assert f"{usage.count} active" in description
    billed = [u for u in REPORT.periods if u.billed_count is not None]
    assert all(f"{u.billed_count} billed" in description for u in billed)
    # The same figures, as a data table with headers, for screen readers and print.
    assert page.locator("#periods caption").is_visible()
    assert 6 == page.locator("#periods tbody th[scope='row']").count()


def test_the_usage_page_is_not_blank_and_makes_the_docs_screenshot(open_page: object) -> None:
    page = usage_page(open_page).page
    png = page.screenshot(full_page=True)
    image = not_blank(png)
    assert 1000 == image.width
    chart = page.locator("svg.chart").screenshot()
    not_blank(chart)
    ASSETS.mkdir(exist_ok=True)
    (ASSETS / "usage-page.png").write_bytes(png)


def test_the_usage_page_prints(open_page: object) -> None:
    page = usage_page(open_page).page
    pdf = page.pdf(format="A4", print_background=True)
    assert 1 <= pdf_pages(pdf) <= 3
    printed = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    for usage in REPORT.periods:
        start, end = (usage.period.start.date(), usage.period.end.date())
        billed = "not billed yet" if usage.billed_count is None else usage.billed_count
        assert re.search(rf"{start} → {end}\s+{billed}\s+{usage.count}\s", printed), start
    assert "Active users in the last 6 closed billing periods" in printed
    page.set_viewport_size({"width": A4_PRINTABLE_PX, "height": 1000})
    page.emulate_media(media="print")
    assert page.evaluate("document.documentElement.scrollWidth") <= A4_PRINTABLE_PX
    assert "none" == page.locator("section").first.evaluate("e => getComputedStyle(e).borderStyle")
    assert "avoid" == page.locator("svg.chart").evaluate("e => getComputedStyle(e).breakInside")
    not_blank(page.screenshot(full_page=True))


def test_the_export_link_downloads_the_export(open_page: object) -> None:
    page = usage_page(open_page).page
    with page.expect_download() as started:
        page.locator("#export").click()
    download = started.value
    expected = io.StringIO(newline="")
    export_csv(REPORT, expected, users=USERS)
    assert expected.getvalue() == Path(download.path()).read_bytes().decode()
    assert download.suggested_filename.startswith("active-users-northwind-")
    rows = list(csv.DictReader(io.StringIO(expected.getvalue(), newline="")))
    assert {"billed", "live"} == {row["basis"] for row in rows}


HOSTILE = "\u202eevil\u202c <script>window.pwned=1</script>\x00\x1b" + "W" * 400
HOSTILE_ORG = '"><img src=x onerror="window.pwned=1">Acme \u2067\u05e2\u05d1\u05e8\u05d9\u05ea'


@pytest.mark.parametrize("width", [1000, 360], ids=["desktop", "phone"])
def test_hostile_names_are_inert_and_wrap(open_page: object, width: int) -> None:
    cycle = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))
    organization = Organization("acme", HOSTILE_ORG, "UTC", cycle)
    matches = [Match("m1", "p1", {"ann", "bob"}, datetime(2024, 2, 1, tzinfo=UTC))]
    report = usage_report(matches, cycle, now=datetime(2024, 4, 10, tzinfo=UTC), periods=3)
    html = render_usage_html(
        report, organization=organization, programs=[Program("p1", "acme", HOSTILE)]
    )
    opened = open_page(html, width=width)  # type: ignore[operator]
    page = opened.page
    assert page.evaluate("window.pwned") is None
    assert 0 == page.locator("script, img").count()
    text = page.locator("body").inner_text()
    assert "<script>window.pwned=1</script>" in text  # shown, as text
    assert not re.search("[\x00-\x08\x1b\u202a-\u202e\u2066-\u2069]", text)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.locator("bdi", has_text="evil").count() >= 2
    assert [] == opened.requests


# -- the billing portal page


def portal() -> BillingPortal:
    return example_portal(InMemorySnapshotStore())


def app_url(invoice: Invoice, kind: DocumentKind) -> str:
    return f"https://billing.example/org/northwind/{invoice.number}.{kind.value}.pdf"


def test_portal_figures_in_the_dom_are_the_portals(open_page: object) -> None:
    data = portal()
    opened = open_page(render_portal_html(data, organization=ORGANIZATION, document_url=app_url))  # type: ignore[operator]
    page = opened.page
    assert "Team" == page.locator("[data-field='plan']").inner_text()
    assert "2026-12-15" == page.locator("[data-field='renews']").inner_text()
    assert data.renews_at.isoformat() == page.locator("[data-field='renews']").get_attribute(
        "datetime"
    )
    assert ("visa", "4242", "09/2028") == tuple(
        page.locator(f"[data-field='{f}']").inner_text() for f in ("brand", "last4", "expiry")
    )
    assert 0 == page.locator("[data-field='expired']").count()
    assert "Northwind Mentoring GmbH" == page.locator("[data-field='name']").inner_text()
    shipping = "Northwind Warehouse\nLagerweg 3\nTor 2\n28195 Bremen\nDE\nPhone +49 421 555 0100"
    assert shipping == page.locator("[data-field='shipping']").inner_text()
    rows = page.locator("#invoice-table tbody tr")
    assert [i.number for i in data.invoices] == [
        rows.nth(n).get_attribute("data-invoice") for n in range(rows.count())
    ]
    for n, invoice in enumerate(data.invoices):
        row = rows.nth(n)
        assert str(invoice.quantity) == row.locator("[data-figure='quantity']").inner_text()
        assert f"{invoice.amount:,} EUR" == row.locator("[data-figure='amount']").inner_text()
        links = row.locator("a.download")
        kinds = [links.nth(i).get_attribute("data-kind") for i in range(links.count())]
        assert [k.value for k in invoice.documents] == kinds
        assert [app_url(invoice, k) for k in invoice.documents] == [
            links.nth(i).get_attribute("href") for i in range(links.count())
        ]
    # Newest first: the open invoice of the last period, then the paid ones with receipts.
    assert ["open", "paid", "paid"] == [
        rows.nth(n).get_attribute("data-status") for n in range(rows.count())
    ]
    assert [] == opened.requests


def test_the_portal_page_is_not_blank_prints_and_makes_the_docs_screenshot(
    open_page: object,
) -> None:
    page = open_page(render_portal_html(portal(), organization=ORGANIZATION)).page  # type: ignore[operator]
    assert "invoices/INV-000003/invoice" == page.locator("a.download").first.get_attribute("href")
    png = page.screenshot(full_page=True)
    not_blank(png)
    (ASSETS / "portal-page.png").write_bytes(png)
    assert 1 <= pdf_pages(page.pdf(format="A4", print_background=True)) <= 2
