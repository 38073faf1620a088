"""Conversation: the history sent to the model, kept true to what the caller heard.

Rules checked here: a tool round is one assistant message with every call plus one tool message per
call id, in order; ``settle`` rewrites speech to what was heard; ``rollback`` restores history.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.history import Conversation
from bot.core.tool_calls import ToolCall

SYSTEM = "You are a test assistant."


def call(call_id: str, name: str, arguments: str) -> ToolCall:
    parsed = json.loads(arguments) if arguments else {}
    return ToolCall(index=0, id=call_id, name=name, arguments=arguments, parsed=parsed, error=None)


def assistant(content: str | None, *calls: ToolCall) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ]
    return message


ORDER = call("call_a", "lookup_order", '{"order_id": "1001"}')
HOURS = call("call_b", "check_hours", '{ "day":"monday" }')  # odd spacing must survive verbatim


def test_starts_with_the_system_prompt() -> None:
    conversation = Conversation(SYSTEM)
    assert conversation.messages == [{"role": "system", "content": SYSTEM}]


def test_response_ids_are_fresh_and_increasing() -> None:
    conversation = Conversation(SYSTEM)
    ids = [conversation.new_response_id() for _ in range(5)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5


def test_user_and_assistant_messages() -> None:
    conversation = Conversation(SYSTEM)
    conversation.add_user("Hi there")
    rid = conversation.new_response_id()
    conversation.add_assistant("Hello! How can I help?", rid)
    assert conversation.messages[1:] == [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello! How can I help?"},
    ]


def test_empty_assistant_text_adds_nothing() -> None:
    conversation = Conversation(SYSTEM)
    rid = conversation.new_response_id()
    conversation.add_assistant("", rid)
    assert len(conversation.messages) == 1


def test_tool_round_is_one_assistant_message_then_one_tool_message_per_call_in_order() -> None:
    conversation = Conversation(SYSTEM)
    conversation.add_user("Where is order 1001, and are you open Monday?")
    rid = conversation.new_response_id()
    conversation.add_tool_round("Let me check.", [ORDER, HOURS], ['{"status": "shipped"}', "9 to 6"], rid)

    assert conversation.messages[2:] == [
        assistant("Let me check.", ORDER, HOURS),
        {"role": "tool", "tool_call_id": "call_a", "content": '{"status": "shipped"}'},
        {"role": "tool", "tool_call_id": "call_b", "content": "9 to 6"},
    ]
    # Arguments stay the streamed strings, byte for byte (not re-serialized dicts).
    arguments = [tc["function"]["arguments"] for tc in conversation.messages[2]["tool_calls"]]
    assert arguments == ['{"order_id": "1001"}', '{ "day":"monday" }']
    assert all(isinstance(a, str) for a in arguments)


def test_tool_round_without_text_has_content_none() -> None:
    conversation = Conversation(SYSTEM)
    rid = conversation.new_response_id()
    conversation.add_tool_round("", [ORDER], ["ok"], rid)
    assert conversation.messages[1] == assistant(None, ORDER)


def test_every_tool_call_id_has_exactly_one_result_right_after_its_message() -> None:
    conversation = Conversation(SYSTEM)
    calls = [call(f"call_{i}", "t", "{}") for i in range(4)]
    conversation.add_tool_round("", calls, [f"r{i}" for i in range(4)], conversation.new_response_id())
    ids = [tc["id"] for tc in conversation.messages[1]["tool_calls"]]
    tool_messages = conversation.messages[2:]
    assert [m["role"] for m in tool_messages] == ["tool"] * 4
    assert [m["tool_call_id"] for m in tool_messages] == ids
    assert [m["content"] for m in tool_messages] == ["r0", "r1", "r2", "r3"]


def test_mismatched_results_leave_history_unchanged() -> None:
    conversation = Conversation(SYSTEM)
    before = copy.deepcopy(conversation.messages)
    with pytest.raises(ValueError):
        conversation.add_tool_round("", [ORDER, HOURS], ["only one"], conversation.new_response_id())
    assert conversation.messages == before


# ---- settle ------------------------------------------------------------------------------------


def test_settle_rewrites_a_response_to_what_was_heard() -> None:
    conversation = Conversation(SYSTEM)
    conversation.add_user("hours?")
    rid = conversation.new_response_id()
    conversation.add_assistant("We open at nine. We close at six.", rid)
    conversation.settle({rid: "We open at nine."})
    assert conversation.messages[-1] == {"role": "assistant", "content": "We open at nine."}
    assert len(conversation.messages) == 3


def test_settle_drops_a_plain_response_nobody_heard() -> None:
    conversation = Conversation(SYSTEM)
    conversation.add_user("hours?")
    rid = conversation.new_response_id()
    conversation.add_assistant("We open at nine.", rid)
    conversation.settle({rid: ""})
    assert conversation.messages == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "hours?"},
    ]


def test_settle_keeps_a_tool_round_valid_when_nothing_was_heard() -> None:
    conversation = Conversation(SYSTEM)
    rid = conversation.new_response_id()
    conversation.add_tool_round("Let me check that.", [ORDER, HOURS], ["a", "b"], rid)
    conversation.settle({rid: ""})
    # The calls and their results must stay: dropping them would orphan the tool messages.
    assert conversation.messages[1:] == [
        assistant(None, ORDER, HOURS),
        {"role": "tool", "tool_call_id": "call_a", "content": "a"},
        {"role": "tool", "tool_call_id": "call_b", "content": "b"},
    ]


def test_settle_rewrites_the_text_of_a_tool_round() -> None:
    conversation = Conversation(SYSTEM)
    rid = conversation.new_response_id()
    conversation.add_tool_round("Let me check that for you.", [ORDER], ["a"], rid)
    conversation.settle({rid: "Let me check"})
    assert conversation.messages[1] == assistant("Let me check", ORDER)


def test_settle_appends_heard_text_of_a_response_never_added() -> None:
    conversation = Conversation(SYSTEM)
    conversation.add_user("hours?")
    rid = conversation.new_response_id()
    conversation.settle({rid: "We open at"})
    assert conversation.messages[-1] == {"role": "assistant", "content": "We open at"}


def test_settle_adds_nothing_for_an_unheard_response_never_added() -> None:
    conversation = Conversation(SYSTEM)
    conversation.add_user("hours?")
    conversation.settle({conversation.new_response_id(): ""})
    assert len(conversation.messages) == 2


def test_settle_of_several_responses_in_response_order() -> None:
    conversation = Conversation(SYSTEM)
    conversation.add_user("order?")
    first = conversation.new_response_id()
    conversation.add_tool_round("One moment.", [ORDER], ["shipped"], first)
    second = conversation.new_response_id()
    # The follow-up was cut before it entered history; the filler of round one was heard.
    conversation.settle({second: "It shipped", first: "One moment."})
    assert conversation.messages[2:] == [
        assistant("One moment.", ORDER),
        {"role": "tool", "tool_call_id": "call_a", "content": "shipped"},
        {"role": "assistant", "content": "It shipped"},
    ]


def test_settle_with_nothing_changes_nothing() -> None:
    conversation = Conversation(SYSTEM)
    conversation.add_user("x")
    conversation.add_assistant("y", conversation.new_response_id())
    before = copy.deepcopy(conversation.messages)
    conversation.settle({})
    assert conversation.messages == before


# ---- rollback ----------------------------------------------------------------------------------


def test_rollback_restores_the_exact_previous_history() -> None:
    conversation = Conversation(SYSTEM)
    conversation.add_user("hello")
    conversation.add_assistant("Hi!", conversation.new_response_id())
    before = copy.deepcopy(conversation.messages)
    length = len(conversation.messages)

    conversation.add_user("order 1001?")
    rid_tools = conversation.new_response_id()
    conversation.add_tool_round("", [ORDER], ["shipped"], rid_tools)
    rid_answer = conversation.new_response_id()
    conversation.add_assistant("It shipped.", rid_answer)

    conversation.rollback(length)
    assert conversation.messages == before
    # Both responses are forgotten: what was heard of them comes back as new assistant messages.
    conversation.settle({rid_tools: "Let me", rid_answer: ""})
    assert conversation.messages == [*before, {"role": "assistant", "content": "Let me"}]


def test_rollback_keeps_response_ids_of_kept_messages() -> None:
    conversation = Conversation(SYSTEM)
    conversation.add_user("hello")
    kept = conversation.new_response_id()
    conversation.add_assistant("Hi!", kept)
    length = len(conversation.messages)
    conversation.add_user("more")
    conversation.rollback(length)
    conversation.settle({kept: "Hi"})
    assert conversation.messages[-1] == {"role": "assistant", "content": "Hi"}


def test_a_dropped_response_id_is_forgotten_for_settle() -> None:
    conversation = Conversation(SYSTEM)
    conversation.add_user("hello")
    length = len(conversation.messages)
    rid = conversation.new_response_id()
    conversation.add_tool_round("", [ORDER], ["shipped"], rid)
    conversation.rollback(length)
    # settle must not touch the dropped message (which is no longer in history): it appends instead.
    conversation.settle({rid: "heard"})
    assert conversation.messages[1:] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "heard"},
    ]


def test_rollback_to_the_current_length_changes_nothing() -> None:
    conversation = Conversation(SYSTEM)
    conversation.add_user("hello")
    rid = conversation.new_response_id()
    conversation.add_assistant("Hi!", rid)
    before = copy.deepcopy(conversation.messages)
    conversation.rollback(len(conversation.messages))
    assert conversation.messages == before
    conversation.settle({rid: "Hi"})  # the response is still known
    assert conversation.messages[-1] == {"role": "assistant", "content": "Hi"}


# Operations: ("user", text) | ("assistant", text) | ("tools", n_calls)
operation = st.one_of(
    st.tuples(st.just("user"), st.text(max_size=8)),
    st.tuples(st.just("assistant"), st.text(max_size=8)),
    st.tuples(st.just("tools"), st.integers(min_value=1, max_value=3)),
)


def apply(conversation: Conversation, op: tuple[str, Any], rids: list[int]) -> None:
    kind, value = op
    if kind == "user":
        conversation.add_user(value)
        return
    rid = conversation.new_response_id()
    rids.append(rid)
    if kind == "assistant":
        conversation.add_assistant(value, rid)
    else:
        calls = [call(f"call_{rid}_{i}", "t", "{}") for i in range(value)]
        conversation.add_tool_round("", calls, ["r"] * value, rid)


@given(before=st.lists(operation, max_size=6), after=st.lists(operation, max_size=6))
def test_rollback_undoes_any_sequence_of_additions(
    before: list[tuple[str, Any]], after: list[tuple[str, Any]]
) -> None:
    conversation = Conversation(SYSTEM)
    kept: list[int] = []
    for op in before:
        apply(conversation, op, kept)
    snapshot = copy.deepcopy(conversation.messages)
    dropped: list[int] = []
    for op in after:
        apply(conversation, op, dropped)

    conversation.rollback(len(snapshot))

    assert conversation.messages == snapshot
    # As if ``after`` never happened, for settle too: a twin that only saw ``before`` settles the same way
    # (kept responses are rewritten in place, dropped ones are unknown and come back as new messages).
    twin = Conversation(SYSTEM)
    twin_ids: list[int] = []
    for op in before:
        apply(twin, op, twin_ids)
    assert twin_ids == kept
    heard = {rid: f"heard {rid}" for rid in kept + dropped}
    conversation.settle(heard)
    twin.settle(heard)
    assert conversation.messages == twin.messages
