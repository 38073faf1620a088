"""Streaming chat completions through the ``openai`` SDK (any OpenAI-compatible server).

Rules:
- Always ``stream=True`` with ``stream_options.include_usage``; chunks are yielded as plain dicts.
- A stream that ends without any ``finish_reason`` was cut: that is an error, not an answer.
- Waiting has three deadlines (``StreamDeadlines``), each a ``ProviderError("openai-chat", kind)``:
  - connecting, ``connect_s`` per attempt (the SDK's own connect timeout, which the SDK retries):
    ``connect_timeout``; a connection refused after the SDK's retries is ``connect_error``;
  - the first token, ``first_token_s`` from sending the request to the first chunk with text, a tool
    call or a finish: the response headers, the SDK's retries and back-off and any reasoning all fall
    in it (``first_token_timeout``). A late first token is not a stall: reasoning models, long
    histories and follow-ups after tools take seconds. A flow may set its own
    (``ChatOptions.first_token_timeout_s``);
  - then the gap between chunks, ``gap_s``: ``stall``.
- An event that is not JSON kills the SDK's iterator (it raises ``json.JSONDecodeError``): that is
  ``ProviderError("openai-chat", "bad_chunk")``. JSON that is not a chunk object is skipped, and odd
  fields inside a chunk are left to ``ToolCallAssembler`` (it ignores what it cannot use), so a stray
  event never costs the rest of the answer.
- The body carries only parameters the model accepts: ``temperature`` only when configured,
  ``reasoning_effort`` as configured or the lowest the model accepts (``bot.providers.llm.models``; none for
  models it does not know); never ``max_tokens``.
- Retries are the SDK's own (``max_retries`` on the client); the SDK's read timeout is set above our
  deadlines so that ours are the ones that fire. The stream is always closed, also when the consumer
  is cancelled (barge-in, hang-up).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import openai

from bot.providers.llm.models import lowest_effort
from bot.providers.llm.protocol import ChatModel, ChatOptions, Message
from media.errors import ProviderError


@dataclass(frozen=True)
class StreamDeadlines:
    """How long one streamed request may wait at each stage (see the module rules)."""

    connect_s: float = 3.0  # a reachable API connects in well under a second, also over TLS
    first_token_s: float = 8.0  # gpt-4o-mini: ~0.5-1 s; long histories, tools, reasoning: seconds
    gap_s: float = 3.0  # once streaming, chunks come every few ms: seconds of nothing is a dead stream

    def __post_init__(self) -> None:
        if min(self.connect_s, self.first_token_s, self.gap_s) <= 0:
            raise ValueError("stream deadlines must be > 0")


def make_client(
    api_key: str,
    base_url: str | None,
    *,
    max_retries: int = 1,
    timeout_s: float = 15.0,
    connect_s: float = 3.0,
) -> openai.AsyncOpenAI:
    """One client per process, shared by chat and transcription.

    The SDK imports its resource modules (and builds their pydantic models) on first use, about
    60 ms; touching them here moves that cost from the first caller's first turn to start-up.

    How the SDK's ``timeout`` and ``max_retries`` act on a streamed request (openai 3.60, httpx2 /
    httpcore2 2.16): ``AsyncAPIClient.request`` (openai/_base_client.py:1781) loops over attempts
    around ``_send_request`` (:1805), which with ``stream=True`` returns as soon as the status line
    and headers are in. A timeout there is retried (:1810-1821), as is a 408/409/429/5xx status
    (:1850-1862, ``_should_retry`` :922-964), after ``_sleep_for_retry`` (:1896): ``retry-after(-ms)``
    when the server sends one of at most 120 s (:907-909, ``MAX_RETRY_AFTER_DELAY`` in _constants.py),
    else 0.5 s * 2^n with up to 25% jitter (:915-919). Once the headers are in, the body is the
    ``AsyncStream``'s: a timeout while reading it is ``APITimeoutError`` and is never retried
    (openai/_streaming.py:170-177). ``Timeout.connect`` bounds each TCP/TLS connect
    (httpcore2/_async/connection.py:103); ``Timeout.read`` bounds every single socket read, for the
    headers (httpcore2/_async/http11.py:164) and for each body read (:185), so it is a per-gap
    timeout, not a total. Hence the chat stream's own asyncio deadlines (``StreamDeadlines``) bound
    the total, retries included, and each request sets the SDK's read timeout above them.
    """
    client = openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        max_retries=max_retries,
        timeout=openai.Timeout(timeout_s, connect=connect_s),
    )
    _ = client.chat.completions, client.audio.transcriptions
    return client


def _has_finish_reason(chunk: Mapping[str, Any]) -> bool:
    choices = chunk.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    return isinstance(first, Mapping) and isinstance(first.get("finish_reason"), str)


def _has_substance(chunk: Mapping[str, Any]) -> bool:
    """Text or a tool call: the first token. The role-only first chunk and empty deltas are not."""
    choices = chunk.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    delta = first.get("delta") if isinstance(first, Mapping) else None
    return isinstance(delta, Mapping) and bool(delta.get("content") or delta.get("tool_calls"))


class OpenAIChatModel(ChatModel):
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        temperature: float | None = None,
        deadlines: StreamDeadlines | None = None,
    ) -> None:
        self._client = client
        self.model = model
        self.temperature = temperature
        self.deadlines = deadlines or StreamDeadlines()

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[Mapping[str, Any]],
        options: ChatOptions | None = None,
    ) -> AsyncIterator[Mapping[str, Any]]:
        finished = False
        options = options or ChatOptions()
        temperature = self.temperature if options.temperature is None else options.temperature
        deadlines = self.deadlines
        first_token_s = options.first_token_timeout_s or deadlines.first_token_s
        loop = asyncio.get_running_loop()
        first_token_at = loop.time() + first_token_s
        # The SDK's read timeout is per socket read (see ``make_client``): above both of our waits, so a
        # slow first token is never retried by the SDK behind our back, nor cut before our deadline.
        sdk_timeout = openai.Timeout(max(first_token_s, deadlines.gap_s) + 1.0, connect=deadlines.connect_s)
        connected = False  # the response headers are in (the SDK retries nothing after that)
        streaming = False  # a chunk with substance arrived: from now on the gap deadline applies
        try:
            # Headers, the SDK's retries and back-off, all within the first-token deadline: some servers
            # send the headers only with the first token (llama-cpp-python's server: llama_cpp/server/app.py
            # awaits the iterator's first chunk before its EventSourceResponse).
            async with asyncio.timeout_at(first_token_at):
                # ``post`` rather than ``chat.completions.create``: the SDK's retries, timeouts, auth and
                # error mapping are the same, but the body (already plain JSON) skips the SDK's recursive
                # TypedDict transform and each chunk stays the dict it was parsed into (``cast_to=object``)
                # instead of a pydantic model dumped back to a dict: together most of the bot's model-side
                # CPU under load.
                stream = await self._client.post(
                    "/chat/completions",
                    body=self._body(messages, tools, options, temperature),
                    cast_to=object,
                    options={"timeout": sdk_timeout},
                    stream=True,
                    stream_cls=openai.AsyncStream[object],
                )
            connected = True
            try:
                chunks = aiter(stream)
                while True:
                    # The deadline covers only the wait for the next chunk, never the consumer.
                    deadline = loop.time() + deadlines.gap_s if streaming else first_token_at
                    async with asyncio.timeout_at(deadline):
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
                    streaming = streaming or finished or _has_substance(chunk)
                    yield chunk
            finally:
                await stream.close()
        except TimeoutError as exc:
            raise ProviderError("openai-chat", "stall" if streaming else "first_token_timeout") from exc
        except openai.APITimeoutError as exc:
            raise ProviderError("openai-chat", "timeout" if connected else "connect_timeout") from exc
        except openai.RateLimitError as exc:
            raise ProviderError("openai-chat", "rate_limited") from exc
        except openai.APIStatusError as exc:
            raise ProviderError("openai-chat", f"http_{exc.status_code}") from exc
        except openai.APIConnectionError as exc:  # after the SDK's retries: refused, reset, DNS...
            kind = "stream_cut" if connected else "connect_error"
            raise ProviderError("openai-chat", kind, type(exc).__name__) from exc
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
        # Sent only when configured: reasoning models take one only at reasoning_effort none
        # (bot.providers.llm.models).
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
