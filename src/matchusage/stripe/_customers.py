"""Which Stripe customer bills an organization: an explicit mapping or a metadata search."""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import stripe

from ..exceptions import InvalidRecordError, ProviderRequestError, UnknownRecordError
from ._errors import PROVIDER, stripe_errors
from ._metadata import ORGANIZATION, check_metadata_value


def search_query(organization_id: str) -> str:
    """Stripe's search query for customers tagged with *organization_id*.

    Values are single-quoted; a quote or backslash inside is escaped with a
    backslash (docs.stripe.com/search#search-query-language).
    """
    escaped = organization_id.replace("\\", "\\\\").replace("'", "\\'")
    return f"metadata['{ORGANIZATION}']:'{escaped}'"


@attrs.define
class CustomerDirectory:
    """Finds the Stripe customer id of an organization, remembering what it found."""

    client: stripe.StripeClient
    mapping: Mapping[str, str] | None
    _found: dict[str, str] = attrs.field(factory=dict, init=False)

    def customer_id(self, organization_id: str) -> str:
        """The organization's customer id.

        Raises:
            matchusage.exceptions.UnknownRecordError: No customer bills it.
        """
        if not isinstance(organization_id, str) or not organization_id:
            raise InvalidRecordError(
                "StripeBillingProvider", "organization_id", organization_id, "a non-empty string"
            )
        if self.mapping is not None:
            try:
                return self.mapping[organization_id]
            except KeyError:
                raise UnknownRecordError(
                    "organization",
                    organization_id,
                    context="StripeBillingProvider",
                    hint="no Stripe customer is mapped to it",
                ) from None
        found = self._found.get(organization_id)
        if found is None:
            found = self._search(organization_id)
            self._found[organization_id] = found
        return found

    def _search(self, organization_id: str) -> str:
        check_metadata_value("organization_id", organization_id)
        with stripe_errors():
            result = self.client.v1.customers.search(
                params={"query": search_query(organization_id), "limit": 2}
            )
        ids = [customer.id for customer in result.data]
        if not ids:
            raise UnknownRecordError(
                "organization",
                organization_id,
                context="StripeBillingProvider",
                hint=f"no Stripe customer has it as metadata {ORGANIZATION}",
            )
        if len(ids) > 1:
            raise ProviderRequestError(
                f"several customers have metadata {ORGANIZATION}={organization_id!r}: "
                f"{', '.join(ids)}; give the provider an explicit mapping",
                provider=PROVIDER,
            )
        return ids[0]
