"""The text-to-speech protocol every TTS provider implements, and the optional per-answer session.

Rules:
- ``synthesize`` is one request per phrase; every provider has it.
- The lifecycle is declared here, not looked up: ``preload`` (before the first call: load an embedded
  model) and ``aclose`` (at shutdown: release connections). A provider subclasses ``TextToSpeech`` and
  inherits a no-op for the steps it has nothing to do in.
- A provider that can carry a whole answer on one request (Google's ``StreamingSynthesize``) overrides
  ``open_session``; it returns None (the default) for a provider or voice that cannot stream, and the
  caller falls back to ``synthesize`` per phrase.
"""

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

    def open_session(self, voice: VoiceOptions | None = None) -> SpeechSession | None:
        """One request for a whole answer's phrases, or None: this provider (or voice) speaks phrase by
        phrase. None by default."""
        return None

    async def preload(self) -> None:
        """Before the first call: load what the first phrase would otherwise wait for. Nothing by default."""
        return None

    async def aclose(self) -> None:
        """At shutdown: release connections and requests. Nothing by default."""
        return None


class SpeechSession(Protocol):
    """One request that speaks the phrases pushed on it, in push order.

    ``push(text)`` sends the phrase at once and returns an iterator of its own audio (headerless 8 kHz
    mu-law), which ends when the phrase's audio is complete and raises ``ProviderError`` if the request
    fails. ``accepting`` is False once the session takes no more text (ended, idle, failed): open another.
    ``end()`` says no more text is coming (the pushed audio still comes); ``cancel()`` releases the
    request now (barge-in, hang-up) and ends every unfinished phrase's iterator.
    """

    @property
    def accepting(self) -> bool: ...

    def push(self, text: str) -> AsyncIterator[bytes]: ...

    def end(self) -> None: ...

    def cancel(self) -> None: ...


def open_session(tts: TextToSpeech, voice: VoiceOptions | None = None) -> SpeechSession | None:
    """``tts.open_session(voice)``. Only ``bot.call.speaker`` still calls this; it goes once the Call's
    rework calls the method directly."""
    return tts.open_session(voice)
