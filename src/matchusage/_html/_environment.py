"""The one Jinja2 environment of the HTML pages: autoescaped, every text made printable."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._extras import install_hint
from .._text import printable
from ..exceptions import InvalidRecordError

if TYPE_CHECKING:
    import jinja2


def _finalize(value: Any) -> Any:
    """Every ``{{ expression }}`` of a template is cleaned before it is escaped."""
    from markupsafe import Markup

    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value)
    return value


_SAFE_SCHEMES = frozenset({"", "http", "https", "mailto"})


def safe_href(url: str, record: str, field: str) -> str:
    """*url* if a page may link to it: relative, http(s), mailto, or a CSV ``data:`` URI.

    Raises:
        matchusage.exceptions.InvalidRecordError: Any other scheme (``javascript:``, ...).
    """
    if not isinstance(url, str) or not url:
        raise InvalidRecordError(record, field, url, "a non-empty URL")
    # Browsers drop these before reading the scheme, so "java\tscript:" is "javascript:".
    scheme = urlsplit(re.sub(r"[\x00-\x20]", "", url)).scheme.lower()
    if scheme in _SAFE_SCHEMES or url.startswith("data:text/csv"):
        return printable(url)
    raise InvalidRecordError(record, field, url, "a relative, http(s), mailto or data:text/csv URL")


@functools.cache
def environment() -> jinja2.Environment:
    """The environment: autoescaping on, undefined names an error, text cleaned on output."""
    try:
        import jinja2
    except ImportError as error:  # pragma: no cover - exercised without the extra only
        raise ImportError(f"HTML pages need Jinja2: {install_hint('html')}") from error
    return jinja2.Environment(
        loader=jinja2.PackageLoader("matchusage._html", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    """Render one of the package's templates."""
    return environment().get_template(template).render(**context)
