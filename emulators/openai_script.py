"""What a test scripts the OpenAI emulator with, and the request its responder is shown.

Rules:
- A ``Reply`` is one scripted assistant response: its text and tool calls, its latencies (seconds or
  ``emulators.latency`` distributions) and its faults (an error status, a cut, a stall, a garbage event).
  How the server streams it is ``emulators.openai_sse``; how its chunks look, ``emulators.openai_completion``.
- The server answers a valid chat request with the next queued ``Reply``, else the responder's (a
  ``Responder``: ``ChatRequest -> Reply``); ``echo_responder`` is the default. A ``TranscriptionReply``
  scripts one transcription the same way.
- ``ChatRequest`` is the request as received (recorded before validation, so rejected ones show too):
  the JSON body, its dict messages, the headers, and ``received_at`` on ``time.monotonic()``.
- Pure data: no I/O.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulators.latency import Delay


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


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return None
