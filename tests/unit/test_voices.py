"""``Voices.refused``: a line whose language and Google voice disagree (its own, or the server's
TTS_LANGUAGE/TTS_VOICE) is refused at start-up, as Google would refuse each of its phrases."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from bot.providers.tts.protocol import TextToSpeech, VoiceOptions
from bot.providers.voices import Voices, voice_language
from bot.sim.store_line import store_line


class Quiet(TextToSpeech):
    async def synthesize(self, text: str, voice: VoiceOptions | None = None) -> AsyncIterator[bytes]:
        yield b""


SERVER = ("en-US", "en-US-Chirp3-HD-Aoede")


def refused(voice: VoiceOptions, server: tuple[str, str] = SERVER, engine: str = "google") -> str | None:
    voices = Voices({"google": Quiet(), "piper": Quiet()}, engine, google_voice=server)
    return voices.refused(dataclasses.replace(store_line(), voice=voice))


def test_a_language_the_voice_does_not_speak_is_refused() -> None:
    assert refused(VoiceOptions()) is None
    assert refused(VoiceOptions(language="en-us")) is None  # case does not matter
    assert refused(VoiceOptions(language="en-GB", name="en-GB-Neural2-B")) is None
    why = refused(VoiceOptions(language="en-GB"))
    assert why is not None and "en-US-Chirp3-HD-Aoede (the server's TTS_VOICE)" in why and "en-GB" in why
    assert refused(VoiceOptions(name="en-GB-Neural2-B")) is not None  # with the server's en-US
    assert refused(VoiceOptions(), server=("en-GB", "en-US-Chirp3-HD-Aoede")) is not None
    assert refused(VoiceOptions(language="de-DE"), engine="piper") is None  # piper has no such rule


def test_voice_language() -> None:
    assert voice_language("en-US-Chirp3-HD-Aoede") == "en-US"
    assert voice_language("cmn-CN-Chirp3-HD-Puck") == "cmn-CN"
    assert voice_language("Aoede") is None
