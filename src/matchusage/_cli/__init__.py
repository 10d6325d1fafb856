"""The ``matchusage`` command line: parsing, rendering, and the bundled example."""

from __future__ import annotations

from ._main import main

__all__ = ["main"]
