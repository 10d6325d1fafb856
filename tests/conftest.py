"""Shared fixtures: Hypothesis profiles, PostgreSQL, SQL engines, Spark, Chromium."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from . import _browser, _postgresql, _spark

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from pyspark.sql import SparkSession

settings.register_profile(
    "default",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """The SQLAlchemy URL of a PostgreSQL 15 cluster started for this test session.

    Skips when the server binaries are missing, except under ``CI=true``
    where a missing server fails the tests.
    """
    with _postgresql.cluster(_postgresql.require_server_binaries()) as url:
        yield url


@pytest.fixture(scope="session")
def postgresql_admin(postgresql_url: str) -> Iterator[sa.Engine]:
    """An engine on the session's PostgreSQL server, for setting up what tests need."""
    engine = sa.create_engine(postgresql_url)
    yield engine
    engine.dispose()


@pytest.fixture
def postgresql_engine(postgresql_admin: sa.Engine, postgresql_url: str) -> Iterator[sa.Engine]:
    """An engine whose connections work in a fresh, empty PostgreSQL schema.

    The schema is first on the ``search_path``, so unqualified tables land
    there; it is dropped after the test.
    """
    schema = f"test_{secrets.token_hex(6)}"
    with postgresql_admin.begin() as connection:
        connection.execute(sa.schema.CreateSchema(schema))
    engine = sa.create_engine(postgresql_url, connect_args={"options": f"-csearch_path={schema}"})
    yield engine
    engine.dispose()
    with postgresql_admin.begin() as connection:
        connection.execute(sa.schema.DropSchema(schema, cascade=True))


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An empty database: a fresh SQLite file, or a fresh schema on the PostgreSQL server.

    A file rather than ``sqlite://``: an in-memory database lives in one
    connection and vanishes when the engine's pool is disposed.
    """
    if request.param == "postgresql":
        yield request.getfixturevalue("postgresql_engine")
        return
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'test.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """A local Spark session (``local[2]``) shared by every Spark test of the run.

    Skips without pyspark or Java, except under ``CI=true`` where they must be there.
    """
    _spark.require_spark()
    with _spark.local_session() as session:
        yield session


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium for the session (skipped without it, failed under CI)."""
    with _browser.chromium() as found:
        yield found


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """The API address of a local Stripe server (localstripe, patched) for this session.

    Skips without localstripe, except under ``CI=true`` where it fails.
    """
    from . import _stripe

    with _stripe.local_server() as url:
        yield url
