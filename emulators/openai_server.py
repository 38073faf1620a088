"""A local OpenAI-compatible server: chat completions and audio transcriptions, checked like the real API.

Rules:
- Listens on 127.0.0.1 only, on an ephemeral port; the base URL ends in ``/v1`` like the real one.
- Every chat request is recorded in ``chat_requests`` before validation, so rejected ones show too.
  Validation follows the real API: 401 without ``Authorization: Bearer``, then 400 (bad JSON, no model),
  404 for a model that does not exist or is shut down on ``today``, 400 for parameters the model does
  not accept (``emulators.openai_models``), then 400 for missing/empty ``messages`` or a broken tool
  round-trip (``emulators.openai_errors``). Transcriptions check the model and its language field the same
  way. Only valid requests consume ``replies`` or call the responder (``emulators.openai_script``).
- A scripted error (``Reply.status != 200``) is a plain JSON error body, even for ``stream=True``.
- ``stream=True`` answers are server-sent events with the reply's delays and faults
  (``emulators.openai_sse``); otherwise the whole object (``emulators.openai_completion``) comes after
  ``first_token_delay_s``.
- Every scripted wait wakes up on ``stop()``, so shutdown never waits for a script; a request caught
  waiting gets a 503, or has its connection dropped if its stream has begun.
- ``received_at`` is ``time.monotonic()`` so tests can measure latencies against their own clock.
"""

from __future__ import annotations

import asyncio
import io
import random
import time
import wave
from array import array
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from emulators.latency import draw
from emulators.local_http import LocalHttpEmulator
from emulators.openai_completion import Completion
from emulators.openai_errors import error_response, tool_sequence_error
from emulators.openai_models import chat_problem, live_models, transcription_problem
from emulators.openai_script import ChatRequest, Reply, Responder, TranscriptionReply, echo_responder
from emulators.openai_sse import stream_chat, stream_transcript
from emulators.voice import ToneCodebook


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
        completion = Completion(chat, reply)
        if body.get("stream"):
            return await stream_chat(request, completion, self._wait, self.rng)
        if await self._wait(draw(reply.first_token_delay_s, self.rng)):
            return error_response(503, "The emulator is shutting down.")
        return web.json_response(completion.whole())

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
            return await stream_transcript(request, text)
        if fields.get("response_format") == "text":
            return web.Response(text=text)
        return web.json_response({"text": text})
