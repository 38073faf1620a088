"""Errors that speech and language providers raise, so callers never import a vendor SDK.

Every provider module catches its SDK's exceptions and raises ``ProviderError`` with a short,
log-safe ``kind`` (``unavailable``, ``timeout``, ``rate_limited``, ``bad_request``, ``stream_cut``,
``server_error``, ``quota``, ``refused`` (a refusal whose reason the transport lost), ``error``).
The message never carries credentials or the request body.
"""

from __future__ import annotations


class ProviderError(Exception):
    """A provider call failed (after the SDK's own retries)."""

    def __init__(self, provider: str, kind: str, message: str = "") -> None:
        super().__init__(f"{provider} {kind}: {message}" if message else f"{provider} {kind}")
        self.provider = provider
        self.kind = kind
