"""The in-memory repository meets the repository and checked-organizations contracts."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from matchusage.memory import InMemoryRepository
from matchusage.testing.contracts import (
    CheckedOrganizationsContract,
    MakeRepository,
    MatchRepositoryContract,
    Record,
)


class TestInMemoryRepository(MatchRepositoryContract, CheckedOrganizationsContract):
    @pytest.fixture
    def make_repository(self) -> MakeRepository:
        def make(records: Sequence[Record]) -> InMemoryRepository:
            repository = InMemoryRepository()
            repository.add(*records)
            return repository

        return make
