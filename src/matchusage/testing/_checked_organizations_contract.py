"""The contract of the optional CheckedOrganizations port, as a base test class."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from .._model import Organization, Program
from .._periods import BillingCycle
from ..exceptions import MatchUsageError
from ..protocols import CheckedOrganizations, MatchRepository
from ._repository_contract import MakeRepository, Record


def _anchor(zone: str) -> datetime:
    return datetime(2024, 1, 31, 9, 30, tzinfo=ZoneInfo(zone))


def _organizations() -> list[Record]:
    """Three organizations stored out of id order, each with a program."""
    berlin, new_york = "Europe/Berlin", "America/New_York"
    return [
        Organization("o3", "Three", berlin, BillingCycle.weekly(_anchor(berlin), every=2)),
        Organization("o1", "One", "UTC", BillingCycle.monthly(_anchor("UTC"))),
        Organization("o2", "Two", new_york, BillingCycle.monthly(_anchor(new_york), 3)),
        *(Program(f"p{n}", f"o{n}") for n in (1, 2, 3)),
    ]


def _checked(repository: MatchRepository) -> CheckedOrganizations:
    assert isinstance(repository, CheckedOrganizations), "no checked_organizations method"
    return repository


class CheckedOrganizationsContract:
    """Tests any [`CheckedOrganizations`][matchusage.protocols.CheckedOrganizations] must pass.

    Subclass it beside
    [`MatchRepositoryContract`][matchusage.testing.contracts.MatchRepositoryContract]
    and supply the same ``make_repository`` fixture; the repositories it
    makes must have ``checked_organizations``. If the adapter can hold a
    stored organization that does not make a valid
    [`Organization`][matchusage.Organization] (a database row with a cycle
    of 0 months, an unknown time zone), override
    [`store_bad_organization`][matchusage.testing.contracts.CheckedOrganizationsContract.store_bad_organization]
    so that the tests check such a row is reported, not raised:

    ```python
    from matchusage.testing.contracts import CheckedOrganizationsContract

    class TestMyCheckedOrganizations(CheckedOrganizationsContract):
        @pytest.fixture
        def make_repository(self):
            ...  # as for MatchRepositoryContract

        def store_bad_organization(self, repository, organization_id):
            repository.execute("UPDATE organizations SET months = 0 WHERE id = ?", organization_id)
    ```
    """

    def store_bad_organization(self, repository: MatchRepository, organization_id: str) -> None:
        """Make the stored organization *organization_id* invalid (override this).

        By default the tests of bad rows are skipped: an adapter that
        validates every organization before storing it has none to report.
        """
        pytest.skip("this repository cannot hold an invalid organization")

    def test_valid_organizations_are_returned_as_organizations_returns_them(
        self, make_repository: MakeRepository
    ) -> None:
        repository = make_repository(_organizations())
        organizations, failed = _checked(repository).checked_organizations()
        assert ({}, list(repository.organizations())) == (failed, organizations)
        assert [o.id for o in organizations] == ["o1", "o2", "o3"]

    def test_no_organizations_no_failures(self, make_repository: MakeRepository) -> None:
        assert _checked(make_repository([])).checked_organizations() == ([], {})

    def test_a_bad_organization_is_reported_under_its_id_and_the_others_returned(
        self, make_repository: MakeRepository
    ) -> None:
        records = _organizations()
        repository = make_repository(records)
        self.store_bad_organization(repository, "o2")
        organizations, failed = _checked(repository).checked_organizations()
        assert [records[1], records[0]] == organizations
        assert list(failed) == ["o2"]
        assert isinstance(failed["o2"], MatchUsageError)
        assert "'o2'" in str(failed["o2"])

    def test_every_bad_organization_is_reported(self, make_repository: MakeRepository) -> None:
        repository = make_repository(_organizations())
        for organization_id in ("o1", "o3"):
            self.store_bad_organization(repository, organization_id)
        organizations, failed = _checked(repository).checked_organizations()
        assert ([o.id for o in organizations], sorted(failed)) == (["o2"], ["o1", "o3"])
        assert all(f"'{key}'" in str(error) for key, error in failed.items())
