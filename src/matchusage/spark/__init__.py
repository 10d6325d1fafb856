"""The multi-organization batch on Apache Spark, with the core's exact rules.

Periods are computed on the driver by each organization's
[`BillingCycle`][matchusage.BillingCycle]; the counting runs in Spark, in
native Spark SQL by default. Needs the ``spark`` extra
(``pip install "matchusage[spark]"``) and Java 17. See the guide page
"Billing on Spark".
"""

from __future__ import annotations

from ._batch import batch_active_users, batch_counts, collect_active_users, collect_counts
from ._export import EXPORT_FRAME_COLUMNS, batch_exports, write_export
from ._frames import MatchFrames
from ._periods import batch_periods
from ._report import usage_report

__all__ = [
    "MatchFrames",
    "EXPORT_FRAME_COLUMNS",
    "batch_active_users",
    "batch_counts",
    "batch_exports",
    "batch_periods",
    "collect_active_users",
    "collect_counts",
    "usage_report",
    "write_export",
]
