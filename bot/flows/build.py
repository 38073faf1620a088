"""Building the server's lines from flow files: tools imported or bound, voices checked.

Rules:
- Everything a flow names is resolved here, at start-up or reload, never during a call: Python
  tools are imported, HTTP tools' header variables are read from the environment, and the flow's
  voice engine must exist on this server. Every failure is a ``FlowProblem`` at the line of the
  field that caused it, and all of them are reported together (``FlowError``), like ``flows check``.
- Every built tool's ``secrets`` (HTTP header values) join the process's secret list
  (``bot.core.secret_values``) before the book is returned, so logs and recordings mask them from the
  first call on, after a reload too.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.core.secret_values import remember
from bot.flows.line import LineConfig
from bot.flows.line_book import LineBook
from bot.flows.loader import FlowError, FlowProblem, FlowSet
from bot.flows.tool_specs import FunctionToolSpec, HttpToolSpec, PythonToolSpec
from bot.providers.voices import Voices
from bot.tools.errors import ToolSetupError
from bot.tools.http_tool import HttpClient, http_tool
from bot.tools.python_tool import python_tool
from bot.tools.registry import Tool


def build_book(
    flows: FlowSet, *, env: Mapping[str, str], http: HttpClient, voices: Voices | None = None
) -> LineBook:
    """Every flow as a ``LineConfig``, routed by number. Raises ``FlowError`` listing every problem."""
    problems: list[FlowProblem] = []
    lines: list[LineConfig] = []
    for index, flow in enumerate(flows.flows):

        def factory(spec: FunctionToolSpec, index: int = index) -> Tool:
            try:
                if isinstance(spec, HttpToolSpec):
                    return http_tool(spec, env=env, client=http)
                if isinstance(spec, PythonToolSpec):
                    return python_tool(spec)
                raise ToolSetupError(("type",), f"unknown tool kind {type(spec).__name__}")
            except ToolSetupError as exc:
                position = next(i for i, t in enumerate(flows.flows[index].tools) if t is spec)
                problems.append(flows.problem(index, ("tools", position, *exc.loc), exc.reason))
                return Tool(spec.name, spec.description, spec.parameters, _unavailable)

        line = flow.to_line_config(factory, version=flows.version(index))
        if voices is not None and (why := voices.missing(line)) is not None:
            problems.append(flows.problem(index, ("voice", "provider"), why))
        elif voices is not None and (why := voices.refused(line)) is not None:
            field = "language" if flow.voice.language else "name" if flow.voice.name else "provider"
            problems.append(flows.problem(index, ("voice", field), why))
        lines.append(line)
    # Even when the book is refused: a value read from the environment may already be in a log line.
    remember(secret for line in lines for tool in line.tools for secret in tool.secrets)
    if problems:
        raise FlowError(problems)
    numbers = {number: flow.name for flow in flows.flows for number in flow.numbers}
    return LineBook.of(lines, numbers, flows.default.name)


async def _unavailable() -> None:  # never called: a book with problems is never built
    return None
