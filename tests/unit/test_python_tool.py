"""python_tool: a flow's python tool declaration -> a Tool running the named async function.

Rules checked here: the real store function runs through the Tool and the registry; the builder reads
any object with the declaration's fields (``PythonToolDeclaration``), not only the flow schema's; each way the
declaration can fail to match the server (module, import, attribute, not async, signature) is a
ToolSetupError at ("function",) or ("parameters",) whose reason names what is wrong.
Functions named by the declarations below live in this module (``tests.unit.test_python_tool``).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.core.tool_calls import ToolCall
from bot.flows.loader import load_flow
from bot.flows.tool_specs import PythonToolSpec
from bot.tools.errors import ToolSetupError
from bot.tools.python_tool import python_tool
from bot.tools.registry import ToolRegistry

THIS_MODULE = __name__  # "tests.unit.test_python_tool" under pytest from the repo root
DAY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"day": {"type": "string"}},
    "required": ["day"],
}


async def needs_day_and_store(day: str, store: str) -> str:
    return f"{store} {day}"


async def takes_date_not_day(date: str) -> str:
    return date


async def takes_anything(**arguments: Any) -> dict[str, Any]:
    return arguments


async def day_is_positional_only(day: str, /) -> str:
    return day


async def day_with_optional_extras(day: str, *, verbose: bool = False) -> str:
    return day


not_a_function = 42


def spec(function: str, parameters: dict[str, Any] | None = None, **extra: Any) -> PythonToolSpec:
    return PythonToolSpec.model_validate(
        {
            "type": "python",
            "name": "check_hours",
            "description": "Opening hours on a day.",
            "function": function,
            "parameters": parameters if parameters is not None else DAY_SCHEMA,
            **extra,
        }
    )


def setup_error(function: str, parameters: dict[str, Any] | None = None) -> ToolSetupError:
    with pytest.raises(ToolSetupError) as caught:
        python_tool(spec(function, parameters))
    return caught.value


def call(arguments: dict[str, Any]) -> ToolCall:
    return ToolCall(0, "call_0", "check_hours", json.dumps(arguments), arguments, None)


async def test_store_check_hours_runs_through_the_tool() -> None:
    tool = python_tool(
        spec("bot.flows.store_tools:check_hours", timeout_s=2, filler="One moment.")
    )
    assert (tool.name, tool.timeout_s, tool.filler) == ("check_hours", 2, "One moment.")
    # The flow did not allow other keys, so the model is told it may send only the declared ones.
    assert tool.schema()["function"]["parameters"] == DAY_SCHEMA | {"additionalProperties": False}
    answer = await tool.handler(day="Monday")
    assert answer["day"] == "monday"
    assert answer["hours"]


async def test_store_check_hours_through_the_registry_gives_the_model_json() -> None:
    registry = ToolRegistry.of([python_tool(spec("bot.flows.store_tools:check_hours"))])
    [result] = await registry.run_all([call({"day": "sunday"})])
    assert result.ok
    assert json.loads(result.content)["day"] == "sunday"


@dataclass(frozen=True)
class PlainDeclaration:
    """A python tool declared without the flow schema (bot.tools imports nothing of bot.flows)."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    function: str
    timeout_s: float = 5.0
    filler: str | None = None


async def test_a_plain_declaration_builds_the_same_tool_as_the_flow_schema() -> None:
    function = f"{THIS_MODULE}:takes_anything"
    from_schema = python_tool(spec(function, timeout_s=2, filler="One moment."))
    plain = python_tool(
        PlainDeclaration(
            "check_hours", "Opening hours on a day.", from_schema.parameters, function, 2, "One moment."
        )
    )
    assert plain == from_schema  # the dataclass's fields: name, schema, handler, timeout, filler, secrets
    assert await plain.handler(day="monday") == {"day": "monday"}


async def test_every_python_tool_of_the_store_flow_builds_and_runs() -> None:
    flow = load_flow(Path(__file__).parents[2] / "flows" / "store.yaml")
    tools = {t.name: python_tool(t) for t in flow.tools if isinstance(t, PythonToolSpec)}
    assert set(tools) == {"check_hours", "lookup_order"}
    assert "order_id" in await tools["lookup_order"].handler(order_id="order 12-34")


def test_missing_module_names_the_module() -> None:
    error = setup_error("no_such_module_xyz:f")
    assert error.loc == ("function",)
    assert "module no_such_module_xyz not found" in error.reason


def test_missing_submodule_names_the_module() -> None:
    error = setup_error("bot.flows.no_such_tools_xyz:f")
    assert error.loc == ("function",)
    assert "module bot.flows.no_such_tools_xyz not found" in error.reason


def test_module_that_raises_on_import_names_the_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tool_module_that_raises_xyz.py").write_text('raise RuntimeError("store API base missing")\n')
    (tmp_path / "tool_module_imports_missing_xyz.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    error = setup_error("tool_module_that_raises_xyz:f")
    assert error.loc == ("function",)
    assert "importing module tool_module_that_raises_xyz raised RuntimeError" in error.reason
    assert "store API base missing" in error.reason

    # A dependency the module imports is missing: the module itself exists, so say what it raised.
    error = setup_error("tool_module_imports_missing_xyz:f")
    assert "importing module tool_module_imports_missing_xyz raised ModuleNotFoundError" in error.reason
    assert "no_such_dependency_xyz" in error.reason


def test_missing_function_names_module_and_function() -> None:
    error = setup_error("json:no_such_name")
    assert error.loc == ("function",)
    assert error.reason == "module json has no function named no_such_name"


DAY_AND_DATE = {"type": "object", "properties": {"day": {"type": "string"}, "date": {"type": "string"}}}


@pytest.mark.parametrize(
    ("function", "parameters", "loc", "named"),
    [
        pytest.param(
            "json:dumps",
            None,
            ("function",),
            "json:dumps must be an async function (async def)",
            id="sync_function_must_be_async",
        ),
        pytest.param(
            f"{THIS_MODULE}:not_a_function",
            None,
            ("function",),
            "must be an async function (async def), got int",
            id="non_function_attribute_must_be_async",
        ),
        pytest.param(
            f"{THIS_MODULE}:needs_day_and_store",
            None,
            ("parameters",),
            "needs the argument 'store'",
            id="function_argument_missing_from_schema_is_named",
        ),
        pytest.param(
            f"{THIS_MODULE}:takes_date_not_day",
            DAY_AND_DATE,
            ("parameters",),
            "argument 'day' is declared in parameters",
            id="schema_property_the_function_cannot_take_is_named",
        ),
        pytest.param(
            f"{THIS_MODULE}:day_is_positional_only",
            None,
            ("parameters",),
            "'day'",
            id="positional_only_argument_cannot_be_passed_by_keyword",
        ),
    ],
)
def test_a_function_the_schema_cannot_call_is_refused_naming_why(
    function: str, parameters: dict[str, Any] | None, loc: tuple[str, ...], named: str
) -> None:
    error = setup_error(function, parameters)
    assert error.loc == loc
    assert named in error.reason


async def test_kwargs_function_takes_any_declared_property() -> None:
    schema = {"type": "object", "properties": {"day": {"type": "string"}, "store": {"type": "string"}}}
    tool = python_tool(spec(f"{THIS_MODULE}:takes_anything", schema))
    assert await tool.handler(day="monday", store="main") == {"day": "monday", "store": "main"}


def test_optional_function_arguments_need_not_be_declared() -> None:
    assert python_tool(spec(f"{THIS_MODULE}:day_with_optional_extras")).name == "check_hours"


def test_setup_error_message_and_pickling_keep_loc_and_reason() -> None:
    error = ToolSetupError(("headers", "Authorization"), "environment variable STORE_KEY is not set")
    assert str(error) == "headers.Authorization: environment variable STORE_KEY is not set"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.loc, copy.reason) == (error.loc, error.reason)
