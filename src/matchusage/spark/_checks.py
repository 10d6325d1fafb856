"""Input checks: a bad row of the DataFrames raises an error naming it, before anything counts.

Each check is one small Spark job that stops at the first bad row it finds
(``limit(1)``), so checking costs a few passes over the input and nothing is
collected but that row.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .._time import from_micros
from ..exceptions import (
    DuplicateMatchError,
    InvalidMatchError,
    InvalidRecordError,
    UnknownRecordError,
)
from ._frames import (
    MatchFrames,
    blank,
    canonical_matches,
    canonical_participants,
    canonical_programs,
)

_ID = "a non-empty string or an integer id"


def check_frames(frames: MatchFrames) -> None:
    """Raise the first problem found in *frames*: bad values, duplicates, dangling ids.

    Raises:
        matchusage.exceptions.InvalidMatchError: A match has a null or empty
            id, a null start, an end before its start or no organization.
        matchusage.exceptions.DuplicateMatchError: Two matches share an id.
        matchusage.exceptions.UnknownRecordError: A match's program is not in
            the programs table, or a participant's match is not a match.
        matchusage.exceptions.InvalidRecordError: A participant has a null or
            empty id, or a program belongs to two organizations.
    """
    programs = canonical_programs(frames)
    if programs is not None:
        _check_programs(programs)
    matches = canonical_matches(frames)
    _check_matches(matches, frames.by_program)
    duplicate = matches.groupBy("match_id").count().filter("count > 1").limit(1).collect()
    if duplicate:
        raise DuplicateMatchError(str(duplicate[0].match_id))
    _check_participants(canonical_participants(frames), matches)


def _check_programs(programs: DataFrame) -> None:
    bad = (
        programs.filter(blank(programs, "program_id") | blank(programs, "organization_id"))
        .limit(1)
        .collect()
    )
    if bad:
        field = "program_id" if not bad[0].program_id else "organization_id"
        raise InvalidRecordError(f"Program {bad[0].program_id!r}", field, bad[0][field], _ID)
    twice = (
        programs.groupBy("program_id")
        .agg(F.array_sort(F.collect_set("organization_id")).alias("owners"))
        .filter(F.size("owners") > 1)
        .limit(1)
        .collect()
    )
    if twice:
        program = twice[0]
        raise InvalidRecordError(
            f"Program {program.program_id!r}", "organization_id", program.owners, "one organization"
        )


def _check_matches(matches: DataFrame, by_program: bool) -> None:
    # The organization of a match found through the programs table is null when its
    # program is unknown; an empty one comes from the programs table, checked there.
    bad_owner = F.col("organization_id").isNull()
    if by_program:
        bad_owner = bad_owner | blank(matches, "program_id")
    else:
        bad_owner = bad_owner | (F.col("organization_id") == "")
    bad = (
        matches.filter(
            blank(matches, "match_id")
            | F.col("start_us").isNull()
            | (F.col("end_us") < F.col("start_us"))
            | bad_owner
        )
        .limit(1)
        .collect()
    )
    if not bad:
        return
    row = bad[0]
    if row.match_id is None or row.match_id == "":
        raise InvalidMatchError(None, "match_id", row.match_id, _ID)
    if row.start_us is None:
        raise InvalidMatchError(str(row.match_id), "started_at", None, "an instant")
    if row.end_us < row.start_us:
        raise InvalidMatchError(
            str(row.match_id),
            "ended_at",
            _instant(row.end_us),
            f"at or after started_at ({_shown(row.start_us)})",
        )
    if by_program and not row.program_id:
        raise InvalidMatchError(str(row.match_id), "program_id", row.program_id, _ID)
    if by_program:
        raise UnknownRecordError("program", row.program_id, context=f"Match {str(row.match_id)!r}")
    raise InvalidMatchError(str(row.match_id), "organization_id", row.organization_id, _ID)


def _instant(micros: int) -> datetime | int:
    try:
        return from_micros(micros)
    except OverflowError:  # beyond what a datetime holds: show the number
        return micros


def _shown(micros: int) -> str:
    instant = _instant(micros)
    return instant.isoformat() if isinstance(instant, datetime) else f"{instant} microseconds"


def _check_participants(participants: DataFrame, matches: DataFrame) -> None:
    bad = (
        participants.filter(blank(participants, "match_id") | blank(participants, "user_id"))
        .limit(1)
        .collect()
    )
    if bad:
        row = bad[0]
        field = "match_id" if row.match_id is None or row.match_id == "" else "user_id"
        match = None if row.match_id is None else str(row.match_id)
        raise InvalidRecordError(f"Participant of match {match!r}", field, row[field], _ID)
    orphan = participants.join(matches, "match_id", "left_anti").limit(1).collect()
    if orphan:
        row = orphan[0]
        raise UnknownRecordError(
            "match", str(row.match_id), context=f"Participant {str(row.user_id)!r}"
        )
