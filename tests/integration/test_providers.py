"""The bot's providers (real SDKs) against the local emulators, over real sockets on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from bot.llm.assembler import ToolCallAssembler
from bot.llm.openai_chat import OpenAIChatModel, make_client
from emulators.openai_server import OpenAIEmulator, Reply, ScriptedToolCall, TranscriptionReply
from emulators.tts_server import TtsEmulator, TtsFault
from emulators.voice import ToneCodebook
from media.errors import ProviderError
from media.stt.openai_stt import OpenAISpeechToText
from media.tts.google_tts import GoogleTextToSpeech, GoogleVoice

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


@pytest.fixture
async def openai_emu() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator(codebook=ToneCodebook()) as emu:
        yield emu


@pytest.fixture
async def tts_emu() -> AsyncIterator[TtsEmulator]:
    async with TtsEmulator(ms_per_char=10.0) as emu:
        yield emu


def chat(emu: OpenAIEmulator, **kwargs: float) -> OpenAIChatModel:
    client = make_client("sk-test", emu.base_url, max_retries=1)
    return OpenAIChatModel(client, model="gpt-4o-mini", **kwargs)


async def collect(model: OpenAIChatModel, tools: list[dict[str, object]] | None = None) -> ToolCallAssembler:
    assembler = ToolCallAssembler()
    async for chunk in model.stream(MESSAGES, tools or []):
        assembler.feed(chunk)
    return assembler


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
    assembler = await collect(model, [{"type": "function", "function": {"name": "check_hours"}}])
    calls = assembler.calls()
    assert [(c.name, c.parsed) for c in calls] == [
        ("check_hours", {"day": "monday"}),
        ("lookup_order", {"order_id": "1001"}),
    ]
    assert assembler.finish_reason == "tool_calls" and assembler.usage is not None
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
    assembler = await collect(model)
    assert assembler.finish_reason == "stop"
    assert len(openai_emu.chat_requests) == 2
    await model.aclose()


async def test_chat_stall_is_detected(openai_emu: OpenAIEmulator) -> None:
    openai_emu.replies.append(Reply(text="Let me think about that", stall_after_chunks=2))
    model = chat(openai_emu, stall_timeout_s=0.3)
    with pytest.raises(ProviderError) as info:
        await collect(model)
    assert info.value.kind == "stall"
    await model.aclose()


async def test_chat_slow_first_token_is_a_stall(openai_emu: OpenAIEmulator) -> None:
    openai_emu.replies.append(Reply(text="Late.", first_token_delay_s=2.0))
    model = chat(openai_emu, stall_timeout_s=0.3)
    with pytest.raises(ProviderError, match="stall"):
        await collect(model)
    await model.aclose()


async def test_transcription_uploads_wav(openai_emu: OpenAIEmulator) -> None:
    assert openai_emu.codebook is not None
    audio = openai_emu.codebook.speak("where is my order")
    client = make_client("sk-test", openai_emu.base_url)
    stt = OpenAISpeechToText(client, model="gpt-4o-mini-transcribe")
    assert await stt.transcribe(audio, 8000) == "where is my order"
    request = openai_emu.transcription_requests[0]
    assert request["model"] == "gpt-4o-mini-transcribe" and request["sample_rate"] == 8000
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
    [(grpc.StatusCode.UNAVAILABLE, "unavailable"), (grpc.StatusCode.INVALID_ARGUMENT, "error")],
)
async def test_tts_faults_become_provider_errors(
    tts_emu: TtsEmulator, code: grpc.StatusCode, kind: str
) -> None:
    tts_emu.faults.extend([TtsFault(code)] * 100)  # more than the 1 s retry budget on UNAVAILABLE uses
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


async def test_tts_deadline(tts_emu: TtsEmulator) -> None:
    tts_emu.first_byte_delay_s = 3.0
    tts = GoogleTextToSpeech(GoogleTextToSpeech.for_endpoint(tts_emu.address)._client, timeout_s=0.3)
    with pytest.raises(ProviderError) as info:
        async for _ in tts.synthesize("Hello"):
            pass
    assert info.value.kind == "timeout"
    await tts.aclose()
