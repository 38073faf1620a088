"""Agent.answer against a scripted ChatModel.

Rules checked here: phrases are yielded while the model still streams; tool calls run in parallel
after the gate opens; a filler only when tools outlast ``filler_delay_s``; one assistant message
with every call plus one tool message per call; bounded tool rounds; provider errors propagate;
cancelling the answer cancels running tools.

The fake model implements the ``ChatModel`` protocol and yields chunk dicts shaped like OpenAI's
``chat.completion.chunk`` dumps. A script step may also be an ``asyncio.Event`` (the fake waits for
it, so the test controls exactly when later chunks exist) or an exception (raised mid-stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import pytest

from bot.call.agent import Agent, Filler, Phrase, TurnTimings
from bot.core.history import Conversation
from bot.flows.line import LineConfig
from bot.providers.llm.protocol import ChatModel, ChatOptions
from bot.tools.registry import Tool, ToolRegistry
from media.errors import ProviderError
from media.phrases import PhraseConfig, PhraseStrategy
from tests.support.rendezvous import Rendezvous

TIMEOUT_S = 5.0  # generous bound on every wait, so a broken test fails instead of hanging
SYSTEM = "You are a test assistant."
Chunk = dict[str, Any]
Step = Chunk | asyncio.Event | BaseException


# ---- chunk builders (shaped like ChatCompletionChunk.model_dump()) -------------------------------


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> Chunk:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "fake-model",
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        "usage": None,
    }


def text(content: str | None) -> Chunk:
    return chunk({"role": "assistant", "content": content, "tool_calls": None})


def tool_start(index: int, call_id: str, name: str, arguments: str = "") -> Chunk:
    fragment = {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    return chunk({"content": None, "tool_calls": [fragment]})


def tool_args(index: int, arguments: str) -> Chunk:
    fragment = {"index": index, "id": None, "type": None, "function": {"name": None, "arguments": arguments}}
    return chunk({"content": None, "tool_calls": [fragment]})


def finish(reason: str) -> Chunk:
    return chunk({}, reason)


USAGE: Chunk = {
    "id": "chatcmpl-test",
    "object": "chat.completion.chunk",
    "created": 1_700_000_000,
    "model": "fake-model",
    "choices": [],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
}


class FakeChatModel(ChatModel):
    """Plays one script per request; the last script repeats if the agent asks for more."""

    def __init__(self, *scripts: Sequence[Step]) -> None:
        self._scripts = scripts
        self.requests: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []
        self.produced: list[Mapping[str, Any]] = []
        self.options: list[ChatOptions | None] = []

    async def stream(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        options: ChatOptions | None = None,
    ) -> AsyncIterator[Mapping[str, Any]]:
        self.options.append(options)
        self.requests.append((copy.deepcopy(list(messages)), [dict(t) for t in tools]))
        script = self._scripts[min(len(self.requests), len(self._scripts)) - 1]
        for step in script:
            if isinstance(step, asyncio.Event):
                await step.wait()
            elif isinstance(step, BaseException):
                raise step
            else:
                self.produced.append(step)
                yield step

    def tool_names(self, request: int) -> list[str]:
        return [t["function"]["name"] for t in self.requests[request][1]]


class TickClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def make_agent(
    model: FakeChatModel, tools: Sequence[Tool] = (), user_text: str = "Hello?", **line_fields: Any
) -> tuple[Agent, Conversation, LineConfig]:
    fields: dict[str, Any] = {
        "phrases": PhraseConfig(strategy=PhraseStrategy.SENTENCE),
        "filler_delay_s": TIMEOUT_S,  # no filler unless a test asks for one
    }
    fields.update(line_fields)
    line = LineConfig(name="test", greeting="Hi.", system_prompt=SYSTEM, tools=tuple(tools), **fields)
    conversation = Conversation(SYSTEM)
    conversation.add_user(user_text)
    llm: ChatModel = model  # the fake must satisfy the provider protocol
    agent = Agent(llm, ToolRegistry.of(tools), line, conversation, clock=TickClock())
    return agent, conversation, line


async def collect(
    agent: Agent, timings: TurnTimings | None = None, gate: Callable[[], Awaitable[object]] | None = None
) -> list[Phrase | Filler]:
    async with asyncio.timeout(TIMEOUT_S):
        return [out async for out in agent.answer(timings or TurnTimings(), gate)]


def generator(answer: AsyncIterator[Phrase | Filler]) -> AsyncGenerator[Phrase | Filler, None]:
    """``Agent.answer`` is an async generator typed as an iterator; tests need ``aclose``."""
    assert isinstance(answer, AsyncGenerator)
    return answer


def tool(name: str, handler: Any, *, filler: str | None = None, timeout_s: float = TIMEOUT_S) -> Tool:
    return Tool(name, f"{name} tool", {"type": "object"}, handler, timeout_s=timeout_s, filler=filler)


def one_call_script(name: str = "lookup_order", arguments: str = '{"order_id": "1001"}') -> list[Step]:
    return [text("Let me check. "), tool_start(0, "call_1", name, arguments), finish("tool_calls")]


ANSWER_SCRIPT: list[Step] = [text("It shipped."), finish("stop")]


# ---- plain text ----------------------------------------------------------------------------------


async def test_phrases_are_yielded_while_the_model_is_still_streaming() -> None:
    release = asyncio.Event()
    last = text("Anything else?")
    model = FakeChatModel(
        [
            text("Sure thing. "),
            text("Your order "),
            release,
            text("shipped on Monday. "),
            last,
            finish("stop"),
        ]
    )
    agent, conversation, _ = make_agent(model)
    timings = TurnTimings()
    outputs: list[Phrase | Filler] = []

    answer = generator(agent.answer(timings))
    async with contextlib.aclosing(answer), asyncio.timeout(TIMEOUT_S):
        first = await anext(answer)
        # The model has not produced its later chunks yet: the phrase went out as soon as it was whole.
        assert isinstance(first, Phrase)
        assert first.text == "Sure thing."
        assert last not in model.produced
        assert len(model.produced) == 1
        release.set()
        outputs = [first, *[out async for out in answer]]

    rid = first.response_id
    assert outputs == [
        Phrase("Sure thing.", rid),
        Phrase("Your order shipped on Monday.", rid),
        Phrase("Anything else?", rid),
    ]
    assert conversation.messages[-1] == {
        "role": "assistant",
        "content": "Sure thing. Your order shipped on Monday. Anything else?",
    }
    assert agent.unsettled == {}
    assert len(timings.llm_requests) == 1
    assert len(timings.first_tokens) == 1
    assert timings.first_tokens[0] > timings.llm_requests[0]
    assert timings.tool_calls == []
    assert not timings.filler


async def test_every_request_streams_the_history_and_offers_the_tools() -> None:
    async def noop() -> str:
        return ""

    model = FakeChatModel([text("Hi."), finish("stop"), USAGE])
    agent, _, _ = make_agent(model, [tool("noop", noop)], user_text="hey")
    await collect(agent)
    [(messages, _tools)] = model.requests
    assert messages == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hey"}]
    assert model.tool_names(0) == ["noop"]


async def test_empty_and_whitespace_chunks_never_become_phrases() -> None:
    model = FakeChatModel(
        [
            text(None),
            text(""),
            text("   "),
            text("Hello"),
            text(" "),
            text(""),
            text("there.  "),
            finish("stop"),
        ]
    )
    agent, conversation, _ = make_agent(model)
    outputs = await collect(agent)
    assert [o.text for o in outputs] == ["Hello there."]
    assert conversation.messages[-1] == {"role": "assistant", "content": "Hello there."}


async def test_a_response_with_no_text_adds_no_message() -> None:
    model = FakeChatModel([text(""), finish("stop"), USAGE])
    agent, conversation, _ = make_agent(model)
    assert await collect(agent) == []
    assert [m["role"] for m in conversation.messages] == ["system", "user"]


# ---- tool rounds ---------------------------------------------------------------------------------


async def test_tool_round_runs_calls_in_parallel_and_streams_the_follow_up() -> None:
    both = Rendezvous(2)  # each tool returns only once both are running: sequential execution would time out

    async def lookup_order(order_id: str) -> dict[str, str]:
        await both.arrive("lookup_order")
        return {"order_id": order_id, "status": "shipped"}

    async def check_hours(day: str) -> dict[str, str]:
        await both.arrive("check_hours")
        return {"day": day, "hours": "9 to 6"}

    first_round: list[Step] = [
        text("Let me check. "),
        tool_start(0, "call_a", "lookup_order"),
        tool_args(0, '{"order_id":'),
        tool_start(1, "call_b", "check_hours", '{"day": '),
        tool_args(0, ' "1001"}'),
        tool_args(1, '"monday"}'),
        finish("tool_calls"),
        USAGE,
    ]
    follow_up: list[Step] = [text("Your drill shipped. "), text("We open at nine."), finish("stop"), USAGE]
    model = FakeChatModel(first_round, follow_up)
    tools = [
        tool("lookup_order", lookup_order, timeout_s=2.0),
        tool("check_hours", check_hours, timeout_s=2.0),
    ]
    agent, conversation, _ = make_agent(model, tools, user_text="Order 1001? Open Monday?")
    timings = TurnTimings()

    outputs = await collect(agent, timings)

    r1 = outputs[0].response_id if isinstance(outputs[0], Phrase) else -1
    assert outputs == [
        Phrase("Let me check.", r1),
        Phrase("Your drill shipped.", r1 + 1),
        Phrase("We open at nine.", r1 + 1),
    ]
    assert conversation.messages == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Order 1001? Open Monday?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"order_id": "1001"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "check_hours", "arguments": '{"day": "monday"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"order_id": "1001", "status": "shipped"}'},
        {"role": "tool", "tool_call_id": "call_b", "content": '{"day": "monday", "hours": "9 to 6"}'},
        {"role": "assistant", "content": "Your drill shipped. We open at nine."},
    ]
    # The follow-up request saw the complete tool round, and was still offered the tools.
    assert len(model.requests) == 2
    assert model.requests[1][0] == conversation.messages[:5]
    assert model.tool_names(1) == ["lookup_order", "check_hours"]
    assert [(f["name"], f["ok"]) for f in timings.tool_calls] == [
        ("lookup_order", True),
        ("check_hours", True),
    ]
    assert timings.tool_calls[0]["args"] == '{"order_id":"1001"}'
    assert len(timings.llm_requests) == 2
    assert len(timings.first_tokens) == 2
    assert not timings.filler


async def test_a_tool_round_without_text_has_null_content() -> None:
    async def lookup_order(order_id: str) -> str:
        return "shipped"

    model = FakeChatModel(
        [tool_start(0, "call_1", "lookup_order", '{"order_id": "7"}'), finish("tool_calls")], ANSWER_SCRIPT
    )
    agent, conversation, _ = make_agent(model, [tool("lookup_order", lookup_order)])
    outputs = await collect(agent)
    assert [o.text for o in outputs] == ["It shipped."]
    assert conversation.messages[2]["content"] is None
    assert conversation.messages[3] == {"role": "tool", "tool_call_id": "call_1", "content": "shipped"}


async def test_a_failing_tool_result_goes_back_to_the_model() -> None:
    async def lookup_order(order_id: str) -> str:
        raise RuntimeError("backend down")

    model = FakeChatModel(one_call_script(), ANSWER_SCRIPT)
    agent, conversation, _ = make_agent(model, [tool("lookup_order", lookup_order)])
    timings = TurnTimings()
    await collect(agent, timings)
    result = json.loads(conversation.messages[3]["content"])
    assert "lookup_order" in result["error"]
    assert timings.tool_calls[0]["ok"] is False


async def test_filler_is_yielded_when_tools_outlast_the_delay() -> None:
    release = asyncio.Event()
    tool_finished = False

    async def lookup_order(order_id: str) -> str:
        nonlocal tool_finished
        await release.wait()  # only the test's reaction to the filler lets the tool finish
        tool_finished = True
        return "shipped"

    model = FakeChatModel(one_call_script(), ANSWER_SCRIPT)
    agent, _, line = make_agent(model, [tool("lookup_order", lookup_order)], filler_delay_s=0.01)
    timings = TurnTimings()
    outputs: list[Phrase | Filler] = []
    async with asyncio.timeout(TIMEOUT_S):
        async for out in agent.answer(timings):
            outputs.append(out)
            if isinstance(out, Filler):
                assert not tool_finished
                release.set()

    assert [type(o) for o in outputs] == [Phrase, Filler, Phrase]
    assert outputs[1] == Filler(line.filler_text)
    assert timings.filler


async def test_the_tool_s_own_filler_wins_over_the_line_default() -> None:
    release = asyncio.Event()

    async def lookup_order(order_id: str) -> str:
        await release.wait()
        return "shipped"

    model = FakeChatModel(one_call_script(), ANSWER_SCRIPT)
    slow = tool("lookup_order", lookup_order, filler="Looking up your order.")
    agent, _, _ = make_agent(model, [slow], filler_delay_s=0.01)
    outputs: list[Phrase | Filler] = []
    async with asyncio.timeout(TIMEOUT_S):
        async for out in agent.answer(TurnTimings()):
            outputs.append(out)
            if isinstance(out, Filler):
                release.set()
    assert Filler("Looking up your order.") in outputs


async def test_no_filler_when_tools_finish_first() -> None:
    async def lookup_order(order_id: str) -> str:
        return "shipped"

    model = FakeChatModel(one_call_script(), ANSWER_SCRIPT)
    agent, _, _ = make_agent(model, [tool("lookup_order", lookup_order)], filler_delay_s=TIMEOUT_S)
    timings = TurnTimings()
    outputs = await collect(agent, timings)
    assert not any(isinstance(o, Filler) for o in outputs)
    assert [o.text for o in outputs] == ["Let me check.", "It shipped."]
    assert not timings.filler


async def test_on_follow_up_is_told_before_each_request_after_tools_only() -> None:
    async def lookup_order(order_id: str) -> str:
        return "shipped"

    model = FakeChatModel(one_call_script(), one_call_script(), ANSWER_SCRIPT)
    agent, _, _ = make_agent(model, [tool("lookup_order", lookup_order)])
    requests_when_told: list[int] = []
    async with asyncio.timeout(TIMEOUT_S):
        answer = agent.answer(TurnTimings(), None, lambda: requests_when_told.append(len(model.requests)))
        outputs = [out async for out in answer]
    assert [o.text for o in outputs] == ["Let me check.", "Let me check.", "It shipped."]
    # Told as the 2nd and 3rd requests were about to go out (the caller now waits for the rest).
    assert requests_when_told == [1, 2]


async def test_tools_wait_for_the_gate_but_text_streams_before_it() -> None:
    tool_started = asyncio.Event()
    gate_entered = asyncio.Event()
    gate_open = asyncio.Event()

    async def lookup_order(order_id: str) -> str:
        tool_started.set()
        return "shipped"

    async def gate() -> None:
        gate_entered.set()
        await gate_open.wait()

    model = FakeChatModel(one_call_script(), ANSWER_SCRIPT)
    agent, _, _ = make_agent(model, [tool("lookup_order", lookup_order)])
    outputs: list[Phrase | Filler] = []

    async def consume() -> None:
        async for out in agent.answer(TurnTimings(), gate):
            outputs.append(out)

    task = asyncio.create_task(consume())
    try:
        async with asyncio.timeout(TIMEOUT_S):
            await gate_entered.wait()
        assert [o.text for o in outputs] == ["Let me check."]
        await asyncio.sleep(0.05)  # give a wrongly started tool every chance to run
        assert not tool_started.is_set()
        gate_open.set()
        async with asyncio.timeout(TIMEOUT_S):
            await task
    finally:
        task.cancel()
    assert tool_started.is_set()
    assert [o.text for o in outputs] == ["Let me check.", "It shipped."]


async def test_the_gate_is_not_awaited_without_tool_calls() -> None:
    gate_calls = 0

    async def gate() -> None:
        nonlocal gate_calls
        gate_calls += 1

    model = FakeChatModel(ANSWER_SCRIPT)
    agent, _, _ = make_agent(model)
    assert [o.text for o in await collect(agent, gate=gate)] == ["It shipped."]
    assert gate_calls == 0


class CountedEcho:
    """A tool handler that answers "echo" and counts its runs."""

    def __init__(self) -> None:
        self.runs = 0

    async def __call__(self) -> str:
        self.runs += 1
        return "echo"


async def test_the_last_allowed_round_is_offered_no_tools() -> None:
    echo = CountedEcho()
    model = FakeChatModel(
        [tool_start(0, "call_1", "echo"), finish("tool_calls")],
        [tool_start(0, "call_2", "echo"), finish("tool_calls")],
        [text("Done."), finish("stop")],
    )
    agent, conversation, _ = make_agent(model, [tool("echo", echo)], max_tool_rounds=2)
    outputs = await collect(agent)
    assert [o.text for o in outputs] == ["Done."]
    assert echo.runs == 2
    assert [model.tool_names(i) for i in range(3)] == [["echo"], ["echo"], []]
    assert [m["role"] for m in conversation.messages] == [
        "system", "user", "assistant", "tool", "assistant", "tool", "assistant",
    ]  # fmt: skip


async def test_a_model_that_keeps_calling_tools_is_bounded() -> None:
    async def echo() -> str:
        return "echo"

    model = FakeChatModel([tool_start(0, "call_1", "echo"), finish("tool_calls")])  # repeats forever
    agent, _, _ = make_agent(model, [tool("echo", echo)], max_tool_rounds=2)
    outputs = await collect(agent)
    assert len(model.requests) == 3
    assert model.tool_names(2) == []
    assert len(outputs) == 1
    assert isinstance(outputs[0], Phrase)
    assert outputs[0].text == "Sorry, I couldn't finish looking that up."


async def test_tools_never_run_more_than_max_tool_rounds_times() -> None:
    echo = CountedEcho()
    model = FakeChatModel([tool_start(0, "call_1", "echo"), finish("tool_calls")])
    agent, _, _ = make_agent(model, [tool("echo", echo)], max_tool_rounds=2)
    await collect(agent)
    assert echo.runs == 2


# ---- errors and cancellation ---------------------------------------------------------------------


async def test_a_provider_error_propagates_after_the_phrases_already_streamed() -> None:
    model = FakeChatModel(
        [text("We open "), text("at nine. "), text("On Sun"), ProviderError("openai", "stream_cut")]
    )
    agent, conversation, _ = make_agent(model)
    outputs: list[Phrase | Filler] = []
    with pytest.raises(ProviderError) as caught:
        async with asyncio.timeout(TIMEOUT_S):
            async for out in agent.answer(TurnTimings()):
                outputs.append(out)
    assert caught.value.kind == "stream_cut"
    assert [o.text for o in outputs] == ["We open at nine."]
    # Nothing entered history; the streamed text waits for the Call to settle what was heard.
    assert [m["role"] for m in conversation.messages] == ["system", "user"]
    rid = outputs[0].response_id if isinstance(outputs[0], Phrase) else -1
    assert agent.unsettled == {rid: "We open at nine. On Sun"}


async def test_settle_writes_what_was_heard_of_the_cut_answer_and_leaves_nothing_unsettled() -> None:
    model = FakeChatModel([text("We open at nine. "), text("On Sun"), ProviderError("openai", "stream_cut")])
    agent, conversation, _ = make_agent(model)
    with pytest.raises(ProviderError):
        await collect(agent)
    (rid,) = agent.unsettled
    goodbye = conversation.new_response_id()
    conversation.add_assistant("Goodbye now.", goodbye)  # a fixed line, cut before the caller heard it
    heard = {rid: "We open at nine.", goodbye: ""}
    assert agent.settle(heard.__getitem__, cut={goodbye}) == heard
    assert agent.unsettled == {}
    assert [(m["role"], m.get("content")) for m in conversation.messages[1:]] == [
        ("user", "Hello?"),
        ("assistant", "We open at nine."),
    ]


async def test_rollback_forgets_a_speculative_answer_and_its_unsettled_text() -> None:
    model = FakeChatModel([text("We open "), ProviderError("openai", "stream_cut")])
    agent, conversation, _ = make_agent(model)
    with pytest.raises(ProviderError):
        await collect(agent)
    assert agent.unsettled
    agent.rollback(1)
    assert agent.unsettled == {}
    assert [m["role"] for m in conversation.messages] == ["system"]


async def test_a_provider_error_in_the_follow_up_keeps_the_tool_round() -> None:
    async def lookup_order(order_id: str) -> str:
        return "shipped"

    model = FakeChatModel(one_call_script(), [text("It ship"), ProviderError("openai", "timeout")])
    agent, conversation, _ = make_agent(model, [tool("lookup_order", lookup_order)])
    with pytest.raises(ProviderError):
        await collect(agent)
    assert [m["role"] for m in conversation.messages] == ["system", "user", "assistant", "tool"]
    assert list(agent.unsettled.values()) == ["It ship"]


async def test_cancelling_the_answer_while_tools_run_cancels_the_tools() -> None:
    tool_started = asyncio.Event()
    never = asyncio.Event()
    tool_cancelled = asyncio.Event()
    tool_completed = False

    async def lookup_order(order_id: str) -> str:
        nonlocal tool_completed
        tool_started.set()
        try:
            await never.wait()
        except asyncio.CancelledError:
            tool_cancelled.set()
            raise
        tool_completed = True
        return "unreachable"

    model = FakeChatModel(one_call_script(), ANSWER_SCRIPT)
    agent, conversation, _ = make_agent(model, [tool("lookup_order", lookup_order)])

    async def consume() -> None:
        async for _ in agent.answer(TurnTimings()):
            pass

    task = asyncio.create_task(consume())
    async with asyncio.timeout(TIMEOUT_S):
        await tool_started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(TIMEOUT_S):
            await task
    assert tool_cancelled.is_set()
    assert not tool_completed
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "tools" and not t.done()]
    assert len(model.requests) == 1
    assert [m["role"] for m in conversation.messages] == ["system", "user"]
    # What was said before the tools stays unsettled: the Call writes what the caller heard of it.
    assert list(agent.unsettled.values()) == ["Let me check. "]


async def test_closing_the_answer_after_the_filler_cancels_the_tools() -> None:
    never = asyncio.Event()
    tool_cancelled = asyncio.Event()

    async def lookup_order(order_id: str) -> str:
        try:
            await never.wait()
        except asyncio.CancelledError:
            tool_cancelled.set()
            raise
        return "unreachable"

    model = FakeChatModel(one_call_script(), ANSWER_SCRIPT)
    agent, _, _ = make_agent(model, [tool("lookup_order", lookup_order)], filler_delay_s=0.01)
    answer = generator(agent.answer(TurnTimings()))
    async with contextlib.aclosing(answer), asyncio.timeout(TIMEOUT_S):
        async for out in answer:
            if isinstance(out, Filler):
                break  # barge-in during the filler: the caller stops listening
    assert tool_cancelled.is_set()


# ---- the end of each response's text --------------------------------------------------------------


async def test_on_text_end_comes_after_each_responses_last_phrase_and_before_its_tools_run() -> None:
    events: list[str] = []

    async def lookup(order_id: str) -> str:
        events.append("tool ran")
        return "shipped"

    model = FakeChatModel(one_call_script(), ANSWER_SCRIPT)
    agent, _, _ = make_agent(model, [tool("lookup_order", lookup)])
    agent.on_text_end = lambda rid: events.append(f"text end {rid}")
    async with asyncio.timeout(TIMEOUT_S):
        async for out in agent.answer(TurnTimings()):
            assert isinstance(out, Phrase)
            events.append(f"{out.text} {out.response_id}")
    first, second = (int(e.rsplit(" ", 1)[1]) for e in events if e.startswith(("Let", "It")))
    assert events == [
        f"Let me check. {first}",
        f"text end {first}",  # the first response's speech can end while its tool runs
        "tool ran",
        f"It shipped. {second}",
        f"text end {second}",
    ]
