"""ToolCallAssembler: OpenAI chat-completion stream chunks in, text and complete tool calls out.

Rules:
- Chunks are plain dicts (``ChatCompletionChunk.model_dump()``); this module imports no SDK.
- Only choice index 0 matters. ``feed`` returns that choice's ``delta.content`` ("" if none).
- Missing or null ``choices``, ``delta``, ``content`` and ``tool_calls`` are normal (the usage chunk
  has ``choices == []``); values of the wrong type are ignored, never raised on.
- Tool-call fragments are keyed by ``index``. ``id`` and ``function.name`` come from the first
  fragment that has them; ``function.arguments`` fragments are concatenated in arrival order.
  A fragment without an integer ``index`` (some compatible servers omit it) continues the last
  call, unless it brings a new id, which starts the next index.
- Arguments are parsed only in ``calls()``, after ``finish_reason`` or at the end of the stream.
  Empty arguments mean ``{}``. Bad calls are reported in ``ToolCall.error`` (that text becomes the
  tool result for the model); ``calls()`` never raises. Execute a call only when ``error is None``.
- A missing id is replaced by the stable ``call_<index>`` so history and tool results still pair up.
- ``finish_reason`` and ``usage`` are not read here: the provider tells a finished stream from a cut one
  (``bot.providers.llm.openai_chat``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

_ERROR_DETAIL_MAX_CHARS = 100


@dataclass(frozen=True)
class ToolCall:
    index: int
    id: str
    name: str
    arguments: str  # raw JSON string as streamed; goes back into history as a string
    parsed: dict[str, Any] | None  # None when the arguments are not a JSON object
    error: str | None  # None if the call is usable; otherwise the tool result to give the model


@dataclass
class _PartialCall:
    id: str | None = None
    name: str | None = None
    argument_parts: list[str] = field(default_factory=list)


def _parse_arguments(arguments: str) -> tuple[dict[str, Any] | None, str | None]:
    if not arguments.strip():
        return {}, None
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        return None, f"arguments are not valid JSON: {exc.msg} at char {exc.pos}"
    except ValueError as exc:  # e.g. an integer literal beyond int()'s digit limit
        return None, f"arguments are not valid JSON: {str(exc)[:_ERROR_DETAIL_MAX_CHARS]}"
    except RecursionError:
        return None, "arguments are not valid JSON: nested too deeply"
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, got {type(value).__name__}"
    return value, None


def _is_index(value: object) -> TypeGuard[int]:
    # bool is an int subclass but never a valid index.
    return isinstance(value, int) and not isinstance(value, bool)


class ToolCallAssembler:
    """Accumulates one streamed completion. Use a fresh assembler per request."""

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}
        self._last_index: int | None = None

    def feed(self, chunk: Mapping[str, Any]) -> str:
        """Takes one chunk; returns its text content for choice 0 ("" if none)."""
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return ""
        text: list[str] = []
        for choice in choices:
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if not isinstance(delta, Mapping):
                continue
            content = delta.get("content")
            if isinstance(content, str):
                text.append(content)
            tool_calls = delta.get("tool_calls")
            if isinstance(tool_calls, list):
                for fragment in tool_calls:
                    if isinstance(fragment, Mapping):
                        self._add_fragment(fragment)
        return "".join(text)

    def _add_fragment(self, fragment: Mapping[str, Any]) -> None:
        call_id = fragment.get("id")
        call_id = call_id if isinstance(call_id, str) and call_id else None
        raw_index = fragment.get("index")
        index = raw_index if _is_index(raw_index) else self._guess_index(call_id)
        call = self._calls.setdefault(index, _PartialCall())
        self._last_index = index
        if call.id is None:
            call.id = call_id
        function = fragment.get("function")
        if not isinstance(function, Mapping):
            return
        name = function.get("name")
        if call.name is None and isinstance(name, str) and name:
            call.name = name
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call.argument_parts.append(arguments)

    def _guess_index(self, call_id: str | None) -> int:
        if self._last_index is None:
            return 0
        last = self._calls[self._last_index]
        if call_id is not None and last.id is not None and call_id != last.id:
            return max(self._calls) + 1
        return self._last_index

    def calls(self) -> list[ToolCall]:
        """The assembled calls sorted by index, with arguments parsed now."""
        result: list[ToolCall] = []
        for index in sorted(self._calls):
            partial = self._calls[index]
            arguments = "".join(partial.argument_parts)
            parsed, error = _parse_arguments(arguments)
            if partial.name is None:
                error = "tool call without a name"
            result.append(
                ToolCall(
                    index=index,
                    id=partial.id if partial.id is not None else f"call_{index}",
                    name=partial.name or "",
                    arguments=arguments,
                    parsed=parsed,
                    error=error,
                )
            )
        return result
