"""The flow's own tools answered from the recording: a replay repeats no side effect (a refund, a
cancellation) on the services the flow's tools reach.

Rules:
- ``RecordedTools.tools`` is a ``CallDeps.flow_tools``: each http or python tool of the replayed line
  keeps its name, description, schema, timeout and filler (so the registry checks arguments and words
  its errors as it would), but its handler never calls the flow's function or service.
- A call gets the recorded result of the first call not yet served with the same name and arguments
  (JSON normalised: key order and spacing do not count), in the recording's call order, after the
  recorded call's duration (on the replay's clock; at most ``TIMEOUT_SHARE`` of the tool's timeout, so
  a busy machine cannot turn a recorded slow answer into a timeout), so fillers come as they did.
- A recorded error is an error again (``{"error": ...}``). A result is served as it was recorded: a
  secret masked in it stays ``[redacted]``.
- A call the recording does not have (another tool, other arguments, or one more than were recorded)
  runs nothing: it gets the error result ``NOT_RECORDED`` the model reads, and is kept in ``misses``.
- The telephony tools (end_call, transfer_call) are not flow tools: they act on the call as before.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bot.sim.replay.recorded import RecordedToolCall
from bot.tools.registry import Tool, ToolHandler

NOT_RECORDED: Final = (
    "not recorded: this replay answers tools from the recording and the call has no such call; "
    "replay with --tools live to run the flow's tools"
)
TIMEOUT_SHARE: Final = 0.8  # a recorded duration is waited at most this share of the tool's timeout


@dataclass
class RecordedTools:
    calls: Sequence[RecordedToolCall]
    served: int = 0
    misses: list[str] = field(default_factory=list)  # name(arguments) of each call without a record
    _used: set[int] = field(default_factory=set)

    def tools(self, own: Sequence[Tool]) -> tuple[Tool, ...]:
        """``own`` with handlers that answer from the recording (a ``CallDeps.flow_tools``)."""
        return tuple(dataclasses.replace(tool, handler=self._handler(tool)) for tool in own)

    def _handler(self, tool: Tool) -> ToolHandler:
        async def answer(**arguments: Any) -> Any:
            return await self.answer(tool, arguments)

        return answer

    async def answer(self, tool: Tool, arguments: dict[str, Any]) -> Any:
        key = f"{tool.name}({json.dumps(arguments, sort_keys=True, separators=(',', ':'))})"
        index = next((i for i, c in enumerate(self.calls) if i not in self._used and c.call == key), None)
        if index is None:
            self.misses.append(key)
            return {"error": NOT_RECORDED}
        self._used.add(index)
        recorded = self.calls[index]
        await asyncio.sleep(max(0.0, min(recorded.ms / 1000, tool.timeout_s * TIMEOUT_SHARE)))
        self.served += 1
        return _as_returned(recorded.result)


def _as_returned(result: str) -> Any:
    """The recorded text as the registry gets it back unchanged; an ``{"error": ...}`` dict as the dict,
    so the registry counts it as a failure again (it writes it back as the same JSON)."""
    try:
        value = json.loads(result)
    except ValueError:
        return result
    return value if isinstance(value, dict) and "error" in value else result
