"""Tools the model may call, and running one response's calls in parallel.

Rules:
- Every call of one model response runs at the same time (``asyncio.TaskGroup``), each under its
  own timeout. ``run_all`` never raises for a tool's sake: an unknown tool, arguments that are not
  valid JSON, a tool that raises or one that hangs past its timeout each become a short error string
  that goes back to the model as that call's result, so the model can tell the caller.
- A result that is a dict with an ``error`` key counts as a failure in the turn's figures.
- Results are strings (JSON for structured results) capped at ``MAX_RESULT_CHARS``, so a tool that
  returns a huge payload cannot blow up the prompt.
- Results come back in the order of the calls, one per call id.
- A handler that returns ``FinalResult`` ends the answer: its result goes into history but the model
  is not asked to go on (the call acts instead: it hangs up or transfers).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from bot.llm.assembler import ToolCall

MAX_RESULT_CHARS = 4000
ToolHandler = Callable[..., Awaitable[Any]]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: Mapping[str, Any]  # JSON schema of the arguments object
    handler: ToolHandler  # called with the parsed arguments as keyword arguments
    timeout_s: float = 5.0
    filler: str | None = None  # said while this tool runs, instead of the line's default filler

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }


@dataclass(frozen=True)
class FinalResult:
    """A tool result after which the model is not asked for more (see the module rules)."""

    value: Any


@dataclass(frozen=True)
class ToolResult:
    call: ToolCall
    content: str
    ok: bool
    duration_s: float
    final: bool = False


@dataclass
class ToolRegistry:
    tools: dict[str, Tool] = field(default_factory=dict)

    @classmethod
    def of(cls, tools: Sequence[Tool]) -> ToolRegistry:
        return cls({t.name: t for t in tools})

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self.tools.values()]

    def filler_for(self, calls: Sequence[ToolCall]) -> str | None:
        for call in calls:
            tool = self.tools.get(call.name)
            if tool is not None and tool.filler:
                return tool.filler
        return None

    async def run_all(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        results: list[ToolResult | None] = [None] * len(calls)

        async def run(i: int, call: ToolCall) -> None:
            results[i] = await self._run_one(call)

        async with asyncio.TaskGroup() as group:
            for i, call in enumerate(calls):
                group.create_task(run(i, call))
        return [r for r in results if r is not None]

    async def _run_one(self, call: ToolCall) -> ToolResult:
        loop = asyncio.get_running_loop()
        started = loop.time()

        def done(content: str, ok: bool, final: bool = False) -> ToolResult:
            if len(content) > MAX_RESULT_CHARS:
                content = content[:MAX_RESULT_CHARS] + "...(truncated)"
            return ToolResult(call, content, ok, loop.time() - started, final)

        tool = self.tools.get(call.name)
        if tool is None:
            return done(json.dumps({"error": f"unknown tool {call.name!r}"}), False)
        if call.error is not None or call.parsed is None:
            return done(json.dumps({"error": call.error or "arguments must be a JSON object"}), False)
        try:
            bound = inspect.signature(tool.handler).bind(**call.parsed)
        except TypeError as exc:  # wrong or missing arguments from the model
            return done(json.dumps({"error": f"bad arguments for {call.name}: {exc}"}), False)
        try:
            async with asyncio.timeout(tool.timeout_s):
                value = await tool.handler(*bound.args, **bound.kwargs)
        except TimeoutError:
            log.warning("tool_timeout", tool=call.name, timeout_s=tool.timeout_s)
            return done(json.dumps({"error": f"{call.name} timed out after {tool.timeout_s:g} s"}), False)
        except Exception as exc:
            log.warning("tool_failed", tool=call.name, error=type(exc).__name__)
            return done(json.dumps({"error": f"{call.name} failed ({type(exc).__name__})"}), False)
        final = isinstance(value, FinalResult)
        if final:
            value = value.value
        content = value if isinstance(value, str) else json.dumps(value, default=str)
        # A tool may report its own failure as {"error": ...} (an HTTP tool's service answered 500).
        return done(content, not (isinstance(value, dict) and "error" in value), final)
