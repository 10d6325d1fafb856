"""The bundled example organization, loaded from the package's data files."""

from __future__ import annotations

from importlib import resources

import pendulum

from .._loading import Traversable, load_directory
from ..memory._repository import InMemoryRepository

EXAMPLE_NOW = pendulum.datetime(2026, 11, 20, 9, 30, tz="Europe/Berlin")
"""The instant the example's figures are computed at."""

EXAMPLE_ORGANIZATION_ID = "northwind"


def example_data() -> Traversable:
    """The directory of the example's files, in the input format of ``docs/input-format.md``."""
    return resources.files("matchusage") / "_data" / EXAMPLE_ORGANIZATION_ID


def example_repository() -> InMemoryRepository:
    """An organization with three programs, 300 users and two years of matches.

    Mostly one-to-one matches, some group matches, matches that end in the
    middle of a period and ongoing ones, loaded from the files bundled in
    the package (written once by ``scripts/generate_example_data.py``).
    """
    return load_directory(example_data())
