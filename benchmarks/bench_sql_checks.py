"""What counting's checks of stored rows cost on PostgreSQL, in server CPU seconds.

Loads `bench_sql.py`'s data (one large organization among many small ones) into a
throwaway PostgreSQL cluster (or ``--postgresql URL``, an empty database), then counts
the usage reports (the large organization's 6 closed periods, and every organization's,
in the database and from columns) three ways, on the same rows:

- ``no role index``: the adapter's tables with only the participants' primary key, so the
  role check reads each participant row from the table;
- ``role index``: with the index ``(match_id, user_id, role)`` that `create_schema` and
  `create_indexes` now make (an index-only scan, once ``VACUUM`` has marked the pages);
- ``view, role index``: the matches read through a view, which has no unique id, so
  counting also checks that the rows of each match id agree.

Server CPU seconds (all the cluster's processes, from /proc) are robust to other work on
a shared machine; wall seconds are not. Each variant runs *repeat* rounds; best and median.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import sqlalchemy as sa

from bench_sql import NOW, ServerClock, load, throwaway_postgresql
from matchusage.sql import MatchTable, SchemaMapping, SQLRepository

Work = Callable[[SQLRepository], Any]


def reports(repository: SQLRepository) -> dict[str, Work]:
    large = repository.organization("org-0000")
    periods = large.cycle.closed_periods(before=NOW, count=6)
    return {
        "1 org, 6 periods, database": lambda r: r.count_active_users(large.id, periods),
        "every org, 6 periods, database": lambda r: dict(
            r.count_closed_periods(before=NOW, count=6, method="database")
        ),
        "every org, 6 periods, columns": lambda r: dict(
            r.count_closed_periods(before=NOW, count=6, method="columns")
        ),
    }


def server_seconds(
    work: Work, repository: SQLRepository, server: ServerClock, repeat: int
) -> list[float]:
    spent = []
    for _ in range(repeat):
        before = server.seconds()
        work(repository)
        after = server.seconds()
        assert before is not None, "server CPU not readable"
        assert after is not None, "server CPU not readable"
        spent.append(after - before)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgresql", help="URL of an empty PostgreSQL database")
    options = parser.parse_args()
    with ExitStack() as stack:
        url = options.postgresql
        if url is None:
            url = throwaway_postgresql(stack)
        engine = sa.create_engine(url)
        stack.callback(engine.dispose)
        own = SQLRepository(engine)
        load(own, options.matches)
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE VIEW matches_view AS SELECT * FROM matchusage_matches"
            )
        viewed = SQLRepository(engine, SchemaMapping(matches=MatchTable("matches_view")))
        server = ServerClock(url)
        ways = reports(own)
        expected = {name: work(own) for name, work in ways.items()}

        def role_index(present: bool) -> None:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                if present:
                    own.create_indexes()
                else:
                    connection.exec_driver_sql(
                        "DROP INDEX IF EXISTS ix_matchusage_participants_role"
                    )
                connection.exec_driver_sql("VACUUM ANALYZE matchusage_participants")

        variants: list[tuple[str, SQLRepository, bool]] = [
            ("no role index", own, False),
            ("role index", own, True),
            ("view, role index", viewed, True),
        ]
        rows = []
        for variant, repository, indexed in variants:
            role_index(indexed)
            for name, work in ways.items():
                assert work(repository) == expected[name], f"{variant}, {name}: counts differ"
                spent = server_seconds(work, repository, server, options.repeat)
                rows.append((name, variant, min(spent), statistics.median(spent)))
    print(f"{options.matches:,} matches, server CPU seconds over {options.repeat} rounds")
    print(f"{'report':34} {'variant':18} {'best':>7} {'median':>7}")
    for name, variant, best, median in sorted(rows, key=lambda row: row[0]):
        print(f"{name:34} {variant:18} {best:7.2f} {median:7.2f}")


if __name__ == "__main__":
    main()
