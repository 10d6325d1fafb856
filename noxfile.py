"""Development sessions: ``nox -s tests lint typecheck docs``."""

from __future__ import annotations

import re
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

_PYPROJECT = Path(__file__).with_name("pyproject.toml").read_text()
PYTHONS = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', _PYPROJECT)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the whole test suite (the README's test command)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the library and its benchmarks with mypy --strict."""
    session.install("-e", ".[lint,test,benchmark]")
    session.run("mypy", "--strict", "src/", "benchmarks/")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation, failing on any warning."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict")


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Run one benchmark script: ``nox -s benchmarks -- benchmarks/bench_sweep.py``."""
    session.install("-e", ".[numpy,sql,postgresql,benchmark]")
    script, *args = session.posargs or ["benchmarks/bench_sweep.py"]
    session.run("python", script, *args)
