"""The voices a server speaks with: its text-to-speech providers, and clip caches per call-flow voice.

Rules:
- One provider object per engine for the process (``google``, ``piper``); ``auto`` in a flow means
  the server's choice (``default``). A line asking for an engine the server did not build is an
  error at start-up or reload (``missing``), never in the middle of a call.
- Google refuses every request whose language is not its voice's ("Requested language code 'en' doesn't
  match the voice 'en-US-Neural2-D''s language code 'en-us'", quoted in
  https://github.com/muxable/rtchat/issues/834): a line whose language and voice name (its own, or the
  server's ``TTS_LANGUAGE`` and ``TTS_VOICE``) disagree is an error at start-up or reload (``refused``).
- A line's voice is the provider plus the flow's ``VoiceOptions``, bound once: the Speaker and the
  clip cache see a plain ``TextToSpeech`` (with ``open_session``, None when the provider or voice has no
  sessions). Bound voices and their clip caches are shared by every call with the same engine and
  options, so a clip is synthesized once per process; a line speaks through its clip cache
  (``LineVoice.tts``), so the Speaker saying a fixed line joins the clip's one synthesis instead of
  requesting it again.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.providers.clips import ClipCache
from bot.providers.tts.protocol import SpeechSession, TextToSpeech, VoiceOptions

_VOICE_LANGUAGE = re.compile(r"^([a-z]{2,3}-[A-Za-z]{2,3})-")  # en-US-Chirp3-HD-Aoede speaks en-US


class SpokenLine(Protocol):
    """What a voice needs of a call flow's line (``bot.flows.line.LineConfig``): providers sit below flows."""

    @property
    def tts_provider(self) -> str: ...

    @property
    def voice(self) -> VoiceOptions: ...


def voice_language(name: str) -> str | None:
    """The language a Google voice name carries, or None (a bare name like ``Aoede``)."""
    match = _VOICE_LANGUAGE.match(name)
    return match.group(1) if match else None


class BoundVoice(TextToSpeech):
    """A provider that always speaks with the given options."""

    def __init__(self, provider: TextToSpeech, options: VoiceOptions) -> None:
        self.provider = provider
        self.options = options

    def synthesize(self, text: str, voice: VoiceOptions | None = None) -> AsyncIterator[bytes]:
        return self.provider.synthesize(text, voice or self.options)

    def open_session(self, voice: VoiceOptions | None = None) -> SpeechSession | None:
        return self.provider.open_session(voice or self.options)

    async def aclose(self) -> None:
        """The provider belongs to the server (``Voices.aclose``)."""


@dataclass(frozen=True)
class LineVoice:
    tts: TextToSpeech
    clips: ClipCache
    engine: str


class Voices:
    def __init__(
        self,
        providers: Mapping[str, TextToSpeech],
        default: str,
        *,
        google_voice: tuple[str, str] | None = None,
    ) -> None:
        """``google_voice``: the server's Google language and voice (``TTS_LANGUAGE``, ``TTS_VOICE``)."""
        if default not in providers:
            raise ValueError(f"default engine {default!r} is not among {sorted(providers)}")
        self.providers = dict(providers)
        self.default = default
        self.google_voice = google_voice
        self._bound: dict[tuple[str, VoiceOptions], LineVoice] = {}

    def engine_for(self, line: SpokenLine) -> str:
        return self.default if line.tts_provider == "auto" else line.tts_provider

    def missing(self, line: SpokenLine) -> str | None:
        """Why this server cannot speak with the line's voice, or None."""
        engine = self.engine_for(line)
        if engine in self.providers:
            return None
        return f"the {engine} voice is not available on this server (it speaks with {self.default})"

    def refused(self, line: SpokenLine) -> str | None:
        """Why Google would refuse every phrase of the line's voice (see the module rules), or None."""
        if self.engine_for(line) != "google" or self.google_voice is None:
            return None
        language = line.voice.language or self.google_voice[0]
        name = line.voice.name or self.google_voice[1]
        own = voice_language(name)
        if own is None or own.lower() == language.lower():
            return None
        where = "" if line.voice.name else " (the server's TTS_VOICE)"
        source = "" if line.voice.language else " (the server's TTS_LANGUAGE)"
        return (
            f"Google refuses the voice {name}{where} with language {language}{source}: "
            f"the voice speaks {own}; set voice.language to {own} or pick a {language} voice.name"
        )

    def for_line(self, line: SpokenLine) -> LineVoice:
        engine = self.engine_for(line)
        if engine not in self.providers:  # checked at start-up and reload; never expected here
            engine = self.default
        key = (engine, line.voice)
        voice = self._bound.get(key)
        if voice is None:
            clips = ClipCache(BoundVoice(self.providers[engine], line.voice))
            voice = self._bound[key] = LineVoice(clips, clips, engine)
        return voice

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
