"""How much the usage report and the export cost on top of the core sweep.

Prints, for one synthetic organization, the time of the bare core count
(`active_users_by_period` over the same periods), of `usage_report` (one sweep
plus per-program users, attribution, new/dropped and the open period) and of
CSV and JSON Lines exports of every reported period (with a user directory),
with ratios to the core count measured in
the same run, and the export's cost per exported row. The report is measured
again from an in-memory repository, without and with a snapshot store in
which all six periods were billed (each period compared with its snapshot),
and the CSV export of that report (billed users, read from the snapshots). Run:
``python benchmarks/bench_report.py [matches]``.
"""

from __future__ import annotations

import io
import random
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import matchusage
from matchusage import BillingCycle, Match, Organization, OrganizationMatches, Program
from matchusage.billing import Plan, close_period
from matchusage.memory import InMemoryBillingProvider, InMemoryRepository, InMemorySnapshotStore

UTC = timezone.utc


def organization(count: int, seed: int = 7) -> list[Match]:
    """*count* matches over three years among count/2 users in 5 programs."""
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    users = [f"u{n}" for n in range(max(2, count // 2))]
    found = []
    for n in range(count):
        began = start + timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
        ended = None if rng.random() < 0.3 else began + timedelta(days=rng.uniform(1, 300))
        people = rng.sample(users, 4 if rng.random() < 0.1 else 2)
        found.append(Match(f"m{n}", f"p{n % 5}", people, began, ended))
    return found


def billed(
    matches: list[Match], cycle: BillingCycle, periods: list[matchusage.BillingPeriod]
) -> tuple[OrganizationMatches, InMemorySnapshotStore]:
    """The matches in a repository, and a snapshot store in which *periods* were closed."""
    repository = InMemoryRepository()
    organization = Organization("bench", "Bench", "UTC", cycle)
    repository.add(organization, *(Program(f"p{n}", "bench") for n in range(5)), *matches)
    provider = InMemoryBillingProvider(clock=lambda: periods[-1].end, document_format="text")
    provider.subscribe("bench", Plan("Team", "4", "EUR"))
    store = InMemorySnapshotStore()
    for period in periods:
        close_period(repository, provider, store, organization, period, period.end)
    return OrganizationMatches(repository, "bench"), store


def best(run: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def main(count: int) -> None:
    matches = organization(count)
    cycle = BillingCycle.monthly(datetime(2023, 1, 1, tzinfo=UTC))
    now = datetime(2025, 11, 20, tzinfo=UTC)
    periods = cycle.closed_periods(before=now, count=7)
    report = matchusage.usage_report(matches, cycle, now=now, periods=6)
    rows = sum(u.count for u in report.periods)

    directory = {
        user: matchusage.User(user, f"User {user}") for u in report.periods for user in u.users
    }

    core = best(lambda: matchusage.active_users_by_period(matches, periods))
    full = best(lambda: matchusage.usage_report(matches, cycle, now=now, periods=6))
    csv = best(lambda: matchusage.export_csv(report, io.StringIO(newline=""), users=directory), 1)
    jsonl = best(lambda: matchusage.export_jsonl(report, io.StringIO(), users=directory), 1)
    source, store = billed(matches, cycle, periods[1:])
    from_repository = best(lambda: matchusage.usage_report(source, cycle, now=now, periods=6))
    with_store = best(
        lambda: matchusage.usage_report(source, cycle, now=now, periods=6, snapshots=store)
    )
    billed_report = matchusage.usage_report(source, cycle, now=now, periods=6, snapshots=store)
    billed_csv = best(
        lambda: matchusage.export_csv(billed_report, io.StringIO(newline=""), users=directory), 1
    )

    print(f"{count:,} matches, 6 monthly periods, {rows:,} exported rows")
    print(f"{'what':<42} {'seconds':>9} {'x core':>7} {'us/row':>7}")
    for name, seconds, per_row in [
        ("core count (active_users_by_period, 7)", core, False),
        ("usage_report (6 + previous + open)", full, False),
        ("export_csv of the report", csv, True),
        ("export_jsonl of the report", jsonl, True),
        ("usage_report from a repository", from_repository, False),
        ("the same, with snapshots (6 billed)", with_store, False),
        ("export_csv of it (billed users)", billed_csv, True),
    ]:
        micros = f"{seconds / rows * 1e6:>7.2f}" if per_row else f"{'':>7}"
        print(f"{name:<42} {seconds:>9.3f} {seconds / core:>7.1f} {micros}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
