"""The OpenAI emulator driven by the real ``openai.AsyncOpenAI`` over loopback sockets.

Each test builds its own client with an explicit ``max_retries`` and a 10 s timeout, so nothing can hang.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionChunk

from emulators.openai_completion import split_arguments, split_words
from emulators.openai_script import ChatRequest, Reply, ScriptedToolCall, TranscriptionReply
from emulators.openai_server import OpenAIEmulator
from emulators.voice import ToneCodebook

USER: list[Any] = [{"role": "user", "content": "I want to talk to sales"}]
# A model the emulator serves whatever the date (no announced shutdown; emulators/openai_models.py).
MODEL = "gpt-6-luna"
TRANSFER = ScriptedToolCall("transfer_call", {"dept": "sales", "reason": "wants a quote"})


def assistant_calling(call_id: str, name: str = "transfer_call") -> dict[str, Any]:
    """The assistant message that records a tool call in the history."""
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


@asynccontextmanager
async def client_for(
    emu: OpenAIEmulator, *, max_retries: int = 0, read_timeout_s: float = 10.0
) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=emu.base_url,
        api_key="test",
        max_retries=max_retries,
        timeout=openai.Timeout(read_timeout_s, connect=3.0),
    ) as client:
        yield client


async def stream_chunks(client: openai.AsyncOpenAI, **extra: Any) -> list[ChatCompletionChunk]:
    stream = await client.chat.completions.create(model=MODEL, messages=USER, stream=True, **extra)
    return [chunk async for chunk in stream]


def assemble_tool_calls(chunks: list[ChatCompletionChunk]) -> dict[int, dict[str, Any]]:
    """index -> {id, name, arguments, fragments}, the way a client must do it."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for fragment in choice.delta.tool_calls or []:
                call = calls.setdefault(
                    fragment.index, {"id": None, "name": None, "arguments": "", "fragments": 0}
                )
                if fragment.id:
                    assert call["id"] is None, "id appears only in the first fragment"
                    call["id"] = fragment.id
                if fragment.function and fragment.function.name:
                    call["name"] = fragment.function.name
                if fragment.function and fragment.function.arguments:
                    call["arguments"] += fragment.function.arguments
                    call["fragments"] += 1
    return calls


def finish_reasons(chunks: list[ChatCompletionChunk]) -> list[str]:
    return [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason]


async def test_text_streams_in_pieces_and_reassembles(openai_emulator: OpenAIEmulator) -> None:
    text = "Sure, I can help you with that. Which department?"
    openai_emulator.replies.append(Reply(text=text, chunk_delay_s=0.005))
    async with client_for(openai_emulator) as client:
        chunks = await stream_chunks(client)
    first = chunks[0].choices[0]
    assert (first.delta.role, first.delta.content) == ("assistant", "")
    contents = [c.delta.content for chunk in chunks[1:] for c in chunk.choices if c.delta.content]
    assert len(contents) >= 5 and "".join(contents) == text
    assert finish_reasons(chunks) == ["stop"]
    assert chunks[-1].choices[0].delta.content is None  # the final chunk has an empty delta
    assert all(chunk.object == "chat.completion.chunk" and chunk.model == MODEL for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1


async def test_tool_call_arguments_arrive_in_fragments(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.replies.append(Reply(tool_calls=[TRANSFER]))
    async with client_for(openai_emulator) as client:
        chunks = await stream_chunks(client, tools=[])
    calls = assemble_tool_calls(chunks)
    assert list(calls) == [0]
    assert calls[0]["name"] == "transfer_call" and calls[0]["id"].startswith("call_")
    assert calls[0]["fragments"] >= 2
    assert json.loads(calls[0]["arguments"]) == TRANSFER.arguments
    assert finish_reasons(chunks) == ["tool_calls"]


async def test_parallel_tool_calls_use_indices_0_and_1(openai_emulator: OpenAIEmulator) -> None:
    weather = ScriptedToolCall("get_hours", {"day": "monday"})
    openai_emulator.replies.append(Reply(text="One moment.", tool_calls=[TRANSFER, weather]))
    async with client_for(openai_emulator) as client:
        chunks = await stream_chunks(client)
    calls = assemble_tool_calls(chunks)
    assert sorted(calls) == [0, 1]
    assert [calls[i]["name"] for i in (0, 1)] == ["transfer_call", "get_hours"]
    assert calls[0]["id"] != calls[1]["id"]
    assert json.loads(calls[1]["arguments"]) == {"day": "monday"}
    order = [f.index for chunk in chunks for c in chunk.choices for f in c.delta.tool_calls or []]
    assert order != sorted(order), "fragments of parallel calls are interleaved"


async def test_malformed_arguments_are_sent_verbatim(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.replies.append(Reply(tool_calls=[ScriptedToolCall("transfer_call", '{"dept": "sal')]))
    async with client_for(openai_emulator) as client:
        calls = assemble_tool_calls(await stream_chunks(client))
    assert calls[0]["arguments"] == '{"dept": "sal'


async def test_usage_chunk_only_when_asked(openai_emulator: OpenAIEmulator) -> None:
    async with client_for(openai_emulator) as client:
        with_usage = await stream_chunks(client, stream_options={"include_usage": True})
        without = await stream_chunks(client)
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None
    assert with_usage[-1].usage.total_tokens > 0
    assert all(chunk.usage is None for chunk in with_usage[:-1])
    assert all(chunk.choices and chunk.usage is None for chunk in without)


async def test_echo_responder_and_plain_completion(openai_emulator: OpenAIEmulator) -> None:
    async with client_for(openai_emulator) as client:
        completion = await client.chat.completions.create(model=MODEL, messages=USER)
    assert completion.choices[0].message.content == "You said: I want to talk to sales."
    assert completion.choices[0].finish_reason == "stop"


async def test_tool_round_trip_reaches_the_responder(openai_emulator: OpenAIEmulator) -> None:
    seen: list[ChatRequest] = []

    def responder(request: ChatRequest) -> Reply:
        seen.append(request)
        if request.is_follow_up:
            return Reply(text=f"Done: {request.tool_results}")
        return Reply(tool_calls=[TRANSFER])

    openai_emulator.responder = responder
    async with client_for(openai_emulator) as client:
        calls = assemble_tool_calls(await stream_chunks(client))
        call_id = calls[0]["id"]
        history = [
            *USER,
            assistant_calling(call_id),
            {"role": "tool", "tool_call_id": call_id, "content": '{"ok": true}'},
        ]
        stream = await client.chat.completions.create(model=MODEL, messages=history, stream=True)
        text = "".join([c.delta.content or "" async for chunk in stream for c in chunk.choices])
    assert text == f"Done: {{'{call_id}': '{{\"ok\": true}}'}}"
    assert [r.is_follow_up for r in seen] == [False, True]
    assert seen[0].last_user_text == "I want to talk to sales"
    assert seen[1].headers["Authorization"] == "Bearer test"


async def test_500_is_retried_then_raised(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.responder = lambda request: Reply(status=500)
    async with client_for(openai_emulator, max_retries=1) as client:
        with pytest.raises(openai.InternalServerError) as raised:
            await stream_chunks(client)
    assert raised.value.status_code == 500
    assert len(openai_emulator.chat_requests) == 2  # the first try and one SDK retry


async def test_429_with_retry_after_ms_then_success(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.replies += [Reply(status=429, retry_after_ms=60), Reply(text="Back again.")]
    async with client_for(openai_emulator, max_retries=1) as client:
        chunks = await stream_chunks(client)
    assert "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices) == "Back again."
    first, second = openai_emulator.chat_requests
    assert second.received_at - first.received_at >= 0.05  # the SDK waited for retry-after-ms


async def test_429_without_retries_reaches_the_caller(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.replies.append(Reply(status=429, retry_after_ms=10))
    async with client_for(openai_emulator) as client:
        with pytest.raises(openai.RateLimitError) as raised:
            await stream_chunks(client)
    assert raised.value.code == "rate_limit_exceeded"
    assert raised.value.response.headers["retry-after-ms"] == "10"


CHECKING = "Let me check that for you"


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        # Observed with openai 3.57 / httpx2: the unfinished chunked body raises APIConnectionError (caused
        # by httpx2's RemoteProtocolError) during iteration, after the chunks already sent were yielded.
        pytest.param(Reply(text=CHECKING, cut_after_chunks=3), openai.APIConnectionError, id="cut"),
        # Observed with openai 3.57: the SDK json.loads each event's data itself, so a broken event raises
        # json.JSONDecodeError (not an openai.APIError) after the chunks before it were yielded.
        pytest.param(Reply(text=CHECKING, garbage_after_chunks=3), json.JSONDecodeError, id="garbage"),
    ],
)
async def test_a_stream_broken_after_3_chunks_raises_while_iterating_after_yielding_them(
    openai_emulator: OpenAIEmulator, reply: Reply, error: type[Exception]
) -> None:
    openai_emulator.replies.append(reply)
    received: list[ChatCompletionChunk] = []
    async with client_for(openai_emulator) as client:
        stream = await client.chat.completions.create(model=MODEL, messages=USER, stream=True)
        with pytest.raises(error):
            async for chunk in stream:
                received.append(chunk)
    assert len(received) == 3 and finish_reasons(received) == []


async def test_garbage_event_goes_between_chunks_and_the_stream_carries_on(
    openai_emulator: OpenAIEmulator,
) -> None:
    openai_emulator.replies.append(Reply(text="One two", garbage_after_chunks=1, garbage="[1, 2]"))
    body = {"model": MODEL, "messages": USER, "stream": True}
    headers = {"Authorization": "Bearer test"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{openai_emulator.base_url}/chat/completions", json=body, headers=headers) as r,
    ):
        events = [e.removeprefix("data: ") for e in (await r.text()).split("\n\n") if e]
    assert events[1] == "[1, 2]" and events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:1] + events[2:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "One two"
    # Valid JSON that is not a chunk: the SDK does not raise, it yields the value as it is.
    openai_emulator.replies.append(Reply(text="One two", garbage_after_chunks=1, garbage="[1, 2]"))
    async with client_for(openai_emulator) as client:
        stream = await client.chat.completions.create(model=MODEL, messages=USER, stream=True)
        received: list[Any] = [chunk async for chunk in stream]
    assert received[1] == [1, 2] and finish_reasons(received[:1] + received[2:]) == ["stop"]


async def test_stall_hits_the_client_read_timeout(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.replies.append(Reply(text="I am thinking about it", stall_after_chunks=2))
    received: list[ChatCompletionChunk] = []
    async with client_for(openai_emulator, read_timeout_s=0.5) as client:
        stream = await client.chat.completions.create(model=MODEL, messages=USER, stream=True)
        with pytest.raises(openai.APITimeoutError):
            async for chunk in stream:
                received.append(chunk)
    assert len(received) == 2


async def test_stop_releases_a_stalled_request() -> None:
    async with OpenAIEmulator() as emu, client_for(emu) as client:
        emu.replies.append(Reply(text="Never finished", stall_after_chunks=1))
        stream = await client.chat.completions.create(model=MODEL, messages=USER, stream=True)
        await anext(aiter(stream))
        await emu.stop()
        with pytest.raises(openai.APIConnectionError):
            await anext(aiter(stream))


async def test_first_token_delay_is_on_the_wire(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.replies.append(Reply(text="Hello", first_token_delay_s=0.3))
    async with client_for(openai_emulator) as client:
        started = time.monotonic()
        stream = await client.chat.completions.create(model=MODEL, messages=USER, stream=True)
        await anext(aiter(stream))
        assert time.monotonic() - started >= 0.3
        await stream.close()


async def test_tool_calls_without_tool_messages_is_400(openai_emulator: OpenAIEmulator) -> None:
    history = [
        *USER,
        assistant_calling("call_1"),
        {"role": "user", "content": "hello?"},
    ]
    async with client_for(openai_emulator, max_retries=2) as client:
        with pytest.raises(openai.BadRequestError) as raised:
            await client.chat.completions.create(model=MODEL, messages=history, stream=True)
    assert "call_1" in raised.value.message
    assert len(openai_emulator.chat_requests) == 1  # 400 is not retried


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [*USER, {"role": "tool", "tool_call_id": "call_x", "content": "orphan"}],
        [*USER, assistant_calling("call_1"), {"role": "tool", "tool_call_id": "call_2", "content": "?"}],
    ],
    ids=["empty", "orphan-tool-message", "unknown-tool-call-id"],
)
async def test_invalid_messages_are_400(openai_emulator: OpenAIEmulator, messages: list[Any]) -> None:
    async with client_for(openai_emulator) as client:
        with pytest.raises(openai.BadRequestError) as raised:
            await client.chat.completions.create(model=MODEL, messages=messages)
    assert raised.value.type == "invalid_request_error"
    assert openai_emulator.replies == [] and len(openai_emulator.chat_requests) == 1


async def test_missing_bearer_is_401(openai_emulator: OpenAIEmulator) -> None:
    body = {"model": MODEL, "messages": USER}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{openai_emulator.base_url}/chat/completions", json=body) as r,
    ):
        assert r.status == 401
        assert (await r.json())["error"]["code"] == "invalid_api_key"
    assert len(openai_emulator.chat_requests) == 1


def wav_bytes(pcm16: bytes, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm16)
    return buffer.getvalue()


async def test_transcription_decodes_the_tone_voice() -> None:
    codebook = ToneCodebook()
    codebook.code("something else")  # so the sentence is not code 0
    audio = wav_bytes(codebook.speak("hello there"))
    async with OpenAIEmulator(codebook=codebook) as emu, client_for(emu) as client:
        result = await client.audio.transcriptions.create(
            model="gpt-transcribe", file=("turn.wav", audio, "audio/wav")
        )
        silence = await client.audio.transcriptions.create(
            model="gpt-transcribe", file=("quiet.wav", wav_bytes(bytes(8000)), "audio/wav")
        )
    assert result.text == "hello there" and silence.text == ""
    record = emu.transcription_requests[0]
    assert (record["model"], record["filename"], record["text"]) == (
        "gpt-transcribe",
        "turn.wav",
        "hello there",
    )
    assert record["sample_rate"] == 8000 and record["n_bytes"] == len(audio)


async def test_streamed_transcription_events(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.transcription_replies.append(TranscriptionReply(text="transfer me please"))
    async with client_for(openai_emulator) as client:
        stream = await client.audio.transcriptions.create(
            model="gpt-transcribe", file=("turn.wav", wav_bytes(bytes(800)), "audio/wav"), stream=True
        )
        events = [event async for event in stream]
    assert [e.type for e in events][-1] == "transcript.text.done"
    assert "".join(e.delta for e in events if e.type == "transcript.text.delta") == "transfer me please"


async def test_transcription_queue_overrides_status_and_text(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.transcription_replies += [
        TranscriptionReply(status=500),
        TranscriptionReply(text="scripted"),
    ]
    async with client_for(openai_emulator) as client:
        with pytest.raises(openai.InternalServerError):
            await client.audio.transcriptions.create(
                model="gpt-transcribe", file=("a.wav", wav_bytes(b""), "audio/wav")
            )
        result = await client.audio.transcriptions.create(
            model="gpt-transcribe", file=("a.wav", wav_bytes(b""), "audio/wav")
        )
        with pytest.raises(openai.BadRequestError):  # raw mu-law is not a WAV
            await client.audio.transcriptions.create(
                model="gpt-transcribe", file=("a.ulaw", b"\xff" * 80, "audio/basic")
            )
    assert result.text == "scripted"


async def test_restarts_in_one_process() -> None:
    emu = OpenAIEmulator()
    for _ in range(3):
        base_url = await emu.start()
        async with client_for(emu) as client:
            completion = await client.chat.completions.create(model=MODEL, messages=USER)
        assert completion.choices[0].message.content
        await emu.stop()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
    assert len(emu.chat_requests) == 3
    await asyncio.sleep(0)


@given(st.text())
def test_split_words_keeps_every_character(text: str) -> None:
    pieces = split_words(text)
    assert "".join(pieces) == text
    assert all(piece.strip() or piece is pieces[-1] for piece in pieces)


@given(st.text())
def test_split_arguments_gives_two_or_more_fragments(arguments: str) -> None:
    pieces = split_arguments(arguments)
    assert "".join(pieces) == arguments
    assert len(pieces) >= 2 or len(arguments) < 2
