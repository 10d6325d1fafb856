"""Command line: ``python -m matchusage`` (or the ``matchusage`` script).

Usage reports, exports, explanations and current activity of one
organization, from a data directory (``--data DIR``, see the input format)
or from the bundled example organization (``--example``, or ``demo``).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from typing import NoReturn, TextIO, TypeVar

from dateutil.parser import isoparse

from .._explain import Explanation
from .._export import export_csv, export_jsonl
from .._loading import load_directory
from .._model import Organization, _zone
from .._periods import BillingCycle, BillingPeriod, CycleUnit
from .._report import UsageReport, usage_report
from .._source import OrganizationMatches
from .._text import printable
from .._time import UTC, is_aware
from .._version import version
from ..exceptions import MatchUsageError, PeriodOutOfRangeError
from ..memory._repository import InMemoryRepository
from ._example import EXAMPLE_NOW, example_repository
from ._render import (
    Labels,
    current_json,
    explanations_json,
    is_unicode,
    report_json,
    write_active_csv,
    write_active_table,
    write_explanations_csv,
    write_explanations_table,
    write_json,
    write_report_csv,
    write_report_table,
)

T = TypeVar("T")

PROG = "matchusage"
DESCRIPTION = """\
Which users were active in each billing period? Usage reports, exports,
explanations and current activity of one organization, read from a data
directory (--data DIR, in the documented input format) or taken from the
bundled example organization (--example, or the demo command).

Errors print one line and exit with status 2. Every command has --help."""


class _UsageError(Exception):
    """A bad option value: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: error: {message} (see --help)")


def _argument(
    parse: Callable[[str], T], error: type[Exception], expected: str
) -> Callable[[str], T]:
    """An argument type: *parse*, with its *error* turned into a one-line usage error."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except error:
            raise argparse.ArgumentTypeError(f"{text!r} is not {expected}") from None

    return convert


_wall_or_instant = _argument(isoparse, ValueError, "an ISO 8601 date or date-time, e.g. 2024-01-15")
_timezone = _argument(_zone, MatchUsageError, "an IANA time zone name, e.g. Europe/Paris")
_iso_instant = _argument(
    isoparse, ValueError, "an ISO 8601 instant, e.g. 2026-03-01T09:00:00+01:00"
)


def _instant(text: str) -> datetime:
    """An ISO 8601 instant with an offset (``Z`` for UTC)."""
    value = _iso_instant(text)
    if not is_aware(value):
        raise argparse.ArgumentTypeError(
            f"{text!r} has no UTC offset; add one, as in 2026-03-01T09:00:00+01:00 "
            "(times are never guessed)"
        )
    return value


def _integer(minimum: int, meaning: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {meaning} integer")
        return value

    return parse


def _parents() -> dict[str, _Parser]:
    data = _Parser(add_help=False)
    group = data.add_argument_group("data (one of)")
    sources = group.add_mutually_exclusive_group(required=True)
    sources.add_argument(
        "--data",
        metavar="DIR",
        help="directory with organization.json, programs, matches and users files",
    )
    sources.add_argument(
        "--example", action="store_true", help="use the bundled example organization"
    )

    cycle = _Parser(add_help=False)
    group = cycle.add_argument_group("billing cycle (default: the organization's settings)")
    group.add_argument(
        "--anchor",
        type=_wall_or_instant,
        metavar="WHEN",
        help="start of one billing period: a date or date-time; without an offset it is "
        "a wall-clock time in the cycle's time zone",
    )
    group.add_argument(
        "--months",
        type=_integer(1, "positive"),
        metavar="N",
        help="months per billing period (3: quarterly)",
    )
    group.add_argument(
        "--timezone",
        type=_timezone,
        metavar="ZONE",
        help="IANA time zone the periods follow, e.g. Europe/Paris; the anchor keeps its "
        "wall-clock date and time",
    )

    when = _Parser(add_help=False)
    group = when.add_argument_group("time")
    group.add_argument(
        "--now",
        type=_instant,
        metavar="INSTANT",
        help="the instant of the figures, ISO 8601 with an offset (default: the current "
        "time; with --example, the example's own 2026-11-20T09:30:00+01:00)",
    )
    periods = _Parser(add_help=False)
    periods.add_argument(
        "--periods",
        type=_integer(1, "positive"),
        default=6,
        metavar="N",
        help="closed periods to show (default: 6)",
    )
    return {"data": data, "cycle": cycle, "now": when, "periods": periods}


_TEXT_FORMATS = ("table", "json", "csv")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the command line (every subcommand has ``--help``)."""
    parser = _Parser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version()}", help="print the version"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = _parents()
    periodic = [p["data"], p["cycle"], p["now"], p["periods"]]

    formats: list[tuple[argparse.ArgumentParser, Sequence[str]]] = []

    def command(
        name: str, parents: list[_Parser], choices: Sequence[str], help: str, description: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=parents, help=help, description=description)
        formats.append((sub, choices))
        return sub

    command(
        "report",
        periodic,
        _TEXT_FORMATS,
        help="active users of the last closed billing periods, and the open one",
        description="Active users of the last closed billing periods (with a bar each), "
        "per program, and the open period's figures.",
    )
    export = command(
        "export",
        periodic,
        ("csv", "json", "jsonl"),  # json and jsonl both mean JSON Lines
        help="the list of active users of each period, as CSV or JSON Lines",
        description="The active users of the last closed periods (or of one period, the "
        "open one up to --now), one row per period and user, as CSV (spreadsheet-safe) or "
        "JSON Lines.",
    )
    export.add_argument(
        "--period",
        type=_instant,
        metavar="INSTANT",
        help="export only the period containing this instant (the open one: its users "
        "active so far, up to --now)",
    )
    export.add_argument(
        "-o", "--output", metavar="FILE", help="file to write (default: standard output)"
    )
    explain_cmd = command(
        "explain",
        periodic,
        _TEXT_FORMATS,
        help="which matches made a user active in each period",
        description="Why was this user billed? Every match of the user overlapping each of "
        "the last closed periods (or one period), clipped to the period.",
    )
    explain_cmd.add_argument("user_id", metavar="USER_ID", help="the user to explain")
    explain_cmd.add_argument(
        "--period",
        type=_instant,
        metavar="INSTANT",
        help="explain only the period containing this instant (the open one up to --now)",
    )
    command(
        "active",
        [p["data"], p["now"]],
        _TEXT_FORMATS,
        help="current active matches and users per program",
        description="The matches current at --now and their users, per program.",
    )
    command(
        "demo",
        [p["cycle"], p["now"], p["periods"]],
        _TEXT_FORMATS,
        help="the report on the bundled example organization",
        description="The usage report of the bundled example organization (the same as "
        "'report --example').",
    )
    # Last, so that --format comes after each command's own options in --help.
    for sub, choices in formats:
        sub.add_argument(
            "--format",
            choices=choices,
            default=choices[0],
            help=f"output format (default: {choices[0]})",
        )
    return parser


class _Context:
    """The organization, its data and the cycle and instant the command works with."""

    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        # Bars and arrows fall back to ASCII where the output cannot encode them.
        self.ascii_only = not is_unicode(out)
        example = args.command == "demo" or getattr(args, "example", False)
        self.repository: InMemoryRepository = (
            example_repository() if example else load_directory(args.data)
        )
        self.organization: Organization = self.repository.organizations()[0]
        self.now: datetime = args.now or (EXAMPLE_NOW if example else datetime.now(UTC))
        self.cycle = _cycle(self.organization, args)
        self.source = OrganizationMatches(self.repository, self.organization.id)
        self.programs = self.repository.programs(self.organization.id)

    def labels(self, report: UsageReport) -> Labels:
        periods = [u.period for u in report.periods] + [report.current.period]
        return Labels(self.cycle.timezone, periods, self.programs, ascii_only=self.ascii_only)

    def report(self, periods: int) -> UsageReport:
        return usage_report(self.source, self.cycle, now=self.now, periods=periods)


def _cycle(organization: Organization, args: argparse.Namespace) -> BillingCycle:
    cycle = organization.cycle
    anchor_arg = getattr(args, "anchor", None)
    months = getattr(args, "months", None)
    zone_arg: tzinfo | None = getattr(args, "timezone", None)
    if anchor_arg is None and months is None and zone_arg is None:
        return cycle
    zone = cycle.timezone if zone_arg is None else zone_arg
    if anchor_arg is None:
        anchor = cycle.anchor.replace(tzinfo=zone)
    elif is_aware(anchor_arg):
        anchor = anchor_arg.astimezone(zone)
    else:
        anchor = anchor_arg.replace(tzinfo=zone)
    if months is not None:
        return BillingCycle.monthly(anchor, every=months)
    return BillingCycle(anchor, cycle.unit, cycle.every)


def _title(context: _Context) -> str:
    cycle = context.cycle
    unit = "month" if cycle.unit is CycleUnit.MONTH else "week"
    length = f"1 {unit}" if cycle.every == 1 else f"{cycle.every} {unit}s"
    name = printable(context.organization.name)
    return f"{name}: billing periods of {length} from {cycle.anchor.isoformat()}"


def _report(args: argparse.Namespace, out: TextIO) -> int:
    context = _Context(args, out)
    report = context.report(args.periods)
    labels = context.labels(report)
    if args.format == "json":
        write_json(out, report_json(report, labels, context.organization.id))
    elif args.format == "csv":
        write_report_csv(out, report, labels)
    else:
        write_report_table(out, report, _title(context), labels)
    return 0


def _active(args: argparse.Namespace, out: TextIO) -> int:
    context = _Context(args, out)
    report = context.report(0)
    labels = context.labels(report)
    if args.format == "json":
        write_json(out, current_json(report.current, labels))
    elif args.format == "csv":
        write_active_csv(out, report.current, labels)
    else:
        print(printable(context.organization.name), file=out)
        write_active_table(out, report.current, labels)
    return 0


def _one_period(context: _Context, instant: datetime) -> tuple[UsageReport, BillingPeriod]:
    """The report that holds the period containing *instant*: closed, or open up to --now."""
    period = context.cycle.period_containing(instant)
    if period.start > context.now:
        raise _UsageError(f"the period {period} has not started at {context.now.isoformat()}")
    if period.end > context.now:
        return context.report(0), period
    return usage_report(context.source, context.cycle, now=period.end, periods=1), period


def _export(args: argparse.Namespace, out: TextIO) -> int:
    context = _Context(args, out)
    period: BillingPeriod | None = None
    if args.period is not None:
        report, period = _one_period(context, args.period)
        is_open = period == report.current.period
        exported = [report.current.users_so_far if is_open else report.usage(period).users]
    else:
        report = context.report(args.periods)
        exported = [u.users for u in report.periods]
    users = context.repository.users(sorted(frozenset().union(*exported)))
    write = export_csv if args.format == "csv" else export_jsonl
    if args.output is None:
        write(report, out, period=period, users=users)
        return 0
    with open(args.output, "w", encoding="utf-8", newline="") as file:
        count = write(report, file, period=period, users=users)
    print(f"{count} rows written to {args.output}", file=sys.stderr)
    return 0


def _explain(args: argparse.Namespace, out: TextIO) -> int:
    context = _Context(args, out)
    user_id: str = args.user_id
    found: list[Explanation]
    if args.period is None:
        report = context.report(args.periods)
        found = [report.explain(user_id, u.period) for u in report.periods]
    else:
        report, period = _one_period(context, args.period)
        found = [report.explain(user_id, period)]
    user = context.repository.users([user_id]).get(user_id)
    if user is None and not any(found):
        raise _UsageError(
            f"unknown user {user_id!r}: not in the users file and in no match of these periods"
        )
    periods = [e.period for e in found]
    labels = Labels(
        context.cycle.timezone, periods, context.programs, ascii_only=context.ascii_only
    )
    if args.format == "json":
        write_json(out, explanations_json(found, labels, user))
    elif args.format == "csv":
        write_explanations_csv(out, found, labels)
    else:
        write_explanations_table(out, found, labels, user)
    return 0


_COMMANDS = {
    "report": _report,
    "demo": _report,
    "export": _export,
    "explain": _explain,
    "active": _active,
}


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line with *argv* (default: ``sys.argv[1:]``); return the exit status.

    Errors (bad options, bad input files, unknown users) print one line to
    standard error and return 2; ``--help`` returns 0.
    """
    out = sys.stdout if out is None else out
    if isinstance(out, io.TextIOWrapper) and not is_unicode(out):
        # A name in a script the console's code page lacks prints escaped, never crashes.
        out.reconfigure(errors="backslashreplace")
    try:
        args = build_parser().parse_args(argv)
        return _COMMANDS[args.command](args, out)
    except SystemExit as stop:  # --help
        return stop.code if isinstance(stop.code, int) else 0
    except (_UsageError, MatchUsageError, OSError) as error:
        if isinstance(error, BrokenPipeError):
            return 0
        message = str(error)
        if isinstance(error, PeriodOutOfRangeError):
            message += " (see --now, --periods, --anchor and --months)"
        if not message.startswith(PROG):
            message = f"{PROG}: error: {message}"
        print(message, file=sys.stderr)
        return 2
