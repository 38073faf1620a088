"""Tools the model may call, and running one response's calls in parallel.

Rules:
- Every call of one model response runs at the same time (``asyncio.TaskGroup``), each under its
  own timeout. ``run_all`` never raises for a tool's sake: an unknown tool, arguments that are not
  valid JSON, a tool that raises or one that hangs past its timeout each become a short error string
  that goes back to the model as that call's result, so the model can tell the caller.
- Arguments are checked against the tool's ``parameters`` JSON schema (``jsonschema``, draft 2020-12)
  before its handler runs: an unknown key, a wrong type, a pattern or enum not met is an error result
  naming the first problem (``bad arguments for NAME at PATH: ...``) and nothing is called.
- At most ``MAX_CALLS_PER_RESPONSE`` calls of one response run; every call past the cap gets the
  error result ``TOO_MANY_CALLS`` (each call id still gets its result, as the chat API requires), so
  one response cannot fan out into hundreds of requests to a service.
- A tool's ``secrets`` (the header values an HTTP tool sends) are masked as ``[redacted]`` in its
  results (``bot.core.redact``'s rule, as logs and recordings), so a service that echoes them cannot put
  them in the prompt, the recordings or the logs.
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
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from bot.core.redact import Redactor
from bot.core.tool_calls import ToolCall

MAX_RESULT_CHARS = 4000
# A turn needs one or two lookups; 8 leaves room for a caller asking about several orders at once.
MAX_CALLS_PER_RESPONSE = 8
TOO_MANY_CALLS = (
    f"not run: at most {MAX_CALLS_PER_RESPONSE} tool calls per response; "
    "ask again with fewer calls, the most important first"
)
_ARGUMENT_ERROR_MAX_CHARS = 200
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
    secrets: tuple[str, ...] = ()  # values this tool sends that its results must never show
    _validator: Any = field(init=False, repr=False, compare=False)
    _redactor: Redactor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built once per tool: the schema was checked when the flow was loaded (bot.flows.tool_specs).
        object.__setattr__(self, "_validator", Draft202012Validator(dict(self.parameters)))
        object.__setattr__(self, "_redactor", Redactor.of(self.secrets))

    def redact(self, text: str) -> str:
        """``text`` with this tool's secrets masked (``bot.core.redact``'s rule)."""
        return self._redactor.text(text)

    def argument_error(self, arguments: Mapping[str, Any]) -> str | None:
        """The first way ``arguments`` break the schema, in one short sentence; None when they fit."""
        try:
            error = best_match(self._validator.iter_errors(arguments))
        except Exception as exc:  # e.g. a $ref nobody can resolve: never run on arguments unchecked
            return f"bad arguments for {self.name}: its schema cannot be applied ({type(exc).__name__})"
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path) or "(arguments)"
        message = error.message
        if len(message) > _ARGUMENT_ERROR_MAX_CHARS:
            message = message[: _ARGUMENT_ERROR_MAX_CHARS - 3] + "..."
        return f"bad arguments for {self.name} at {where}: {message}"

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

        if len(calls) > MAX_CALLS_PER_RESPONSE:
            log.warning("tool_calls_capped", calls=len(calls), cap=MAX_CALLS_PER_RESPONSE)
            for i in range(MAX_CALLS_PER_RESPONSE, len(calls)):
                results[i] = ToolResult(calls[i], json.dumps({"error": TOO_MANY_CALLS}), False, 0.0)
        async with asyncio.TaskGroup() as group:
            for i, call in enumerate(calls[:MAX_CALLS_PER_RESPONSE]):
                group.create_task(run(i, call))
        return [r for r in results if r is not None]

    async def _run_one(self, call: ToolCall) -> ToolResult:
        loop = asyncio.get_running_loop()
        started = loop.time()

        def done(content: str, ok: bool, final: bool = False) -> ToolResult:
            if tool is not None:
                content = tool.redact(content)
            if len(content) > MAX_RESULT_CHARS:
                content = content[:MAX_RESULT_CHARS] + "...(truncated)"
            return ToolResult(call, content, ok, loop.time() - started, final)

        tool = self.tools.get(call.name)
        if tool is None:
            return done(json.dumps({"error": f"unknown tool {call.name!r}"}), False)
        if call.error is not None or call.parsed is None:
            return done(json.dumps({"error": call.error or "arguments must be a JSON object"}), False)
        if (problem := tool.argument_error(call.parsed)) is not None:
            log.info("tool_arguments_refused", tool=call.name)
            return done(json.dumps({"error": problem}), False)
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

