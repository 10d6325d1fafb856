"""Row mapping: records to the mapped tables' rows and back, checked on the way in and out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import attrs
import sqlalchemy as sa

from .._model import Match, Organization, Program, Role, User
from .._periods import BillingCycle, CycleUnit
from .._time import UTC, is_aware, time_zone
from ..exceptions import InvalidCycleError, InvalidMatchError, InvalidRecordError
from ._mapping import SchemaMapping
from ._schema import DECIMAL_ID, Id, Tables, fits, is_integer_id, sqlite_text_form

_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Zulu", "Zulu"})
"""Zone names that mean UTC, for which a fixed zero offset anchor is the same cycle."""

_NAIVE_HINT = "a timezone-aware instant (declare naive_utc=True if the column holds UTC)"

_ROLES = tuple(role.value for role in Role)


@attrs.frozen
class RowMapper:
    """Converts between matchusage's records and the rows of the mapped tables."""

    mapping: SchemaMapping
    tables: Tables
    # One CTE of the ambiguous ids for all the statement's references: computed once.
    _ambiguous_ids: list[sa.CTE] = attrs.field(factory=list, init=False, eq=False, repr=False)

    # -- rows to records ------------------------------------------------------------------

    def organization(self, row: Mapping[Any, Any]) -> Organization:
        """The organization of a row of the organizations table (all its columns)."""
        o = self.mapping.organizations
        table = self.tables.organizations
        key = row[table.c[o.id]]
        record = f"Organization {key!r}"
        anchor, zone_name = row[table.c[o.cycle_anchor]], row[table.c[o.timezone]]
        if not is_aware(anchor):
            raise InvalidCycleError(record, o.cycle_anchor, anchor, _NAIVE_HINT)
        zone = time_zone(zone_name, record, o.timezone)
        unit = row[table.c[o.cycle_unit]] if o.cycle_unit else CycleUnit.MONTH
        try:
            unit = CycleUnit(unit)
        except ValueError:
            raise InvalidCycleError(record, o.cycle_unit or "", unit, "'month' or 'week'") from None
        every = row[table.c[o.cycle_every]] if o.cycle_every else 1
        if type(every) is not int or every < 1:
            raise InvalidCycleError(record, o.cycle_every or "", every, "a positive integer")
        name = row[table.c[o.name]] if o.name else ""
        cycle = BillingCycle(anchor.astimezone(zone), unit, every)
        return Organization(id=key, name=name or "", timezone=zone_name, cycle=cycle)

    @staticmethod
    def program(row: Sequence[Any]) -> Program:
        """The program of an ``(id, organization_id, name)`` row."""
        key, organization_id, name = row
        return Program(id=key, organization_id=organization_id, name=name or "")

    @staticmethod
    def user(row: Sequence[Any]) -> User:
        """The user of an ``(id, name, email)`` row."""
        key, name, email = row
        return User(id=key, name=name or "", email=email)

    def match(self, rows: Sequence[Any]) -> Match:
        """The match of its ``(id, program_id, started_at, ended_at, a, b)`` rows.

        With a participants table, each row is a participant: *a* the user,
        *b* the role. With mentor and mentee columns, one row: *a* the
        mentor, *b* the mentee.
        """
        first = rows[0]
        self._check_text_form(first._mapping)
        for field, value in (("started_at", first.started_at), ("ended_at", first.ended_at)):
            if value is not None and not is_aware(value):
                raise InvalidMatchError(first.id, field, value, _NAIVE_HINT)
        if self.mapping.participants is not None:
            participants = [row.a for row in rows]
            roles = {row.a: row.b for row in rows if row.b is not None}
        else:
            pair = ((first.a, Role.MENTOR), (first.b, Role.MENTEE))
            roles = {user: role for user, role in pair if user is not None}
            participants = list(roles)
        return Match(
            id=first.id,
            program_id=first.program_id,
            participants=participants,
            started_at=first.started_at,
            ended_at=first.ended_at,
            roles=roles,
        )

    def checked_columns(self, dialect: str) -> list[sa.ColumnElement[Any]]:
        """Columns that let `match` refuse what a single row cannot show.

        On SQLite instants are text, and every query compares them as strings,
        which is right only for the exact form `Instant` writes. A match read
        with these columns is refused when its text has another form (a naive
        value where the mapping does not declare ``naive_utc``, another
        offset, another layout), instead of being selected or counted wrongly.
        And where the catalog does not guarantee one row per match id, a
        match whose rows disagree is refused (see `ambiguous`).
        """
        columns: list[sa.ColumnElement[Any]] = []
        for field, text, bad in self._text_forms(dialect):
            columns += [
                text.label(f"{field}_text"),
                sa.case((bad, 1), else_=0).label(f"{field}_bad"),
            ]
        ambiguous = self.ambiguous()
        if ambiguous is not None:
            columns.append(sa.case((ambiguous, 1), else_=0).label("ambiguous"))
        return columns

    def ambiguous(self) -> sa.ColumnElement[bool] | None:
        """Whether a stored match's id has rows that disagree, as SQL (``None``: cannot happen).

        A matches table or view without a unique id may hold two rows of one
        id. Rows that agree on program, start and end (and mentor and mentee,
        in that layout) are the same match stored twice, which counts the
        same users once, so they are harmless. Rows that disagree are two
        different matches under one id, and which one a reader would take is
        up to the database: the match is refused. The check reads the whole
        matches table grouped by id (once per statement, as a CTE shared by
        every reference this mapper makes), so it is made only when the
        catalog shows no primary key or unique index on the id column
        (`Tables.unique_match_ids`).
        """
        if self.tables.unique_match_ids:
            return None
        mm, m = self.mapping.matches, self.tables.matches
        if not self._ambiguous_ids:
            same = m.alias("same_id")
            key = same.c[mm.id].label("id")
            names = [mm.program_id, mm.started_at, mm.ended_at, mm.mentor, mm.mentee]
            differ = [_differ(same.c[name]) for name in names if name is not None]
            grouped = sa.select(key).group_by(same.c[mm.id]).having(sa.or_(*differ))
            self._ambiguous_ids.append(grouped.cte("ambiguous_ids"))
        return m.c[mm.id].in_(sa.select(self._ambiguous_ids[0].c.id))

    def known_organization(self) -> list[sa.ColumnElement[bool]]:
        """The condition that a program's organization is stored (none if the table is shared).

        Without a foreign key a program may name an organization that is not
        stored; its matches bill no one, and an organization id that is not
        stored is unknown to every path alike.
        """
        t, o = self.tables, self.mapping.organizations
        if t.programs is t.organizations:
            return []
        stored = t.organizations.alias("stored_organizations")
        program_of = t.programs.c[self.mapping.programs.organization_id]
        return [sa.exists().where(stored.c[o.id] == program_of)]

    def _text_forms(
        self, dialect: str
    ) -> list[tuple[str, sa.ColumnElement[str], sa.ColumnElement[bool]]]:
        """``(field, stored text, whether its form is wrong)`` of both instants, on SQLite."""
        if dialect != "sqlite":
            return []
        mm, m = self.mapping.matches, self.tables.matches
        form = sqlite_text_form(self.mapping.naive_utc)
        found: list[tuple[str, sa.ColumnElement[str], sa.ColumnElement[bool]]] = []
        for field, name in (("started_at", mm.started_at), ("ended_at", mm.ended_at)):
            text = sa.type_coerce(m.c[name], sa.String)
            found.append((field, text, sa.and_(text.is_not(None), text.not_like(form))))
        return found

    def _check_text_form(self, row: Mapping[Any, Any]) -> None:
        """Refuse a row that `checked_columns` flag."""
        if row.get("ambiguous"):
            raise InvalidMatchError(
                row["id"],
                "id",
                row["id"],
                "one match per id (rows of this id in the matches table differ in program, "
                "start or end, or mentor or mentee: which one counts is not known)",
            )
        for field in ("started_at", "ended_at"):
            if row.get(f"{field}_bad"):
                form = sqlite_text_form(self.mapping.naive_utc)
                hint = (
                    ""
                    if self.mapping.naive_utc
                    else " (declare naive_utc=True if it holds naive UTC)"
                )
                expected = f"UTC text of the form 'YYYY-MM-DD HH:MM:SS.ffffff{form[26:]}'{hint}"
                raise InvalidMatchError(row["id"], field, row[f"{field}_text"], expected)

    def refused(
        self,
        dialect: str,
        user: sa.ColumnElement[Any],
        role: sa.ColumnElement[Any] | None = None,
    ) -> sa.ColumnElement[bool]:
        """Whether `match` refuses a stored match because of one of its rows, as SQL.

        The row joins a match to its program and one participant: *user* (and
        *role*, with a participants table that has a role column), or one of
        the mentor and mentee columns. Counting in the database marks its
        candidate rows with this condition, so that it refuses exactly the
        matches that reading them as [`Match`][matchusage.Match] objects
        refuses: an end before the start, an empty or missing participant, an
        unknown role, an empty match or program id, on SQLite instants
        stored as text of another form, and rows of one id that disagree
        (`ambiguous`). A ``NULL`` condition means the row is fine.
        """
        mm, m = self.mapping.matches, self.tables.matches
        program = m.c[mm.program_id]
        problems = [
            m.c[mm.ended_at] < m.c[mm.started_at],
            m.c[mm.id].is_(None),
            user.is_(None),
        ]
        # An integer id column cannot hold an empty string (nor compare with one).
        problems += [
            column == "" for column in (m.c[mm.id], program, user) if not is_integer_id(column)
        ]
        if role is not None:
            problems.append(sa.and_(role.is_not(None), role.not_in(_ROLES)))
        problems += [bad for _, _, bad in self._text_forms(dialect)]
        ambiguous = self.ambiguous()
        if ambiguous is not None:
            problems.append(ambiguous)
        return sa.or_(*problems)

    # -- records to rows ------------------------------------------------------------------

    def organization_values(self, organization: Organization) -> dict[str, Any]:
        """The row of *organization*, refusing a cycle a row cannot keep."""
        o = self.mapping.organizations
        cycle = organization.cycle
        record = f"Organization {organization.id!r}"
        zone = cycle.timezone
        utc = organization.timezone in _UTC_NAMES and cycle.anchor.utcoffset() == timedelta(0)
        if getattr(zone, "key", None) != organization.timezone and not utc:
            raise InvalidCycleError(
                record,
                "cycle",
                cycle,
                "a cycle anchored in the organization's time zone (a row keeps the anchor "
                "instant and the zone name, not a fixed offset)",
            )
        again = cycle.anchor.astimezone(UTC).astimezone(zone)
        if again.replace(tzinfo=None) != cycle.anchor.replace(tzinfo=None):
            raise InvalidCycleError(
                record,
                "cycle",
                cycle,
                "an anchor at a wall time that exists in the zone (a skipped one would "
                "not survive being stored as an instant)",
            )
        if o.cycle_unit is None and cycle.unit is not CycleUnit.MONTH:
            raise InvalidCycleError(record, "cycle", cycle, "monthly (no cycle_unit column)")
        if o.cycle_every is None and cycle.every != 1:
            raise InvalidCycleError(record, "cycle", cycle, "one unit long (no cycle_every column)")
        values = {
            o.id: organization.id,
            o.timezone: organization.timezone,
            o.cycle_anchor: cycle.anchor,
        }
        optional = {
            o.name: organization.name,
            o.cycle_unit: cycle.unit.value,
            o.cycle_every: cycle.every,
        }
        values.update({k: v for k, v in optional.items() if k is not None})
        return self._checked(self.tables.organizations, record, values)

    def program_values(self, program: Program) -> dict[str, Any]:
        """The row of *program*."""
        p = self.mapping.programs
        values = {p.id: program.id, p.organization_id: program.organization_id}
        if p.name:
            values[p.name] = program.name
        return self._checked(self.tables.programs, f"Program {program.id!r}", values)

    def user_values(self, user: User) -> dict[str, Any]:
        """The row of *user*."""
        u = self.mapping.users
        values: dict[str, Any] = {u.id: user.id}
        if u.name:
            values[u.name] = user.name
        if u.email:
            values[u.email] = user.email
        return self._checked(self.tables.users, f"User {user.id!r}", values)

    def match_values(self, match: Match) -> dict[str, Any]:
        """The row of *match* in the matches table (with its pair, in that layout)."""
        mm = self.mapping.matches
        values = {
            mm.id: match.id,
            mm.program_id: match.program_id,
            mm.started_at: match.started_at,
            mm.ended_at: match.ended_at,
        }
        if mm.mentor is not None and mm.mentee is not None:
            by_role = {match.role_of(user): user for user in match.participants}
            if len(by_role) != len(match.participants) or set(by_role) - {Role.MENTOR, Role.MENTEE}:
                raise InvalidMatchError(
                    match.id,
                    "participants",
                    dict(match.roles),
                    "at most one mentor and one mentee, each with its role "
                    "(the matches table has mentor and mentee columns)",
                )
            values[mm.mentor] = by_role.get(Role.MENTOR)
            values[mm.mentee] = by_role.get(Role.MENTEE)
        return self._checked(self.tables.matches, f"Match {match.id!r}", values)

    def participant_values(self, matches: Sequence[Match]) -> list[dict[str, Any]]:
        """The participants table's rows of *matches* (none in the mentor/mentee layout)."""
        j, table = self.mapping.participants, self.tables.participants
        if j is None or table is None:
            return []
        rows = []
        for match in matches:
            for user in sorted(match.participants):
                row: dict[str, str | None] = {j.match_id: match.id, j.user_id: user}
                if j.role:
                    role = match.role_of(user)
                    row[j.role] = None if role is None else role.value
                rows.append(self._checked(table, f"Match {match.id!r}", row))
        return rows

    @staticmethod
    def _checked(table: sa.Table, record: str, values: dict[str, Any]) -> dict[str, Any]:
        """*values*, once every id among them is known to fit its column (integer or text)."""
        for name, value in values.items():
            column = table.c[name]
            if isinstance(column.type, Id) and value is not None and not fits(column, value):
                raise InvalidRecordError(record, name, value, DECIMAL_ID)
        return values


def _differ(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """Whether the rows of a group hold more than one value of *column* (``NULL`` included)."""
    count = sa.func.count(column)
    return sa.or_(
        sa.func.min(column) != sa.func.max(column),
        sa.and_(count > 0, count < sa.func.count()),
    )
