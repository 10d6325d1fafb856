"""Billing through Stripe: the [`BillingProvider`][matchusage.protocols.BillingProvider] port
over Stripe's API (``pip install "matchusage[stripe]"``).

```python
from matchusage.stripe import StripeBillingProvider

provider = StripeBillingProvider.from_api_key(
    "sk_test_...", customers={"acme": "cus_..."}
)
```

See the guide "Billing with Stripe" for the mapping, exactly-once reporting and
failure modes.
"""

from __future__ import annotations

from ._provider import StripeBillingProvider

__all__ = ["StripeBillingProvider"]
