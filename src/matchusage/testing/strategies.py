"""Hypothesis strategies for matchusage's records.

Instants are drawn from a coarse grid (whole hours over a few months) so
that generated matches and periods often share boundaries exactly: the
edge cases of the counting rules live there.

```python
from hypothesis import given
from matchusage.testing import strategies as mst

@given(mst.match_lists(), mst.billing_periods())
def test_something(matches, period): ...
```
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from .._model import Match, Organization, Program, Role, User
from .._periods import BillingCycle, BillingPeriod
from .._time import UTC

__all__ = [
    "HOSTILE_PREFIXES",
    "ORGANIZATION_IDS",
    "ORGANIZATION_OF_PROGRAM",
    "PROGRAM_IDS",
    "USER_IDS",
    "ZONES",
    "aware_datetimes",
    "billing_batches",
    "billing_cycles",
    "billing_periods",
    "hostile_markup",
    "hostile_text",
    "match_lists",
    "matches",
    "organizations",
    "repository_records",
    "texts",
    "time_zones",
    "user_directories",
]

ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # a half-hour DST shift
    "Pacific/Chatham",
    "America/St_Johns",
)
"""Time zones the strategies draw from: whole, half and quarter hour offsets and DST rules."""

USER_IDS = st.sampled_from([f"u{n}" for n in range(8)])
"""A small pool of user ids, so generated matches share users."""
PROGRAM_IDS = st.sampled_from(["p1", "p2", "p3"])
"""A small pool of program ids."""
ORGANIZATION_IDS = st.sampled_from(["o1", "o2", "o3"])
"""A small pool of organization ids."""

_ORIGIN = datetime(2024, 1, 1, tzinfo=UTC)
_GRID_HOURS = 24 * 120


def time_zones() -> st.SearchStrategy[tzinfo]:
    """IANA zones from [`ZONES`][matchusage.testing.strategies.ZONES]."""
    return st.sampled_from(ZONES).map(ZoneInfo)


def aware_datetimes(hours: int = _GRID_HOURS) -> st.SearchStrategy[datetime]:
    """Aware datetimes on a whole-hour grid of *hours* hours from 2024-01-01 UTC.

    Each is expressed in a random zone of
    [`ZONES`][matchusage.testing.strategies.ZONES]; the instant is what counts.
    """
    return st.builds(
        lambda h, zone: (_ORIGIN + timedelta(hours=h)).astimezone(zone),
        st.integers(0, hours),
        time_zones(),
    )


def billing_periods() -> st.SearchStrategy[BillingPeriod]:
    """Non-empty billing periods on the grid."""
    return (
        st.tuples(aware_datetimes(), aware_datetimes())
        .filter(lambda b: b[0] != b[1])
        .map(lambda b: BillingPeriod(start=min(b), end=max(b)))
    )


@st.composite
def matches(
    draw: st.DrawFn,
    *,
    ids: st.SearchStrategy[str] | None = None,
    users: st.SearchStrategy[str] = USER_IDS,
    programs: st.SearchStrategy[str] = PROGRAM_IDS,
) -> Match:
    """Matches on the grid: ongoing, ended, zero-length and group matches.

    Args:
        ids: Strategy for the match id (default: short random ids).
        users: Strategy for participant ids; a small pool makes users share matches.
        programs: Strategy for program ids.
    """
    start = draw(aware_datetimes())
    kind = draw(st.sampled_from(["ongoing", "ended", "ended", "zero-length"]))
    end: datetime | None = None
    if kind == "ended":
        end = start + timedelta(hours=draw(st.integers(1, _GRID_HOURS)))
    elif kind == "zero-length":
        end = start
    people = draw(st.frozensets(users, min_size=1, max_size=4))
    roles = {user: draw(st.sampled_from(Role)) for user in people if draw(st.booleans())}
    match_id = draw(ids if ids is not None else st.text("abcdef0123456789", min_size=1, max_size=6))
    return Match(
        id=match_id,
        program_id=draw(programs),
        participants=people,
        started_at=start,
        ended_at=end,
        roles=roles,
    )


def match_lists(max_size: int = 25) -> st.SearchStrategy[list[Match]]:
    """Lists of matches with unique ids."""
    return st.lists(matches(), max_size=max_size, unique_by=lambda m: m.id)


@st.composite
def billing_cycles(draw: st.DrawFn) -> BillingCycle:
    """Monthly, multi-month, yearly and weekly cycles anchored in many zones.

    Anchors favour the awkward days (28th to 31st, February 29) and times
    near DST changes.
    """
    zone = draw(time_zones())
    year = draw(st.integers(2019, 2026))
    month = draw(st.integers(1, 12))
    day = draw(st.one_of(st.integers(1, 28), st.integers(28, 31)))
    if month == 2 and day > 28:
        day = 29 if year % 4 == 0 else 28
    elif day == 31 and month in (4, 6, 9, 11):
        day = 30
    hour = draw(st.sampled_from([0, 1, 2, 3, 12, 23]))
    minute = draw(st.sampled_from([0, 30, 45]))
    anchor = datetime(
        year, month, day, hour, minute, tzinfo=zone, fold=draw(st.sampled_from([0, 1]))
    )
    kind = draw(st.sampled_from(["monthly", "quarterly", "yearly", "weekly", "biweekly"]))
    if kind == "monthly":
        return BillingCycle.monthly(anchor)
    if kind == "quarterly":
        return BillingCycle.monthly(anchor, every=3)
    if kind == "yearly":
        return BillingCycle.yearly(anchor)
    return BillingCycle.weekly(anchor, every=1 if kind == "weekly" else 2)


HOSTILE_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "'")
"""Leading characters a spreadsheet may act on (and the apostrophe that neutralises them)."""


def hostile_text() -> st.SearchStrategy[str]:
    """Text that often starts like a spreadsheet formula: ``=cmd|' /C calc'!A0``, ``@SUM(...)``.

    Also draws quotes, commas, semicolons, newlines and non-ASCII letters, so
    that CSV quoting is exercised too.
    """
    tail = st.text(
        st.sampled_from(list("=+-@\t\r\n'\",;|!()AZaz09 éß漢"))
        | st.characters(exclude_characters="\x00"),
        max_size=12,
    )
    return st.one_of(
        st.tuples(st.sampled_from(HOSTILE_PREFIXES), tail).map("".join),
        tail,
    )


def hostile_markup() -> st.SearchStrategy[str]:
    """Names a page must show safely: markup, bidi controls, control characters, long words.

    Draws pieces such as ``<script>``, ``"><img onerror=...>``, ``{{ x }}``, the
    right-to-left override U+202E and other bidi controls, NUL and C1
    controls, lone surrogates, right-to-left letters and a 300-letter word,
    mixed with any text. Never empty.
    """
    pieces = st.sampled_from(
        [
            "<script>window.pwned=1</script>",
            '"><img src=x onerror="window.pwned=1">',
            "</bdi></td></tr></table>",
            "{{ 7*7 }}{% raw %}",
            "&amp;&lt;",
            "\u202e",
            "\u202dLTR\u202c",
            "\u2067iso\u2069",
            "\x00",
            "\x1b[31m",
            "\x85",
            "\ud800",
            "\u200f",
            "עברית",
            "مرحبا",
            "W" * 300,
            " ",
        ]
    )
    return st.lists(pieces | st.text(max_size=5), min_size=1, max_size=6).map("".join).filter(bool)


def user_directories(
    ids: st.SearchStrategy[str] = USER_IDS,
    names: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[dict[str, User]]:
    """User directories (id to [`User`][matchusage.User]) with hostile names and emails.

    Args:
        ids: Strategy for user ids (default: the shared small pool).
        names: Strategy for names and the local part of emails (default:
            [`hostile_text`][matchusage.testing.strategies.hostile_text]).
    """
    text = names if names is not None else hostile_text()
    users = st.builds(
        lambda user_id, name, email: User(user_id, name, email),
        ids,
        text,
        st.none() | text.map(lambda local: f"{local}@example.org"),
    )
    return st.lists(users, unique_by=lambda user: user.id).map(
        lambda found: {user.id: user for user in found}
    )


def texts(min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    """Any text a database column can hold: unicode, quotes, but no NUL or lone surrogate."""
    return st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
        min_size=min_size,
        max_size=max_size,
    )


@st.composite
def organizations(draw: st.DrawFn, *, ids: st.SearchStrategy[str] | None = None) -> Organization:
    """Organizations whose cycle is anchored in their own time zone at a real instant.

    The anchor is the instant of a drawn cycle's anchor, seen in the zone
    (so never a skipped wall time), which any storage that keeps the anchor
    as an instant plus a zone name gives back unchanged.
    """
    cycle = draw(billing_cycles())
    zone = cycle.timezone
    anchor = cycle.anchor.astimezone(UTC).astimezone(zone)
    return Organization(
        id=draw(ids if ids is not None else texts(min_size=1)),
        name=draw(texts()),
        timezone=getattr(zone, "key", "UTC"),
        cycle=BillingCycle(anchor, cycle.unit, cycle.every),
    )


@st.composite
def billing_batches(
    draw: st.DrawFn, max_matches: int = 25
) -> tuple[list[Organization], list[Program], list[Match], datetime]:
    """Inputs of a multi-organization batch: ``(organizations, programs, matches, now)``.

    Up to three organizations with their own cycles, one or two programs
    each, and matches drawing from one pool of users, so some users are in
    several organizations; every match belongs to a drawn program.
    """
    orgs = draw(st.lists(organizations(), min_size=1, max_size=3, unique_by=lambda o: o.id))
    programs = [
        Program(id=f"{org.id}-p{n}", organization_id=org.id)
        for org in orgs
        for n in range(draw(st.integers(1, 2)))
    ]
    drawn = draw(
        st.lists(
            matches(programs=st.sampled_from([p.id for p in programs])),
            max_size=max_matches,
            unique_by=lambda m: m.id,
        )
    )
    return orgs, programs, drawn, draw(aware_datetimes())


ORGANIZATION_OF_PROGRAM = {"p1": "o1", "p2": "o1", "p3": "o2"}
"""The organization of each program in
[`PROGRAM_IDS`][matchusage.testing.strategies.PROGRAM_IDS]."""


@st.composite
def repository_records(
    draw: st.DrawFn, *, max_matches: int = 25
) -> list[Organization | Program | User | Match]:
    """A consistent set of records, in dependency order, for a repository to hold.

    Two organizations, ``"o1"`` (programs ``"p1"`` and ``"p2"``, so a user can
    be active in two programs of it) and ``"o2"`` (program ``"p3"``), the
    users of [`USER_IDS`][matchusage.testing.strategies.USER_IDS] and matches
    from [`match_lists`][matchusage.testing.strategies.match_lists].
    """
    records: list[Organization | Program | User | Match] = [
        draw(organizations(ids=st.just(key))) for key in ("o1", "o2")
    ]
    records += [
        Program(id=key, organization_id=owner, name=draw(texts()))
        for key, owner in ORGANIZATION_OF_PROGRAM.items()
    ]
    records += [
        User(id=f"u{n}", name=draw(texts()), email=draw(st.none() | texts(min_size=1)))
        for n in range(8)
    ]
    records += draw(match_lists(max_size=max_matches))
    return records
