"""The speech-to-text protocol every STT provider implements.

Rules:
- The lifecycle is declared here, not looked up: ``preload`` (before the first call: load an embedded
  model) and ``aclose`` (at shutdown: release connections). A provider subclasses ``SpeechToText`` and
  inherits a no-op for the steps it has nothing to do in.
"""

from __future__ import annotations

from typing import Protocol


class SpeechToText(Protocol):
    """Turns one endpointed utterance into text.

    ``pcm16`` is mono 16-bit little-endian audio at ``sample_rate``. Raises
    ``media.errors.ProviderError`` on failure; returns "" when nothing was understood.
    """

    async def transcribe(self, pcm16: bytes, sample_rate: int) -> str: ...

    async def preload(self) -> None:
        """Before the first call: load what the first utterance would wait for. Nothing by default."""
        return None

    async def aclose(self) -> None:
        """At shutdown: release connections. Nothing by default."""
        return None
