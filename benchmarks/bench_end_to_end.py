"""The command line on a CSV data directory against DuckDB SQL over the same files.

    pip install -e ".[benchmark]"
    python benchmarks/bench_end_to_end.py                     # 1M matches, in /tmp
    python benchmarks/bench_end_to_end.py --matches 300000 --runs 3

Two jobs, each run as a whole process (start-up, imports and reading the
files included), alternating the two sides, best of ``--runs``:

- ``report``: ``matchusage report --format json`` against one DuckDB query
  computing the same figures from the CSV files: active users of the last
  6 monthly periods, per program, new and dropped (attribution and the open
  period are computed by matchusage only, so DuckDB does less work). The
  figures are checked equal before anything is printed.
- ``export``: ``matchusage export -o FILE`` (the 6 periods' active users, one
  CSV row each, with name, email, programs, match ids and the active span)
  against DuckDB writing the same rows (one per period and user, the same
  joins and aggregates) with ``COPY ... TO`` CSV. The row counts are checked
  equal.

CPU seconds (user + system, both of DuckDB's threads) are printed too: on a
shared machine they move less than wall time. Peak memory is the child
process's maximum resident set (``wait4``). The
data directory is written by ``csvdata.py`` when it does not exist yet.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime

sys.path.insert(0, os.path.dirname(__file__))

import csvdata

NOW = "2026-07-01T00:00:00Z"
PERIODS = 6
DUCKDB_THREADS = 2


def run(command: list[str]) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds, peak RSS bytes and standard output of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{command} failed with status {process.returncode}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, output


def periods(directory: str) -> list[tuple[int, int, int]]:
    """(number, start, end) in UTC microseconds of the report's periods, the one before first."""
    from matchusage import load_organization
    from matchusage._time import to_micros

    cycle = load_organization(os.path.join(directory, "organization.json")).cycle
    now = datetime.fromisoformat(NOW.replace("Z", "+00:00"))
    spans = cycle.closed_periods(before=now, count=PERIODS + 1)
    return [(n, to_micros(p.start), to_micros(p.end)) for n, p in enumerate(spans)]


_PARTICIPANTS = """
CREATE TEMP TABLE parts AS
WITH m AS (
    SELECT id, program_id, participants,
           epoch_us(CAST(started_at AS TIMESTAMPTZ)) AS s,
           coalesce(epoch_us(CAST(NULLIF(ended_at, '') AS TIMESTAMPTZ)), 4611686018427387904) AS e
    FROM read_csv('{dir}/matches.csv', all_varchar = true, header = true)
)
SELECT id, program_id, s, e, trim(split_part(trim(p), ':', 1)) AS u
FROM m, unnest(string_split(m.participants, ';')) AS t(p)
WHERE trim(p) <> '' AND e > s
"""
_PERIODS = "CREATE TEMP TABLE periods AS SELECT * FROM (VALUES {rows}) AS t(n, a, b)"
_ACTIVE = """
CREATE TEMP TABLE active AS
SELECT DISTINCT periods.n, parts.program_id, parts.u
FROM parts JOIN periods ON parts.s < periods.b AND parts.e > periods.a
"""
_TOTALS = "SELECT n, count(DISTINCT u) FROM active WHERE n > 0 GROUP BY n ORDER BY n"
_PER_PROGRAM = "SELECT n, program_id, count(*) FROM active WHERE n > 0 GROUP BY n, program_id"
_CHANGES = """
WITH people AS (SELECT DISTINCT n, u FROM active)
SELECT now.n,
       count(*) FILTER (WHERE before.u IS NULL) AS new,
       (SELECT count(*) FROM people AS p WHERE p.n = now.n - 1)
         - count(*) FILTER (WHERE before.u IS NOT NULL) AS dropped
FROM people AS now LEFT JOIN people AS before ON before.n = now.n - 1 AND before.u = now.u
WHERE now.n > 0 GROUP BY now.n ORDER BY now.n
"""
_EXPORT = """
COPY (
    WITH rows AS (
        SELECT periods.n, periods.a, periods.b, parts.u, parts.id, parts.program_id,
               greatest(parts.s, periods.a) AS f, least(parts.e, periods.b) AS t, parts.s
        FROM parts JOIN periods ON parts.s < periods.b AND parts.e > periods.a
        WHERE periods.n > 0
    ), users AS (SELECT * FROM read_csv('{dir}/users.csv', all_varchar = true, header = true))
    SELECT strftime(make_timestamptz(any_value(a)), '%Y-%m-%dT%H:%M:%S%z') AS period_start,
           strftime(make_timestamptz(any_value(b)), '%Y-%m-%dT%H:%M:%S%z') AS period_end,
           rows.u AS user_id, any_value(users.name) AS name, any_value(users.email) AS email,
           string_agg(DISTINCT program_id, ';' ORDER BY program_id) AS programs,
           string_agg(rows.id, ';' ORDER BY rows.s, rows.id) AS match_ids,
           strftime(make_timestamptz(min(f)), '%Y-%m-%dT%H:%M:%S.%f%z') AS active_from,
           strftime(make_timestamptz(max(t)), '%Y-%m-%dT%H:%M:%S.%f%z') AS active_until
    FROM rows LEFT JOIN users ON users.id = rows.u
    GROUP BY rows.n, rows.u ORDER BY rows.n, rows.u
) TO '{out}' (HEADER, DELIMITER ',')
"""


def duckdb_job(job: str, directory: str, spans: str, out: str) -> None:
    """The DuckDB side, run in its own process: prints its figures as JSON."""
    import duckdb

    connection = duckdb.connect()
    connection.execute(f"SET threads = {DUCKDB_THREADS}")
    connection.execute(_PARTICIPANTS.format(dir=directory))
    rows = ", ".join(f"({n}, {a}, {b})" for n, a, b in json.loads(spans))
    connection.execute(_PERIODS.format(rows=rows))
    if job == "export":
        connection.execute(_EXPORT.format(dir=directory, out=out))
        lines = connection.execute(f"SELECT count(*) FROM read_csv('{out}')").fetchone()
        print(json.dumps({"rows": lines[0] if lines else 0}))
        return
    connection.execute(_ACTIVE)
    totals = dict(connection.execute(_TOTALS).fetchall())
    programs = {f"{n}/{p}": c for n, p, c in connection.execute(_PER_PROGRAM).fetchall()}
    changes = {n: [new, dropped] for n, new, dropped in connection.execute(_CHANGES).fetchall()}
    print(json.dumps({"totals": totals, "programs": programs, "changes": changes}))


def matchusage_figures(output: str) -> dict[str, object]:
    """The figures of ``report --format json`` in the DuckDB side's shape (periods 1..6)."""
    report = json.loads(output)
    totals, programs, changes = {}, {}, {}
    for n, period in enumerate(report["periods"], start=1):
        totals[str(n)] = period["active_users"]
        changes[str(n)] = [period["new_users"], period["dropped_users"]]
        for program, figures in period["programs"].items():
            if figures["active_users"]:
                programs[f"{n}/{program}"] = figures["active_users"]
    return {"totals": totals, "programs": programs, "changes": changes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=1_000_000)
    parser.add_argument("--dir", help="data directory (default: /tmp/matchusage-bench-N)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--job", choices=["report", "export", "both"], default="both")
    parser.add_argument(
        "--duckdb", nargs=4, metavar=("JOB", "DIR", "SPANS", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.duckdb:
        duckdb_job(*args.duckdb)
        return
    directory = args.dir or os.path.join(tempfile.gettempdir(), f"matchusage-bench-{args.matches}")
    if not os.path.exists(os.path.join(directory, "matches.csv")):
        csvdata.write(directory, args.matches)
    spans = json.dumps(periods(directory))
    out = os.path.join(tempfile.gettempdir(), "matchusage-bench-export")
    python = sys.executable
    ours = [python, "-m", "matchusage"]
    jobs = {
        "report": (
            [*ours, "report", "--data", directory, "--now", NOW, "--format", "json"],
            [python, __file__, "--duckdb", "report", directory, spans, out + "-duckdb.csv"],
        ),
        "export": (
            [*ours, "export", "--data", directory, "--now", NOW, "-o", out + ".csv"],
            [python, __file__, "--duckdb", "export", directory, spans, out + "-duckdb.csv"],
        ),
    }
    print(
        f"{args.matches:,} matches in {directory}, {PERIODS} monthly periods, "
        f"DuckDB on {DUCKDB_THREADS} threads, best of {args.runs} (whole processes)"
    )
    print(
        f"{'job':<8} {'matchusage s':>13} {'DuckDB s':>9} {'ratio':>6} {'CPU s':>7} "
        f"{'DuckDB CPU s':>13} {'matchusage MB':>14} {'DuckDB MB':>10}"
    )
    for job, (mine, theirs) in jobs.items():
        if args.job not in (job, "both"):
            continue
        best_mine = best_theirs = cpu_mine = cpu_theirs = float("inf")
        rss_mine = rss_theirs = 0
        for _ in range(args.runs):
            seconds, cpu, rss, output = run(mine)
            best_mine, rss_mine = min(best_mine, seconds), max(rss_mine, rss)
            cpu_mine = min(cpu_mine, cpu)
            seconds, cpu, rss, other = run(theirs)
            best_theirs, rss_theirs = min(best_theirs, seconds), max(rss_theirs, rss)
            cpu_theirs = min(cpu_theirs, cpu)
        if job == "report":
            assert matchusage_figures(output) == json.loads(other), "the figures differ"
        else:
            with open(out + ".csv", encoding="utf-8") as file:
                rows = sum(1 for _ in file) - 1
            assert rows == json.loads(other)["rows"], (rows, other)
        # Time ratio: DuckDB's time over matchusage's (above 1: matchusage is faster).
        print(
            f"{job:<8} {best_mine:>13.2f} {best_theirs:>9.2f} {best_theirs / best_mine:>6.2f} "
            f"{cpu_mine:>7.2f} {cpu_theirs:>13.2f} "
            f"{rss_mine / 2**20:>14.0f} {rss_theirs / 2**20:>10.0f}"
        )


if __name__ == "__main__":
    main()
