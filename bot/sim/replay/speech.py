"""Text-to-speech from a recording: a phrase the bot said before is played with its recorded audio.

Rules:
- Exact text match (``recorded.phrase_audio``); anything else goes to the fallback provider and is counted
  in ``synthesized``, so the report says how much of the replay's audio is new.
- Recorded audio comes at once, in 0.5 s chunks: a recorded phrase has no synthesis latency.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from bot.providers.tts.protocol import TextToSpeech, VoiceOptions

CHUNK_BYTES = 4000  # 0.5 s of 8 kHz μ-law


class RecordedSpeech(TextToSpeech):
    def __init__(self, phrases: Mapping[str, bytes], fallback: TextToSpeech) -> None:
        self._phrases = phrases
        self._fallback = fallback
        self.served = 0
        self.synthesized: list[str] = []

    async def synthesize(self, text: str, voice: VoiceOptions | None = None) -> AsyncIterator[bytes]:
        audio = self._phrases.get(text)
        if audio is None:
            self.synthesized.append(text)
            async for chunk in self._fallback.synthesize(text, voice):
                yield chunk
            return
        self.served += 1
        for start in range(0, len(audio), CHUNK_BYTES):
            yield audio[start : start + CHUNK_BYTES]

    async def aclose(self) -> None:
        await self._fallback.aclose()
