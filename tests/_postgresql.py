"""A throwaway PostgreSQL cluster for the test suite.

``initdb`` refuses to run as root, so when the tests run as root the server
binaries run as the ``postgres`` user, on a data directory that user owns.
The server listens only on a Unix socket in a temporary directory, and is
stopped and deleted afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

VERSION = "15"


def server_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, preferring PostgreSQL 15."""
    preferred = Path(f"/usr/lib/postgresql/{VERSION}/bin")
    if (preferred / "initdb").exists():
        return preferred
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def require_server_binaries() -> Path:
    """The server binaries; skip the test without them, but fail it under ``CI=true``."""
    binaries = server_binaries()
    if binaries is None:
        message = "PostgreSQL server binaries not found under /usr/lib/postgresql"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binaries


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def cluster(binaries: Path, *, timezone: str = "America/New_York") -> Iterator[str]:
    """Run a fresh cluster; yield its SQLAlchemy URL (psycopg 3, Unix socket).

    The server's time zone is deliberately not UTC, so that any code that
    leans on the session time zone shows up in the tests.
    """
    as_postgres: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="matchusage-pg-"))
    if os.geteuid() == 0:
        as_postgres = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    data, log = root / "data", root / "server.log"
    port = _free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_postgres, *command], check=True, capture_output=True, timeout=120)

    started = False
    try:
        flags = "-U postgres --auth=trust --encoding=UTF8 --no-locale --no-sync"
        run(str(binaries / "initdb"), "-D", str(data), *flags.split())
        options = (
            f"-k {root} -p {port} -c listen_addresses='' -c fsync=off "
            f"-c synchronous_commit=off -c full_page_writes=off -c timezone={timezone}"
        )
        pg_ctl = str(binaries / "pg_ctl")
        run(pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        started = True
        yield f"postgresql+psycopg://postgres@/postgres?host={root}&port={port}"
    finally:
        if started:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
