"""In-memory implementations of every matchusage port: the embedded defaults.

They are complete implementations, not mocks: the library's own tests use
them, and so can yours.
"""

from __future__ import annotations

from ._memory_repository import InMemoryRepository

__all__ = ["InMemoryRepository"]
