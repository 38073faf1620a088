"""The text-to-speech protocol every TTS provider implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class TextToSpeech(Protocol):
    """Synthesizes one phrase as headerless 8 kHz mu-law, chunk by chunk as it arrives.

    The iterator raises ``media.errors.ProviderError`` on failure. Closing the iterator early
    (barge-in) must release the underlying request.
    """

    def synthesize(self, text: str) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...
