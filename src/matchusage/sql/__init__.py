"""The SQL adapter: a match repository on SQLAlchemy 2 Core that counts inside the database.

Needs the ``sql`` extra (``pip install "matchusage[sql]"``; ``postgresql`` adds
the psycopg driver). See the guide pages "Plug in your own tables" and
"Scaling".
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

__all__ = [
    "MatchTable",
    "OrganizationTable",
    "ParticipantTable",
    "ProgramTable",
    "SQLRepository",
    "SchemaMapping",
    "UserTable",
]
