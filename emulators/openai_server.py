"""A local OpenAI-compatible server: streaming chat completions and audio transcriptions.

Rules:
- Listens on 127.0.0.1 only, on an ephemeral port; the base URL ends in ``/v1`` like the real one.
- Every chat request is recorded in ``chat_requests`` before validation, so rejected ones show too.
  Validation follows the real API: 401 without ``Authorization: Bearer``, then 400 (bad JSON, no model),
  404 for a model that does not exist or is shut down on ``today``, 400 for parameters the model does
  not accept (``emulators.openai_models``), then 400 for missing/empty ``messages`` or a broken tool
  round-trip. Transcriptions check the model and its language field the same way. Only valid
  requests consume ``replies`` or call the responder.
- A scripted error (``Reply.status != 200``) is a plain JSON error body, even for ``stream=True``.
- Streaming sends the HTTP headers at once (or, with ``headers_with_first_token``, only with the first
  event, as llama-cpp-python's server does), waits ``first_token_delay_s``, then writes each SSE event
  by itself with ``chunk_delay_s`` before each, so delays are real on the wire. A delay is seconds or a
  seeded distribution (``emulators.latency``: long tails, or scripted values), drawn with ``seed``.
  A "chunk" (for ``cut_after_chunks``/``stall_after_chunks``) is one ``data: {json}`` event (role,
  content, tool fragment, finish, usage); ``[DONE]`` is not a chunk.
- ``garbage_after_chunks`` sends one event whose data is ``garbage`` (not JSON by default) after that many
  chunks, then carries on; the ``openai`` SDK raises while parsing it (its ``json.loads``).
- Every scripted wait wakes up on ``stop()``, so shutdown never waits for a script; a request caught
  waiting has its connection dropped.
- ``received_at`` is ``time.monotonic()`` so tests can measure latencies against their own clock.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import random
import re
import secrets
import time
import wave
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from emulators.latency import Delay, draw
from emulators.local_http import LocalHttpEmulator
from emulators.openai_errors import error_response, tool_sequence_error
from emulators.openai_models import chat_problem, live_models, transcription_problem
from emulators.voice import ToneCodebook


@dataclass
class ScriptedToolCall:
    name: str
    arguments: dict[str, Any] | str  # a str is sent verbatim (lets tests send malformed JSON)
    call_id: str | None = None  # None: a fresh ``call_...`` id

    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class Reply:
    """One scripted assistant response."""

    text: str = ""
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    first_token_delay_s: Delay = 0.0
    chunk_delay_s: Delay = 0.0  # before each event after the first (drawn per event)
    headers_with_first_token: bool = False  # hold the HTTP headers until the first event
    status: int = 200
    retry_after_ms: int | None = None  # sent as `retry-after-ms` whenever set (meant for 429)
    cut_after_chunks: int | None = None
    stall_after_chunks: int | None = None
    include_usage_chunk: bool = True  # only if the request asked stream_options.include_usage
    garbage_after_chunks: int | None = None
    garbage: str = "{not json"  # the data of the garbage event (one line)


@dataclass(frozen=True)
class ChatRequest:
    body: dict[str, Any]
    messages: list[dict[str, Any]]
    headers: Mapping[str, str]
    received_at: float

    @property
    def last_user_text(self) -> str | None:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _content_text(message.get("content"))
        return None

    @property
    def tool_results(self) -> dict[str, str]:
        """tool_call_id -> content of the trailing run of tool messages, in request order."""
        trailing = list(itertools.takewhile(lambda m: m.get("role") == "tool", reversed(self.messages)))
        return {str(m.get("tool_call_id")): _content_text(m.get("content")) or "" for m in reversed(trailing)}

    @property
    def is_follow_up(self) -> bool:
        return bool(self.messages) and self.messages[-1].get("role") == "tool"

    @property
    def tool_names(self) -> list[str]:
        """Names of the tools offered in this request."""
        tools = self.body.get("tools") or []
        return [str(t.get("function", {}).get("name")) for t in tools if isinstance(t, dict)]


Responder = Callable[[ChatRequest], Reply]


@dataclass
class TranscriptionReply:
    text: str | None = None  # None: decode the audio with the codebook
    delay_s: float = 0.0
    status: int = 200


def echo_responder(request: ChatRequest) -> Reply:
    """The default: repeat what the caller said, so a bare emulator is usable."""
    heard = request.last_user_text
    return Reply(text=f"You said: {heard}." if heard else "I did not hear anything.")


def split_words(text: str) -> list[str]:
    """Word-sized pieces with their leading whitespace, like model tokens; joining them gives ``text``."""
    return re.findall(r"\s*\S+|\s+", text)


def split_arguments(arguments: str) -> list[str]:
    """Argument fragments: at least two whenever the string has two characters or more."""
    size = max(1, min(8, len(arguments) // 2))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return None


def _usage(prompt_chars: int, completion_chars: int) -> dict[str, Any]:
    prompt, completion = max(1, prompt_chars // 4), max(1, completion_chars // 4)  # ~4 chars per token
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}  # fmt: skip


class _Completion:
    """Builds the chunks (or the whole object) of one scripted reply, shaped like the real API."""

    def __init__(self, request: ChatRequest, reply: Reply) -> None:
        self.reply = reply
        self.id = f"chatcmpl-{secrets.token_hex(12)}"
        self.created = int(time.time())
        self.model = str(request.body.get("model", ""))
        options = request.body.get("stream_options") or {}
        self.include_usage = bool(options.get("include_usage"))
        self.obfuscate = options.get("include_obfuscation", True) is not False
        self.call_ids = [c.call_id or f"call_{secrets.token_hex(12)}" for c in reply.tool_calls]
        self.finish_reason = "tool_calls" if reply.tool_calls else "stop"
        completion_chars = len(reply.text) + sum(len(c.arguments_json()) for c in reply.tool_calls)
        self.usage = _usage(len(json.dumps(request.messages)), completion_chars)

    def _envelope(self, kind: str, choices: list[dict[str, Any]], usage: Any) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "choices": choices, "usage": usage, "service_tier": "default",
                "system_fingerprint": "fp_emulator"}  # fmt: skip

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> dict[str, Any]:
        chunk = self._envelope("chat.completion.chunk", choices, usage)
        if self.obfuscate:
            chunk["obfuscation"] = secrets.token_urlsafe(3)
        return chunk

    def _delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return self._chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])

    def chunks(self) -> list[dict[str, Any]]:
        out = [self._delta({"role": "assistant", "content": "", "refusal": None})]
        out += [self._delta({"content": piece}) for piece in split_words(self.reply.text)]
        per_call: list[list[dict[str, Any]]] = []
        for index, (call, call_id) in enumerate(zip(self.reply.tool_calls, self.call_ids, strict=True)):
            function = {
                "name": call.name,
                "arguments": "",
            }  # the first fragment: id, type, name, no arguments
            head = {"index": index, "id": call_id, "type": "function", "function": function}
            pieces = split_arguments(call.arguments_json())
            per_call.append([head, *({"index": index, "function": {"arguments": a}} for a in pieces)])
        # Parallel calls: round-robin their fragments, so a client must really key them by index.
        for group in itertools.zip_longest(*per_call):
            out += [self._delta({"tool_calls": [fragment]}) for fragment in group if fragment is not None]
        out.append(self._delta({}, self.finish_reason))
        if self.include_usage and self.reply.include_usage_chunk:
            out.append(self._chunk([], self.usage))
        return out

    def whole(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.reply.text or None, "refusal": None,
                                   "annotations": []}  # fmt: skip
        if self.reply.tool_calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json()}}
                for c, cid in zip(self.reply.tool_calls, self.call_ids, strict=True)
            ]
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}
        return self._envelope("chat.completion", [choice], self.usage)


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _event_stream(request: web.Request) -> web.StreamResponse:
    """A prepared SSE response: its headers are on the wire before the first event."""
    response = web.StreamResponse(headers={"x-request-id": f"req_{secrets.token_hex(8)}"})
    response.content_type, response.charset = "text/event-stream", "utf-8"
    await response.prepare(request)
    return response


def _has_bearer(request: web.Request) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _decode_wav(data: bytes) -> tuple[bytes, int]:
    """Mono PCM16 and its rate from a WAV upload (first channel if several)."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError("only 16-bit WAV is supported")
        channels, rate = wav.getnchannels(), wav.getframerate()
        pcm = wav.readframes(wav.getnframes())
    if channels > 1:
        pcm = array("h", pcm)[::channels].tobytes()
    return pcm, rate


class OpenAIEmulator(LocalHttpEmulator):
    """See the module docstring. Use ``async with OpenAIEmulator() as emu: emu.base_url``."""

    BASE_PATH = "/v1"

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        codebook: ToneCodebook | None = None,
        transcription_delay_s: float = 0.0,
        today: date | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.today = today  # the day models are checked against (shutdowns); None: the real date
        self.rng = random.Random(seed)  # draws every latency distribution
        self.responder: Responder = responder or echo_responder
        self.codebook = codebook or ToneCodebook()
        self.transcription_delay_s = transcription_delay_s
        self.chat_requests: list[ChatRequest] = []
        self.transcription_requests: list[dict[str, Any]] = []
        self.model_requests = 0  # GET /v1/models (the bot's start-up warm-up)
        self.replies: list[Reply] = []
        self.transcription_replies: list[TranscriptionReply] = []

    def _today(self) -> date:
        return self.today or datetime.now(UTC).date()  # OpenAI's dates are UTC days

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_get("/v1/models", self._models)
        return app

    async def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds``; True if the server started stopping meanwhile."""
        if seconds > 0 and not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), seconds)
            except TimeoutError:
                return False
        return self._stopping.is_set()

    async def _hang(self, request: web.Request) -> None:
        """Stall until the client goes away or the server stops."""
        while not await self._wait(0.05):
            if request.transport is None or request.transport.is_closing():
                return

    @staticmethod
    def _dropped(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        """Close the TCP connection mid-response: the client sees an unfinished chunked body."""
        if request.transport is not None:
            request.transport.close()
        return response

    async def _models(self, request: web.Request) -> web.Response:
        if not _has_bearer(request):
            return error_response(401, "Missing bearer token")
        self.model_requests += 1
        live = live_models(self._today())
        models = [{"id": m, "object": "model", "created": 0, "owned_by": "emulator"} for m in live]
        return web.json_response({"object": "list", "data": models})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        received_at = time.monotonic()
        try:
            body: Any = await request.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        body_dict: dict[str, Any] = body if isinstance(body, dict) else {}
        messages = body_dict.get("messages")
        dict_messages = [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
        chat = ChatRequest(body_dict, dict_messages, request.headers.copy(), received_at)
        self.chat_requests.append(chat)

        if not _has_bearer(request):
            return error_response(401, "You didn't provide an API key.", code="invalid_api_key")
        if not isinstance(body, dict):
            return error_response(400, "We could not parse the JSON body of your request.")
        if not isinstance(body.get("model"), str) or not body["model"]:
            return error_response(400, "you must provide a model parameter", param="model")
        if (refused := chat_problem(body, self._today())) is not None:
            return error_response(refused[0], refused[1], param=refused[2], code=refused[3])
        if not isinstance(messages, list) or not messages:
            return error_response(
                400, "Invalid 'messages': empty array. Expected an array with minimum length 1.",
                param="messages", code="empty_array",
            )  # fmt: skip
        problem = tool_sequence_error(messages)
        if problem is not None:
            return error_response(400, problem[0], param=problem[1])

        reply = self.replies.pop(0) if self.replies else self.responder(chat)
        if reply.status != 200:
            return error_response(
                reply.status, f"Emulated error {reply.status}.", retry_after_ms=reply.retry_after_ms
            )
        completion = _Completion(chat, reply)
        if body.get("stream"):
            return await self._stream(request, completion)
        if await self._wait(draw(reply.first_token_delay_s, self.rng)):
            return error_response(503, "The emulator is shutting down.")
        return web.json_response(completion.whole())

    async def _stream(self, request: web.Request, completion: _Completion) -> web.StreamResponse:
        reply = completion.reply
        first_token_delay = draw(reply.first_token_delay_s, self.rng)
        if reply.headers_with_first_token:
            if await self._wait(first_token_delay):
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
            if await self._wait(first_token_delay):
                return self._dropped(request, response)
            for n, event in enumerate(events):
                if n > 0 and await self._wait(draw(reply.chunk_delay_s, self.rng)):
                    return self._dropped(request, response)
                await response.write(event)
            if limit == reply.stall_after_chunks:
                await self._hang(request)
            if limit in interrupt_at:
                return self._dropped(request, response)
            await response.write(b"data: [DONE]\n\n")
        except ConnectionError:
            pass  # the client went away; nothing left to send
        return response

    async def _transcriptions(self, request: web.Request) -> web.StreamResponse:
        if not _has_bearer(request):
            return error_response(401, "You didn't provide an API key.", code="invalid_api_key")
        form = await request.post()
        upload = form.get("file")
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        record: dict[str, Any] = {**fields, "received_at": time.monotonic(), "text": None}
        self.transcription_requests.append(record)
        if not isinstance(upload, web.FileField):
            return error_response(400, "Missing required parameter: 'file'.", param="file")
        data = upload.file.read()
        record["file_bytes"] = len(data)  # what the bot uploaded (tests bound it)
        record.update(filename=upload.filename, content_type=upload.content_type, n_bytes=len(data))
        if not fields.get("model"):
            return error_response(400, "Missing required parameter: 'model'.", param="model")
        record["languages"] = form.getall("languages[]", [])
        if (refused := transcription_problem(fields["model"], form, self._today())) is not None:
            return error_response(refused[0], refused[1], param=refused[2], code=refused[3])
        try:
            pcm, rate = _decode_wav(data)
        except (wave.Error, EOFError, ValueError):
            return error_response(
                400, "Invalid file format. Supported formats: wav (PCM16) in this emulator."
            )
        record.update(sample_rate=rate, pcm_bytes=len(pcm), duration_s=len(pcm) / 2 / rate)

        queued = self.transcription_replies
        scripted = queued.pop(0) if queued else TranscriptionReply(delay_s=self.transcription_delay_s)
        if await self._wait(scripted.delay_s):
            return error_response(503, "The emulator is shutting down.")
        if scripted.status != 200:
            return error_response(scripted.status, f"Emulated error {scripted.status}.")
        # The tone decoder assumes 8 kHz; tests and the demo send 8 kHz.
        text = scripted.text if scripted.text is not None else (self.codebook.transcribe(pcm) or "")
        record["text"] = text

        if fields.get("stream", "").lower() in ("true", "1"):
            return await self._stream_transcript(request, text)
        if fields.get("response_format") == "text":
            return web.Response(text=text)
        return web.json_response({"text": text})

    async def _stream_transcript(self, request: web.Request, text: str) -> web.StreamResponse:
        """``stream=True`` transcription: one delta event per word, then the done event (no [DONE])."""
        response = await _event_stream(request)
        try:
            for piece in split_words(text):
                await response.write(_sse({"type": "transcript.text.delta", "delta": piece}))
            await response.write(_sse({"type": "transcript.text.done", "text": text}))
        except ConnectionError:
            pass
        return response
