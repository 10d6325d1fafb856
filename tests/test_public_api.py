"""The public surface: complete, documented, and free of heavy imports."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import matchusage


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(matchusage).items()
        if not name.startswith("_")
        and not (isinstance(value, types.ModuleType) and name not in matchusage.__all__)
        and name != "annotations"
    }

    assert sorted(public) == sorted(matchusage.__all__)


def test_every_public_name_is_documented() -> None:
    undocumented = [
        name for name in matchusage.__all__ if not inspect.getdoc(getattr(matchusage, name))
    ]

    assert [] == undocumented


def test_import_pulls_no_optional_dependency() -> None:
    code = (
        "import sys, matchusage; "
        "print(sorted(m for m in ('numpy', 'sqlalchemy', 'hypothesis', 'pytest', 'fpdf', "
        "'pyarrow', 'pandas', 'polars', 'stripe', 'pyspark', 'jinja2') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert "[]" == result.stdout.strip()


def _referenced(module: str) -> set[str]:
    """The names the API reference pages render from ``module``."""
    pages = (Path(__file__).parents[1] / "docs" / "reference").glob("*.md")
    text = "\n".join(page.read_text() for page in pages)
    direct = re.findall(rf"^::: {re.escape(module)}\.(\w+)$", text, re.MULTILINE)
    listed = {
        name
        for block in re.findall(rf"^::: {re.escape(module)}\n((?:[ ]+.*\n)+)", text, re.MULTILINE)
        for name in re.findall(r"^\s+- (\w+)$", block, re.MULTILINE)
    }
    return set(direct) | listed


@pytest.mark.parametrize(
    "module",
    [matchusage, matchusage.billing, pytest.param("matchusage.stripe", id="matchusage.stripe")],
    ids=lambda m: getattr(m, "__name__", m),
)
def test_the_api_reference_lists_every_public_name(module: types.ModuleType | str) -> None:
    if isinstance(module, str):
        module = importlib.import_module(module)
    modules = {n for n in module.__all__ if isinstance(getattr(module, n), types.ModuleType)}

    assert [] == sorted(set(module.__all__) - modules - _referenced(module.__name__))


def test_billing_lists_and_documents_every_public_name() -> None:
    public = {name for name in vars(matchusage.billing) if not name.startswith("_")}
    public -= {"annotations"}
    undocumented = [
        n for n in matchusage.billing.__all__ if not inspect.getdoc(getattr(matchusage.billing, n))
    ]

    assert (sorted(public), []) == (sorted(matchusage.billing.__all__), undocumented)


def test_billing_names_moved_from_the_top_level_still_work_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match=r"matchusage\.billing\.Plan"):
        plan = matchusage.Plan

    assert matchusage.billing.Plan is plan


def test_an_unknown_top_level_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        matchusage.no_such_name  # noqa: B018


def test_billing_names_added_after_the_move_are_not_offered_at_the_top_level() -> None:
    """Only the 0.1 names moved; newer billing names were never top-level names."""
    with pytest.raises(AttributeError, match="render_portal_html"):
        matchusage.render_portal_html  # noqa: B018
