"""SQL adapters (SQLAlchemy 2 Core): ``pip install "matchusage[sql]"``."""

from __future__ import annotations

from ._snapshots import SQLSnapshotStore

__all__ = ["SQLSnapshotStore"]
