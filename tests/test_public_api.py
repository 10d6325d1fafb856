"""The public surface: complete, documented, and free of heavy imports."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import types
from pathlib import Path

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
        "print(sorted(m for m in ('numpy', 'sqlalchemy', 'hypothesis', 'pytest') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert "[]" == result.stdout.strip()


def test_the_api_reference_lists_every_public_name() -> None:
    reference = (Path(__file__).parents[1] / "docs" / "reference" / "api.md").read_text()
    listed = set(re.findall(r"^\s+- (\w+)$", reference, re.MULTILINE))
    modules = {
        n for n in matchusage.__all__ if isinstance(getattr(matchusage, n), types.ModuleType)
    }

    assert [] == sorted(set(matchusage.__all__) - modules - listed)
