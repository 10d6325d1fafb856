"""Columnar engine, object path and batch against DuckDB, polars and pandas.

    pip install -e ".[numpy,benchmark]"
    python benchmarks/bench_columnar.py              # 100k, 1M and 5M matches
    python benchmarks/bench_columnar.py --sizes 100000,1000000
    python benchmarks/bench_columnar.py --sizes 1000000 --organizations 1000 \
        --only numpy,DuckDB --org-skew 1.5 --group-sizes 2:0.4,5:0.4,12:0.2

Two scenarios on the same synthetic data (``datagen.py``, fixed seed): one
organization with 6 monthly periods, and 1,000 organizations each with its
own anchor, time zone and months per period (6 periods each). Every
approach's counts are checked equal before any time is printed. The shape
options (``--org-skew``, ``--programs``, ``--users-per-match``,
``--group-sizes``) vary the data; ``--organizations`` and ``--only`` pick the
scenarios and approaches to run.

Time: the best of up to 3 runs (one run when it takes over 2 s). Memory: the
peak resident memory above what the process held just before the run
(Linux ``VmHWM`` after resetting it through ``/proc/self/clear_refs``), so it
counts native allocations (numpy, DuckDB, polars) as well as Python objects;
the input (columns, DataFrames, Match objects) is loaded beforehand and not
counted.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import platform
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

import matchusage
from matchusage import Match, batch_periods, columnar_counts
from matchusage._batch import objects_by_plan

sys.path.insert(0, os.path.dirname(__file__))

import datagen
import peers

Counts = dict[tuple[int, int], int]
PYTHON_COLUMNAR_MAX = 1_000_000  # the pure-Python engine is slow beyond this
OBJECTS = "matchusage objects (Sweep per organization)"
NUMPY = "matchusage columnar, numpy (1 thread)"


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        found = re.search(rf"{field}:\s+(\d+) kB", status.read())
    return int(found.group(1)) * 1024 if found else 0


def _release() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # glibc: give freed memory back
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure(run: Callable[[], Counts]) -> tuple[Counts, float, float]:
    """The result, the best time (s) and the peak extra memory (bytes) of *run*."""
    _release()
    base = _status("VmRSS")
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the high-water mark
    started = time.perf_counter()
    result = run()
    best = time.perf_counter() - started
    extra = max(0, _status("VmHWM") - base)
    for _ in range(2 if best < 2 else 0):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return result, best, extra


def _by_code(data: datagen.Dataset, found: dict[str, dict[Any, int]]) -> Counts:
    codes = {org: code for code, org in enumerate(data.organization_ids)}
    out = {}
    for org, spans in found.items():
        order = {p: n for n, p in enumerate(data.plan[org])}
        for period, count in spans.items():
            if count:
                out[(codes[org], order[period])] = count
    return out


def _count(found: dict[str, dict[Any, frozenset[str]]]) -> dict[str, dict[Any, int]]:
    return {org: {p: len(users) for p, users in spans.items()} for org, spans in found.items()}


def naive_loop(
    matches: Iterable[Match], organization_of: dict[str, str], plan: dict[str, list[Any]]
) -> dict[str, dict[Any, int]]:
    """What one writes without the library: every period scans every match."""
    grouped: dict[str, list[Match]] = defaultdict(list)
    for match in matches:
        grouped[organization_of[match.program_id]].append(match)
    out: dict[str, dict[Any, int]] = {}
    for org, periods in plan.items():
        out[org] = {}
        for period in periods:
            users: set[str] = set()
            for match in grouped.get(org, ()):
                ended = match.ended_at
                if match.started_at < period.end and (
                    ended is None or (ended > period.start and ended > match.started_at)
                ):
                    users |= match.participants
            out[org][period] = len(users)
    return out


def approaches(
    data: datagen.Dataset, size: int
) -> Iterable[tuple[str, Callable[[], Callable[[], Counts]]]]:
    """(name, prepare) pairs: prepare loads the input untimed and returns the timed run."""
    columns = data.columns()
    plan = data.plan
    yield (
        NUMPY,
        lambda: lambda: _by_code(data, columnar_counts(columns, plan, engine="numpy")),
    )
    if size <= PYTHON_COLUMNAR_MAX:
        yield (
            "matchusage columnar, pure Python",
            lambda: lambda: _by_code(data, columnar_counts(columns, plan, engine="python")),
        )

    def objects() -> Callable[[], Counts]:
        matches = data.matches()
        programs = data.programs()
        return lambda: _by_code(data, _count(objects_by_plan(matches, programs, plan)))

    yield OBJECTS, objects

    def naive() -> Callable[[], Counts]:
        matches = data.matches()
        organization_of = {p.id: p.organization_id for p in data.programs()}
        return lambda: _by_code(data, naive_loop(matches, organization_of, plan))

    yield "naive per-period loop (objects)", naive
    for peer in (
        peers.DuckDB,
        peers.PolarsParticipantsFirst,
        peers.PolarsPeriodsFirst,
        peers.Pandas,
    ):

        def load(peer: Any = peer) -> Callable[[], Counts]:
            return peer(data).count  # type: ignore[no-any-return]

        yield peer.name, load


def _scenario(organizations: int) -> str:
    return f"{organizations:,} org{'s' if organizations > 1 else ''}"


def _shape(args: argparse.Namespace) -> datagen.Shape:
    low, _, high = args.programs.partition("-")
    groups = {}
    for pair in args.group_sizes.split(","):
        size, _, probability = pair.partition(":")
        groups[int(size)] = float(probability)
    return datagen.Shape(
        org_skew=args.org_skew,
        programs=(int(low), int(high or low)),
        users_per_match=args.users_per_match,
        group_sizes=groups,
    )


def _arguments() -> argparse.Namespace:
    default = datagen.Shape()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,5000000")
    parser.add_argument("--organizations", default="1,1000", help="scenarios, comma-separated")
    parser.add_argument(
        "--only", default="", help="approaches whose name contains one of these (comma-separated)"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--org-skew",
        type=float,
        default=default.org_skew,
        help="sigma of the log-normal organization sizes (0: all alike)",
    )
    parser.add_argument(
        "--programs", default="1-1", help="programs per organization, LOW-HIGH (uniform)"
    )
    parser.add_argument(
        "--users-per-match",
        type=float,
        default=default.users_per_match,
        help="size of each organization's user pool, per match it holds",
    )
    parser.add_argument(
        "--group-sizes",
        default=",".join(f"{size}:{p:g}" for size, p in default.group_sizes.items()),
        help="participants per match with probabilities, SIZE:P,...",
    )
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    sizes = [int(s) for s in args.sizes.split(",")]
    scenarios = {_scenario(int(n)): int(n) for n in args.organizations.split(",")}
    wanted = [w for w in args.only.split(",") if w]
    shape = _shape(args)
    load_before = os.getloadavg()

    rows = []
    for scenario, organizations in scenarios.items():
        for size in sizes:
            data = datagen.generate(size, organizations, seed=args.seed, shape=shape)
            largest = np.bincount(data.organization).max()
            print(
                f"  generated {scenario}, {size:,}: largest organization {largest:,} matches, "
                f"{len(np.unique(data.participant_user)):,} users, "
                f"{len(data.participant_user) / size:.2f} participants per match",
                file=sys.stderr,
                flush=True,
            )
            results: dict[str, Counts] = {}
            for name, prepare in approaches(data, size):
                if wanted and not any(w in name for w in wanted):
                    continue
                run = prepare()
                result, best, extra = measure(run)
                del run
                _release()
                results[name] = result
                rows.append((scenario, size, name, best, extra))
                print(f"  ran {scenario:>10} {size:>9,} {name}", file=sys.stderr, flush=True)
            reference = results.get(OBJECTS) or next(iter(results.values()))
            for name, result in results.items():
                if result != reference:
                    differ = sorted(set(result.items()) ^ set(reference.items()))[:5]
                    raise SystemExit(f"{name} disagrees at {scenario}, {size}: {differ}")
            total = sum(reference.values())
            print(
                f"  checked {scenario}, {size:,}: {len(results)} approaches agree "
                f"({total:,} active user-periods)",
                file=sys.stderr,
            )

    print(
        f"matchusage {matchusage.__version__ if hasattr(matchusage, '__version__') else ''} | "
        f"Python {platform.python_version()} | numpy {np.__version__} | "
        f"{_versions()} | {os.cpu_count()} cores | "
        f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    print(f"Data: seed {args.seed}, {shape.describe()}.")
    print()
    print("| scenario | matches | approach | time (ms) | matches/s | peak extra MB | x best |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    fastest: dict[tuple[str, int], float] = {}
    for scenario, size, _, seconds, _ in rows:
        key = (scenario, size)
        fastest[key] = min(fastest.get(key, seconds), seconds)
    for scenario, size, name, seconds, extra in rows:
        print(
            f"| {scenario} | {size:,} | {name} | {seconds * 1000:,.1f} | "
            f"{size / seconds / 1e6:,.2f}M | {extra / 2**20:,.0f} | "
            f"{seconds / fastest[(scenario, size)]:,.1f} |"
        )
    data = datagen.generate(1000, 1000, seed=args.seed)
    started = time.perf_counter()
    batch_periods(data.organizations, now=datagen.NOW, count=datagen.PERIODS)
    took = (time.perf_counter() - started) * 1000
    print()
    print(
        f"Not in the times above: the periods themselves (batch_periods, each organization's "
        f"cycle.closed_periods), {took:.0f} ms for 1,000 organizations."
    )
    _targets(rows, scenarios)


def _versions() -> str:
    import duckdb
    import pandas
    import polars

    return (
        f"DuckDB {duckdb.__version__} | polars {polars.__version__} | pandas {pandas.__version__}"
    )


def _targets(rows: list[tuple[str, int, str, float, float]], scenarios: Iterable[str]) -> None:
    times = {(scenario, size, name): (t, m) for scenario, size, name, t, m in rows}
    print()
    print("Targets:")
    for scenario in scenarios:
        for size in sorted({r[1] for r in rows}):
            numpy_t = times.get((scenario, size, NUMPY))
            duck = times.get((scenario, size, peers.DuckDB.name))
            objects = times.get((scenario, size, OBJECTS))
            naive = times.get((scenario, size, "naive per-period loop (objects)"))
            if numpy_t and duck:
                print(
                    f"- {scenario}, {size:,}: columnar {duck[0] / numpy_t[0]:.1f}x faster than "
                    f"DuckDB (target >= 5x), {size / numpy_t[0] / 1e6:.1f}M matches/s"
                )
            if objects and naive:
                print(
                    f"- {scenario}, {size:,}: objects {objects[0] / size * 1e6:.2f} us/match "
                    f"(target <= 0.5 at 1M), {naive[0] / objects[0]:.1f}x faster than the naive "
                    f"loop (target >= 3x), {objects[1] / 2**20 / (size / 1e6):.0f} MB extra per "
                    "million matches (target <= 150)"
                )


if __name__ == "__main__":
    main()
