"""Adapting a repository to the match source every entry point accepts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import attrs

from ._model import Match
from .protocols import MatchRepository


@attrs.frozen
class OrganizationMatches:
    """The matches of one organization (optionally one program) in a repository.

    A [`MatchSource`][matchusage.protocols.MatchSource]: pass it wherever
    matches are accepted, and the entry point fetches only the window it needs.

    ```python
    source = OrganizationMatches(repository, "acme")
    matchusage.active_users(source, period)
    ```

    Attributes:
        repository: Any [`MatchRepository`][matchusage.protocols.MatchRepository].
        organization_id: The organization whose matches count.
        program_id: Only this program's matches, if given.
    """

    repository: MatchRepository
    organization_id: str
    program_id: str | None = None

    def matches_overlapping(self, start: datetime, end: datetime) -> Iterable[Match]:
        """The organization's matches overlapping ``[start, end)``."""
        return self.repository.matches(
            self.organization_id, start=start, end=end, program_id=self.program_id
        )
