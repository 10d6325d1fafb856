"""Contract tests: base test classes that an adapter's test suite subclasses.

Each class tests one port through its protocol only; subclass it and provide
the one fixture its docstring names. matchusage's own adapters pass them.
"""

from __future__ import annotations

from ._repository_contract import MatchRepositoryContract

__all__ = ["MatchRepositoryContract"]
