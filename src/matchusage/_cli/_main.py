"""Command line: ``python -m matchusage`` (or the ``matchusage`` script).

Usage reports, exports, explanations and current activity of one
organization, from a data directory (``--data DIR``, see the input format)
or from the bundled example organization (``--example``, or ``demo``).
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, NoReturn, TextIO, TypeVar

from dateutil.parser import isoparse

from .._columnar import MatchColumns
from .._explain import Explanation
from .._export import export_csv, export_jsonl
from .._extras import install_hint
from .._html._usage import render_usage_html
from .._labels import Labels
from .._loading import read_directory
from .._match_table import MatchTable
from .._model import Match, Organization, User
from .._periods import BillingCycle, BillingPeriod, CycleUnit
from .._report import UsageReport, usage_report
from .._text import printable
from .._time import UTC, is_aware, time_zone
from .._version import version
from ..exceptions import MatchUsageError, PeriodOutOfRangeError
from ..protocols import SnapshotStore
from ._example import EXAMPLE_NOW, example_data
from ._progress import Progress
from ._render import (
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

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

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


def _shown(text: str, limit: int = 40) -> str:
    """*text* quoted for an error line, shortened if long (a 5,000-digit number, say)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[: limit // 2]!r}... ({len(text):,} characters)"


def _argument(
    parse: Callable[[str], T], error: type[Exception], expected: str
) -> Callable[[str], T]:
    """An argument type: *parse*, with its *error* turned into a one-line usage error."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except error:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not {expected}") from None

    return convert


_wall_or_instant = _argument(isoparse, ValueError, "an ISO 8601 date or date-time, e.g. 2024-01-15")
_timezone = _argument(
    lambda name: time_zone(name, "--timezone", "timezone"),
    MatchUsageError,
    "an IANA time zone name, e.g. Europe/Paris",
)
_iso_instant = _argument(
    isoparse, ValueError, "an ISO 8601 instant, e.g. 2026-03-01T09:00:00+01:00"
)


def _instant(text: str) -> datetime:
    """An ISO 8601 instant with an offset (``Z`` for UTC)."""
    value = _iso_instant(text)
    if not is_aware(value):
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} has no UTC offset; add one, as in 2026-03-01T09:00:00+01:00 "
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
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not a {meaning} integer")
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
    data.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bars (shown on a terminal while large inputs are read and counted)",
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
    billed = _Parser(add_help=False)
    group = billed.add_argument_group("what was billed (needs the sql extra)")
    group.add_argument(
        "--snapshots",
        metavar="URL",
        help="SQLAlchemy URL of the SQL snapshot store the periods were closed into, e.g. "
        "sqlite:///billing.db or postgresql+psycopg://host/db: billed periods then show the "
        "quantity invoiced next to the live recount",
    )
    group.add_argument(
        "--snapshots-prefix",
        default="matchusage_",
        metavar="PREFIX",
        help="table name prefix of the snapshot store (default: matchusage_)",
    )
    group.add_argument(
        "--snapshots-key-env",
        metavar="NAME",
        help="environment variable holding the store's fingerprint key, for a store kept "
        "with keyed (HMAC) fingerprints (the key itself never goes on the command line)",
    )
    return {"data": data, "cycle": cycle, "now": when, "periods": periods, "billed": billed}


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
    billed = [*periodic, p["billed"]]

    formats: list[tuple[argparse.ArgumentParser, Sequence[str]]] = []

    def command(
        name: str, parents: list[_Parser], choices: Sequence[str], help: str, description: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=parents, help=help, description=description)
        formats.append((sub, choices))
        return sub

    report = command(
        "report",
        billed,
        _TEXT_FORMATS,
        help="active users of the last closed billing periods, and the open one",
        description="Active users of the last closed billing periods (with a bar each), "
        "per program, and the open period's figures. With --snapshots, each closed period "
        "also shows what was billed for it and the users added or removed since.",
    )
    export = command(
        "export",
        billed,
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
    export.add_argument(
        "--live",
        action="store_true",
        help="with --snapshots: export today's recount of billed periods instead of the users "
        "that were billed (the 'basis' column says which each row is)",
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
    demo = command(
        "demo",
        [p["cycle"], p["now"], p["periods"]],
        _TEXT_FORMATS,
        help="the report on the bundled example organization",
        description="The usage report of the bundled example organization (the same as "
        "'report --example').",
    )
    for sub in (report, demo):
        sub.add_argument(
            "--html",
            metavar="FILE",
            help="write the report as a self-contained HTML page (a chart and tables) to FILE "
            "instead of printing it (needs the html extra)",
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
        directory = None if example else args.data
        self.progress = Progress.of(3, quiet=getattr(args, "quiet", False), directory=directory)
        with self.progress.step("reading the data files"):
            data = read_directory(example_data() if example else args.data)
        self.organization: Organization = data.organization
        self.now: datetime = args.now or (EXAMPLE_NOW if example else datetime.now(UTC))
        self.cycle = _cycle(self.organization, args)
        self.programs = data.programs
        self.directory = data.users
        # Columns when the fast loader read the matches: the report runs on them.
        self.source: list[Match] | MatchColumns = (
            data.matches.columns(self.organization.id)
            if isinstance(data.matches, MatchTable)
            else data.matches
        )
        url = getattr(args, "snapshots", None)
        self._engine = None if url is None else _engine(url)
        self.snapshots: SnapshotStore | None = None
        if self._engine is not None:
            from ..sql import SQLSnapshotStore

            self.snapshots = SQLSnapshotStore(
                self._engine,
                table_prefix=args.snapshots_prefix,
                fingerprint_key=_fingerprint_key(args.snapshots_key_env),
            )

    def __enter__(self) -> _Context:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.close()
        if self._engine is not None:
            self._engine.dispose()

    def labels(self, report: UsageReport) -> Labels:
        periods = [u.period for u in report.periods] + [report.current.period]
        return Labels(self.cycle.timezone, periods, self.programs, ascii_only=self.ascii_only)

    def report(self, periods: int, *, now: datetime | None = None) -> UsageReport:
        with self.progress.step("counting"):
            return self._report(periods, now)

    def _report(self, periods: int, now: datetime | None) -> UsageReport:
        return usage_report(
            self.source,
            self.cycle,
            now=self.now if now is None else now,
            periods=periods,
            snapshots=self.snapshots,
            organization_id=self.organization.id,
        )

    def users(self, report: UsageReport, period: BillingPeriod | None = None) -> Mapping[str, User]:
        """The directory entries of the users of *period* (default: every closed period).

        Those counted and, for a billed period, those billed.
        """
        if period == report.current.period:
            people = [report.current.users_so_far]
        else:
            usages = report.periods if period is None else [report.usage(period)]
            people = [u.users | (u.billed_users or frozenset()) for u in usages]
        directory = self.directory
        return {user: directory[user] for user in frozenset().union(*people) if user in directory}


def _fingerprint_key(variable: str | None) -> bytes | None:
    """The snapshot store's fingerprint key, read from the environment variable *variable*."""
    if variable is None:
        return None
    key = os.environ.get(variable)
    if not key:
        raise _UsageError(f"--snapshots-key-env: the environment variable {variable} is not set")
    return key.encode()


def _engine(url: str) -> Engine:
    """The database of the snapshot store at *url* (the ``sql`` extra is imported only here)."""
    try:
        import sqlalchemy
    except ImportError:
        raise _UsageError(f"--snapshots needs the sql extra: {install_hint('sql')}") from None
    try:
        return sqlalchemy.create_engine(url)
    except (sqlalchemy.exc.ArgumentError, ImportError) as error:
        raise _UsageError(f"--snapshots {url!r} is not a usable database URL: {error}") from None


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
    with _Context(args, out) as context:
        return _write_report(context, args, out)


def _write_report(context: _Context, args: argparse.Namespace, out: TextIO) -> int:
    report = context.report(args.periods)
    labels = context.labels(report)
    if args.html is not None:
        _write_html(context, report, args.html)
    elif args.format == "json":
        write_json(out, report_json(report, labels, context.organization.id))
    elif args.format == "csv":
        write_report_csv(out, report, labels)
    else:
        write_report_table(out, report, _title(context), labels)
    return 0


def _write_html(context: _Context, report: UsageReport, path: str) -> None:
    try:
        page = render_usage_html(
            report,
            organization=context.organization,
            programs=context.programs,
            users=context.users(report),
        )
    except ImportError as error:
        raise _UsageError(str(error)) from None
    with open(path, "w", encoding="utf-8") as file:
        file.write(page)
    print(f"report page written to {path}", file=sys.stderr)


def _active(args: argparse.Namespace, out: TextIO) -> int:
    with _Context(args, out) as context:
        return _write_active(context, args, out)


def _write_active(context: _Context, args: argparse.Namespace, out: TextIO) -> int:
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
    return context.report(1, now=period.end), period


def _export(args: argparse.Namespace, out: TextIO) -> int:
    with _Context(args, out) as context:
        return _write_export(context, args, out)


def _write_export(context: _Context, args: argparse.Namespace, out: TextIO) -> int:
    period: BillingPeriod | None = None
    if args.period is not None:
        report, period = _one_period(context, args.period)
    else:
        report = context.report(args.periods)
    # A CSV export from columns reads the whole directory on columns; JSON Lines
    # looks each row's user up, in a mapping of the exported users made once.
    users = context.directory if args.format == "csv" else context.users(report, period)
    write = export_csv if args.format == "csv" else export_jsonl
    if args.output is None:
        write(report, out, period=period, users=users, live=args.live)
        return 0
    rows = sum(u.count for u in report.periods) if period is None else 0
    with (
        open(args.output, "w", encoding="utf-8", newline="") as file,
        context.progress.step("writing the export"),
    ):
        target = context.progress.rows(file, rows)
        count = write(report, target, period=period, users=users, live=args.live)
    context.progress.close()  # before the summary line
    basis = ""
    if report.billing_checked:
        basis = " (live recount)" if args.live else " (billed users of billed periods)"
    print(f"{count} rows written to {args.output}{basis}", file=sys.stderr)
    return 0


def _explain(args: argparse.Namespace, out: TextIO) -> int:
    with _Context(args, out) as context:
        return _write_explanations(context, args, out)


def _write_explanations(context: _Context, args: argparse.Namespace, out: TextIO) -> int:
    user_id: str = args.user_id
    found: list[Explanation]
    if args.period is None:
        report = context.report(args.periods)
        found = [report.explain(user_id, u.period) for u in report.periods]
    else:
        report, period = _one_period(context, args.period)
        found = [report.explain(user_id, period)]
    user = context.directory.get(user_id)
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
        # A command builds millions of long-lived objects and frees them at exit: the
        # collector's passes over them would find nothing to collect.
        gc.disable()
        try:
            return _COMMANDS[args.command](args, out)
        finally:
            gc.enable()
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
