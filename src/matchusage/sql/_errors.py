"""Database failures become matchusage errors that keep the database's error as cause."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from ..exceptions import RepositoryError


@contextmanager
def database_errors(what: str, *, writing: bool = False) -> Iterator[None]:
    """Turn any SQLAlchemy error inside the block into a `RepositoryError` about *what*.

    A writing block runs in one transaction, so a failure has written nothing.
    """
    try:
        yield
    except sa.exc.SQLAlchemyError as error:
        # SQLAlchemy appends the statement and a help link; the first line is the error.
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        written = ", nothing was written" if writing else ""
        raise RepositoryError(f"{what} failed{written}: {message}") from error
