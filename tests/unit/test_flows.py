"""Call-flow files: the schema, the YAML loader's messages, the rules across flows, routing, ``bot flows check``.

Rules checked here: the shipped ``flows/store.yaml`` is valid and builds today's built-in line; every
mistake in a file gives one ``file:line: path: reason`` message (all of them, in line order); YAML
syntax errors, duplicate keys, aliases and literal header secrets are errors with lines, and a secret
is never repeated; only one flow serves a number, exactly one is the default, names are unique;
routing is an exact ``To`` match, else the default; whatever the YAML, the loader raises
``FlowError`` or returns a flow that builds a ``LineConfig``.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.flows import store_tools
from bot.flows.check import check
from bot.flows.fields import StrictModel
from bot.flows.loader import FlowError, FlowProblem, FlowSet, load_flow, load_flows, parse_flow
from bot.flows.model import Flow
from bot.flows.tool_specs import TOOL_TYPES, PythonToolSpec, ToolSpec
from bot.line import LineConfig, default_line, load_store_data
from bot.line import store_tools as line_store_tools
from bot.tools.registry import Tool

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "flows" / "store.yaml"
SHIPPED_TEXT = SHIPPED.read_text(encoding="utf-8")
SHIPPED_DATA: dict[str, Any] = yaml.safe_load(SHIPPED_TEXT)

MINIMAL = """\
name: {name}
default: {default}
numbers: {numbers}
greeting:
  text: Hello.
system_prompt: Be brief.
"""


def minimal(name: str = "other", default: bool = False, numbers: str = '["+15550111"]') -> str:
    return MINIMAL.format(name=name, default=str(default).lower(), numbers=numbers)


def messages(text: str, file: str = "flows/bad.yaml") -> list[str]:
    with pytest.raises(FlowError) as caught:
        parse_flow(text, file)
    return [str(problem) for problem in caught.value.problems]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def python_tool(spec: ToolSpec) -> Tool:
    """A stand-in for the later tool factory: Python tools only, the others are placeholders."""
    if not isinstance(spec, PythonToolSpec):
        return Tool(spec.name, spec.description, {"type": "object", "properties": {}}, _placeholder)
    module, function = spec.function.split(":")
    handler = getattr(importlib.import_module(module), function)
    return Tool(spec.name, spec.description, spec.parameters, handler, spec.timeout_s, spec.filler)


async def _placeholder() -> None:
    return None


# --- the shipped flow ---------------------------------------------------------------------------


def test_the_shipped_flow_is_valid_and_is_the_default() -> None:
    flows = load_flows(REPO / "flows")
    store = flows.default
    assert store.name == "store"
    assert store.numbers == ["+15550100"]  # the emulated phone's To number
    assert flows.route("+15550100") is store
    assert [tool.type for tool in store.tools] == ["python", "python", "end_call", "transfer_call"]
    assert store.transfer_targets == {"front desk": "+15550150"}
    assert flows.files == (str(REPO / "flows" / "store.yaml"),)


def test_the_shipped_flow_builds_todays_built_in_line() -> None:
    built = load_flow(SHIPPED).to_line_config(python_tool)
    today = default_line()
    shared = [f.name for f in dataclasses.fields(LineConfig) if f.name != "tools"]
    assert {n: getattr(built, n) for n in shared} == {n: getattr(today, n) for n in shared}
    declared = {t.name: (t.description, dict(t.parameters), t.timeout_s, t.filler) for t in built.tools}
    for tool in today.tools:
        assert declared[tool.name] == (tool.description, dict(tool.parameters), tool.timeout_s, tool.filler)
    assert set(declared) == {"check_hours", "lookup_order", "end_call", "transfer_call"}


def test_a_flow_that_sets_nothing_has_todays_defaults() -> None:
    flow = parse_flow(minimal(default=True))
    built = flow.to_line_config(python_tool)
    today = LineConfig(name="other", greeting="Hello.", system_prompt="Be brief.")
    assert built == today


async def test_the_store_tools_answer_like_the_built_in_ones() -> None:
    builtin = {t.name: t.handler for t in line_store_tools(load_store_data())}
    data = load_store_data()
    for day in [*data["hours"], " Monday ", "FRIDAY", "someday", ""]:
        assert await store_tools.check_hours(day) == await builtin["check_hours"](day=day)
    for order in [*data["orders"], "order 1 0 0 1", "#1234", "9999", "", "abc"]:
        assert await store_tools.lookup_order(order) == await builtin["lookup_order"](order_id=order)


@given(st.text(max_size=30))
async def test_the_store_tools_agree_on_any_text(text: str) -> None:
    builtin = {t.name: t.handler for t in line_store_tools(load_store_data())}
    assert await store_tools.check_hours(text) == await builtin["check_hours"](day=text)
    assert await store_tools.lookup_order(text) == await builtin["lookup_order"](order_id=text)


def test_every_field_has_a_description() -> None:
    models: list[type[StrictModel]] = [Flow, *TOOL_TYPES.values()]
    seen: set[type[StrictModel]] = set()
    while models:
        model = models.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name}"
            if isinstance(info.annotation, type) and issubclass(info.annotation, StrictModel):
                models.append(info.annotation)
    assert len(seen) >= 14


# --- one file's messages ------------------------------------------------------------------------

TEN_MISTAKES = """\
name: store
numbers:
  - 555-0100
greeting:
  interruptible: true
system_prompt: Be nice.
llm:
  temperature: 3
voice:
  provider: gogle
  speking_rate: 1.1
endpointing:
  end_silence_ms: -100
tools:
  - type: http
    name: stock
    description: Stock level.
    url: https://api.example.com/stock
    headers:
      Authorization: Bearer sk-live-123
  - type: python
    name: hours
    description: Hours.
    function: store_tools.check_hours
  - type: python
    name: orders
    description: Orders.
    function: bot.flows.store_tools:lookup_order
    timeout_s: -1
  - type: transfer
    target: front desk
"""


def test_ten_mistakes_give_ten_precise_messages() -> None:
    got = messages(TEN_MISTAKES, "flows/store.yaml")
    assert got == [
        "flows/store.yaml:3: numbers[0]: must be an E.164 phone number: '+', country code and number, "
        "no spaces or dashes, like \"+15550100\"; got '555-0100'",
        "flows/store.yaml:4: greeting.text: is required",
        "flows/store.yaml:8: llm.temperature: must be <= 2, got 3",
        "flows/store.yaml:10: voice.provider: must be 'auto', 'google' or 'piper', got 'gogle'",
        "flows/store.yaml:11: voice.speking_rate: unknown field (did you mean 'speaking_rate'?)",
        "flows/store.yaml:13: endpointing.end_silence_ms: must be > 0, got -100",
        "flows/store.yaml:20: tools[0].headers.Authorization: must be an env:VAR_NAME reference (for example "
        "env:STORE_API_KEY); header values come from the server's environment, a secret is never written "
        "in a flow file",
        "flows/store.yaml:24: tools[1].function: must be a dotted path package.module:function, "
        "got 'store_tools.check_hours'",
        "flows/store.yaml:29: tools[2].timeout_s: must be > 0, got -1",
        "flows/store.yaml:30: tools[3].type: must be one of 'http', 'python', 'end_call', 'transfer_call', "
        "got 'transfer'",
    ]
    assert "sk-live" not in "\n".join(got)
