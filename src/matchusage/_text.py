"""Untrusted text made safe to show: no control characters, no stray direction overrides."""

from __future__ import annotations

import re

# C0 and C1 control characters (NUL, ESC, DEL, ...), the explicit bidirectional
# embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), and lone surrogates
# (which no UTF-8 page or file can even encode). A name is shown inside an isolate of its
# own (HTML <bdi>, FSI ... PDI in text), so it needs none of its own, and an unpaired
# override would run on into what follows it.
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_WHITESPACE_CONTROLS = frozenset("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85")


def _replacement(found: re.Match[str]) -> str:
    return " " if found[0] in _WHITESPACE_CONTROLS else ""


def printable(text: str) -> str:
    """*text* without control characters (line breaks become spaces), direction overrides
    or lone surrogates.

    For text from users (names, addresses, program names) shown in documents or
    on a terminal: a NUL or an escape sequence never reaches the output, and a
    right-to-left override cannot reverse what is printed after the name.
    """
    return _UNSHOWABLE.sub(_replacement, text)
