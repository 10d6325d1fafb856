"""Each organization's billing periods as a small DataFrame, computed on the driver."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .._batch import batch_periods as core_batch_periods
from .._model import Organization
from .._periods import BillingPeriod
from ..exceptions import InvalidRecordError

PERIOD_SCHEMA = "organization_id string, period_index bigint, start_us bigint, end_us bigint"

Plan = dict[str, list[tuple[int, BillingPeriod]]]
"""Organization id -> its periods, oldest first, each with its index in the cycle."""


def organization_list(organizations: Iterable[Organization]) -> list[Organization]:
    """The organizations, checked, without repeated ids (the last one wins, as in a dict)."""
    if isinstance(organizations, (str, Mapping)) or not isinstance(organizations, Iterable):
        raise InvalidRecordError("batch", "organizations", organizations, "Organization objects")
    found = {}
    for organization in organizations:
        if not isinstance(organization, Organization):
            raise InvalidRecordError("batch", "organizations", organization, "an Organization")
        found[organization.id] = organization
    return list(found.values())


def plan(organizations: Iterable[Organization], *, now: datetime, count: int) -> Plan:
    """The last *count* closed periods of each organization at *now*, with their indexes.

    The periods are the core's, from each organization's own
    [`BillingCycle`][matchusage.BillingCycle]: month ends, DST and anchors
    come out exactly as everywhere else in matchusage.
    """
    chosen = organization_list(organizations)
    periods = core_batch_periods(chosen, now=now, count=count)
    found: Plan = {}
    for organization in chosen:
        spans = periods[organization.id]
        first = organization.cycle.index_of(spans[0].start) if spans else 0
        found[organization.id] = [(first + n, period) for n, period in enumerate(spans)]
    return found


def local_frame(spark: SparkSession, rows: list[tuple[Any, ...]], schema: str) -> DataFrame:
    """A DataFrame of a few rows made on the driver.

    Built from an Arrow table: a local relation that needs no Python worker
    to read (Python rows would be unpickled by one on the executors).
    """
    struct = T._parse_datatype_string(schema)
    assert isinstance(struct, T.StructType)
    arrow = {"string": pa.string(), "bigint": pa.int64()}
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(struct.fields)
    table = pa.table(
        {
            field.name: pa.array(values, arrow[field.dataType.simpleString()])
            for field, values in zip(struct.fields, columns, strict=True)
        }
    )
    return spark.createDataFrame(table, struct)


def periods_frame(spark: SparkSession, planned: Plan) -> DataFrame:
    """The planned periods as a DataFrame: bounds as exact microseconds and as timestamps."""
    rows = [
        (organization, index, period._start_us, period._end_us)
        for organization, spans in planned.items()
        for index, period in spans
    ]
    frame = local_frame(spark, rows, PERIOD_SCHEMA)
    return frame.select(
        "organization_id",
        "period_index",
        F.timestamp_micros("start_us").alias("period_start"),
        F.timestamp_micros("end_us").alias("period_end"),
        "start_us",
        "end_us",
    )


def batch_periods(
    spark: SparkSession, organizations: Iterable[Organization], *, now: datetime, count: int = 6
) -> DataFrame:
    """The last *count* closed periods of each organization, as a Spark DataFrame.

    One row per (organization, period), computed on the driver by each
    organization's own [`BillingCycle`][matchusage.BillingCycle], the same
    periods as [`matchusage.batch_periods`][matchusage.batch_periods].

    Columns: ``organization_id`` (string), ``period_index`` (the period's
    number in its cycle: period 0 starts at the anchor), ``period_start`` and
    ``period_end`` (``TIMESTAMP``, instants; ``[start, end)``), and
    ``start_us`` and ``end_us`` (the same bounds in microseconds since the
    epoch, UTC, exact whatever the session time zone).

    Args:
        spark: The Spark session.
        organizations: The organizations to bill.
        now: The instant the batch runs at (timezone-aware); a period ending
            exactly at *now* is closed.
        count: How many closed periods per organization.

    Raises:
        matchusage.exceptions.InvalidRecordError: *now* is naive or *count*
            is negative.
    """
    return periods_frame(spark, plan(organizations, now=now, count=count))
