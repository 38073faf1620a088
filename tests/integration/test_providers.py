"""The bot's providers (real SDKs) against the local emulators, over real sockets on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc
import pytest

from bot.core.tool_calls import ToolCallAssembler
from bot.providers.llm.openai_chat import OpenAIChatModel, StreamDeadlines, make_client
from bot.providers.stt.openai import OpenAISpeechToText
from bot.providers.tts.google import QUOTA_RETRY_S, GoogleTextToSpeech, GoogleVoice
from emulators.openai_script import Reply, ScriptedToolCall, TranscriptionReply
from emulators.openai_server import OpenAIEmulator
from emulators.tts_quota import TtsQuota
from emulators.tts_server import TtsEmulator, TtsFault
from emulators.voice import ToneCodebook
from media.errors import ProviderError

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


@pytest.fixture
async def openai_emu() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator(codebook=ToneCodebook()) as emu:
        yield emu


@pytest.fixture
async def tts_emu() -> AsyncIterator[TtsEmulator]:
    async with TtsEmulator(ms_per_char=10.0) as emu:
        yield emu


def chat(emu: OpenAIEmulator, **deadlines: float) -> OpenAIChatModel:
    client = make_client("sk-test", emu.base_url, max_retries=1)
    return OpenAIChatModel(client, model="gpt-6-luna", deadlines=StreamDeadlines(**deadlines))


async def collect(
    model: OpenAIChatModel, tools: list[dict[str, object]] | None = None
) -> tuple[ToolCallAssembler, list[Mapping[str, Any]]]:
    assembler, chunks = ToolCallAssembler(), []
    async for chunk in model.stream(MESSAGES, tools or []):
        assembler.feed(chunk)
        chunks.append(chunk)
    return assembler, chunks


def finish_reasons(chunks: list[Mapping[str, Any]]) -> list[str]:
    choices = [choice for chunk in chunks for choice in chunk.get("choices") or []]
    return [choice["finish_reason"] for choice in choices if choice.get("finish_reason")]


async def test_chat_streams_text_and_usage(openai_emu: OpenAIEmulator) -> None:
    openai_emu.replies.append(Reply(text="Hello there, how can I help?"))
    model = chat(openai_emu)
    texts = []
    async for chunk in model.stream(MESSAGES, []):
        choices = chunk.get("choices") or []
        if choices and choices[0]["delta"].get("content"):
            texts.append(choices[0]["delta"]["content"])
    assert "".join(texts) == "Hello there, how can I help?"
    assert len(texts) > 1  # streamed, not one blob
    body = openai_emu.chat_requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    await model.aclose()


async def test_chat_tool_calls_assembled_across_chunks(openai_emu: OpenAIEmulator) -> None:
    openai_emu.replies.append(
        Reply(
            tool_calls=[
                ScriptedToolCall("check_hours", {"day": "monday"}),
                ScriptedToolCall("lookup_order", {"order_id": "1001"}),
            ]
        )
    )
    model = chat(openai_emu)
    assembler, chunks = await collect(model, [{"type": "function", "function": {"name": "check_hours"}}])
    calls = assembler.calls()
    assert [(c.name, c.parsed) for c in calls] == [
        ("check_hours", {"day": "monday"}),
        ("lookup_order", {"order_id": "1001"}),
    ]
    assert finish_reasons(chunks) == ["tool_calls"] and chunks[-1]["usage"] is not None
    assert openai_emu.chat_requests[0].body["tools"][0]["function"]["name"] == "check_hours"
    await model.aclose()


@pytest.mark.parametrize(
    ("replies", "kind", "requests"),
    [
        ([Reply(status=500), Reply(status=500)], "http_500", 2),
        ([Reply(text="one two three four five six", cut_after_chunks=3)], "stream_cut", 1),
        ([Reply(status=400)], "http_400", 1),
    ],
)
async def test_chat_errors_become_provider_errors(
    openai_emu: OpenAIEmulator, replies: list[Reply], kind: str, requests: int
) -> None:
    openai_emu.replies.extend(replies)
    model = chat(openai_emu)
    with pytest.raises(ProviderError) as info:
        await collect(model)
    assert info.value.kind == kind
    assert len(openai_emu.chat_requests) == requests
    await model.aclose()


async def test_chat_429_is_retried_by_the_sdk(openai_emu: OpenAIEmulator) -> None:
    openai_emu.replies.extend([Reply(status=429, retry_after_ms=50), Reply(text="Fine.")])
    model = chat(openai_emu)
    _, chunks = await collect(model)
    assert finish_reasons(chunks) == ["stop"]
    assert len(openai_emu.chat_requests) == 2
    await model.aclose()


async def test_chat_stall_is_detected(openai_emu: OpenAIEmulator) -> None:
    openai_emu.replies.append(Reply(text="Let me think about that", stall_after_chunks=2))
    model = chat(openai_emu, gap_s=0.3)
    with pytest.raises(ProviderError) as info:
        await collect(model)
    assert info.value.kind == "stall"
    await model.aclose()


# A slow first token is no longer a stall: tests/integration/test_chat_deadlines.py.


async def test_transcription_uploads_wav(openai_emu: OpenAIEmulator) -> None:
    assert openai_emu.codebook is not None
    audio = openai_emu.codebook.speak("where is my order")
    client = make_client("sk-test", openai_emu.base_url)
    stt = OpenAISpeechToText(client, model="gpt-transcribe")
    assert await stt.transcribe(audio, 8000) == "where is my order"
    request = openai_emu.transcription_requests[0]
    assert request["model"] == "gpt-transcribe" and request["sample_rate"] == 8000
    assert request["languages"] == ["en"] and "language" not in request  # the list form gpt-transcribe takes
    openai_emu.transcription_replies.extend([TranscriptionReply(status=500), TranscriptionReply(status=500)])
    with pytest.raises(ProviderError, match="http_500"):
        await stt.transcribe(audio, 8000)
    await client.close()


@pytest.mark.parametrize("encoding", ["mulaw", "pcm"])
@pytest.mark.parametrize("streaming", [False, True])
async def test_tts_gives_headerless_8k_mulaw(tts_emu: TtsEmulator, encoding: str, streaming: bool) -> None:
    voice = GoogleVoice(encoding=encoding, streaming=streaming)  # type: ignore[arg-type]
    tts = GoogleTextToSpeech.for_endpoint(tts_emu.address, voice)
    chunks = [c async for c in tts.synthesize("Hello from the store.")]
    audio = b"".join(chunks)
    assert not audio.startswith(b"RIFF")
    expected = round(len("Hello from the store.") * 10 * 8)  # 10 ms per char at 8000 bytes/s
    assert abs(len(audio) - expected) <= 160
    request = tts_emu.synth_requests[0]
    assert request["text"] == "Hello from the store."
    # A stream asks documented headerless PCM at 24 kHz (resampled here); unary asks 8 kHz.
    assert (request["encoding"], request["sample_rate"]) == (
        ("PCM", 24000) if streaming else (encoding.upper(), 8000)
    )
    assert request["kind"] == ("streaming" if streaming else "unary")
    await tts.aclose()


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (grpc.StatusCode.UNAVAILABLE, "unavailable"),
        (grpc.StatusCode.INVALID_ARGUMENT, "bad_request"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "quota"),
    ],
)
async def test_tts_faults_become_provider_errors(
    tts_emu: TtsEmulator, code: grpc.StatusCode, kind: str
) -> None:
    tts_emu.faults.extend([TtsFault(code)] * 100)  # more than the 1 s retry budget uses
    tts = GoogleTextToSpeech.for_endpoint(tts_emu.address)
    with pytest.raises(ProviderError) as info:
        async for _ in tts.synthesize("Hello"):
            pass
    assert info.value.kind == kind
    await tts.aclose()


async def test_tts_retries_a_passing_unavailable(tts_emu: TtsEmulator) -> None:
    tts_emu.faults.append(TtsFault(grpc.StatusCode.UNAVAILABLE))
    tts = GoogleTextToSpeech.for_endpoint(tts_emu.address)
    audio = b"".join([c async for c in tts.synthesize("Hello")])
    assert audio and len(tts_emu.synth_requests) >= 1
    await tts.aclose()


async def test_tts_retries_a_passing_quota_error(tts_emu: TtsEmulator) -> None:
    tts_emu.faults.extend([TtsFault(grpc.StatusCode.RESOURCE_EXHAUSTED, "Quota exceeded")] * 2)
    tts = GoogleTextToSpeech.for_endpoint(tts_emu.address)
    audio = b"".join([c async for c in tts.synthesize("Hello")])
    assert audio and len(tts_emu.synth_requests) == 3
    await tts.aclose()


@pytest.mark.parametrize("streaming", [False, True])
async def test_tts_quota_exhausted_is_a_quota_error_within_the_retry_budget(
    tts_emu: TtsEmulator, streaming: bool
) -> None:
    # Google's quota, used up for the minute (the emulator's clock stands still): unary requests and
    # streams refused before any audio are retried with back-off for about QUOTA_RETRY_S, then the error
    # is kind "quota" (a fallback voice's cue).
    tts_emu.quota = TtsQuota(chirp3_per_minute=1, clock=lambda: 0.0)
    tts = GoogleTextToSpeech.for_endpoint(tts_emu.address, GoogleVoice(streaming=streaming))
    assert b"".join([c async for c in tts.synthesize("Hello")])
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        async for _ in tts.synthesize("Again"):
            pass
    elapsed = time.monotonic() - started
    assert info.value.kind == "quota"
    assert tts_emu.quota.refused >= 2  # backed off and tried again
    assert elapsed < QUOTA_RETRY_S + 2.0  # bounded: well inside the phrase's deadline
    await tts.aclose()


async def test_tts_deadline(tts_emu: TtsEmulator) -> None:
    tts_emu.first_byte_delay_s = 3.0
    tts = GoogleTextToSpeech(GoogleTextToSpeech.for_endpoint(tts_emu.address)._client, timeout_s=0.3)
    with pytest.raises(ProviderError) as info:
        async for _ in tts.synthesize("Hello"):
            pass
    assert info.value.kind == "timeout"
    await tts.aclose()


async def test_tts_input_over_5000_bytes_is_asked_for_in_pieces(tts_emu: TtsEmulator) -> None:
    # The emulator refuses a request over 5,000 bytes as Google does; the phrase is still said, whole.
    text = " ".join(["café"] * 1300)  # 6,499 bytes
    tts = GoogleTextToSpeech.for_endpoint(tts_emu.address)
    audio = b"".join([c async for c in tts.synthesize(text)])
    pieces = [r["text"] for r in tts_emu.synth_requests]
    assert len(pieces) == 2 and " ".join(pieces) == text
    assert abs(len(audio) - sum(map(len, pieces)) * 10 * 8) <= 2 * 160  # 10 ms per character at 8 kHz
    await tts.aclose()
