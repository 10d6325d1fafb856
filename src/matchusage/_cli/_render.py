"""Rendering reports for the command line: terminal tables with bars, JSON and CSV."""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any, TextIO

from .._explain import Explanation
from .._export import neutralise
from .._labels import Labels
from .._model import Match, User
from .._report import CurrentUsage, PeriodUsage, UsageReport
from .._text import printable

BAR_WIDTH = 40
_EIGHTHS = "▏▎▍▌▋▊▉"
_TOTAL = "total (each person once)"


def bar(value: int, maximum: int, width: int = BAR_WIDTH, *, ascii_only: bool = False) -> str:
    """A horizontal bar of *value* out of *maximum*, *width* cells long at most.

    Drawn with Unicode block characters in eighths of a cell (``#`` when
    *ascii_only*); a positive value always shows at least a sliver.
    """
    if maximum <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value * width * 8 / maximum))
    full, part = divmod(eighths, 8)
    if ascii_only:
        return "#" * max(1, round(eighths / 8))
    return "█" * full + (_EIGHTHS[part - 1] if part else "")


def is_unicode(out: TextIO) -> bool:
    """Whether *out* encodes all of Unicode (not so on cp1252 or ASCII streams)."""
    encoding = getattr(out, "encoding", None) or "utf-8"
    try:
        return codecs.lookup(encoding).name.startswith("utf")
    except LookupError:
        return False


def _signed(sign: str, count: int) -> str:
    return f"{sign}{count}" if count else "0"


def _billed(usage: PeriodUsage) -> str:
    return "-" if usage.billed_count is None else str(usage.billed_count)


def _since_billed(usage: PeriodUsage) -> str:
    """What changed since the period was billed, or that it was not billed."""
    added, removed = usage.added_since_billed, usage.removed_since_billed
    if added is None or removed is None:
        return "(not billed yet)"
    if not (added or removed):
        return "(as billed)"
    return f"(since billed: {_signed('+', len(added))} added, {_signed('-', len(removed))} removed)"


_BILLING = ("status", "billed_users", "added_since_billed", "removed_since_billed", "difference")


def _billing_json(usage: PeriodUsage) -> dict[str, Any]:
    """What was billed for a period, keyed by `_BILLING` (``None``s when it was not billed)."""
    added, removed = usage.added_since_billed, usage.removed_since_billed
    if added is None or removed is None:
        return dict.fromkeys(_BILLING) | {"status": usage.billing.value}
    figures = (usage.billed_count, len(added), len(removed), len(added) - len(removed))
    return dict(zip(_BILLING, (usage.billing.value, *figures), strict=True))


def _iso(value: datetime | None, zone: tzinfo) -> str | None:
    return None if value is None else value.astimezone(zone).isoformat()


def write_report_table(out: TextIO, report: UsageReport, title: str, labels: Labels) -> None:
    """The report as the terminal table: a bar per closed period, then the open period."""
    zone = labels.zone
    print(title, file=out)
    print(f"Figures at {report.at.astimezone(zone).isoformat()} ({zone})", file=out)
    print(file=out)
    count = len(report.periods)
    print(f"Active users in the last {count} closed billing periods", file=out)
    if report.periods:
        width = max(len(labels.period(u.period)) for u in report.periods)
        top = max(max(u.count, u.billed_count or 0) for u in report.periods)
        billed = f"  {'billed':>6}" if report.billing_checked else ""
        print(f"  {'period':<{width}}{billed}  {'active':>6}  {'new':>5}  {'dropped':>7}", file=out)
        for usage in report.periods:
            billed = f"  {_billed(usage):>6}" if report.billing_checked else ""
            note = f"  {_since_billed(usage)}" if report.billing_checked else ""
            print(
                f"  {labels.period(usage.period):<{width}}{billed}  {usage.count:>6}"
                f"  {_signed('+', len(usage.new)):>5}  {_signed('-', len(usage.dropped)):>7}"
                f"  {bar(usage.count, top, ascii_only=labels.ascii_only)}{note}",
                file=out,
            )
        last = report.periods[-1]
        print(file=out)
        print(f"By program, {labels.period(last.period)}", file=out)
        rows = [
            (
                labels.program(key),
                len(last.by_program.get(key, ())),
                len(last.attributed.get(key, ())),
            )
            for key in labels.programs_in(last.by_program)
        ]
        name_width = max([len(_TOTAL)] + [len(row[0]) for row in rows])
        print(f"  {'program':<{name_width}}  {'active':>6}  {'attributed':>10}", file=out)
        for name, active, attributed in rows:
            print(f"  {name:<{name_width}}  {active:>6}  {attributed:>10}", file=out)
        print(f"  {_TOTAL:<{name_width}}  {last.count:>6}  {last.count:>10}", file=out)
    print(file=out)
    write_current_table(out, report.current, labels)


def write_current_table(out: TextIO, current: CurrentUsage, labels: Labels) -> None:
    """The open period's three figures."""
    print(f"Current period {labels.period(current.period)} (open)", file=out)
    print(f"  active so far         {len(current.users_so_far):>6}", file=out)
    print(f"  in a match right now  {len(current.current_users):>6}", file=out)
    write_active_table(out, current, labels, indent="  ")


def write_active_table(
    out: TextIO, current: CurrentUsage, labels: Labels, indent: str = ""
) -> None:
    """Current active matches and users per program."""
    users = current.current_users_by_program
    keys = labels.programs_in(current.current_matches)
    width = max([len("program"), len(_TOTAL)] + [len(labels.program(k)) for k in keys])
    print(f"{indent}Current active matches at {labels.instant(current.at)}", file=out)
    print(f"{indent}  {'program':<{width}}  {'matches':>7}  {'users':>5}", file=out)
    for key in keys:
        matches = current.current_match_counts.get(key, 0)
        people = len(users.get(key, ()))
        print(f"{indent}  {labels.program(key):<{width}}  {matches:>7}  {people:>5}", file=out)
    total = sum(current.current_match_counts.values())
    print(f"{indent}  {_TOTAL:<{width}}  {total:>7}  {len(current.current_users):>5}", file=out)


def _counts(mapping: Mapping[str, Collection[Any]], keys: Sequence[str]) -> dict[str, int]:
    return {key: len(mapping.get(key, ())) for key in keys}


def current_json(current: CurrentUsage, labels: Labels) -> dict[str, Any]:
    keys = labels.programs_in(current.current_matches)
    return {
        "period_start": _iso(current.period.start, labels.zone),
        "period_end": _iso(current.period.end, labels.zone),
        "at": _iso(current.at, labels.zone),
        "active_so_far": len(current.users_so_far),
        "current_active_users": len(current.current_users),
        "current_active_matches": sum(current.current_match_counts.values()),
        "programs": {
            key: {
                "current_active_matches": current.current_match_counts.get(key, 0),
                "current_active_users": len(current.current_users_by_program.get(key, ())),
            }
            for key in keys
        },
    }


def report_json(report: UsageReport, labels: Labels, organization: str) -> dict[str, Any]:
    """The report as a JSON-ready dict: counts per period, per program, and the open period."""
    periods = []
    for usage in report.periods:
        keys = labels.programs_in(usage.by_program)
        billing = {"billing": _billing_json(usage)} if report.billing_checked else {}
        periods.append(
            {
                "period_start": _iso(usage.period.start, labels.zone),
                "period_end": _iso(usage.period.end, labels.zone),
                "active_users": usage.count,
                "new_users": len(usage.new),
                "dropped_users": len(usage.dropped),
                "programs": {
                    key: {
                        "active_users": len(usage.by_program.get(key, ())),
                        "attributed_users": len(usage.attributed.get(key, ())),
                    }
                    for key in keys
                },
                **billing,
            }
        )
    cycle = report.cycle
    return {
        "organization": organization,
        "cycle": {
            "anchor": cycle.anchor.isoformat(),
            "unit": cycle.unit.value,
            "every": cycle.every,
            "timezone": str(labels.zone),
        },
        "at": _iso(report.at, labels.zone),
        "periods": periods,
        "current": current_json(report.current, labels),
    }


def write_json(out: TextIO, document: object) -> None:
    # \u escapes keep any name intact on a stream that cannot encode it.
    json.dump(document, out, indent=2, ensure_ascii=not is_unicode(out))
    out.write("\n")


def write_report_csv(out: TextIO, report: UsageReport, labels: Labels) -> None:
    """One row per closed period; per-program columns ``<program>:active``, ``:attributed``."""
    keys = labels.programs_in(*(u.by_program for u in report.periods))
    writer = csv.writer(out, lineterminator="\n")
    header = ["period_start", "period_end", "active_users", "new_users", "dropped_users"]
    header += [f"{key}:{kind}" for key in keys for kind in ("active", "attributed")]
    if report.billing_checked:
        header += [f"billing:{key}" for key in _BILLING]
    writer.writerow([neutralise(cell) for cell in header])
    for usage in report.periods:
        active = _counts(usage.by_program, keys)
        attributed = _counts(usage.attributed, keys)
        row: list[object] = [
            _iso(usage.period.start, labels.zone),
            _iso(usage.period.end, labels.zone),
            usage.count,
            len(usage.new),
            len(usage.dropped),
        ]
        row += [n for key in keys for n in (active[key], attributed[key])]
        if report.billing_checked:
            row += _billing_json(usage).values()
        writer.writerow(row)


def write_active_csv(out: TextIO, current: CurrentUsage, labels: Labels) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["at", "program_id", "current_active_matches", "current_active_users"])
    users = current.current_users_by_program
    for key in labels.programs_in(current.current_matches):
        writer.writerow(
            [
                _iso(current.at, labels.zone),
                neutralise(key),
                current.current_match_counts.get(key, 0),
                len(users.get(key, ())),
            ]
        )


def _role(match: Match, user_id: str) -> str | None:
    role = match.role_of(user_id)
    return None if role is None else role.value


def _overlap_rows(found: Explanation, zone: tzinfo) -> list[dict[str, Any]]:
    return [
        {
            "match_id": o.match.id,
            "program_id": o.program_id,
            "role": _role(o.match, found.user_id),
            "match_started_at": _iso(o.match.started_at, zone),
            "match_ended_at": _iso(o.match.ended_at, zone),
            "overlap_start": _iso(o.start, zone),
            "overlap_end": _iso(o.end, zone),
        }
        for o in found.overlaps
    ]


def explanations_json(
    found: Sequence[Explanation], labels: Labels, user: User | None
) -> dict[str, Any]:
    return {
        "user_id": found[0].user_id if found else None,
        "name": None if user is None else user.name,
        "email": None if user is None else user.email,
        "periods": [
            {
                "period_start": _iso(e.period.start, labels.zone),
                "period_end": _iso(e.period.end, labels.zone),
                "active": e.is_active,
                "matches": _overlap_rows(e, labels.zone),
            }
            for e in found
        ],
    }


def write_explanations_csv(out: TextIO, found: Sequence[Explanation], labels: Labels) -> None:
    """One row per period and match (a period with no match has one row with empty match cells)."""
    writer = csv.writer(out, lineterminator="\n")
    columns = [
        "match_id",
        "program_id",
        "role",
        "match_started_at",
        "match_ended_at",
        "overlap_start",
        "overlap_end",
    ]
    writer.writerow(["period_start", "period_end", "user_id", "active", *columns])
    for e in found:
        head = [_iso(e.period.start, labels.zone), _iso(e.period.end, labels.zone)]
        head += [neutralise(e.user_id), "yes" if e.is_active else "no"]
        rows = _overlap_rows(e, labels.zone) or [dict.fromkeys(columns)]
        for row in rows:
            writer.writerow(head + [neutralise(row[c] or "") for c in columns])


def write_explanations_table(
    out: TextIO, found: Sequence[Explanation], labels: Labels, user: User | None
) -> None:
    user_id = found[0].user_id if found else "?"
    who = user_id if user is None or not user.name else f"{user_id} ({user.name})"
    who = printable(who)
    print(f"Why was {who} billed?", file=out)
    for e in found:
        print(file=out)
        state = f"active: {len(e)} match{'es' if len(e) != 1 else ''}" if e else "not active"
        print(f"{labels.period(e.period)}  {state}", file=out)
        for o in e.overlaps:
            role = _role(o.match, e.user_id)
            ends = "ongoing" if o.match.ended_at is None else labels.instant(o.match.ended_at)
            until = "ongoing" if o.end is None else labels.instant(o.end)
            print(
                f"  {printable(o.match.id)}  {labels.program(o.program_id)}"
                f"{'' if role is None else f' ({role})'}",
                file=out,
            )
            arrow = labels.arrow
            print(f"    match      {labels.instant(o.match.started_at)} {arrow} {ends}", file=out)
            print(f"    in period  {labels.instant(o.start)} {arrow} {until}", file=out)
