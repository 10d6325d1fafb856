"""matchusage.spark on local Spark (1 and 2 cores) beside the columnar engine, same data, same run.

    pip install -e ".[numpy,spark]"        # and Java 17
    python benchmarks/bench_spark.py                      # 1M and 5M matches, 1,000 organizations
    python benchmarks/bench_spark.py --sizes 1000000 --cores 1,2

The data is ``datagen.py``'s (fixed seed): 1,000 organizations, each with its
own anchor, time zone and months per period, 6 closed periods each. It is
written once to Parquet (matches: ``match_id``, ``organization_id``,
``started_at``, ``ended_at`` as ``TIMESTAMP``, ``NULL`` while ongoing;
participants: ``match_id``, ``user_id``), and every Spark run reads it from
there, as a billing job reads its lake. Each Spark approach runs the whole
batch and brings the 6,000 counts to the driver; the counts of every approach
are checked equal to the columnar engine's before anything is printed.

Spark's times are the best of 2 runs after a warm-up run on the same session
(JIT, Python workers started); above 2,000,000 matches, one run without
warm-up and without the checked variant. The columnar engine's: best of 3.
``local[N]`` runs the driver and N executor threads in this process's JVM:
the same plan a cluster runs, on N cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import matchusage
from matchusage import BillingPeriod, MatchColumns, columnar_counts
from matchusage._time import FOREVER

sys.path.insert(0, os.path.dirname(__file__))

import datagen

Counts = dict[str, dict[BillingPeriod, int]]
ORGANIZATIONS = 1000


def write_parquet(data: datagen.Dataset, directory: Path) -> None:
    """The dataset as two Parquet files, the shape a lake holds."""
    size = len(data.start_us)
    ongoing = data.end_us == FOREVER
    ids = np.array(data.organization_ids, dtype=object)[data.organization]
    matches = pa.table(
        {
            "match_id": pa.array(np.arange(size, dtype=np.int64)),
            "organization_id": pa.array(ids, pa.string()),
            "started_at": pa.array(data.start_us, pa.timestamp("us", tz="UTC")),
            "ended_at": pa.array(
                np.where(ongoing, 0, data.end_us), pa.timestamp("us", tz="UTC"), mask=ongoing
            ),
        }
    )
    participants = pa.table({"match_id": data.participant_match, "user_id": data.participant_user})
    pq.write_table(matches, directory / "matches.parquet")
    pq.write_table(participants, directory / "participants.parquet")


def columnar_from_parquet(data: datagen.Dataset, directory: Path) -> Callable[[], Counts]:
    """The columnar engine including reading the same Parquet files with pyarrow."""

    def run() -> Counts:
        matches = pq.read_table(directory / "matches.parquet")
        people = pq.read_table(directory / "participants.parquet")
        organization = matches.column("organization_id").combine_chunks().dictionary_encode()
        ended = matches.column("ended_at").cast(pa.int64()).fill_null(FOREVER)
        columns = MatchColumns(
            start_us=matches.column("started_at").cast(pa.int64()).to_numpy(),
            end_us=ended.to_numpy(),
            organization=organization.indices.to_numpy(),
            organization_ids=organization.dictionary.to_pylist(),
            # Match ids are the row numbers here, as datagen writes them.
            participant_match=people.column("match_id").to_numpy(),
            participant_user=people.column("user_id").to_numpy(),
        )
        return columnar_counts(columns, data.plan)

    return run


def best_of(runs: int, run: Callable[[], Any]) -> tuple[Any, float]:
    result, best = None, float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return result, best


def spark_session(cores: int) -> Any:
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(f"bench-spark-{cores}")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "4g")
        # A handful of partitions per core; adaptive execution merges small ones.
        .config("spark.sql.shuffle.partitions", str(8 * cores))
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def spark_approaches(
    spark: Any, data: datagen.Dataset, directory: Path
) -> list[tuple[str, Callable[[], Counts]]]:
    from matchusage import spark as mus

    frames = mus.MatchFrames(
        spark.read.parquet(str(directory / "matches.parquet")),
        spark.read.parquet(str(directory / "participants.parquet")),
    )
    organizations, now, count = data.organizations, datagen.NOW, datagen.PERIODS

    def counts(method: str, check: bool) -> Callable[[], Counts]:
        def run() -> Counts:
            found = mus.batch_counts(
                frames,
                method=method,  # type: ignore[arg-type]
                check=check,
                now=now,
                organizations=organizations,
                count=count,
            )
            return mus.collect_counts(found, now=now, organizations=organizations, count=count)

        return run

    return [
        ("Spark SQL (native, default)", counts("sql", False)),
        ("Spark SQL with the input checks", counts("sql", True)),
        ("Spark applyInArrow + columnar engine", counts("arrow", False)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,5000000")
    parser.add_argument("--cores", default="1,2")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    sizes = [int(s) for s in args.sizes.split(",")]
    cores = [int(c) for c in args.cores.split(",")]
    load_before = os.getloadavg()
    rows: list[tuple[int, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        for size in sizes:
            data = datagen.generate(size, ORGANIZATIONS, seed=args.seed)
            directory = Path(tmp) / str(size)
            directory.mkdir()
            write_parquet(data, directory)
            reference, took = best_of(3, partial(columnar_counts, data.columns(), data.plan))
            rows.append((size, "matchusage columnar, numpy (1 thread, in memory)", took))
            found, took = best_of(3, columnar_from_parquet(data, directory))
            _agree(found, reference, "columnar from Parquet", size)
            rows.append((size, "matchusage columnar, numpy (1 thread, reading Parquet)", took))
            for n in cores:
                spark = spark_session(n)
                try:
                    approaches = spark_approaches(spark, data, directory)
                    large = size > 2_000_000
                    if large:  # once each, and the checks' cost is known from the smaller size
                        approaches = [a for a in approaches if "checks" not in a[0]]
                    else:
                        approaches[0][1]()  # warm-up: JIT, Python workers, Parquet footers
                    for name, run in approaches:
                        found, took = best_of(1 if large else 2, run)
                        _agree(found, reference, name, size)
                        rows.append((size, f"{name}, local[{n}]", took))
                        print(f"  ran {size:>9,} {name} local[{n}]: {took:.1f} s", file=sys.stderr)
                finally:
                    spark.stop()

    import pyspark

    print(
        f"matchusage {getattr(matchusage, '__version__', '')} | Python "
        f"{platform.python_version()} | pyspark {pyspark.__version__} | numpy {np.__version__} | "
        f"{os.cpu_count()} cores | {ORGANIZATIONS:,} organizations, "
        f"{datagen.PERIODS} periods each | "
        f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    print()
    print("| matches | approach | time (s) | matches/s | x columnar |")
    print("| ---: | --- | ---: | ---: | ---: |")
    base = {size: took for size, name, took in rows if name.endswith("in memory)")}
    for size, name, took in rows:
        print(
            f"| {size:,} | {name} | {took:,.2f} | {size / took / 1e6:,.2f}M | "
            f"{took / base[size]:,.1f} |"
        )
    _scaling(rows, cores)


def _agree(found: Counts, reference: Counts, name: str, size: int) -> None:
    if found != reference:
        raise SystemExit(f"{name} disagrees with the columnar engine at {size:,} matches")


def _scaling(rows: list[tuple[int, str, float]], cores: list[int]) -> None:
    """How each Spark approach speeds up from the fewest to the most cores."""
    if len(cores) < 2:
        return
    low, high = min(cores), max(cores)
    times = {(size, name): took for size, name, took in rows}
    print()
    print(f"Speed-up from local[{low}] to local[{high}]:")
    for size, name, took in rows:
        if name.endswith(f", local[{low}]"):
            approach = name.removesuffix(f", local[{low}]")
            other = times.get((size, f"{approach}, local[{high}]"))
            if other:
                print(f"- {approach}, {size:,} matches: {took / other:.2f}x")


if __name__ == "__main__":
    main()
