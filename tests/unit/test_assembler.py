"""ToolCallAssembler: stream chunks (as dicts) in, text and complete tool calls out."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.tool_calls import ToolCall, ToolCallAssembler

# A streamed tool call, chunks shaped as openai's ``types/chat/chat_completion_chunk.py`` models them.
DOC_SEQUENCE = r"""
{"choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}
{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"transfer_call","arguments":""}}]},"finish_reason":null}]}
{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"dep"}}]},"finish_reason":null}]}
{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"t\": \"sales\"}"}}]},"finish_reason":null}]}
{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}
{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}
"""  # noqa: E501


def chunks_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.strip().splitlines()]


def feed_all(chunks: list[dict[str, Any]]) -> tuple[ToolCallAssembler, str]:
    assembler = ToolCallAssembler()
    text = "".join(assembler.feed(chunk) for chunk in chunks)
    return assembler, text


def text_chunk(content: str | None, finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish_reason}],
        "usage": None,
    }


def tool_chunk(
    index: int, *, id: str | None = None, name: str | None = None, arguments: str | None = None
) -> dict[str, Any]:
    fragment: dict[str, Any] = {"index": index, "id": id, "type": "function" if id else None}
    fragment["function"] = {"name": name, "arguments": arguments}
    return {
        "choices": [{"index": 0, "delta": {"content": None, "tool_calls": [fragment]}, "finish_reason": None}]
    }


def finish(reason: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}


def test_documented_sequence() -> None:
    assembler, text = feed_all(chunks_of(DOC_SEQUENCE))
    assert text == ""
    assert assembler.calls() == [
        ToolCall(
            index=0,
            id="call_abc",
            name="transfer_call",
            arguments='{"dept": "sales"}',
            parsed={"dept": "sales"},
            error=None,
        )
    ]


def test_plain_text_response() -> None:
    assembler, text = feed_all(
        [text_chunk(None), text_chunk("Hello"), text_chunk(", world."), finish("stop"), {"choices": []}]
    )
    assert text == "Hello, world."
    assert assembler.calls() == []


def test_feed_returns_text_of_each_chunk() -> None:
    assembler = ToolCallAssembler()
    assert assembler.feed(text_chunk("One ")) == "One "
    assert assembler.feed(text_chunk(None)) == ""
    assert assembler.feed(tool_chunk(0, id="c", name="n", arguments="{}")) == ""


def test_two_parallel_calls_interleaved() -> None:
    assembler, _ = feed_all(
        [
            tool_chunk(0, id="call_a", name="lookup_order", arguments=""),
            tool_chunk(1, id="call_b", name="check_hours", arguments='{"da'),
            tool_chunk(0, arguments='{"order'),
            tool_chunk(1, arguments='y": "mon'),
            tool_chunk(0, arguments='_id": 7}'),
            tool_chunk(1, arguments='day"}'),
            finish("tool_calls"),
        ]
    )
    assert [(c.index, c.id, c.name, c.parsed, c.error) for c in assembler.calls()] == [
        (0, "call_a", "lookup_order", {"order_id": 7}, None),
        (1, "call_b", "check_hours", {"day": "monday"}, None),
    ]


def test_calls_sorted_by_index_even_if_index_1_arrives_first() -> None:
    assembler, _ = feed_all([tool_chunk(1, id="b", name="second"), tool_chunk(0, id="a", name="first")])
    assert [c.name for c in assembler.calls()] == ["first", "second"]


def test_text_and_tool_calls_in_same_response() -> None:
    assembler, text = feed_all(
        [
            text_chunk("Let me check "),
            text_chunk("that for you."),
            tool_chunk(0, id="call_x", name="lookup_order", arguments='{"order_id": '),
            tool_chunk(0, arguments="12}"),
            finish("tool_calls"),
        ]
    )
    assert text == "Let me check that for you."
    [call] = assembler.calls()
    assert call.parsed == {"order_id": 12}


def test_id_and_name_from_first_fragment_that_has_them() -> None:
    assembler, _ = feed_all(
        [
            tool_chunk(0, arguments=""),
            tool_chunk(0, id="call_late", name="late_name", arguments="{}"),
            tool_chunk(0, id="call_other", name="other_name"),
        ]
    )
    [call] = assembler.calls()
    assert (call.id, call.name) == ("call_late", "late_name")


def test_missing_id_is_synthesized_and_stable() -> None:
    assembler, _ = feed_all([tool_chunk(3, name="hang_up", arguments="{}")])
    first = assembler.calls()
    assert first[0].id == "call_3"
    assert first[0].error is None
    assert assembler.calls() == first


def test_missing_name_is_an_error() -> None:
    assembler, _ = feed_all([tool_chunk(0, id="call_a", arguments="{}")])
    [call] = assembler.calls()
    assert call.error == "tool call without a name"
    assert call.name == ""


def test_empty_arguments_mean_empty_object() -> None:
    assembler, _ = feed_all([tool_chunk(0, id="c", name="hang_up", arguments=""), finish("tool_calls")])
    [call] = assembler.calls()
    assert (call.arguments, call.parsed, call.error) == ("", {}, None)


def test_malformed_json_is_an_error_not_an_exception() -> None:
    assembler, _ = feed_all([tool_chunk(0, id="c", name="transfer_call", arguments='{"dept": "sal')])
    [call] = assembler.calls()
    assert call.parsed is None
    assert call.error is not None
    assert call.error.startswith("arguments are not valid JSON")
    assert call.arguments == '{"dept": "sal'


def test_deeply_nested_arguments_are_an_error_not_an_exception() -> None:
    assembler, _ = feed_all([tool_chunk(0, id="c", name="f", arguments="[" * 100_000)])
    [call] = assembler.calls()
    assert call.parsed is None
    assert call.error is not None


def test_non_object_json_is_an_error() -> None:
    assembler, _ = feed_all([tool_chunk(0, id="c", name="f", arguments="[1, 2]")])
    [call] = assembler.calls()
    assert call.parsed is None
    assert call.error == "arguments must be a JSON object, got list"


def test_usage_chunk_and_null_shapes_are_tolerated() -> None:
    assembler, text = feed_all(
        [
            {"choices": None},
            {},
            {"choices": [{"index": 0, "delta": None, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {"content": None, "tool_calls": None}}]},
            {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": None}]}}]},
            {"choices": [None, "junk", {"index": 0, "delta": {"content": 5}}]},
            {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}},
        ]
    )
    assert text == ""
    assert [(c.index, c.name, c.error) for c in assembler.calls()] == [(0, "", "tool call without a name")]


def test_only_choice_zero_matters() -> None:
    assembler, text = feed_all(
        [
            {
                "choices": [
                    {"index": 1, "delta": {"content": "other"}, "finish_reason": "length"},
                    {"index": 0, "delta": {"content": "mine"}, "finish_reason": None},
                ]
            },
            {
                "choices": [
                    {
                        "index": 1,
                        "delta": {"tool_calls": [{"index": 0, "id": "x", "function": {"name": "f"}}]},
                    }
                ]
            },
        ]
    )
    assert text == "mine"
    assert assembler.calls() == []


def test_fragments_without_index_continue_the_last_call_or_start_a_new_one() -> None:
    def fragment(**fields: Any) -> dict[str, Any]:
        return {"choices": [{"index": 0, "delta": {"tool_calls": [fields]}}]}

    assembler, _ = feed_all(
        [
            fragment(id="a", function={"name": "f", "arguments": '{"x"'}),
            fragment(function={"arguments": ": 1}"}),
            fragment(id="b", function={"name": "g", "arguments": "{}"}),
        ]
    )
    assert [(c.index, c.id, c.parsed) for c in assembler.calls()] == [(0, "a", {"x": 1}), (1, "b", {})]


def test_stream_cut_before_finish_still_yields_calls() -> None:
    assembler, _ = feed_all([tool_chunk(0, id="c", name="f", arguments='{"a": 1}')])
    assert assembler.calls()[0].parsed == {"a": 1}


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
json_objects = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        json_scalars,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=10,
    ),
    max_size=5,
)


@settings(deadline=None)
@given(value=json_objects, data=st.data())
def test_arguments_split_at_arbitrary_positions(value: dict[str, Any], data: st.DataObject) -> None:
    arguments = json.dumps(value)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(arguments)))))
    bounds = [0, *cuts, len(arguments)]
    fragments = [arguments[a:b] for a, b in itertools.pairwise(bounds)]
    chunks = [tool_chunk(0, id="call_1", name="f", arguments="")]
    chunks += [tool_chunk(0, arguments=fragment) for fragment in fragments]
    assembler, _ = feed_all([*chunks, finish("tool_calls")])
    [call] = assembler.calls()
    assert call.arguments == arguments
    assert call.parsed == value
    assert call.error is None


def test_arguments_split_at_every_single_position() -> None:
    arguments = json.dumps({"dept": "sales", "note": 'caller said "urgent" \u00e9', "n": [1, 2.5, None]})
    for cut in range(len(arguments) + 1):
        assembler, _ = feed_all(
            [
                tool_chunk(0, id="c", name="f", arguments=arguments[:cut]),
                tool_chunk(0, arguments=arguments[cut:]),
            ]
        )
        assert assembler.calls()[0].parsed == json.loads(arguments)


CHUNK_KEYS = [
    "choices",
    "usage",
    "index",
    "delta",
    "content",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "id",
    "finish_reason",
]
odd_values = st.recursive(
    json_scalars | st.sampled_from([0, 1, "f", "{", "}"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(CHUNK_KEYS), children, max_size=4)
    ),
    max_leaves=15,
)


@settings(deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(CHUNK_KEYS), odd_values, max_size=3), max_size=8))
def test_feed_never_raises_on_odd_chunks(chunks: list[dict[str, Any]]) -> None:
    assembler, _ = feed_all(chunks)
    for call in assembler.calls():
        assert (call.error is None) == (call.parsed is not None and call.name != "")
