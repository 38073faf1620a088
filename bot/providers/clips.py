"""Short clips synthesized ahead of time (greeting, fillers, apology, goodbyes, reprompts), so they play at
once, even while TTS is down, and cost one TTS request per process, not one per call.

Rules:
- One cache per bound voice (``bot.providers.voices``), shared by every call speaking with it: each text is
  synthesized once per process. ``ensure`` synthesizes, one by one, what is neither cached nor in flight;
  whoever asks for a text while it is being synthesized (warm-up, the first calls, the Speaker saying the
  greeting) joins that one synthesis instead of starting another (Google bills and rate-limits each
  request: https://docs.cloud.google.com/text-to-speech/quotas).
- A synthesis belongs to the cache, not to whoever started it: a call hanging up or a barge-in never
  cancels it. A clip that failed is forgotten, so the next ``ensure`` or call tries again.
- A clip the fallback voice spoke (Google's quota was used up: ``bot.providers.tts.fallback``) is a stand-in:
  it plays, and ``ensure`` asks the primary voice again once it is ``STAND_IN_RETRY_S`` old, so a quota
  spike at start-up does not leave the greeting in the other voice for the life of the process.
- ``synthesize`` makes the cache a ``TextToSpeech`` for the Speaker: a known clip text plays from the cache
  (or its synthesis in flight); any other text goes to the voice as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable

import structlog

from bot.providers.tts.fallback import SPOKEN_BY_FALLBACK
from bot.providers.tts.protocol import SpeechSession, TextToSpeech, VoiceOptions
from media.errors import ProviderError

log = structlog.get_logger(__name__)
STAND_IN_RETRY_S = 60.0  # Google's quotas are per minute


class ClipCache(TextToSpeech):
    def __init__(self, tts: TextToSpeech, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._tts = tts
        self._clock = clock
        self._clips: dict[str, bytes] = {}
        self._inflight: dict[str, asyncio.Task[bytes]] = {}
        self._stand_ins: dict[str, float] = {}  # text -> when the fallback voice last spoke it

    def get(self, text: str) -> bytes | None:
        return self._clips.get(text)

    async def ensure(self, texts: Iterable[str]) -> None:
        # One at a time, in the line's order (the greeting first): a call ringing during warm-up waits
        # only for what it says first, and start-up sends no burst of requests.
        for text in dict.fromkeys(texts):
            if text not in self._clips or self._stale(text):
                with contextlib.suppress(ProviderError):  # logged once, by the synthesis itself
                    await asyncio.shield(self._start(text))

    def _stale(self, text: str) -> bool:
        since = self._stand_ins.get(text)
        return since is not None and self._clock() - since >= STAND_IN_RETRY_S

    def _start(self, text: str) -> asyncio.Task[bytes]:
        task = self._inflight.get(text)
        if task is None:
            task = self._inflight[text] = asyncio.create_task(self._synthesize(text), name="clip")
        return task

    async def _synthesize(self, text: str) -> bytes:
        SPOKEN_BY_FALLBACK.set(False)  # this task's own context: set again if the fallback speaks
        try:
            audio = b"".join([chunk async for chunk in self._tts.synthesize(text)])
        except ProviderError as exc:
            log.warning("clip_synthesis_failed", kind=exc.kind, text=text)
            if text in self._stand_ins:
                self._stand_ins[text] = self._clock()  # keep the stand-in, ask again in a while
            raise
        finally:
            self._inflight.pop(text, None)
        if SPOKEN_BY_FALLBACK.get():
            self._stand_ins[text] = self._clock()
        else:
            self._stand_ins.pop(text, None)
        self._clips[text] = audio
        return audio

    async def synthesize(self, text: str, voice: VoiceOptions | None = None) -> AsyncIterator[bytes]:
        """The cached clip, the one synthesis of it in flight, or (any other text) the voice's audio."""
        audio = self._clips.get(text)
        if audio is None and voice is None and text in self._inflight:
            audio = await asyncio.shield(self._inflight[text])  # a ProviderError reaches the Speaker
        if audio is not None:
            yield audio
            return
        async for chunk in self._tts.synthesize(text, voice):
            yield chunk

    def open_session(self, voice: VoiceOptions | None = None) -> SpeechSession | None:
        """The voice's per-answer session (answers are not clips), or None when it has none."""
        return self._tts.open_session(voice)

    async def aclose(self) -> None:
        """The voice belongs to the server (``Voices.aclose``)."""
