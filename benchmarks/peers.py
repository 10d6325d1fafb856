"""The peers' versions of the count: DuckDB, polars and pandas on the same columns.

Each peer has an untimed ``load`` (the data in the peer's own format, as a
data engineer would have it) and a timed ``count`` returning
``{(organization code, period number): active users}`` (zero counts left out).

Tables: ``matches(match_id, org, start_us, end_us)``, ``participants(match_id,
user_id)`` and ``periods(org, period_no, start_us, end_us)``; ongoing matches
end at 2**62, as in the columnar input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datagen import Dataset

Counts = dict[tuple[int, int], int]


def _frames(data: Dataset) -> dict[str, dict[str, Any]]:
    org, number, start, end = data.periods_table()
    return {
        "matches": {
            "match_id": np.arange(len(data.start_us), dtype=np.int64),
            "org": data.organization.astype(np.int64),
            "start_us": data.start_us,
            "end_us": data.end_us,
        },
        "participants": {"match_id": data.participant_match, "user_id": data.participant_user},
        "periods": {"org": org, "period_no": number, "start_us": start, "end_us": end},
    }


# The fastest of the overlap queries tried (on DuckDB 1.x/2.x, 2 threads):
# joining participants to matches first, then to the periods of the match's
# organization with the overlap condition, and COUNT(DISTINCT) per period.
# Joining periods to matches first (then participants) took 1.3x to 3x as long,
# and SELECT DISTINCT (org, period, user) then COUNT(*) 1.2x to 1.4x.
DUCKDB_QUERY = """
WITH rows AS (
    SELECT m.org, m.start_us, m.end_us, pt.user_id
    FROM matches AS m JOIN participants AS pt USING (match_id)
    WHERE m.end_us > m.start_us
)
SELECT p.org, p.period_no, COUNT(DISTINCT rows.user_id) AS active_users
FROM periods AS p
JOIN rows ON rows.org = p.org AND rows.start_us < p.end_us AND rows.end_us > p.start_us
GROUP BY p.org, p.period_no
"""


class DuckDB:
    name = "DuckDB SQL (2 threads)"

    def __init__(self, data: Dataset) -> None:
        import duckdb
        import pandas as pd

        self.connection = duckdb.connect()
        self.connection.execute("SET threads = 2")
        for table, columns in _frames(data).items():
            frame = pd.DataFrame(columns)  # noqa: F841  (read by DuckDB by name)
            self.connection.execute(f"CREATE TABLE {table} AS SELECT * FROM frame")

    def count(self) -> Counts:
        rows = self.connection.execute(DUCKDB_QUERY).fetchall()
        return {(org, number): n for org, number, n in rows if n}


class _Polars:
    name = ""

    def __init__(self, data: Dataset) -> None:
        import polars as pl

        self.pl = pl
        self.frames = {table: pl.DataFrame(columns) for table, columns in _frames(data).items()}

    def overlap(self, rows: Any, periods: Any) -> Any:
        pl = self.pl
        joined = rows.join(periods, on="org", suffix="_p")
        return joined.filter(
            (pl.col("start_us") < pl.col("end_us_p")) & (pl.col("end_us") > pl.col("start_us_p"))
        )

    def count(self) -> Counts:
        found = self.rows().group_by("org", "period_no").agg(self.pl.col("user_id").n_unique())
        return {(o, p): n for o, p, n in found.collect().iter_rows() if n}

    def rows(self) -> Any:
        raise NotImplementedError

    def live_matches(self) -> Any:
        pl = self.pl
        return self.frames["matches"].lazy().filter(pl.col("end_us") > pl.col("start_us"))


class PolarsParticipantsFirst(_Polars):
    """Participants joined to matches, then to the periods: faster for one organization."""

    name = "polars lazy, participants first (2 threads)"

    def rows(self) -> Any:
        rows = self.frames["participants"].lazy().join(self.live_matches(), on="match_id")
        return self.overlap(rows, self.frames["periods"].lazy())


class PolarsPeriodsFirst(_Polars):
    """Matches joined to the periods, then to participants: faster for many organizations."""

    name = "polars lazy, periods first (2 threads)"

    def rows(self) -> Any:
        spans = self.overlap(self.live_matches(), self.frames["periods"].lazy())
        spans = spans.select("match_id", "org", "period_no")
        return spans.join(self.frames["participants"].lazy(), on="match_id")


class Pandas:
    name = "pandas"

    def __init__(self, data: Dataset) -> None:
        import pandas as pd

        self.frames = {table: pd.DataFrame(columns) for table, columns in _frames(data).items()}

    def count(self) -> Counts:
        matches, participants, periods = (
            self.frames[name] for name in ("matches", "participants", "periods")
        )
        matches = matches[matches["end_us"] > matches["start_us"]]
        overlap = matches.merge(periods, on="org", suffixes=("", "_p"))
        overlap = overlap[
            (overlap["start_us"] < overlap["end_us_p"])
            & (overlap["end_us"] > overlap["start_us_p"])
        ]
        rows = overlap[["match_id", "org", "period_no"]].merge(participants, on="match_id")
        found = rows.groupby(["org", "period_no"])["user_id"].nunique()
        return {(int(o), int(p)): int(n) for (o, p), n in found.items() if n}
