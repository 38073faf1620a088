"""Short clips synthesized ahead of time (apology, fillers), so they play even while TTS is down.

One cache per process: the first call synthesizes what is missing in the background, later calls
reuse it; a clip that failed to synthesize is simply tried again by the next call.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from media.errors import ProviderError
from media.tts.protocol import TextToSpeech

log = structlog.get_logger(__name__)


class ClipCache:
    def __init__(self, tts: TextToSpeech) -> None:
        self._tts = tts
        self._clips: dict[str, bytes] = {}

    def get(self, text: str) -> bytes | None:
        return self._clips.get(text)

    async def ensure(self, texts: Iterable[str]) -> None:
        for text in dict.fromkeys(texts):
            if text in self._clips:
                continue
            try:
                self._clips[text] = b"".join([chunk async for chunk in self._tts.synthesize(text)])
            except ProviderError as exc:
                log.warning("clip_synthesis_failed", kind=exc.kind, text=text)
