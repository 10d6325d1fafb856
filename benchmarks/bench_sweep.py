"""Benchmark the core sweep over ready-made `Match` objects against a naive loop.

Run: ``python benchmarks/bench_sweep.py [--matches 1000000]``

Prints, from one run on the same synthetic data: the time to build the
`Match` objects, the sweep time and matches per second, the extra memory
the sweep allocates at its peak, and the ratio to a naive per-period loop.
Both approaches' results are checked equal before any figure is printed.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from matchusage import BillingCycle, BillingPeriod, Match, active_users_by_period

T = TypeVar("T")

UTC = timezone.utc
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
YEARS = 3


def generate(
    count: int, seed: int = 1
) -> list[tuple[str, str, list[str], datetime, datetime | None]]:
    """Realistic match rows: mostly one mentor and one mentee, some groups, 30% ongoing."""
    rng = random.Random(seed)
    users = max(1000, count // 2)
    first = NOW - timedelta(days=365 * YEARS)
    span = (NOW - first).total_seconds()
    rows = []
    for n in range(count):
        size = 2 if rng.random() < 0.9 else rng.randint(3, 7)
        people = [f"user-{rng.randrange(users)}" for _ in range(size)]
        start = first + timedelta(seconds=rng.uniform(0, span))
        end = None
        if rng.random() >= 0.3:
            end = start + timedelta(days=rng.expovariate(1 / 120))
            if end > NOW:
                end = NOW - timedelta(seconds=rng.uniform(0, 3600))
                end = max(end, start)
        rows.append((f"match-{n}", f"program-{n % 7}", people, start, end))
    return rows


def naive(
    matches: list[Match], periods: list[BillingPeriod]
) -> dict[BillingPeriod, frozenset[str]]:
    """The obvious loop: every period looks at every match (N x P)."""
    result = {}
    for period in periods:
        users: set[str] = set()
        for m in matches:
            if (
                m.started_at < period.end
                and (m.ended_at is None or m.ended_at > period.start)
                and (m.ended_at != m.started_at)
            ):
                users.update(m.participants)
        result[period] = frozenset(users)
    return result


def timed(function: Callable[..., T], *args: Any) -> tuple[T, float]:
    gc.collect()
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=1_000_000)
    parser.add_argument("--periods", type=int, default=6, help="monthly periods before now")
    parser.add_argument("--repeat", type=int, default=3, help="best of N sweep runs")
    args = parser.parse_args()

    rows = generate(args.matches)
    matches, build = timed(lambda: [Match(*row) for row in rows])
    # Memory of the Match objects alone: the rows' strings and datetimes exist already.
    sample = rows[:100_000]
    gc.collect()
    tracemalloc.start()
    kept = [Match(*row) for row in sample]
    per_match = tracemalloc.get_traced_memory()[0] / len(kept)
    tracemalloc.stop()
    del kept
    periods = BillingCycle.monthly(datetime(2023, 1, 15, tzinfo=UTC)).closed_periods(
        before=NOW, count=args.periods
    )

    swept, sweep_time = timed(active_users_by_period, matches, periods)
    for _ in range(args.repeat - 1):
        sweep_time = min(sweep_time, timed(active_users_by_period, matches, periods)[1])
    reference, naive_time = timed(naive, matches, periods)
    assert reference == swept, "sweep and naive loop disagree"

    gc.collect()
    tracemalloc.start()
    active_users_by_period(matches, periods)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    n = len(matches)
    print(
        f"matches: {n:,}   periods: {len(periods)}   active users per period: "
        + ", ".join(f"{len(u):,}" for u in swept.values())
    )
    print(f"{'step':<34}{'seconds':>10}{'per match':>14}{'matches/s':>14}")
    for label, seconds in [
        ("build Match objects", build),
        ("sweep (active_users_by_period)", sweep_time),
        ("naive per-period loop", naive_time),
    ]:
        print(f"{label:<34}{seconds:>10.3f}{seconds / n * 1e6:>11.3f} us{n / seconds:>14,.0f}")
    print(f"sweep speed-up over the naive loop: {naive_time / sweep_time:.1f}x")
    print(f"memory of a Match (beyond its given fields): {per_match:.0f} bytes")
    print(
        f"sweep peak extra memory: {peak / 2**20:.1f} MiB "
        f"({peak / 2**20 / (n / 1e6):.1f} MiB per million matches)"
    )


if __name__ == "__main__":
    main()
