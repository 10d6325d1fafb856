"""The usage report's HTML page, read as HTML: figures, self-containment, hostile names.

The same pages are opened in a real browser in ``test_pages_in_browser.py``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from markupsafe import escape

from matchusage import (
    BillingCycle,
    Match,
    Organization,
    OrganizationMatches,
    Program,
    UsageReport,
    User,
    export_csv,
    render_usage_html,
    usage_report,
)
from matchusage.__main__ import main
from matchusage._cli._example import EXAMPLE_NOW, example_repository
from matchusage._html._chart import axis
from matchusage._text import printable as clean
from matchusage.exceptions import InvalidRecordError
from matchusage.memory import InMemorySnapshotStore
from matchusage.testing import strategies as mst

from ._billed_example import close_example_periods

UTC = timezone.utc
CYCLE = BillingCycle.monthly(datetime(2024, 1, 1, tzinfo=UTC))
NOW = datetime(2024, 4, 10, tzinfo=UTC)


class Page(HTMLParser):
    """The parts of a page the tests read: elements, attributes, text per element id."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str, **wanted: str) -> list[dict[str, str | None]]:
        return [
            attributes
            for name, attributes in self.tags
            if name == tag
            and all(attributes.get(k.replace("_", "-")) == v for k, v in wanted.items())
        ]


def example_page(
    users: Mapping[str, User] | None = None, export_href: str | None = None
) -> tuple[str, UsageReport]:
    repository = example_repository()
    organization = repository.organizations()[0]
    store = InMemorySnapshotStore()
    close_example_periods(store)
    report = usage_report(
        OrganizationMatches(repository, organization.id),
        organization.cycle,
        now=EXAMPLE_NOW,
        snapshots=store,
    )
    html = render_usage_html(
        report,
        organization=organization,
        programs=repository.programs(organization.id),
        users=users,
        export_href=export_href,
    )
    return html, report


def test_the_chart_has_a_bar_per_figure_and_a_text_alternative() -> None:
    html, report = example_page()
    page = Page(html)
    (svg,) = page.all("svg")
    assert "img" == svg["role"]
    assert "chart-title chart-desc" == svg["aria-labelledby"]
    live = [int(str(r["data-value"])) for r in page.all("rect", data_kind="live")]
    billed = [int(str(r["data-value"])) for r in page.all("rect", data_kind="billed")]
    assert [u.count for u in report.periods] == live
    assert [u.billed_count for u in report.periods if u.billed_count is not None] == billed
    description = re.search(r'<desc id="chart-desc">(.*?)</desc>', html, re.DOTALL)
    assert description is not None
    for usage in report.periods:
        assert f"{usage.count} active" in description.group(1)


def test_the_page_is_self_contained() -> None:
    html, _ = example_page()
    page = Page(html)
    assert [] == page.all("script") + page.all("link") + page.all("img") + page.all("iframe")
    assert not [a for _, a in page.tags if a.get("src")]
    hrefs = [str(a["href"]) for a in page.all("a")]
    assert hrefs
    assert all(h.startswith("data:text/csv") for h in hrefs)
    assert "url(http" not in html
    assert "@import" not in html


def test_the_embedded_export_is_the_report_export() -> None:
    repository = example_repository()
    users = repository.users([f"u{n:03d}" for n in range(1, 301)])
    html, report = example_page(users=users)
    (link,) = Page(html).all("a", id="export")
    expected = io.StringIO(newline="")
    export_csv(report, expected, users=users)
    assert expected.getvalue() == unquote(str(link["href"]).split(",", 1)[1])
    assert str(link["download"]).startswith("active-users-northwind-2026-05-15-")


def test_an_export_href_from_the_app() -> None:
    html, _ = example_page(export_href="/billing/export.csv?from=2026-05")
    (link,) = Page(html).all("a", id="export")
    assert "/billing/export.csv?from=2026-05" == link["href"]


@pytest.mark.parametrize(
    "href", ["javascript:alert(1)", "JaVa\tScRiPt:alert(1)", "data:text/html,<b>x</b>", ""]
)
def test_an_unsafe_export_href_is_refused(href: str) -> None:
    with pytest.raises(InvalidRecordError, match="export_href"):
        example_page(export_href=href)


def test_a_report_without_periods_or_programs() -> None:
    report = usage_report([], CYCLE, now=NOW, periods=0)
    page = Page(render_usage_html(report))
    assert [] == page.all("svg") + page.all("a")
    assert "No closed period yet." in "".join(page.text)


def test_not_a_report_is_refused() -> None:
    with pytest.raises(InvalidRecordError, match="a UsageReport"):
        render_usage_html("report")  # type: ignore[arg-type]


@settings(max_examples=60)
@given(mst.hostile_markup(), mst.hostile_markup())
def test_hostile_names_are_shown_as_text(organization_name: str, program_name: str) -> None:
    """Markup stays text, controls and bidi overrides are gone, names are isolated."""
    organization = Organization("acme", organization_name, "UTC", CYCLE)
    matches = [Match("m1", "p1", {"ann", "bob"}, datetime(2024, 2, 1, tzinfo=UTC))]
    report = usage_report(matches, CYCLE, now=NOW, periods=2)
    html = render_usage_html(
        report, organization=organization, programs=[Program("p1", "acme", program_name)]
    )
    page = Page(html)
    assert [] == page.all("script") + page.all("img")
    assert not [a for _, a in page.tags if any(k.startswith("on") for k in a)]
    text = "".join(page.text)
    assert clean(organization_name) in text
    assert clean(program_name) in text
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", html)
    html.encode("utf-8")  # no lone surrogate left
    assert f"<bdi>{escape(clean(program_name))}</bdi>" in html


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, (1, 4)),
        (3, (1, 4)),
        (5, (1, 5)),
        (9, (2, 5)),
        (199, (50, 4)),
        (201, (50, 5)),
        (1001, (500, 4)),
        (40_000, (10_000, 4)),
    ],
)
def test_the_axis_is_round_and_just_above_the_largest_value(
    value: int, expected: tuple[int, int]
) -> None:
    step, count = axis(value)
    assert expected == (step, count)
    assert step * count >= value


def test_clean_keeps_letters_and_drops_controls() -> None:
    assert "a b c d" == clean("a\tb\nc\x00\u202e d")
    assert "עברית Ann" == clean("עברית\u2067 Ann\u2069")


def test_cli_report_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "usage.html"
    assert 0 == main(["demo", "--html", str(target)], out=io.StringIO())
    assert f"report page written to {target}" in capsys.readouterr().err
    page = Page(target.read_text(encoding="utf-8"))
    assert 6 == len(page.all("rect", data_kind="live"))
    rows = list(
        csv.reader(
            io.StringIO(unquote(str(page.all("a", id="export")[0]["href"]).split(",", 1)[1]))
        )
    )
    assert "User 001" in {row[3] for row in rows}
