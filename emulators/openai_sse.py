"""The OpenAI emulator's server-sent events: a scripted reply streamed with real delays and faults.

Rules:
- Streaming sends the HTTP headers at once (or, with ``headers_with_first_token``, only with the first
  event, as llama-cpp-python's server does), waits ``first_token_delay_s``, then writes each SSE event
  by itself with ``chunk_delay_s`` before each, so delays are real on the wire. A delay is seconds or a
  seeded distribution (``emulators.latency``: long tails, or scripted values), drawn with the server's rng.
  A "chunk" (for ``cut_after_chunks``/``stall_after_chunks``) is one ``data: {json}`` event (role,
  content, tool fragment, finish, usage); ``[DONE]`` is not a chunk.
- ``cut_after_chunks`` closes the TCP connection after that many chunks (the client sees an unfinished
  chunked body); ``stall_after_chunks`` stalls there until the client goes away or the server stops, then
  closes it the same way.
- ``garbage_after_chunks`` sends one event whose data is ``garbage`` (not JSON by default) after that many
  chunks, then carries on; the ``openai`` SDK raises while parsing it (its ``json.loads``).
- Every wait goes through the server's ``pause``, which ends early when the server stops; a stream caught
  waiting then has its connection dropped.
- A streamed transcription is one ``transcript.text.delta`` event per word, then ``transcript.text.done``,
  and no ``[DONE]``.
- A client that goes away mid-stream is not an error: nothing is left to send.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from emulators.latency import draw
from emulators.openai_completion import Completion, split_words

Pause = Callable[[float], Awaitable[bool]]  # sleep that many seconds; True if the server began stopping


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _event_stream(request: web.Request) -> web.StreamResponse:
    """A prepared SSE response: its headers are on the wire before the first event."""
    response = web.StreamResponse(headers={"x-request-id": f"req_{secrets.token_hex(8)}"})
    response.content_type, response.charset = "text/event-stream", "utf-8"
    await response.prepare(request)
    return response


async def stream_chat(
    request: web.Request, completion: Completion, pause: Pause, rng: random.Random
) -> web.StreamResponse:
    """Stream ``completion`` as its reply scripts it (see the module rules)."""
    reply = completion.reply
    first_token_delay = draw(reply.first_token_delay_s, rng)
    if reply.headers_with_first_token:
        if await pause(first_token_delay):
            return web.Response(status=503)
        first_token_delay = 0.0
    response = await _event_stream(request)
    chunks = completion.chunks()
    interrupt_at = [n for n in (reply.cut_after_chunks, reply.stall_after_chunks) if n is not None]
    limit = min([len(chunks), *interrupt_at])
    events = [_sse(chunk) for chunk in chunks[:limit]]
    if reply.garbage_after_chunks is not None:
        events.insert(min(reply.garbage_after_chunks, limit), f"data: {reply.garbage}\n\n".encode())
    try:
        if await pause(first_token_delay):
            return _dropped(request, response)
        for n, event in enumerate(events):
            if n > 0 and await pause(draw(reply.chunk_delay_s, rng)):
                return _dropped(request, response)
            await response.write(event)
        if limit == reply.stall_after_chunks:
            await _hang(request, pause)
        if limit in interrupt_at:
            return _dropped(request, response)
        await response.write(b"data: [DONE]\n\n")
    except ConnectionError:
        pass  # the client went away; nothing left to send
    return response


async def stream_transcript(request: web.Request, text: str) -> web.StreamResponse:
    """``stream=True`` transcription: one delta event per word, then the done event (no [DONE])."""
    response = await _event_stream(request)
    try:
        for piece in split_words(text):
            await response.write(_sse({"type": "transcript.text.delta", "delta": piece}))
        await response.write(_sse({"type": "transcript.text.done", "text": text}))
    except ConnectionError:
        pass
    return response


async def _hang(request: web.Request, pause: Pause) -> None:
    """Stall until the client goes away or the server stops."""
    while not await pause(0.05):
        if request.transport is None or request.transport.is_closing():
            return


def _dropped(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Close the TCP connection mid-response: the client sees an unfinished chunked body."""
    if request.transport is not None:
        request.transport.close()
    return response
