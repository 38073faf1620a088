"""ToolRegistry: one response's tool calls run in parallel; every failure becomes a result string.

Rules checked here: results come back in call order, one per call; unknown tools, malformed or
wrong arguments, exceptions and timeouts never raise out of ``run_all``; results are strings capped
at ``MAX_RESULT_CHARS``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.redact import REDACTED, mask
from bot.core.secret_values import MIN_SECRET_LENGTH, worth_masking
from bot.core.tool_calls import ToolCall, ToolCallAssembler
from bot.tools.registry import (
    MAX_CALLS_PER_RESPONSE,
    MAX_RESULT_CHARS,
    TOO_MANY_CALLS,
    Tool,
    ToolRegistry,
)
from tests.support.rendezvous import Rendezvous

TRUNCATION_MARKER = "...(truncated)"
OBJECT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def call(name: str, arguments: dict[str, Any] | None = None, call_id: str | None = None) -> ToolCall:
    text = json.dumps(arguments or {})
    return ToolCall(
        index=0, id=call_id or f"call_{name}", name=name, arguments=text, parsed=arguments or {}, error=None
    )


def tool(name: str, handler: Any, *, timeout_s: float = 5.0, filler: str | None = None) -> Tool:
    return Tool(name, f"{name} tool", OBJECT_SCHEMA, handler, timeout_s=timeout_s, filler=filler)


def error_of(content: str) -> str:
    value = json.loads(content)
    assert isinstance(value, dict)
    return str(value["error"])


async def test_three_slow_tools_run_in_parallel() -> None:
    async def slow(n: int) -> str:
        await asyncio.sleep(0.3)
        return f"done {n}"

    registry = ToolRegistry.of([tool("slow", slow)])
    calls = [call("slow", {"n": i}, f"call_{i}") for i in range(3)]
    started = time.monotonic()
    results = await registry.run_all(calls)
    elapsed = time.monotonic() - started
    assert [r.content for r in results] == ["done 0", "done 1", "done 2"]
    assert elapsed < 0.75  # sequential would take 0.9 s; generous bound for a loaded machine


async def test_calls_overlap_each_call_waits_for_all_others_to_start() -> None:
    everyone = Rendezvous(3)  # each call only returns once every call has started

    async def rendezvous(n: int) -> str:
        await everyone.arrive(n)
        return "ok"

    registry = ToolRegistry.of([tool("meet", rendezvous, timeout_s=5.0)])
    results = await registry.run_all([call("meet", {"n": i}, f"c{i}") for i in range(3)])
    assert [r.ok for r in results] == [True, True, True]


async def test_results_come_back_in_call_order_not_completion_order() -> None:
    async def delayed(n: int) -> str:
        await asyncio.sleep(0.02 * (3 - n))  # the last call finishes first
        return f"result {n}"

    registry = ToolRegistry.of([tool("delayed", delayed)])
    calls = [call("delayed", {"n": i}, f"call_{i}") for i in range(4)]
    results = await registry.run_all(calls)
    assert [r.call.id for r in results] == ["call_0", "call_1", "call_2", "call_3"]
    assert [r.content for r in results] == ["result 0", "result 1", "result 2", "result 3"]
    assert all(r.ok and r.duration_s >= 0 for r in results)


async def test_no_calls_no_results() -> None:
    assert await ToolRegistry().run_all([]) == []


async def test_a_hanging_tool_times_out_with_an_error_naming_it() -> None:
    never = asyncio.Event()

    async def hang() -> str:
        await never.wait()
        return "unreachable"

    async def quick() -> str:
        return "fine"

    registry = ToolRegistry.of([tool("hang_forever", hang, timeout_s=0.05), tool("quick", quick)])
    results = await registry.run_all([call("hang_forever"), call("quick")])
    assert not results[0].ok
    error = error_of(results[0].content)
    assert "hang_forever" in error
    assert "timed out" in error
    assert results[1].ok and results[1].content == "fine"


async def test_a_raising_tool_gives_an_error_and_the_others_still_succeed() -> None:
    async def broken() -> str:
        raise RuntimeError("database password is hunter2")

    async def fine(n: int) -> dict[str, int]:
        return {"n": n}

    registry = ToolRegistry.of([tool("broken", broken), tool("fine", fine)])
    calls = [call("fine", {"n": 1}, "a"), call("broken"), call("fine", {"n": 2}, "b")]
    results = await registry.run_all(calls)
    assert [r.ok for r in results] == [True, False, True]
    error = error_of(results[1].content)
    assert "broken" in error
    assert "RuntimeError" in error
    assert "hunter2" not in results[1].content  # exception text is not sent to the model
    assert json.loads(results[0].content) == {"n": 1}
    assert json.loads(results[2].content) == {"n": 2}


async def test_unknown_tool() -> None:
    registry = ToolRegistry.of([tool("known", _returns("x"))])
    [result] = await registry.run_all([call("transfer_to_mars")])
    assert not result.ok
    assert "unknown tool" in error_of(result.content)
    assert "transfer_to_mars" in error_of(result.content)


async def test_a_call_with_malformed_arguments_is_not_executed() -> None:
    executed: list[str] = []

    async def check_hours(day: str) -> str:
        executed.append(day)
        return "open"

    assembler = ToolCallAssembler()
    assembler.feed(
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_x",
                                "type": "function",
                                "function": {"name": "check_hours", "arguments": '{"day": "mon'},
                            }
                        ]
                    },
                    "finish_reason": "tool_calls",
                }
            ]
        }
    )
    [bad] = assembler.calls()
    assert bad.error is not None

    registry = ToolRegistry.of([tool("check_hours", check_hours)])
    [result] = await registry.run_all([bad])
    assert executed == []
    assert not result.ok
    assert error_of(result.content) == bad.error
    assert result.call is bad


async def test_arguments_that_are_not_an_object_are_not_executed() -> None:
    executed: list[object] = []

    async def handler(**kwargs: object) -> str:
        executed.append(kwargs)
        return "x"

    registry = ToolRegistry.of([tool("t", handler)])
    odd = ToolCall(index=0, id="c", name="t", arguments="[1, 2]", parsed=None, error=None)
    [result] = await registry.run_all([odd])
    assert executed == []
    assert not result.ok
    assert "JSON object" in error_of(result.content)


async def test_missing_or_extra_arguments_give_bad_arguments_without_calling_the_handler() -> None:
    executed: list[str] = []

    async def lookup(order_id: str) -> str:
        executed.append(order_id)
        return "found"

    registry = ToolRegistry.of([tool("lookup", lookup)])
    results = await registry.run_all(
        [
            call("lookup", {}, "missing"),
            call("lookup", {"order_id": "1", "urgent": True}, "extra"),
            call("lookup", {"order": "1"}, "misnamed"),
            call("lookup", {"order_id": "7"}, "right"),
        ]
    )
    assert executed == ["7"]
    for result in results[:3]:
        assert not result.ok
        assert "bad arguments" in error_of(result.content)
        assert "lookup" in error_of(result.content)
    assert results[3].ok and results[3].content == "found"


async def test_huge_results_are_truncated_with_a_marker() -> None:
    registry = ToolRegistry.of([tool("big", _returns("x" * (MAX_RESULT_CHARS * 3)))])
    [result] = await registry.run_all([call("big")])
    assert result.ok
    assert result.content == "x" * MAX_RESULT_CHARS + TRUNCATION_MARKER


@settings(max_examples=40, deadline=None)
@given(size=st.integers(min_value=0, max_value=MAX_RESULT_CHARS * 2))
def test_result_length_is_capped(size: int) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(size))
    registry = ToolRegistry.of([tool("t", _returns(text))])
    [result] = asyncio.run(registry.run_all([call("t")]))
    if size <= MAX_RESULT_CHARS:
        assert result.content == text
    else:
        assert result.content == text[:MAX_RESULT_CHARS] + TRUNCATION_MARKER


async def test_structured_results_are_json_encoded() -> None:
    registry = ToolRegistry.of(
        [
            tool("as_dict", _returns({"status": "shipped", "eta": None})),
            tool("as_list", _returns([1, "two"])),
            tool("as_date", _returns({"when": dt.date(2026, 1, 2)})),  # not JSON: falls back to str()
            tool("as_text", _returns("plain text")),
        ]
    )
    results = await registry.run_all([call("as_dict"), call("as_list"), call("as_date"), call("as_text")])
    assert json.loads(results[0].content) == {"status": "shipped", "eta": None}
    assert json.loads(results[1].content) == [1, "two"]
    assert json.loads(results[2].content) == {"when": "2026-01-02"}
    assert results[3].content == "plain text"
    assert all(isinstance(r.content, str) and r.ok for r in results)


def test_filler_for_picks_the_first_called_tool_that_has_one() -> None:
    registry = ToolRegistry.of(
        [
            tool("plain", _returns("x")),
            tool("orders", _returns("x"), filler="Looking up your order."),
            tool("hours", _returns("x"), filler="Checking the hours."),
        ]
    )
    assert registry.filler_for([call("plain"), call("orders"), call("hours")]) == "Looking up your order."
    assert registry.filler_for([call("hours"), call("orders")]) == "Checking the hours."
    assert registry.filler_for([call("plain")]) is None
    assert registry.filler_for([call("unknown")]) is None
    assert registry.filler_for([]) is None


def test_schemas_are_openai_function_tools() -> None:
    parameters = {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]}
    registry = ToolRegistry.of([Tool("check_hours", "Opening hours.", parameters, _returns("x"))])
    assert registry.schemas() == [
        {
            "type": "function",
            "function": {"name": "check_hours", "description": "Opening hours.", "parameters": parameters},
        }
    ]


def _returns(value: object) -> Any:
    async def handler() -> object:
        return value

    return handler


# ---- schema, cap and secrets (issue 14) ----------------------------------------------------------------

DAY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"day": {"type": "string", "enum": ["monday", "tuesday"]}},
    "required": ["day"],
    "additionalProperties": False,
}


async def test_arguments_are_checked_before_the_handler_runs() -> None:
    ran: list[dict[str, Any]] = []

    async def hours(**arguments: Any) -> str:  # takes anything: only the schema stands in the way
        ran.append(arguments)
        return "9-5"

    registry = ToolRegistry.of([Tool("hours", "Hours.", DAY_SCHEMA, hours)])
    bad: list[dict[str, Any]] = [{"day": "sunday"}, {"day": "monday", "tenant": "x"}, {"day": ["monday"]}, {}]
    results = await registry.run_all([call("hours", a, f"call_{i}") for i, a in enumerate(bad)])
    assert ran == [] and not any(r.ok for r in results)
    assert [error_of(r.content) for r in results] == [
        "bad arguments for hours at day: 'sunday' is not one of ['monday', 'tuesday']",
        "bad arguments for hours at (arguments): "
        "Additional properties are not allowed ('tenant' was unexpected)",
        "bad arguments for hours at day: ['monday'] is not of type 'string'",
        "bad arguments for hours at (arguments): 'day' is a required property",
    ]
    (good,) = await registry.run_all([call("hours", {"day": "monday"})])
    assert good.ok and good.content == "9-5" and ran == [{"day": "monday"}]


async def test_at_most_eight_calls_of_one_response_run() -> None:
    ran: list[int] = []

    async def count(n: int) -> str:
        ran.append(n)
        return "ok"

    registry = ToolRegistry.of([tool("count", count)])
    results = await registry.run_all(
        [call("count", {"n": i}, f"call_{i}") for i in range(MAX_CALLS_PER_RESPONSE + 3)]
    )
    assert sorted(ran) == list(range(MAX_CALLS_PER_RESPONSE))
    assert [r.call.id for r in results] == [f"call_{i}" for i in range(MAX_CALLS_PER_RESPONSE + 3)]
    assert [error_of(r.content) for r in results[MAX_CALLS_PER_RESPONSE:]] == [TOO_MANY_CALLS] * 3


async def test_a_tools_secrets_are_masked_in_its_results_in_any_spelling() -> None:
    secret = 'tok/en-"quoted"-0123'

    async def echo() -> dict[str, str]:
        return {"raw": secret, "again": f"x{secret}x"}

    registry = ToolRegistry.of([Tool("echo", "Echo.", OBJECT_SCHEMA, echo, secrets=(secret,))])
    (result,) = await registry.run_all([call("echo")])
    assert "tok/en" not in result.content and "0123" not in result.content
    assert json.loads(result.content) == {"raw": REDACTED, "again": f"x{REDACTED}x"}


async def test_a_secret_overlapping_a_longer_one_is_masked_whole() -> None:
    # Issue 15: secrets were replaced longest first, one after another: the longer one's replacement
    # cut the shorter one's occurrence, whose first characters stayed readable ("wxyz[redacted]").
    longer, overlapping = "abcdefgh12", "wxyzabcd"

    async def echo() -> str:
        return "wxyzabcdefgh12"

    registry = ToolRegistry.of([Tool("echo", "Echo.", OBJECT_SCHEMA, echo, secrets=(longer, overlapping))])
    (result,) = await registry.run_all([call("echo")])
    assert result.content == REDACTED


def test_short_values_are_not_worth_masking_and_a_schemes_token_is() -> None:
    assert worth_masking(["42", "store1", "  ", ""]) == ()
    assert worth_masking(["Bearer abcdefgh12"]) == ("Bearer abcdefgh12", "abcdefgh12")
    assert worth_masking(["Bearer abc"]) == ("Bearer abc",)  # the token alone is too short to mask
    assert MIN_SECRET_LENGTH == 8


@given(text=st.text(max_size=40), secret=st.text(min_size=MIN_SECRET_LENGTH, max_size=12))
def test_masking_leaves_no_secret_behind(text: str, secret: str) -> None:
    for spelling in worth_masking([secret]):
        assert spelling not in mask(text + spelling + text, worth_masking([secret]))


async def test_a_schema_that_cannot_be_applied_is_an_error_result_not_a_crash() -> None:
    ran: list[str] = []

    async def handler(**arguments: Any) -> str:
        ran.append("ran")
        return "ok"

    schema = {"type": "object", "properties": {"x": {"$ref": "https://schemas.example.invalid/x.json"}}}
    registry = ToolRegistry.of([Tool("refs", "Refs.", schema, handler)])
    (result,) = await registry.run_all([call("refs", {"x": 1})])
    assert ran == [] and not result.ok
    assert error_of(result.content).startswith("bad arguments for refs: its schema cannot be applied (")
