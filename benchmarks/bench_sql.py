"""Counting in the database, reading columns out of it, and sweeping Match objects in Python.

One million matches (one organization of 500,000, and 500 organizations of
1,000) are loaded into SQLite and into PostgreSQL 15; then, on each:

- the usage report of the large organization (its 6 last closed periods),
- the usage report of one small organization (1,000 matches in a table of a
  million: where the indexes serve),
- the usage report of every organization (each with its own anchor and time
  zone),

are computed three ways: counted by the database (`count_active_users` /
`count_closed_periods(method="database")`, one statement), read as columns
and counted by the columnar engine (`match_columns` + `columnar_counts` /
`count_closed_periods(method="columns")`: on PostgreSQL each column packed
into one binary value by the server, unpacked by numpy and pyarrow), and
in Python (`OrganizationMatches` + `active_users_by_period`, which builds a
`Match` per row and sweeps them). On PostgreSQL, with
`adbc-driver-postgresql` installed, the same rows are also fetched through
ADBC into Arrow, and as CSV through psycopg's `COPY ... TO STDOUT`, for
comparison. The counts are checked equal first; then each way is timed
(best of ``--repeat``) and printed with the CPU seconds of the client and,
for a server on this machine, of the server (its processes, parallel workers
included), and the speed relative to counting in the database.

    python benchmarks/bench_sql.py                 # starts a throwaway PostgreSQL cluster
    python benchmarks/bench_sql.py --postgresql postgresql+psycopg://...   # an empty database
    python benchmarks/bench_sql.py --matches 100000 --skip-sqlite   # a smaller run
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import sqlalchemy as sa

import matchusage
from matchusage import BillingCycle, MatchColumns, Organization, Program
from matchusage.sql import SQLRepository
from matchusage.sql._columns import _Reader
from matchusage.sql._schema import Instant

UTC = timezone.utc
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
HISTORY_DAYS = 3 * 365
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC", "Australia/Sydney"]
SMALL = 500
"""Number of small organizations."""


def organizations(rng: random.Random) -> list[Organization]:
    found = []
    for n in range(SMALL + 1):
        zone = ZONES[n % len(ZONES)]
        anchor = datetime(2023, rng.randint(1, 12), rng.randint(1, 28), tzinfo=ZoneInfo(zone))
        found.append(Organization(f"org-{n:04d}", f"Org {n}", zone, BillingCycle.monthly(anchor)))
    return found


def rows(
    rng: random.Random, matches: int
) -> Iterator[tuple[str, str, datetime, datetime | None, list[str]]]:
    """``(id, program, start, end, participants)``: half in org 0, the rest spread out."""
    history = HISTORY_DAYS * 86_400
    large = matches // 2
    per_small = max(1, (matches - large) // SMALL)
    for n in range(matches):
        org = 0 if n < large else 1 + min(SMALL - 1, (n - large) // per_small)
        users = 200_000 if org == 0 else 800
        start = NOW - timedelta(seconds=rng.randrange(history))
        kind = rng.random()
        end: datetime | None = None
        if kind < 0.01:
            end = start
        elif kind < 0.65:
            end = start + timedelta(seconds=rng.randrange(86_400, 400 * 86_400))
            if end > NOW:
                end = None
        size = 2 if rng.random() < 0.9 else rng.randint(3, 5)
        people = {f"o{org}-u{rng.randrange(users)}" for _ in range(size)}
        yield f"m{n:07d}", f"org-{org:04d}-p{rng.randrange(3)}", start, end, sorted(people)


def load(repository: SQLRepository, matches: int) -> None:
    rng = random.Random(2026)
    orgs = organizations(rng)
    programs = [Program(f"{o.id}-p{k}", o.id) for o in orgs for k in range(3)]
    repository.create_schema()
    repository.add(*orgs, *programs)
    tables = repository._tables
    engine = repository.engine
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cursor:  # type: ignore[attr-defined]
                with cursor.copy(
                    "COPY matchusage_matches (id, program_id, started_at, ended_at) FROM STDIN"
                ) as copy_matches:
                    people: list[tuple[str, str]] = []
                    for key, program, start, end, users in rows(rng, matches):
                        copy_matches.write_row((key, program, start, end))
                        people.extend((key, user) for user in users)
                with cursor.copy(
                    "COPY matchusage_participants (match_id, user_id) FROM STDIN"
                ) as copy_people:
                    for row in people:
                        copy_people.write_row(row)
            raw.commit()
        finally:
            raw.close()
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
        return
    instant = Instant().process_bind_param
    dialect = engine.dialect
    match_rows: list[tuple[Any, ...]] = []
    people_rows: list[tuple[str, str]] = []
    for key, program, start, end, users in rows(rng, matches):
        match_rows.append((key, program, instant(start, dialect), instant(end, dialect)))
        people_rows.extend((key, user) for user in users)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.executemany(f"INSERT INTO {tables.matches.name} VALUES (?, ?, ?, ?)", match_rows)
        cursor.executemany(
            f"INSERT INTO {tables.participants.name} (match_id, user_id) VALUES (?, ?)",  # type: ignore[union-attr]
            people_rows,
        )
        raw.commit()
        cursor.execute("ANALYZE")
    finally:
        raw.close()


class ServerClock:
    """CPU seconds the PostgreSQL server spent: its live processes, and those it has reaped."""

    def __init__(self, url: str | None) -> None:
        self.postmaster: int | None = None
        if url is None or not Path("/proc").is_dir():
            return
        try:
            engine = sa.create_engine(url)
            with engine.connect() as connection:
                folder = connection.exec_driver_sql("SHOW data_directory").scalar_one()
            engine.dispose()
            self.postmaster = int(Path(folder, "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, sa.exc.SQLAlchemyError):
            self.postmaster = None  # a server on another machine, or unreadable

    def seconds(self) -> float | None:
        if self.postmaster is None:
            return None
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            pid, parent = int(stat.parent.name), int(fields[1])
            if pid == self.postmaster:
                total += sum(int(f) for f in fields[11:15])  # its own and its reaped children's
            elif parent == self.postmaster:
                total += int(fields[11]) + int(fields[12])
        return total / tick


@attrs.frozen
class Timing:
    wall: float
    cpu: float
    server: float | None


def best(repeat: int, work: Callable[[], Any], server: ServerClock) -> Timing:
    """The fastest of *repeat* runs, with the client's and the server's CPU seconds in it."""
    found = []
    for _ in range(repeat):
        served = server.seconds()
        cpu = time.process_time()
        started = time.perf_counter()
        work()
        wall = time.perf_counter() - started
        spent = server.seconds()
        on_server = None if served is None or spent is None else spent - served
        found.append(Timing(wall, time.process_time() - cpu, on_server))
    return min(found, key=lambda timing: timing.wall)


def _candidates_sql(repository: SQLRepository, plan: dict[str, Any]) -> str:
    """The columns path's rows as one SQL text (instants as microseconds), for other readers."""
    reader = _Reader(repository.mapping, repository._tables)
    windows = reader.windows(plan)
    candidates = reader.candidates(reader._windows_table(windows, postgresql=True), "postgresql")
    epoch = [
        sa.cast(sa.extract("epoch", c) * 1_000_000, sa.BigInteger)
        for c in (candidates.c.started_at, candidates.c.ended_at)
    ]
    statement = sa.select(
        candidates.c.code,
        epoch[0],
        sa.func.coalesce(epoch[1], MatchColumns.ONGOING),
        candidates.c.user_id,
    )
    with repository.engine.connect() as connection:
        compiled = statement.compile(
            dialect=connection.dialect, compile_kwargs={"literal_binds": True}
        )
    return str(compiled)


def _count_table(table: Any, plan: dict[str, Any]) -> dict[str, dict[Any, int]]:
    import pyarrow.compute as pc

    user = pc.dictionary_encode(table.column(3)).combine_chunks()
    columns = MatchColumns(
        table.column(1).to_numpy(),
        table.column(2).to_numpy(),
        table.column(0).to_numpy(),
        range(table.num_rows),
        user.indices.to_numpy(),
        organization_ids=list(plan),
    )
    return matchusage.columnar_counts(columns, plan)


def other_readers(url: str, repository: SQLRepository) -> dict[str, Callable[[], Any]]:
    """The every-organization batch with the rows read by ADBC, or by psycopg's COPY."""
    import pyarrow as pa
    import pyarrow.csv as csv

    def plan() -> dict[str, Any]:
        return matchusage.batch_periods(repository.organizations(), now=NOW, count=6)

    def via_copy() -> dict[str, dict[Any, int]]:
        chosen = plan()
        sql = _candidates_sql(repository, chosen)
        raw = repository.engine.raw_connection()
        try:
            with (
                raw.cursor() as cursor,  # type: ignore[attr-defined]
                cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy,
            ):
                data = b"".join(bytes(block) for block in copy)
        finally:
            raw.close()
        types = [pa.int64(), pa.int64(), pa.int64(), pa.string()]
        table = csv.read_csv(
            io.BytesIO(data),
            read_options=csv.ReadOptions(column_names=["o", "s", "e", "u"]),
            convert_options=csv.ConvertOptions(column_types=dict(zip("oseu", types, strict=True))),
        )
        return _count_table(table, chosen)

    readers = {"psycopg COPY (CSV)": via_copy}
    try:
        import adbc_driver_postgresql.dbapi as adbc
    except ImportError:
        return readers
    parsed = sa.engine.make_url(url)
    query = "&".join(f"{k}={v}" for k, v in parsed.query.items())
    uri = f"postgresql://{parsed.username}@{parsed.host or ''}/{parsed.database}?{query}"

    def via_adbc() -> dict[str, dict[Any, int]]:
        chosen = plan()
        sql = _candidates_sql(repository, chosen)
        with adbc.connect(uri) as connection, connection.cursor() as cursor:
            cursor.execute(sql)
            table = cursor.fetch_arrow_table()
        return _count_table(table, chosen)

    readers["ADBC (Arrow)"] = via_adbc
    return readers


def measure(
    name: str, engine: sa.Engine, matches: int, repeat: int, url: str | None = None
) -> list[tuple[str, ...]]:
    repository = SQLRepository(engine)
    started = time.perf_counter()
    load(repository, matches)
    print(
        f"{name}: loaded {matches:,} matches in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    large = repository.organization("org-0000")
    periods = large.cycle.closed_periods(before=NOW, count=6)

    def one(organization_id: str) -> dict[str, Callable[[], dict[Any, int]]]:
        """The three ways for one organization's last 6 periods."""
        chosen = repository.organization(organization_id).cycle.closed_periods(before=NOW, count=6)

        def pushdown() -> dict[Any, int]:
            return repository.count_active_users(organization_id, chosen)

        def columns() -> dict[Any, int]:
            read = repository.match_columns({organization_id: chosen})
            return matchusage.columnar_counts(read, {organization_id: chosen})[organization_id]

        def python() -> dict[Any, int]:
            source = matchusage.OrganizationMatches(repository, organization_id)
            found = matchusage.active_users_by_period(source, chosen)
            return {p: len(u) for p, u in found.items()}

        return {"database": pushdown, "columns": columns, "Python objects": python}

    def all_pushdown() -> Mapping[str, Mapping[Any, int]]:
        return dict(repository.count_closed_periods(before=NOW, count=6, method="database"))

    def all_columns() -> Mapping[str, Mapping[Any, int]]:
        return dict(repository.count_closed_periods(before=NOW, count=6, method="columns"))

    def all_python() -> dict[str, dict[Any, int]]:
        found = {}
        for organization in repository.organizations():
            source = matchusage.OrganizationMatches(repository, organization.id)
            chosen = organization.cycle.closed_periods(before=NOW, count=6)
            users = matchusage.active_users_by_period(source, chosen)
            found[organization.id] = {p: len(u) for p, u in users.items()}
        return found

    large_ways, small_ways = one(large.id), one("org-0001")
    for ways in (large_ways, small_ways):
        counts = [work() for work in ways.values()]
        assert all(found == counts[0] for found in counts), "single organization: counts differ"
    every = all_pushdown()
    assert every == all_python() == all_columns(), "every organization: counts differ"
    readers = other_readers(url, repository) if url else {}
    for reader, work in readers.items():
        assert every == work(), f"every organization, {reader}: counts differ"
    loaded = len(repository.matches(large.id, start=periods[0].start, end=periods[-1].end))
    server = ServerClock(url)
    small = repository.organization("org-0001").cycle.closed_periods(before=NOW, count=6)
    few = len(repository.matches("org-0001", start=small[0].start, end=small[-1].end))
    scenarios = [
        (f"1 org, 6 periods ({loaded:,} matches in window)", large_ways),
        (f"1 small org, 6 periods ({few:,} matches in window)", small_ways),
        (f"{SMALL + 1} orgs x 6 periods",
         {"database": all_pushdown, "columns": all_columns, "Python objects": all_python,
          **{f"columns via {reader}": work for reader, work in readers.items()}}),
    ]  # fmt: skip
    results: list[tuple[str, ...]] = []
    for scenario, ways in scenarios:
        timings = {way: best(repeat, work, server) for way, work in ways.items()}
        database = timings["database"].wall
        for way, timing in timings.items():
            on_server = "" if timing.server is None else f"{timing.server:.2f}"
            results.append((name, scenario, way, f"{timing.wall:.3f}", f"{timing.cpu:.2f}",
                            on_server, f"{database / timing.wall:.2f}x"))  # fmt: skip
    return results


def throwaway_postgresql(stack: ExitStack) -> str:
    """The URL of the test suite's throwaway cluster, stopped when *stack* closes.

    It runs the server as 'postgres' when root; without server binaries the
    benchmark exits, asking for ``--postgresql URL``.
    """
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    import _postgresql

    binaries = _postgresql.server_binaries()
    if binaries is None:
        sys.exit("PostgreSQL server binaries not found; pass --postgresql URL")
    url: str = stack.enter_context(_postgresql.cluster(binaries))
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgresql", help="URL of an empty PostgreSQL database")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--skip-postgresql", action="store_true", help="SQLite only")
    options = parser.parse_args()
    results = []
    with ExitStack() as stack:
        if not options.skip_sqlite:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            sqlite = sa.create_engine(f"sqlite:///{folder / 'bench.db'}")
            results += measure("SQLite", sqlite, options.matches, options.repeat)
            sqlite.dispose()
        url = options.postgresql
        if url is None and not options.skip_postgresql:
            url = throwaway_postgresql(stack)
        if url is not None:
            postgresql = sa.create_engine(url)
            results += measure("PostgreSQL", postgresql, options.matches, options.repeat, url)
            postgresql.dispose()
    header = ("database", "scenario", "way", "wall s", "client CPU s", "server CPU s",
              "speed vs database")  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *results]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *results]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{os.cpu_count()} CPUs, load average {load:.1f} at the end", file=sys.stderr)


if __name__ == "__main__":
    main()
