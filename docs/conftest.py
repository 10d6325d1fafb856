"""Doctest set-up for the docs: a local Stripe API server for "Billing with Stripe"."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The server and its patches live with the tests; the docs run the same server.
sys.path.insert(0, str(Path(__file__).parents[1]))


@pytest.fixture(scope="session")
def _local_stripe() -> Iterator[str]:
    from tests import _stripe

    with _stripe.local_server() as url:
        yield url


@pytest.fixture(autouse=True)
def _stripe_api_base(request: pytest.FixtureRequest, doctest_namespace: dict[str, Any]) -> None:
    if Path(str(request.node.path)).name == "billing-stripe.md":
        doctest_namespace["stripe_api_base"] = request.getfixturevalue("_local_stripe")
