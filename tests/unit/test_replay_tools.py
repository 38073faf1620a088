"""A replay's flow tools answered from the recording (``bot.sim.replay.tools``), run through the real
``ToolRegistry``: the flow's own handler is never called, whatever the model asks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from bot.core.tool_calls import ToolCall
from bot.recording.reader import Recording
from bot.sim.replay import recorded
from bot.sim.replay.recorded import RecordedToolCall
from bot.sim.replay.tools import NOT_RECORDED, RecordedTools
from bot.tools.registry import Tool, ToolRegistry

SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}},
    "required": ["order_id"],
    "additionalProperties": False,
}


def call(arguments: dict[str, Any], name: str = "refund", id_: str = "c1") -> ToolCall:
    return ToolCall(0, id_, name, json.dumps(arguments), arguments, None)


def production_tool(ran: list[dict[str, Any]], timeout_s: float = 2.0) -> Tool:
    async def refund(**arguments: Any) -> dict[str, str]:
        ran.append(arguments)
        return {"status": "refunded again"}

    return Tool("refund", "Refund an order.", SCHEMA, refund, timeout_s=timeout_s, filler="One moment.")


def recorded_call(arguments: str, result: str, turn: int = 1, ms: int = 0) -> RecordedToolCall:
    return RecordedToolCall(turn, f"refund({recorded.normalise_arguments(arguments)})", result, ms)


def test_recorded_results_answer_in_call_order_and_the_flows_handler_never_runs() -> None:
    ran: list[dict[str, Any]] = []
    source = RecordedTools(
        [
            recorded_call('{"order_id": "7"}', '{"status": "refunded"}'),
            recorded_call('{"order_id": "7"}', '{"error": "already refunded"}', turn=2),
        ]
    )
    (tool,) = source.tools([production_tool(ran)])
    assert (tool.name, tool.parameters, tool.timeout_s, tool.filler) == ("refund", SCHEMA, 2.0, "One moment.")
    registry = ToolRegistry.of([tool])

    async def scenario() -> list[list[tuple[str, bool]]]:
        rounds = []
        for arguments in ({"order_id": "7"}, {"order_id": "7"}, {"order_id": "7"}, {"order_id": "8"}):
            results = await registry.run_all([call(arguments)])
            rounds.append([(r.content, r.ok) for r in results])
        return rounds

    first, second, third, other = asyncio.run(scenario())
    assert first == [('{"status": "refunded"}', True)]  # the recorded text, as the model read it
    assert second == [('{"error": "already refunded"}', False)]  # a recorded failure fails again
    not_recorded = json.dumps({"error": NOT_RECORDED})
    assert third == [(not_recorded, False)] and other == [(not_recorded, False)]  # one more, another
    assert ran == []
    assert source.served == 2
    assert source.misses == ['refund({"order_id":"7"})', 'refund({"order_id":"8"})']


def test_arguments_are_still_checked_against_the_schema_before_any_record_is_used() -> None:
    ran: list[dict[str, Any]] = []
    source = RecordedTools([recorded_call('{"order_id": "7"}', '{"status": "refunded"}')])
    registry = ToolRegistry.of(source.tools([production_tool(ran)]))
    (result,) = asyncio.run(registry.run_all([call({"order_id": "7", "tenant": "other"})]))
    assert "bad arguments for refund" in result.content and not result.ok
    assert source.served == 0 and source.misses == [] and ran == []


def test_key_order_and_spacing_of_the_recorded_arguments_do_not_count() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    source = RecordedTools([RecordedToolCall(1, 'pair({"a":"x","b":2})', '"ok"', 0)])

    async def pair(**arguments: Any) -> str:
        raise AssertionError("the flow's handler ran")

    registry = ToolRegistry.of(source.tools([Tool("pair", "", schema, pair)]))
    results = asyncio.run(registry.run_all([call({"b": 2, "a": "x"}, name="pair")]))
    assert [r.content for r in results] == ['"ok"'] and source.served == 1


def test_a_recorded_duration_is_waited_but_never_past_the_tools_timeout() -> None:
    source = RecordedTools([recorded_call('{"order_id": "7"}', '{"status": "refunded"}', ms=60_000)])
    registry = ToolRegistry.of(source.tools([production_tool([], timeout_s=1.0)]))
    (result,) = asyncio.run(registry.run_all([call({"order_id": "7"})]))
    assert result.ok and result.content == '{"status": "refunded"}'  # not a timeout
    assert result.duration_s >= 0.75  # waited 0.8 of the timeout (a lower bound: never early)


def test_tool_calls_pair_each_run_call_with_its_result_and_duration() -> None:
    turn = {
        "t": 1.0,
        "type": "turn",
        "turn": 2,
        "tools": [{"name": "a", "ms": 5}, {"name": "b", "ms": 800}, {"name": "a", "ms": 1}],
        "llm": [
            {
                "tool_calls": [
                    {"id": "1", "name": "a", "arguments": '{"x": 1}'},
                    {"id": "2", "name": "b", "arguments": "{}"},
                ],
                "tool_results": ['{"y": 2}', '{"error": "b failed"}'],
            },
            {
                "tool_calls": [{"id": "3", "name": "a", "arguments": '{"x":  2}'}],
                "tool_results": ["[redacted]"],
            },
            {"tool_calls": [{"id": "4", "name": "a", "arguments": "{}"}]},  # cut short: no results, not run
            {"text": "Done."},
        ],
    }
    cut = {"t": 2.0, "type": "turn", "turn": 3, "tools": [], "llm": [{"tool_calls": [{"name": "a"}]}]}
    rec = Recording(Path("mem"), {"format": 1}, [turn, cut], False, b"", b"")
    assert recorded.tool_calls(rec) == [
        RecordedToolCall(2, 'a({"x":1})', '{"y": 2}', 5),
        RecordedToolCall(2, "b({})", '{"error": "b failed"}', 800),
        RecordedToolCall(2, 'a({"x":2})', "[redacted]", 1),
    ]
