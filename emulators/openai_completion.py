"""One scripted reply shaped as the real API's answer: a ``chat.completion`` object, or its chunks.

Rules:
- Every chunk carries the real envelope (``id``, ``object``, ``created``, ``model``, ``choices``, ``usage``,
  ``service_tier``, ``system_fingerprint``) and an ``obfuscation`` field unless the request set
  ``stream_options.include_obfuscation`` to false.
- Chunk order: the role chunk (empty content), word-sized content chunks (``split_words``, joined they give
  the text), tool-call fragments, the finish chunk (``tool_calls`` if the reply has any, else ``stop``),
  then a usage chunk with no choices only if the request asked ``stream_options.include_usage`` (and the
  reply allows it).
- A tool call's first fragment has its ``id``, ``type``, name and empty arguments; its arguments follow in
  at least two fragments (``split_arguments``). Parallel calls' fragments are round-robined, so a client
  must key them by ``index``.
- Usage is estimated at ~4 characters per token. Pure: no I/O.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from typing import Any

from emulators.openai_script import ChatRequest, Reply


def split_words(text: str) -> list[str]:
    """Word-sized pieces with their leading whitespace, like model tokens; joining them gives ``text``."""
    return re.findall(r"\s*\S+|\s+", text)


def split_arguments(arguments: str) -> list[str]:
    """Argument fragments: at least two whenever the string has two characters or more."""
    size = max(1, min(8, len(arguments) // 2))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def _usage(prompt_chars: int, completion_chars: int) -> dict[str, Any]:
    prompt, completion = max(1, prompt_chars // 4), max(1, completion_chars // 4)  # ~4 chars per token
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}  # fmt: skip


class Completion:
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
