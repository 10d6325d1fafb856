"""Downloading the files Stripe renders itself (an invoice's ``invoice_pdf``)."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

from ..exceptions import DocumentUnavailableError, ProviderUnavailableError
from ._errors import PROVIDER


def download(url: str, *, timeout: float) -> tuple[bytes, str]:
    """The bytes and media type at *url*, a link Stripe gave (no API key is sent).

    Raises:
        matchusage.exceptions.DocumentUnavailableError: Stripe has no file there.
        matchusage.exceptions.ProviderUnavailableError: Stripe could not be reached
            or failed (retried like any other call).
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DocumentUnavailableError(f"Stripe gave no downloadable file ({url!r})")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read(), response.headers.get_content_type()
    except urllib.error.HTTPError as error:
        if error.code >= 500 or error.code == 429:
            raise ProviderUnavailableError(
                f"downloading {url} failed with HTTP {error.code}",
                reason="server_error" if error.code >= 500 else "rate_limited",
                provider=PROVIDER,
                http_status=error.code,
            ) from error
        raise DocumentUnavailableError(f"Stripe's file {url} answered HTTP {error.code}") from error
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise ProviderUnavailableError(
            f"downloading {url} failed: {error}", reason="network", provider=PROVIDER
        ) from error
