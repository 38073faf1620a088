"""``FallbackVoice``: a phrase the primary cannot start because of its quota is spoken whole by the
fallback, with only the flow's rate; anything else is the primary's error. ``TTS_FALLBACK`` settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr, ValidationError

from bot.providers.tts.fallback import FallbackVoice
from bot.providers.tts.protocol import TextToSpeech, VoiceOptions
from bot.server.settings import Settings
from media.errors import ProviderError


class Voice(TextToSpeech):
    def __init__(self, name: str, fail: str | None = None, after_chunks: int = 0) -> None:
        self.name, self.fail, self.after_chunks = name, fail, after_chunks
        self.asked: list[tuple[str, VoiceOptions | None]] = []

    async def synthesize(self, text: str, voice: VoiceOptions | None = None) -> AsyncIterator[bytes]:
        self.asked.append((text, voice))
        for index in range(3):
            if self.fail is not None and index == self.after_chunks:
                raise ProviderError("google-tts", self.fail)
            yield f"{self.name}{index}".encode()


async def speak(voice: FallbackVoice, options: VoiceOptions | None = None) -> bytes:
    return b"".join([chunk async for chunk in voice.synthesize("Hello.", options)])


async def test_a_quota_error_before_any_audio_is_spoken_by_the_fallback_and_counted() -> None:
    counted: list[str] = []
    primary, fallback = Voice("p", fail="quota"), Voice("f")
    voice = FallbackVoice(primary, fallback, fallback_name="en-US-Neural2-C", on_fallback=counted.append)
    flow = VoiceOptions(language="en-GB", name="en-GB-Chirp3-HD-Puck", speaking_rate=1.25)
    assert await speak(voice, flow) == b"f0f1f2"
    assert primary.asked == [("Hello.", flow)]
    assert fallback.asked == [("Hello.", VoiceOptions(speaking_rate=1.25))]  # its own voice, the flow's rate
    assert counted == ["quota"]
    piper = FallbackVoice(Voice("p", fail="quota"), Voice("f"), fallback_name="piper")
    assert await speak(piper) == b"f0f1f2"


async def test_the_primary_speaks_when_it_can() -> None:
    counted: list[str] = []
    fallback = Voice("f")
    voice = FallbackVoice(Voice("p"), fallback, fallback_name="piper", on_fallback=counted.append)
    assert await speak(voice) == b"p0p1p2"
    assert fallback.asked == [] and counted == []


@pytest.mark.parametrize(("kind", "after_chunks"), [("quota", 1), ("timeout", 0), ("unavailable", 0)])
async def test_other_errors_and_a_started_phrase_are_the_primarys(kind: str, after_chunks: int) -> None:
    fallback = Voice("f")
    voice = FallbackVoice(Voice("p", fail=kind, after_chunks=after_chunks), fallback, fallback_name="piper")
    with pytest.raises(ProviderError) as caught:
        await speak(voice)
    assert caught.value.kind == kind
    assert fallback.asked == []  # never half a phrase in one voice and half in another


async def test_a_fallback_that_fails_too_is_its_error() -> None:
    voice = FallbackVoice(Voice("p", fail="quota"), Voice("f", fail="quota"), fallback_name="en-US-Neural2-C")
    with pytest.raises(ProviderError):
        await speak(voice)


def settings(**values: str) -> Settings:
    return Settings(twilio_auth_token=SecretStr("t"), openai_base_url="http://127.0.0.1:1", **values)  # type: ignore[arg-type]


def test_tts_fallback_is_piper_or_a_google_voice_of_another_family() -> None:
    assert settings().tts_fallback is None
    assert settings(tts_fallback="").tts_fallback is None
    assert settings(tts_fallback="piper").tts_fallback == "piper"
    assert settings(tts_fallback="en-US-Neural2-C").tts_fallback == "en-US-Neural2-C"
    with pytest.raises(ValidationError, match="Chirp 3 HD"):
        settings(tts_fallback="en-US-Chirp3-HD-Puck")  # the same quota as the primary
    with pytest.raises(ValidationError):
        settings(tts_fallback="Neural2")
