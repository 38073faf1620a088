"""Streaming chat completions through the ``openai`` SDK (any OpenAI-compatible server).

Rules:
- Always ``stream=True`` with ``stream_options.include_usage``; chunks are yielded as plain dicts.
- A stream that ends without any ``finish_reason`` was cut: that is an error, not an answer.
- A gap longer than ``stall_timeout_s`` between chunks (or before the first) is a stall: the stream
  is closed and ``ProviderError("openai-chat", "stall")`` raised, so the caller is not left in silence.
- An event that is not JSON kills the SDK's iterator (it raises ``json.JSONDecodeError``): that is
  ``ProviderError("openai-chat", "bad_chunk")``. JSON that is not a chunk object is skipped, and odd
  fields inside a chunk are left to ``ToolCallAssembler`` (it ignores what it cannot use), so a stray
  event never costs the rest of the answer.
- The body carries only parameters the model accepts: ``temperature`` only when configured,
  ``reasoning_effort`` as configured or the lowest the model accepts (``bot.llm.models``; none for
  models it does not know); never ``max_tokens``.
- Retries and the HTTP timeout are the SDK's own (configured on the client); the stream is always
  closed, also when the consumer is cancelled (barge-in, hang-up).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import openai

from bot.llm.models import lowest_effort
from bot.llm.protocol import ChatOptions, Message
from media.errors import ProviderError


def make_client(
    api_key: str, base_url: str | None, *, max_retries: int = 1, timeout_s: float = 15.0
) -> openai.AsyncOpenAI:
    """One client per process, shared by chat and transcription.

    The SDK imports its resource modules (and builds their pydantic models) on first use, about
    60 ms; touching them here moves that cost from the first caller's first turn to start-up.
    """
    client = openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        max_retries=max_retries,
        timeout=openai.Timeout(timeout_s, connect=3.0),
    )
    _ = client.chat.completions, client.audio.transcriptions
    return client


def _has_finish_reason(chunk: Mapping[str, Any]) -> bool:
    choices = chunk.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    return isinstance(first, Mapping) and isinstance(first.get("finish_reason"), str)


class OpenAIChatModel:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        temperature: float | None = None,
        stall_timeout_s: float = 1.5,
    ) -> None:
        self._client = client
        self.model = model
        self.temperature = temperature
        self.stall_timeout_s = stall_timeout_s

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[Mapping[str, Any]],
        options: ChatOptions | None = None,
    ) -> AsyncIterator[Mapping[str, Any]]:
        finished = False
        options = options or ChatOptions()
        temperature = self.temperature if options.temperature is None else options.temperature
        try:
            async with asyncio.timeout(self.stall_timeout_s):
                # ``post`` rather than ``chat.completions.create``: the SDK's retries, timeouts, auth and
                # error mapping are the same, but the body (already plain JSON) skips the SDK's recursive
                # TypedDict transform and each chunk stays the dict it was parsed into (``cast_to=object``)
                # instead of a pydantic model dumped back to a dict: together ~0.3 ms per request plus
                # ~0.1 ms per chunk of CPU, which is most of the bot's model-side cost under load.
                stream = await self._client.post(
                    "/chat/completions",
                    body=self._body(messages, tools, options, temperature),
                    cast_to=object,
                    stream=True,
                    stream_cls=openai.AsyncStream[object],
                )
            try:
                chunks = aiter(stream)
                while True:
                    # The stall timer covers only the wait for the next chunk, never the consumer.
                    async with asyncio.timeout(self.stall_timeout_s):
                        try:
                            chunk = await anext(chunks)
                        except StopAsyncIteration:
                            break
                        except ValueError as exc:  # json.JSONDecodeError from the SDK's SSE parsing
                            raise ProviderError("openai-chat", "bad_chunk", type(exc).__name__) from exc
                    if not isinstance(chunk, dict):
                        continue  # valid JSON that is not an object: the SDK passes it through as is
                    if _has_finish_reason(chunk):
                        finished = True
                    yield chunk
            finally:
                await stream.close()
        except TimeoutError as exc:
            raise ProviderError("openai-chat", "stall") from exc
        except openai.APITimeoutError as exc:
            raise ProviderError("openai-chat", "timeout") from exc
        except openai.RateLimitError as exc:
            raise ProviderError("openai-chat", "rate_limited") from exc
        except openai.APIStatusError as exc:
            raise ProviderError("openai-chat", f"http_{exc.status_code}") from exc
        except openai.APIError as exc:
            raise ProviderError("openai-chat", "stream_cut", type(exc).__name__) from exc
        if not finished:
            raise ProviderError("openai-chat", "stream_cut", "no finish_reason")

    def _body(
        self,
        messages: Sequence[Message],
        tools: Sequence[Mapping[str, Any]],
        options: ChatOptions,
        temperature: float | None,
    ) -> dict[str, Any]:
        model = options.model or self.model
        body: dict[str, Any] = {
            "model": model,
            "messages": list(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = list(tools)
        # Sent only when configured: reasoning models take one only at reasoning_effort none (bot.llm.models).
        if temperature is not None:
            body["temperature"] = temperature
        # Reasoning happens before the first token, while the caller waits: unless configured, the lowest
        # effort the model accepts. Models we do not know (a local server's) get no reasoning_effort at
        # all, as do non-reasoning ones (they reject it). gpt-5.6 and later need an explicit "none" with
        # tools; omitting it means their default, medium, which the API rejects with tools.
        effort = options.reasoning_effort or lowest_effort(model)
        if effort is not None:
            body["reasoning_effort"] = effort
        return body

    async def warm_up(self) -> None:
        """Open the HTTP connection before the first caller needs it (GET /models, result unused)."""
        try:
            async with asyncio.timeout(3.0):
                await self._client.models.list()
        except (TimeoutError, openai.APIError):
            pass  # a warm-up that fails costs the first turn a few ms, nothing more

    async def aclose(self) -> None:
        await self._client.close()
