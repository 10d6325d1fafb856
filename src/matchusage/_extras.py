"""How to install an optional extra, said the same way in every error message."""

from __future__ import annotations


def install_hint(extra: str) -> str:
    """The commands that install *extra*: from the package index and from a checkout.

    ```pycon
    >>> install_hint("sql")
    'pip install "matchusage[sql]" (from a checkout of matchusage: pip install ".[sql]")'

    ```
    """
    checkout = f'pip install ".[{extra}]"'
    return f'pip install "matchusage[{extra}]" (from a checkout of matchusage: {checkout})'
