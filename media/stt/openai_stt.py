"""Speech-to-text through OpenAI's transcription endpoint (``audio.transcriptions.create``).

Rules:
- The endpointed utterance is uploaded as a WAV file (the API takes no raw mu-law).
- ``timeout_s`` bounds the whole transcription, the SDK's retries included: the SDK retries a timed-out
  request (``max_retries`` on the shared client), which alone would keep a caller waiting
  ``(retries + 1) * timeout``. Within that budget the SDK's own retries (a 500, a dropped connection)
  still apply.
- SDK errors and the deadline become ``ProviderError("openai-stt", ...)``.
"""

from __future__ import annotations

import asyncio

import openai

from media.errors import ProviderError
from media.wav import pcm16_wav


class OpenAISpeechToText:
    def __init__(
        self, client: openai.AsyncOpenAI, *, model: str, language: str | None = "en", timeout_s: float = 10.0
    ) -> None:
        self._client = client
        self._model = model
        self._language = language
        self.timeout_s = timeout_s

    async def transcribe(self, pcm16: bytes, sample_rate: int) -> str:
        wav = pcm16_wav(pcm16, sample_rate)
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await self._client.audio.transcriptions.create(
                    model=self._model,
                    file=("turn.wav", wav, "audio/wav"),
                    language=self._language or openai.omit,
                    timeout=self.timeout_s,
                )
        except (TimeoutError, openai.APITimeoutError) as exc:
            raise ProviderError("openai-stt", "timeout") from exc
        except openai.APIStatusError as exc:
            raise ProviderError("openai-stt", f"http_{exc.status_code}") from exc
        except openai.APIError as exc:
            raise ProviderError("openai-stt", "error", type(exc).__name__) from exc
        return str(result.text).strip()
