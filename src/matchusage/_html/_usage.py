"""The usage report as one self-contained HTML page: a bar chart, tables and the export."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from .._export import export_csv
from .._labels import Labels
from .._model import Organization, Program, User
from .._periods import CycleUnit
from .._report import PeriodUsage, UsageReport
from ..exceptions import InvalidRecordError
from ._chart import Column, chart
from ._environment import render, safe_href

CHART_PERIODS = 6
"""How many of the last closed periods the chart shows (the table shows them all)."""


def render_usage_html(
    report: UsageReport,
    *,
    organization: Organization | None = None,
    programs: Iterable[Program] = (),
    users: Mapping[str, User] | None = None,
    export_href: str | None = None,
) -> str:
    """The usage report as one self-contained HTML page, readable without JavaScript.

    The page shows a bar chart of the active users of the last six closed
    periods (billed and live side by side where they differ, for a report
    made with a snapshot store), a table of every closed period with its
    new and dropped users (and what was billed), the users per program of
    the last closed period, the open period's figures with the current
    active matches per program, and a link to the export of the active
    users. The chart has a text alternative (``<title>`` and ``<desc>``)
    and the table carries the same figures; the page prints on A4.

    Every text that comes from data (organization and program names) is
    escaped, stripped of control and bidi override characters, isolated
    with ``<bdi>`` and wrapped when too long for a line. The page loads
    nothing from elsewhere: styles and the chart are inline.

    Needs Jinja2: ``pip install "matchusage[html]"``.

    Args:
        report: A [`UsageReport`][matchusage.UsageReport].
        organization: The organization, for the page's title.
        programs: The organization's programs, for their names (ids otherwise).
        users: A user directory for the names and emails in the embedded export.
        export_href: Where the export link points, e.g. your app's export
            endpoint. By default the page carries the export itself, as a
            ``data:`` URI of [`export_csv`][matchusage.export_csv]'s CSV
            (it grows with the organization: link to your app for large ones).

    Returns:
        The page, as a string (write it with ``encoding="utf-8"``).

    Raises:
        matchusage.exceptions.InvalidRecordError: *report* is not a report,
            or *export_href* is not a relative, http(s) or CSV ``data:`` URL.
    """
    if not isinstance(report, UsageReport):
        raise InvalidRecordError("render_usage_html", "report", report, "a UsageReport")
    known = tuple(programs)
    periods = [u.period for u in report.periods] + [report.current.period]
    labels = Labels(report.cycle.timezone, periods, known)
    shown = report.periods[-CHART_PERIODS:]
    columns = [Column(labels.boundary(u.period.start), u.count, u.billed_count) for u in shown]
    name = None if organization is None else organization.name
    return render(
        "usage.html.j2",
        title=f"{name}: usage" if name else "Usage",
        organization=name,
        cycle=_cycle(report, labels),
        at=labels.instant(report.at),
        at_iso=report.at.isoformat(),
        zone=str(labels.zone),
        checked=report.billing_checked,
        periods=[_period_row(u, labels) for u in report.periods],
        chart_periods=shown,
        chart=chart(columns),
        chart_title=f"Active users in the last {len(shown)} closed billing periods",
        chart_desc=_chart_description(shown, labels),
        programs=_programs(report, labels),
        current=_current(report, labels),
        export=_export(report, users, export_href, organization),
    )


def _cycle(report: UsageReport, labels: Labels) -> str:
    cycle = report.cycle
    unit = "month" if cycle.unit is CycleUnit.MONTH else "week"
    length = f"1 {unit}" if cycle.every == 1 else f"{cycle.every} {unit}s"
    return f"periods of {length} from {labels.boundary(cycle.anchor)}"


def _period_row(usage: PeriodUsage, labels: Labels) -> dict[str, Any]:
    added = usage.added_since_billed or frozenset()
    removed = usage.removed_since_billed or frozenset()
    return {
        "label": labels.period(usage.period),
        "start": usage.period.start.isoformat(),
        "state": usage.billing.value,
        "live": usage.count,
        "billed": usage.billed_count,
        "changed": bool(added or removed),
        "added": len(added),
        "removed": len(removed),
        "new": len(usage.new),
        "dropped": len(usage.dropped),
    }


def _chart_description(shown: Iterable[PeriodUsage], labels: Labels) -> str:
    parts = []
    for usage in shown:
        text = f"{labels.period(usage.period)}: {usage.count} active"
        if usage.billed_count is not None:
            text += f", {usage.billed_count} billed"
        parts.append(text)
    return "Active users per billing period, oldest first. " + "; ".join(parts) + "."


def _programs(report: UsageReport, labels: Labels) -> dict[str, Any] | None:
    if not report.periods:
        return None
    last = report.periods[-1]
    rows = [
        {
            "id": key,
            "name": labels.program(key),
            "active": len(last.by_program.get(key, ())),
            "attributed": len(last.attributed.get(key, ())),
        }
        for key in labels.programs_in(last.by_program)
    ]
    return {"period": labels.period(last.period), "rows": rows, "total": last.count}


def _current(report: UsageReport, labels: Labels) -> dict[str, Any]:
    current = report.current
    users = current.current_users_by_program
    rows = [
        {
            "id": key,
            "name": labels.program(key),
            "matches": current.current_match_counts.get(key, 0),
            "users": len(users.get(key, ())),
        }
        for key in labels.programs_in(current.current_matches)
    ]
    return {
        "label": labels.period(current.period),
        "so_far": len(current.users_so_far),
        "right_now": len(current.current_users),
        "matches": sum(len(m) for m in current.current_matches.values()),
        "rows": rows,
    }


def _export(
    report: UsageReport,
    users: Mapping[str, User] | None,
    href: str | None,
    organization: Organization | None,
) -> dict[str, str] | None:
    if not report.periods:
        return None
    first, last = report.periods[0].period, report.periods[-1].period
    stem = "active-users" if organization is None else f"active-users-{organization.id}"
    filename = f"{stem}-{first.start.date()}-{last.end.date()}.csv"
    note = "One row per period and user"
    if report.billing_checked:
        note += "; billed periods list the users that were billed"
    if href is None:
        out = io.StringIO(newline="")
        export_csv(report, out, users=users)
        href = "data:text/csv;charset=utf-8," + quote(out.getvalue(), safe="")
    return {
        "href": safe_href(href, "render_usage_html", "export_href"),
        "filename": filename,
        "note": note + ".",
    }
