"""A local Spark session for the test suite (pyspark in local mode, Java 17).

The session's time zone is deliberately not UTC, so that any code that leans
on it (instead of exact microseconds) shows up in the tests.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SESSION_TIME_ZONE = "America/New_York"


def require_spark() -> None:
    """Skip the caller without pyspark or Java, but fail it under ``CI=true``."""
    missing = []
    try:
        import pyspark  # noqa: F401
    except ImportError:
        missing.append("pyspark (pip install 'matchusage[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        missing.append("Java 17 (Debian: openjdk-17-jre-headless)")
    if missing:
        message = "Spark tests need " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message, allow_module_level=True)


@contextmanager
def local_session(cores: int = 2) -> Iterator[SparkSession]:
    """A small local Spark session whose Python workers run this interpreter."""
    from pyspark.sql import SparkSession

    # Executors start Python workers: the same interpreter (and so the same
    # matchusage) as the tests.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("matchusage-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.sql.session.timeZone", SESSION_TIME_ZONE)
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
