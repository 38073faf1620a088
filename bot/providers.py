"""Wiring: build the process-wide providers from settings (the only place that picks them)."""

from __future__ import annotations

from bot.call import CallDeps
from bot.clips import ClipCache
from bot.line import LineConfig
from bot.llm.openai_chat import OpenAIChatModel, make_client
from bot.settings import Settings
from media.stt.openai_stt import OpenAISpeechToText
from media.tts.google_tts import GoogleTextToSpeech, GoogleVoice


def build_deps(settings: Settings, line: LineConfig) -> CallDeps:
    client = make_client(
        settings.openai_api_key.get_secret_value(),
        settings.openai_base_url,
        max_retries=settings.llm_max_retries,
    )
    voice = GoogleVoice(
        language_code=settings.tts_language,
        name=settings.tts_voice,
        speaking_rate=line.voice.speaking_rate,
        encoding="pcm" if settings.tts_encoding == "pcm" else "mulaw",
        streaming=settings.tts_streaming,
    )
    tts = GoogleTextToSpeech.for_endpoint(settings.google_tts_endpoint, voice)
    llm = OpenAIChatModel(
        client,
        model=settings.llm_model,
        temperature=settings.llm_temperature,
        stall_timeout_s=settings.llm_stall_timeout_s,
    )
    stt = OpenAISpeechToText(client, model=settings.stt_model, language=settings.stt_language)
    return CallDeps(stt=stt, llm=llm, tts=tts, line=line, clips=ClipCache(tts))


async def close_deps(deps: CallDeps) -> None:
    await deps.tts.aclose()
    close = getattr(deps.llm, "aclose", None)
    if close is not None:
        await close()


async def warm_up(deps: CallDeps) -> None:
    """Before the first call: connect to the providers and synthesize the line's fixed clips."""
    warm = getattr(deps.llm, "warm_up", None)
    if warm is not None:
        await warm()
    await deps.clips.ensure(deps.line.clip_texts())
