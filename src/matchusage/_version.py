"""The installed distribution's version, read from its metadata on first use."""

from __future__ import annotations

import functools


@functools.cache
def version() -> str:
    """The version of the installed ``matchusage`` distribution (``"0+unknown"`` if not installed).

    Read from the package metadata, so there is one place to change it: ``pyproject.toml``.
    """
    from importlib import metadata

    try:
        return metadata.version("matchusage")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
