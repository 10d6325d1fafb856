"""The SQL adapters: a match repository that counts inside the database, and a snapshot store.

Both run on SQLAlchemy 2 Core and need the ``sql`` extra
(``pip install "matchusage[sql]"``; ``postgresql`` adds the psycopg driver).
See the guide pages "Plug in your own tables" and "Counting inside the database".
"""

from __future__ import annotations

from ._mapping import (
    MatchTable,
    OrganizationTable,
    ParticipantTable,
    ProgramTable,
    SchemaMapping,
    UserTable,
)
from ._repository import SQLRepository
from ._results import BatchResults
from ._snapshots import SQLSnapshotStore

__all__ = [
    "BatchResults",
    "MatchTable",
    "OrganizationTable",
    "ParticipantTable",
    "ProgramTable",
    "SQLRepository",
    "SQLSnapshotStore",
    "SchemaMapping",
    "UserTable",
]
