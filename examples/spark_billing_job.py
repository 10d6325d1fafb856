"""A Spark billing job: active-user counts and exports of every organization, from the lake.

    spark-submit examples/spark_billing_job.py \\
        --matches s3://lake/matches --participants s3://lake/participants \\
        --organizations organizations.jsonl --now 2026-07-01T00:00:00+00:00 \\
        --output s3://billing/2026-07

Reads matches (``match_id``, ``organization_id``, ``started_at``, ``ended_at``)
and participants (``match_id``, ``user_id``) from Parquet, and the organizations
from a JSON Lines file on the driver, one organization a line in the format of
``matchusage.load_organization``. Writes, under ``--output``:

- ``counts/``: Parquet, one row per organization and closed period, with
  ``active_users``, the quantity to invoice;
- ``exports/``: the active users of each period with their evidence (the
  matches that make them active), one directory per organization, as Parquet
  or spreadsheet-safe CSV (``--export-format``).

It prints the total number of active user-periods and of organizations.
"""

from __future__ import annotations

import argparse
import io
from datetime import datetime
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from matchusage import Organization, load_organization
from matchusage import spark as mus


def read_organizations(path: str) -> list[Organization]:
    """The organizations of a JSON Lines file, one ``load_organization`` object a line."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [load_organization(io.StringIO(line)) for line in lines if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", required=True, help="Parquet path of the matches")
    parser.add_argument("--participants", required=True, help="Parquet path of the participants")
    parser.add_argument("--organizations", required=True, help="JSON Lines file (driver side)")
    parser.add_argument("--now", required=True, help="ISO 8601 instant with an offset")
    parser.add_argument("--periods", type=int, default=6, help="closed periods per organization")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--method", choices=["sql", "arrow"], default="sql")
    parser.add_argument("--export-format", choices=["parquet", "csv"], default="parquet")
    args = parser.parse_args()

    spark = (
        SparkSession.builder.appName("matchusage-billing")
        # Only changes how timestamps are shown and written; the figures are exact either way.
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    frames = mus.MatchFrames(
        matches=spark.read.parquet(args.matches),
        participants=spark.read.parquet(args.participants),
    )
    organizations = read_organizations(args.organizations)
    batch = {
        "now": datetime.fromisoformat(args.now),
        "organizations": organizations,
        "count": args.periods,
    }

    # The input is checked once, by the first job; the second reuses that.
    counts = mus.batch_counts(frames, method=args.method, **batch)
    counts.write.mode("overwrite").parquet(f"{args.output}/counts")
    exports = mus.batch_exports(frames, check=False, **batch)
    mus.write_export(
        exports,
        f"{args.output}/exports",
        format=args.export_format,
        mode="overwrite",
        by_organization=True,
    )

    written = spark.read.parquet(f"{args.output}/counts")
    total = written.agg(F.sum("active_users")).first()
    print(f"{total[0] if total else 0} active user-periods, {len(organizations)} organizations")
    spark.stop()


if __name__ == "__main__":
    main()
