"""The emulated OpenAI API's per-model rules, through the real ``openai`` SDK over loopback sockets.

Rules checked here: the emulator answers like the real API (status, OpenAI's error shape, the SDK's
exception class) for a temperature a reasoning model refuses, a reasoning effort it does not take or that
does not exist, ``max_tokens``, function tools with reasoning, an unknown model and one past its shutdown
(404 ``model_not_found``), and the wrong language field for a transcription model; the bot's own
catalogue (``bot.providers.llm.models``) and the emulator's independent table agree; and what the bot sends by
default is accepted for every chat model both know.
"""

from __future__ import annotations

import io
import itertools
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import aiohttp
import openai
import pytest

from bot.core.tool_calls import ToolCallAssembler
from bot.providers.llm import models as bot_models
from bot.providers.llm.openai_chat import OpenAIChatModel, make_client
from bot.providers.llm.protocol import ChatOptions
from bot.providers.stt.openai import OpenAISpeechToText
from emulators import openai_models as emu_models
from emulators.openai_server import OpenAIEmulator
from media.errors import ProviderError

USER: list[Any] = [{"role": "user", "content": "What time do you open?"}]
TOOL: Any = {
    "type": "function",
    "function": {"name": "check_hours", "description": "Opening hours.", "parameters": {"type": "object"}},
}
TODAY = date(2026, 12, 3)


@asynccontextmanager
async def served(today: date = TODAY) -> AsyncIterator[tuple[OpenAIEmulator, openai.AsyncOpenAI]]:
    async with (
        OpenAIEmulator(today=today) as emu,
        openai.AsyncOpenAI(base_url=emu.base_url, api_key="test", max_retries=0, timeout=10.0) as client,
    ):
        yield emu, client


async def refused(client: openai.AsyncOpenAI, **request: Any) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(messages=USER, stream=True, **request)
    return caught.value


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    """The body's ``error`` object: OpenAI's shape, all four keys."""
    body = exc.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    error: dict[str, Any] = body["error"]
    return error


async def test_temperature_on_a_reasoning_model() -> None:
    async with served() as (_, client):
        exc = await refused(client, model="gpt-6-luna", reasoning_effort="low", temperature=0.7)
        assert isinstance(exc, openai.BadRequestError) and exc.status_code == 400
        error = error_of(exc)
        assert (error["param"], error["code"]) == ("temperature", "unsupported_value")
        assert "does not support 0.7 with this model" in error["message"]
        # With effort none, and the default value 1 at any effort, the same model takes it.
        await client.chat.completions.create(
            model="gpt-6-luna", messages=USER, reasoning_effort="none", temperature=0.7
        )
        await client.chat.completions.create(
            model="gpt-6-luna", messages=USER, reasoning_effort="low", temperature=1
        )
        # gpt-6-astra has no effort none: a temperature is always refused (bolna-ai/bolna#1019).
        exc = await refused(client, model="gpt-6-astra", temperature=0.2)
        assert error_of(exc)["param"] == "temperature"


async def test_reasoning_effort_values() -> None:
    async with served() as (_, client):
        error = error_of(await refused(client, model="gpt-6-luna", reasoning_effort="minimal"))
        assert (error["param"], error["code"]) == ("reasoning_effort", "unsupported_value")
        assert error["message"] == (
            "Unsupported value: 'reasoning_effort' does not support 'minimal' with this model. "
            "Supported values are: 'none', 'low', 'medium', 'high', and 'xhigh'."
        )
        error = error_of(await refused(client, model="gpt-6-luna", reasoning_effort="turbo"))
        assert (error["param"], error["code"]) == ("reasoning_effort", "invalid_value")
        error = error_of(await refused(client, model="gpt-4.1", reasoning_effort="low"))
        assert (error["param"], error["code"]) == ("reasoning_effort", "unsupported_parameter")
        error = error_of(await refused(client, model="gpt-6-astra", reasoning_effort="none"))
        assert "Supported values are: 'low', 'medium', 'high', and 'xhigh'." in error["message"]


async def test_max_tokens_on_a_reasoning_model() -> None:
    async with served() as (_, client):
        error = error_of(await refused(client, model="gpt-5.4-mini", max_tokens=50))
        assert (error["param"], error["code"]) == ("max_tokens", "unsupported_parameter")
        assert "Use 'max_completion_tokens' instead." in error["message"]
        await client.chat.completions.create(model="gpt-5.4-mini", messages=USER, max_completion_tokens=50)
        await client.chat.completions.create(model="gpt-4.1", messages=USER, max_tokens=50)


async def test_function_tools_need_effort_none_on_chat_completions() -> None:
    async with served() as (_, client):
        # gpt-5.6 and later default to medium: leaving the effort out is refused too (livekit/agents#7169).
        for effort in (openai.omit, "low"):
            error = error_of(await refused(client, model="gpt-6-luna", tools=[TOOL], reasoning_effort=effort))
            assert (error["param"], error["code"]) == ("reasoning_effort", None)
            assert error["message"].startswith(
                "Function tools with reasoning_effort are not supported for gpt-6-luna"
            )
        await client.chat.completions.create(
            model="gpt-6-luna", messages=USER, tools=[TOOL], reasoning_effort="none"
        )
        # gpt-5.4 defaults to none: no effort is fine, "low" is not.
        await client.chat.completions.create(model="gpt-5.4-mini", messages=USER, tools=[TOOL])
        await refused(client, model="gpt-5.4-mini", tools=[TOOL], reasoning_effort="low")
        await refused(client, model="gpt-6-astra", tools=[TOOL], reasoning_effort="low")


async def test_unknown_and_shut_down_models_do_not_exist() -> None:
    async with served() as (_, client):
        exc = await refused(client, model="gpt-test")
        assert isinstance(exc, openai.NotFoundError) and exc.status_code == 404
        error = error_of(exc)
        assert (error["param"], error["code"]) == (None, "model_not_found")
        assert error["message"] == "The model `gpt-test` does not exist or you do not have access to it."
        await client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # until 2027-01-14
        await client.chat.completions.create(model="gpt-4o-mini-2024-07-18", messages=USER)  # its snapshot
    async with served(date(2027, 1, 14)) as (emu, client):
        for model in ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-5-mini", "o3"):
            assert error_of(await refused(client, model=model))["code"] == "model_not_found"
        listed = {m.id async for m in client.models.list()}
        assert "gpt-6-luna" in listed and "gpt-transcribe" in listed and "gpt-4o-mini" not in listed
        assert len(emu.chat_requests) == 4  # refused ones are recorded too


def wav(pcm16: bytes = bytes(1600)) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(pcm16)
    return buffer.getvalue()


async def test_transcription_language_field_per_model() -> None:
    async with served() as (emu, client):
        upload = ("turn.wav", wav(), "audio/wav")
        with pytest.raises(openai.BadRequestError) as caught:
            await client.audio.transcriptions.create(model="gpt-transcribe", file=upload, language="en")
        assert (error_of(caught.value)["param"], caught.value.code) == ("language", "unsupported_parameter")
        await client.audio.transcriptions.create(model="gpt-transcribe", file=upload, languages=["en", "es"])
        assert emu.transcription_requests[-1]["languages"] == ["en", "es"]
        with pytest.raises(openai.BadRequestError) as caught:
            await client.audio.transcriptions.create(model="gpt-4o-transcribe", file=upload, languages=["en"])
        assert error_of(caught.value)["param"] == "languages"
        await client.audio.transcriptions.create(model="gpt-4o-transcribe", file=upload, language="en")
        with pytest.raises(openai.NotFoundError):
            await client.audio.transcriptions.create(model="gpt-6-luna", file=upload)  # not a transcriber
    async with served(date(2027, 2, 26)) as (_, client):
        with pytest.raises(openai.NotFoundError):
            await client.audio.transcriptions.create(model="whisper-1", file=("turn.wav", wav(), "audio/wav"))


async def test_the_emulator_checks_after_authentication() -> None:
    async with served() as (emu, _), aiohttp.ClientSession() as http:
        body = {"model": "gpt-test", "messages": USER}
        async with http.post(f"{emu.base_url}/chat/completions", json=body) as response:
            assert response.status == 401  # no key: the model is not even looked at


# ---- the bot and the emulator agree ------------------------------------------------------------------------


def test_the_two_tables_agree_on_every_model_both_know() -> None:
    both = {m for m in set(emu_models.LIVE) & set(bot_models._FAMILIES) if emu_models.exists(m, TODAY)}
    assert {"gpt-6-luna", "gpt-5.4-mini", "gpt-6-astra", "gpt-4o-mini"} <= both
    efforts = (None, *emu_models.ALL_EFFORTS)
    for model, effort, temperature, tools in itertools.product(
        sorted(both), efforts, (None, 1, 0.3), (False, True)
    ):
        body: dict[str, Any] = {"model": model, "messages": USER}
        body |= {"reasoning_effort": effort or bot_models.lowest_effort(model), "temperature": temperature}
        body |= {"tools": [TOOL]} if tools else {}
        body = {k: v for k, v in body.items() if v is not None}
        bot_ok = not bot_models.chat_problems(
            model, reasoning_effort=effort, temperature=temperature, has_tools=tools
        )
        assert bot_ok == (emu_models.chat_problem(body, TODAY) is None), (model, effort, temperature, tools)
    for model in (*emu_models.SHUTDOWN, *emu_models.TRANSCRIPTION):
        assert emu_models.SHUTDOWN.get(model) == bot_models.shutdown_date(model), model


@pytest.mark.parametrize("model", sorted(set(emu_models.LIVE) - set(emu_models.SHUTDOWN)))
async def test_what_the_bot_sends_by_default_is_accepted(model: str) -> None:
    """The bot's default body (lowest effort, no temperature) with a tool, for every live chat model."""
    async with served() as (emu, _):
        chat = OpenAIChatModel(make_client("sk-test", emu.base_url, max_retries=0), model=model)
        assembler, text = ToolCallAssembler(), ""
        try:
            async for chunk in chat.stream(USER, [TOOL]):
                text += assembler.feed(chunk)
        except ProviderError as exc:
            assert model in ("gpt-6-astra", "gpt-6.2-astra") and exc.kind == "http_400"  # no tools there
        else:
            assert text and assembler.calls() == []  # an answer in words (a cut stream raises stream_cut)
        finally:
            await chat.aclose()


async def test_a_flows_effort_that_the_model_refuses_is_a_provider_error() -> None:
    async with served() as (emu, _):
        chat = OpenAIChatModel(make_client("sk-test", emu.base_url, max_retries=0), model="gpt-6-luna")
        with pytest.raises(ProviderError, match="http_400"):
            async for _ in chat.stream(USER, [TOOL], ChatOptions(reasoning_effort="low")):
                pass
        assert emu.chat_requests[-1].body["reasoning_effort"] == "low"
        await chat.aclose()


@pytest.mark.parametrize("model", ["gpt-transcribe", "gpt-4o-transcribe"])
async def test_the_bots_transcription_request_is_accepted(model: str) -> None:
    async with served() as (emu, _):
        client = make_client("sk-test", emu.base_url, max_retries=0)
        stt = OpenAISpeechToText(client, model=model, language="en")
        assert await stt.transcribe(bytes(1600), 8000) == ""
        record = emu.transcription_requests[-1]
        assert (record.get("language"), record["languages"]) == (
            (None, ["en"]) if model == "gpt-transcribe" else ("en", [])
        )
        await client.close()
