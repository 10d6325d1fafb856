"""The grouped path: each organization's participations counted by the columnar engine.

Spark shuffles the participant rows (with their match's bounds) by
organization and hands each organization's rows to
[`columnar_counts`][matchusage.columnar_counts] as Arrow columns
(``applyInArrow``). One shuffle of participant rows replaces the native
path's shuffle of (organization, period, user) rows and its distinct count;
in exchange each organization is counted whole on one executor, which needs
matchusage (and numpy, for speed) installed there.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame

from .._columnar import MatchColumns, columnar_active_users, columnar_counts
from .._periods import BillingPeriod
from .._time import from_micros
from ._frames import MatchFrames, canonical_participants
from ._overlaps import in_window
from ._periods import Plan

_Spans = dict[str, list[tuple[int, int, int]]]


def grouped(frames: MatchFrames, periods: DataFrame, planned: Plan, *, ids: bool) -> DataFrame:
    """Counts (``active_users``) or users (``user_id``) per (organization, period index).

    Only the organizations and periods with someone active have rows.
    """
    matches = in_window(frames, periods)
    rows = matches.join(canonical_participants(frames), "match_id").select(
        "organization_id", "start_us", "end_us", "user_id"
    )
    spans: _Spans = {
        org: [(index, p._start_us, p._end_us) for index, p in found]
        for org, found in planned.items()
    }

    # Spark tells the function's form (keys and a table) from its type hints.
    def count(key: tuple[pa.Scalar, ...], table: pa.Table) -> pa.Table:
        return count_organization(spans, ids, key, table)

    value = "user_id string" if ids else "active_users bigint"
    schema = f"organization_id string, period_index bigint, {value}"
    with warnings.catch_warnings():
        # This path hands Arrow tables to the engine and never touches pandas.
        warnings.filterwarnings(
            "ignore", "PySpark does not yet fully support pandas", FutureWarning
        )
        return rows.groupBy("organization_id").applyInArrow(count, schema)


def count_organization(spans: _Spans, ids: bool, key: tuple[Any, ...], table: pa.Table) -> pa.Table:
    """Run on an executor: one organization's rows through the columnar engine."""
    organization = key[0].as_py()
    found = spans[organization]
    periods = [BillingPeriod(from_micros(s), from_micros(e)) for _, s, e in found]
    users = pc.dictionary_encode(table.column("user_id").combine_chunks())
    size = table.num_rows
    columns = MatchColumns(
        start_us=table.column("start_us").to_numpy(),
        end_us=table.column("end_us").to_numpy(),
        organization=np.zeros(size, dtype=np.int64),
        # Each participant row stands for its match: OR-ing the same match's
        # bits once per participant gives the same masks.
        participant_match=np.arange(size, dtype=np.int64),
        participant_user=users.indices.to_numpy(),
        organization_ids=[organization],
        # Integer ids are reported as their decimal strings, as everywhere.
        user_ids=pc.cast(users.dictionary, pa.string()).to_pylist(),
    )
    plan = {organization: periods}
    out: dict[str, list[Any]] = {"organization_id": [], "period_index": []}
    if ids:
        out["user_id"] = []
        by_period = columnar_active_users(columns, plan)[organization]
        for (index, _, _), people in zip(found, by_period.values(), strict=True):
            out["user_id"].extend(sorted(people))
            out["period_index"].extend([index] * len(people))
    else:
        counted = columnar_counts(columns, plan)[organization]
        out["period_index"] = [index for index, _, _ in found]
        out["active_users"] = list(counted.values())
    out["organization_id"] = [organization] * len(out["period_index"])
    return pa.table(out)
