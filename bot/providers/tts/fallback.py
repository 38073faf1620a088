"""A voice with a fallback: the primary text-to-speech provider, and another one for the phrases the
primary cannot start because its quota is used up (``TTS_FALLBACK``).

Rules:
- Google answers RESOURCE_EXHAUSTED beyond a per-project quota (Chirp 3 HD: 200 requests per minute,
  100 concurrent streams; https://docs.cloud.google.com/text-to-speech/quotas). The primary retries
  briefly first (``bot.providers.tts.google``); a phrase that still fails with kind ``quota`` before any of
  its audio is spoken whole by the fallback, so the caller never hears silence because of a quota.
- The fallback has its own quota: a Google voice of another family (Neural2, Standard: 1,000 requests
  per minute per project) or the embedded piper engine (no quota). It speaks with its own voice and
  language and only the flow's speaking rate: a flow's voice name belongs to the primary.
- A session the service refused before any audio with its reason lost (kind ``refused``: grpc.aio's
  own INTERNAL on every try, ``bot.providers.tts.google_stream``) falls back too: nothing was said, and a
  quota refusal is the likeliest reason.
- A phrase whose audio has started is never switched (half in one voice, half in another); other errors
  (timeouts, outages) are not the fallback's business: they reach the Speaker, which apologises.
- A per-answer session (``open_session``) is the primary's own, each of its phrases under the same rule:
  a phrase the session cannot start for quota is spoken whole by the fallback, and the failed session
  takes no more text (the Speaker opens another for the next phrase).
- Each switch is counted (``on_fallback(kind)``: ``phonebot_tts_fallbacks``) and logged once per phrase,
  and marked in ``SPOKEN_BY_FALLBACK`` for the running task: the clip cache keeps such a clip only as a
  stand-in (``bot.providers.clips``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar

import structlog

from bot.providers.tts.protocol import SpeechSession, TextToSpeech, VoiceOptions
from media.errors import ProviderError

log = structlog.get_logger(__name__)
FALLBACK_KINDS = frozenset({"quota", "refused"})
# Set when the fallback spoke, in the context of the task reading the audio (an async generator runs in
# its consumer's context); whoever wants to know resets it first.
SPOKEN_BY_FALLBACK: ContextVar[bool] = ContextVar("spoken_by_fallback", default=False)


class FallbackVoice(TextToSpeech):
    def __init__(
        self,
        primary: TextToSpeech,
        fallback: TextToSpeech,
        *,
        fallback_name: str,
        on_fallback: Callable[[str], None] | None = None,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.fallback_name = fallback_name
        self._on_fallback = on_fallback

    def synthesize(self, text: str, voice: VoiceOptions | None = None) -> AsyncIterator[bytes]:
        return self.spoken(self.primary.synthesize(text, voice), text, voice)

    def open_session(self, voice: VoiceOptions | None = None) -> SpeechSession | None:
        session = self.primary.open_session(voice)
        return None if session is None else _FallbackSession(self, session, voice)

    async def spoken(
        self, primary: AsyncIterator[bytes], text: str, voice: VoiceOptions | None
    ) -> AsyncIterator[bytes]:
        """``primary``'s audio of ``text``, or all of it by the fallback (see the module rules)."""
        started = False
        try:
            async for chunk in primary:
                started = True
                yield chunk
            return
        except ProviderError as exc:
            if started or exc.kind not in FALLBACK_KINDS:
                raise
            kind = exc.kind
        log.warning("tts_fallback", kind=kind, fallback=self.fallback_name)
        SPOKEN_BY_FALLBACK.set(True)
        if self._on_fallback is not None:
            self._on_fallback(kind)
        rate = voice.speaking_rate if voice is not None else 1.0
        async for chunk in self.fallback.synthesize(text, VoiceOptions(speaking_rate=rate)):
            yield chunk

    async def preload(self) -> None:
        await self.primary.preload()
        await self.fallback.preload()

    async def aclose(self) -> None:
        await self.primary.aclose()
        await self.fallback.aclose()


class _FallbackSession:
    """The primary's session, each phrase of it falling back on its own (see the module rules)."""

    def __init__(self, owner: FallbackVoice, session: SpeechSession, voice: VoiceOptions | None) -> None:
        self._owner = owner
        self._session = session
        self._voice = voice

    @property
    def accepting(self) -> bool:
        return self._session.accepting

    def push(self, text: str) -> AsyncIterator[bytes]:
        return self._owner.spoken(self._session.push(text), text, self._voice)

    def end(self) -> None:
        self._session.end()

    def cancel(self) -> None:
        self._session.cancel()
