"""The conversation history sent to the model, kept true to what the caller heard.

Rules:
- Messages are plain dicts in OpenAI's chat format. A tool round is written at once: one assistant
  message with every ``tool_calls`` entry (arguments as the streamed strings), then one ``tool``
  message per call id, so history is never left with calls lacking results.
- Each assistant message remembers the response id its speech was tracked under. After a barge-in
  ``settle`` rewrites that message to the words the caller actually heard (or drops it when nothing
  was heard), and adds the heard part of a response that was cut before it entered history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.core.tool_calls import ToolCall

Message = dict[str, Any]


class Conversation:
    def __init__(self, system_prompt: str) -> None:
        self.messages: list[Message] = [{"role": "system", "content": system_prompt}]
        self._by_response: dict[int, Message] = {}
        self._last_response_id = 0

    def new_response_id(self) -> int:
        self._last_response_id += 1
        return self._last_response_id

    def add_user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

    def add_note(self, text: str) -> None:
        """Something the model must know that nobody said (a transfer that did not happen)."""
        self.messages.append({"role": "system", "content": text})

    def add_assistant(self, text: str, response_id: int) -> None:
        if text:
            message: Message = {"role": "assistant", "content": text}
            self.messages.append(message)
            self._by_response[response_id] = message

    def add_tool_round(
        self, text: str, calls: Sequence[ToolCall], results: Sequence[str], response_id: int
    ) -> None:
        if len(calls) != len(results):  # checked first: history must never hold a call without a result
            raise ValueError(f"{len(calls)} tool calls but {len(results)} results")
        message: Message = {
            "role": "assistant",
            "content": text or None,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in calls
            ],
        }
        self.messages.append(message)
        self._by_response[response_id] = message
        for call, result in zip(calls, results, strict=True):
            self.messages.append({"role": "tool", "tool_call_id": call.id, "content": result})

    def settle(self, heard: Mapping[int, str]) -> None:
        """Rewrite assistant speech to what was heard, by response id (after a barge-in or error)."""
        for response_id, text in sorted(heard.items()):
            message = self._by_response.get(response_id)
            if message is None:
                self.add_assistant(text, response_id)
            elif "tool_calls" in message:
                message["content"] = text or None
            elif text:
                message["content"] = text
            else:
                self.messages.remove(message)
                del self._by_response[response_id]

    def rollback(self, length: int) -> None:
        """Forget every message from index ``length`` on (a speculative turn that did not happen)."""
        dropped = self.messages[length:]
        del self.messages[length:]
        for rid, message in list(self._by_response.items()):
            if any(message is m for m in dropped):
                del self._by_response[rid]
