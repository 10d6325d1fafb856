"""The throwaway PostgreSQL server of the test suite: skipped locally, required in CI."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from . import _postgresql


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(_postgresql, "server_binaries", lambda: None)
    return monkeypatch


def test_missing_server_skips_outside_ci(no_server: pytest.MonkeyPatch) -> None:
    no_server.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not found"):
        _postgresql.require_server_binaries()


def test_missing_server_fails_in_ci(no_server: pytest.MonkeyPatch) -> None:
    no_server.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not found"):
        _postgresql.require_server_binaries()


def test_each_test_gets_an_empty_schema(postgresql_engine: sa.Engine) -> None:
    """Unqualified tables land in the test's own schema, and the server is not in UTC."""
    with postgresql_engine.connect() as connection:
        assert sa.inspect(connection).get_table_names() == []
        assert connection.exec_driver_sql("SHOW TimeZone").scalar() == "America/New_York"
