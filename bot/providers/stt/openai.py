"""Speech-to-text through OpenAI's transcription endpoint (``audio.transcriptions.create``).

Rules:
- The endpointed utterance is uploaded as a WAV file (the API takes no raw mu-law).
- ``timeout_s`` bounds the whole transcription, the SDK's retries included: the SDK retries a timed-out
  request (``max_retries`` on the shared client), which alone would keep a caller waiting
  ``(retries + 1) * timeout``. Within that budget the SDK's own retries (a 500, a dropped connection)
  still apply.
- SDK errors and the deadline become ``ProviderError("openai-stt", ...)``.
- The language goes as ``languages=[...]`` to ``gpt-transcribe`` and as ``language`` to the older models
  (``LANGUAGES_MODELS``): the SDK documents ``languages`` as "Supported by `gpt-transcribe`"
  (openai 3.60.0 ``types/audio/transcription_create_params.py``, ``resources/audio/transcriptions.py``),
  and a live report says the API rejects the singular field for that model
  (https://github.com/NousResearch/hermes-agent/pull/73853; the error's wording was not seen).
"""

from __future__ import annotations

import asyncio

import openai

from bot.providers.stt.protocol import SpeechToText
from media.errors import ProviderError
from media.wav import pcm16_wav

LANGUAGES_MODELS = frozenset({"gpt-transcribe"})  # take ``languages`` (a list), not ``language``


def language_fields(model: str, language: str | None) -> tuple[str | None, list[str] | None]:
    """``(language, languages)`` to send for ``model``: one of them, or neither when it is detected."""
    if not language:
        return None, None
    if model.strip() in LANGUAGES_MODELS:
        return None, [language]
    return language, None


class OpenAISpeechToText(SpeechToText):
    """``client`` is shared (the server's chat model uses it too): its owner closes it, so ``aclose`` is
    the protocol's no-op."""

    def __init__(
        self, client: openai.AsyncOpenAI, *, model: str, language: str | None = "en", timeout_s: float = 10.0
    ) -> None:
        self._client = client
        self._model = model
        self._language = language
        self._language_fields = language_fields(model, language)
        self.timeout_s = timeout_s

    async def transcribe(self, pcm16: bytes, sample_rate: int) -> str:
        wav = pcm16_wav(pcm16, sample_rate)
        single, several = self._language_fields
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await self._client.audio.transcriptions.create(
                    model=self._model,
                    file=("turn.wav", wav, "audio/wav"),
                    language=single if single is not None else openai.omit,
                    languages=several if several is not None else openai.omit,
                    timeout=self.timeout_s,
                )
        except (TimeoutError, openai.APITimeoutError) as exc:
            raise ProviderError("openai-stt", "timeout") from exc
        except openai.APIStatusError as exc:
            raise ProviderError("openai-stt", f"http_{exc.status_code}") from exc
        except openai.APIError as exc:
            raise ProviderError("openai-stt", "error", type(exc).__name__) from exc
        return str(result.text).strip()
