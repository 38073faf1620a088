"""The speech-to-text protocol every STT provider implements."""

from __future__ import annotations

from typing import Protocol


class SpeechToText(Protocol):
    """Turns one endpointed utterance into text.

    ``pcm16`` is mono 16-bit little-endian audio at ``sample_rate``. Raises
    ``media.errors.ProviderError`` on failure; returns "" when nothing was understood.
    """

    async def transcribe(self, pcm16: bytes, sample_rate: int) -> str: ...
