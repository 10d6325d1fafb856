"""Progress of long commands on standard error: shown on a terminal for large inputs only."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

# Inputs smaller than this finish in about a second: no bar.
LARGE_INPUT_BYTES = 20_000_000


def input_size(directory: str | None) -> int:
    """The bytes of a data directory's files (0 for the bundled example or a missing one)."""
    if directory is None or not os.path.isdir(directory):
        return 0
    return sum(entry.stat().st_size for entry in os.scandir(directory) if entry.is_file())


class Progress:
    """A bar of a command's steps (and an export's rows), or nothing.

    Shown only when standard error is a terminal, the input is large and
    ``--quiet`` was not given; tqdm is imported only then.
    """

    def __init__(self, steps: int, *, enabled: bool, stream: TextIO | None = None) -> None:
        self._bar: Any = None
        self._rows: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=steps, file=stream or sys.stderr, unit="step", leave=False)

    @classmethod
    def of(cls, steps: int, *, quiet: bool, directory: str | None) -> Progress:
        """The progress of a command reading *directory*, unless *quiet* or not worth showing."""
        enabled = not quiet and sys.stderr.isatty() and input_size(directory) >= LARGE_INPUT_BYTES
        return cls(steps, enabled=enabled)

    @contextmanager
    def step(self, description: str) -> Iterator[None]:
        """One step: its description is shown while it runs."""
        if self._bar is None:
            yield
            return
        self._bar.set_description(description)
        yield
        self._bar.update(1)

    def rows(self, file: TextIO, total: int) -> TextIO:
        """*file*, counting rows written to it (lines) on a bar of its own."""
        if self._bar is None:
            return file
        from tqdm import tqdm

        self._rows = tqdm(
            total=total, file=sys.stderr, unit="row", unit_scale=True, leave=False, desc="rows"
        )
        return _CountingFile(file, self._rows)  # type: ignore[return-value]  # a TextIO stand-in

    def close(self) -> None:
        """Remove the bars from the terminal."""
        for bar in (self._rows, self._bar):
            if bar is not None:
                bar.close()
        self._rows = self._bar = None


class _CountingFile:
    """A text file whose writes move a progress bar."""

    def __init__(self, file: TextIO, bar: Any) -> None:
        self._file = file
        self._bar = bar

    def write(self, text: str) -> int:
        self._bar.update(text.count("\n"))  # a row, or a slice of rows
        return self._file.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)
