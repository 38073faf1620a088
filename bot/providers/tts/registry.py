"""The text-to-speech engines a server can speak with: one table of names, extras and builders.

Rules:
- ``TtsEngine`` names every engine, once; ``TtsChoice`` adds ``auto`` (the server's choice). Settings
  (``TTS_PROVIDER``), the flow schema (``voice.provider``) and ``LineConfig`` take a ``TtsChoice``, so
  pydantic refuses any other name and lists these ("must be 'auto', 'google' or 'piper'").
- ``ENGINES`` gives each engine the module its extra installs (None: in the core install) and its
  builder; a unit test checks the table covers ``TtsEngine``. Adding an engine is its name in
  ``TtsEngine``, its row here and its provider beside this file (a ``TextToSpeech`` subclass: the
  protocol declares the lifecycle and sessions, with defaults for what the engine does not do).
- A builder reads the server's settings through ``TtsSettings``, the few fields it needs, declared here:
  the server's ``Settings`` has them, so no provider imports the server (the layers contract).
- ``auto`` is Google when ``GOOGLE_TTS_ENDPOINT`` or Google credentials are set, else piper
  (``auto_engine``). A Google voice built without either, when Google was not forced, is a
  ``ProviderError`` (a flow asked for it: reported at the flow's line, ``bot.providers.voices``).
- Builders import their SDK only when called: settings import this table, and the core install has
  no piper. Checking that an engine's extra is installed is the caller's (``bot.server.wiring``), which
  stops start-up with one clear line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, Protocol, get_args

from bot.providers.tts.protocol import TextToSpeech
from media.errors import ProviderError

TtsEngine = Literal["google", "piper"]
TtsChoice = Literal["auto", TtsEngine]  # typing flattens this to Literal["auto", "google", "piper"]
TTS_ENGINES: Final[tuple[TtsEngine, ...]] = get_args(TtsEngine)


class TtsSettings(Protocol):
    """What the builders and the auto rule read of the server's settings (``bot.server.settings``)."""

    @property
    def tts_provider(self) -> TtsChoice: ...
    @property
    def google_tts_endpoint(self) -> str | None: ...
    @property
    def tts_voice(self) -> str: ...
    @property
    def tts_language(self) -> str: ...
    @property
    def tts_streaming(self) -> bool: ...
    @property
    def tts_encoding(self) -> str: ...


@dataclass(frozen=True)
class Engine:
    # The module the engine's extra installs (checked before building), or None for the core install.
    module: str | None
    # settings, and another voice name than the settings' (the fallback voice), or None.
    build: Callable[[TtsSettings, str | None], TextToSpeech]


def google_configured(settings: TtsSettings) -> bool:
    return bool(settings.google_tts_endpoint or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"))


def auto_engine(settings: TtsSettings) -> TtsEngine:
    return "google" if google_configured(settings) else "piper"


def _google(settings: TtsSettings, voice_name: str | None) -> TextToSpeech:
    """``voice_name``: another Google voice than ``TTS_VOICE`` (the fallback), in its own language."""
    from bot.providers.tts.google import GoogleTextToSpeech, GoogleVoice

    streaming = settings.tts_streaming
    language = settings.tts_language
    if voice_name is not None:
        language = "-".join(voice_name.split("-")[:2])  # en-US-Neural2-C speaks en-US
        streaming = streaming and "-Chirp3-HD-" in voice_name  # streaming is for Chirp 3 HD only
    voice = GoogleVoice(
        language_code=language,
        name=voice_name or settings.tts_voice,
        encoding="pcm" if settings.tts_encoding == "pcm" else "mulaw",
        streaming=streaming,
    )
    if not google_configured(settings) and settings.tts_provider != "google":
        raise ProviderError("google-tts", "unavailable", "set GOOGLE_TTS_ENDPOINT or Google credentials")
    return GoogleTextToSpeech.for_endpoint(settings.google_tts_endpoint, voice)


def _piper(settings: TtsSettings, voice_name: str | None) -> TextToSpeech:
    from bot.providers.tts.piper import PiperTextToSpeech

    return PiperTextToSpeech()


ENGINES: Final[Mapping[str, Engine]] = {
    "google": Engine(module=None, build=_google),
    "piper": Engine(module="piper", build=_piper),
}
