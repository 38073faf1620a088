"""The text-to-speech protocol every TTS provider implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class VoiceOptions:
    """What a call flow may choose about the voice; ``None`` keeps the provider's configured value."""

    language: str | None = None
    name: str | None = None
    speaking_rate: float = 1.0  # 1.0 is the voice's normal speed


class TextToSpeech(Protocol):
    """Synthesizes one phrase as headerless 8 kHz mu-law, chunk by chunk as it arrives.

    The iterator raises ``media.errors.ProviderError`` on failure. Closing the iterator early
    (barge-in) must release the underlying request. ``voice`` overrides what the provider was
    configured with, for this phrase only; a provider ignores what it cannot change (piper has one
    voice: it honours only the speaking rate).
    """

    def synthesize(self, text: str, voice: VoiceOptions | None = None) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...
