"""End-to-end turns: what a caller hears, and what crosses the wire, for one question at a time.

Rules:
- Each test dials the real bot on 127.0.0.1 through ``bot.sim.rig.bench`` and asserts on what the
  caller experienced (phone events, marks, clears), on the emulators' request logs and on the bot's
  ``Call`` once it has ended. Nothing of the project is patched: behaviour is chosen with ``bench``
  arguments, ``LineConfig`` fields, our own ``Tool`` objects and custom responders.
- Phone event times are seconds since dial; emulator times are ``time.monotonic()`` (the loop's clock).
  ``PhoneClock`` (tests/support/phone.py) brackets the dial moment, so a comparison between the two uses
  the conservative end.
- Timing asserts are orderings or loose bounds that hold on a loaded 2-core machine, never tight latencies.
- Tests not about the greeting use a short one (``QUICK_GREETING``) to keep each test short.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from bot.call.call import Call
from bot.flows.line import LineConfig
from bot.sim.rig import Bench, bench
from bot.sim.store_line import store_line
from bot.tools.registry import Tool
from emulators.openai_completion import split_words
from emulators.openai_script import ChatRequest, Reply, ScriptedToolCall
from emulators.phone import PhoneCall
from emulators.store_script import StoreScript
from tests.support.phone import PhoneClock, dial, finished_call, greeted, until
from tests.support.phone import events as _events
from tests.support.phone import last_speech_end as _last_speech_end

QUICK_GREETING = "Hi, how can I help?"
GREETING_QUIET_S = 0.4  # the greeting has played out after this much silence
ORDER_FILLER = "One moment while I look up your order."  # lookup_order's own filler (bot/flows/line.py)
SILENCE_LIMIT_S = 2.0  # README, "What it does" 7: never more than 2 s of silence
STORE = StoreScript(first_token_delay_s=0.0, chunk_delay_s=0.0)

# Several phrases: "Sure thing," is short, the second phrase is long (~2.6 s at 30 ms per character),
# so a caller talking over it ~0.8 s into the answer cuts it far from any phrase boundary.
LONG_ANSWER = (
    "Sure thing, we carry hand tools and power tools and paint and everything you need for the garden. "
    "We also cut keys while you wait. We rent out carpet cleaners by the day. "
    "And there is a workshop every Saturday morning."
)
STREAMED_ANSWER = (
    "Sure thing, we carry hand tools and paint. We also cut keys while you wait, and rent out cleaners."
)


async def _ask(b: Bench, call: PhoneCall, question: str, answer_ends: str) -> None:
    """Say ``question`` and listen until the answer ending in ``answer_ends`` has played out."""
    await call.say(question)
    await call.wait_for_bot_audio(timeout=10)
    await until(f"a TTS request ending {answer_ends!r}",
                lambda: any(r["text"].endswith(answer_ends) for r in b.tts.synth_requests))
    await call.wait_for_bot_silence(quiet=0.6, timeout=15)


async def _one_question(b: Bench, question: str, answer_ends: str) -> tuple[PhoneCall, PhoneClock, Call]:
    """Dial, be greeted, ``_ask`` one question and hang up: the phone's call, its clock and the bot's call."""
    call, clock = await dial(b)
    async with call:
        await greeted(call, quiet=GREETING_QUIET_S)
        await _ask(b, call, question, answer_ends)
    return call, clock, await finished_call(b)


def _clip_texts(line: LineConfig) -> set[str]:
    """Texts the bot pre-synthesizes at call start (they show in the TTS log whether said or not)."""
    return set(line.clip_texts())


def _answer_phrases(call_obj: Call, turn_index: int) -> tuple[int, list[str]]:
    """(response id, phrases) of the only spoken model response of a turn."""
    said = call_obj.turns[turn_index].said
    assert len(said) == 1, said
    ((response_id, phrases),) = said.items()
    return response_id, phrases


def _tool_round(request: ChatRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The assistant message with tool_calls and the tool messages after the last user message."""
    last_user = max(i for i, m in enumerate(request.messages) if m["role"] == "user")
    after = request.messages[last_user + 1 :]
    assert [m["role"] for m in after] == ["assistant"] + ["tool"] * (len(after) - 1), after
    return after[0], after[1:]


def _tool(name: str, handler: Any, *, timeout_s: float = 5.0) -> Tool:
    return Tool(name=name, description=f"Test tool {name}.", handler=handler, timeout_s=timeout_s,
                parameters={"type": "object", "properties": {"item": {"type": "string"}},
                            "required": ["item"], "additionalProperties": False})


def _calls_then_store(*calls: ScriptedToolCall) -> Callable[[ChatRequest], Reply]:
    """A responder that answers the first question with ``calls`` and words follow-ups like the store."""

    def respond(request: ChatRequest) -> Reply:
        if request.is_follow_up:
            return STORE(request)
        return Reply(tool_calls=list(calls))

    return respond


# ---- 1. a plain question ----------------------------------------------------------------------------------


async def test_plain_question_is_answered_in_speech_phrase_by_phrase() -> None:
    async with bench(greeting=QUICK_GREETING) as b:
        call, _, call_obj = await _one_question(b, "What do you sell?", "What would you like to know?")

    assert call.protocol_errors == []
    question_end = _last_speech_end(call)
    assert [e for e in _events(call, "bot_audio_start") if e.t > question_end], call.events
    assert call_obj.turns[0].transcript == "What do you sell?"
    response_id, phrases = _answer_phrases(call_obj, 0)
    expected = STORE(b.openai.chat_requests[0]).text
    assert " ".join(phrases) == expected
    assert len(phrases) > 1, phrases
    # Every synthesized text that is not a pre-synthesized clip is a phrase of the answer, in order.
    clips = _clip_texts(call_obj.line)
    assert [r["text"] for r in b.tts.synth_requests if r["text"] not in clips] == phrases
    # One mark per phrase, each echoed by the phone (played) and counted as heard by the bot.
    spoken = call_obj.tracker.phrases(response_id)
    assert [p.text for p in spoken] == phrases
    assert all(p.state == "played" and p.mark in call.marks_echoed for p in spoken), spoken


# ---- 2. streaming, not buffering ----------------------------------------------------------------------


async def test_first_phrase_goes_to_tts_while_the_model_is_still_streaming() -> None:
    chunk_delay_s = 0.15

    def slow_stream(request: ChatRequest) -> Reply:
        return Reply(text=STREAMED_ANSWER, chunk_delay_s=chunk_delay_s)

    async with bench(responder=slow_stream, greeting=QUICK_GREETING) as b:
        call, _ = await dial(b)
        async with call:
            await greeted(call, quiet=GREETING_QUIET_S)
            await call.say("What do you sell?")
            await until("the last phrase at the TTS",
                        lambda: any(r["text"].endswith("rent out cleaners.") for r in b.tts.synth_requests))

    chat = b.openai.chat_requests[0]
    # The emulator waits chunk_delay_s before every chunk but the first; there is one chunk per word
    # plus the role and finish chunks, so the stream cannot have ended before this.
    stream_end_at_least = chat.received_at + len(split_words(STREAMED_ANSWER)) * chunk_delay_s
    answer = [r for r in b.tts.synth_requests if r["received_at"] > chat.received_at
              and r["text"] in STREAMED_ANSWER]
    assert len(answer) > 2, answer
    assert answer[0]["text"] == "Sure thing,"
    assert answer[0]["received_at"] < stream_end_at_least - 1.0, (answer[0], stream_end_at_least)
    assert " ".join(r["text"] for r in answer) == STREAMED_ANSWER


# ---- 3. a slow tool: filler, then the answer ------------------------------------------------------------


async def test_slow_tool_plays_its_filler_before_the_follow_up_and_silence_stays_short() -> None:
    async with bench(line=store_line(order_delay_s=1.2), greeting=QUICK_GREETING) as b:
        call, clock, call_obj = await _one_question(b, "Where is order 1001?", "the estimate is Thursday.")

    assert call.protocol_errors == []
    first, follow_up = b.openai.chat_requests
    assert [c["function"]["name"] for c in _tool_round(follow_up)[0]["tool_calls"]] == ["lookup_order"]
    turn = call_obj.turns[0]
    assert turn.timings.filler is True
    # The filler is a clip said in this turn, outside the model's responses; the caller heard all of it.
    (filler_id,) = turn.response_ids - set(turn.said)
    (filler,) = call_obj.tracker.phrases(filler_id)
    assert filler.text == ORDER_FILLER
    assert filler.state == "played" and filler.mark in call.marks_echoed
    # It started playing, and was wholly on the phone, before the follow-up request reached the model.
    question_end = _last_speech_end(call)
    audio_start = next(e.t for e in _events(call, "bot_audio_start") if e.t > question_end)
    filler_mark = next(e.t for e in _events(call, "mark_received") if e.detail == filler.mark)
    assert clock.latest(audio_start) < follow_up.received_at - 0.3
    assert clock.latest(filler_mark) < follow_up.received_at
    # Then the follow-up answer was heard, phrase by phrase.
    answer_id, phrases = _answer_phrases(call_obj, 0)
    assert " ".join(phrases) == STORE(follow_up).text
    assert all(p.state == "played" and p.mark in call.marks_echoed
               for p in call_obj.tracker.phrases(answer_id))
    # Never more than 2 s of silence from the caller's last word to the end of the answer.
    starts = [e.t for e in _events(call, "bot_audio_start") if e.t > question_end]
    ends = [e.t for e in _events(call, "bot_audio_end") if e.t > question_end]
    gaps = [starts[0] - question_end] + [s - e for e, s in zip(ends, starts[1:], strict=False)]
    assert max(gaps) < SILENCE_LIMIT_S, (gaps, call.events)
    assert first.received_at < follow_up.received_at


# ---- 4. a fast tool: no filler --------------------------------------------------------------------------


async def test_fast_tool_gets_no_filler_only_the_answer_is_spoken() -> None:
    async with bench(greeting=QUICK_GREETING) as b:
        call, _, call_obj = await _one_question(b, "Are you open on Saturday?", "10 am to 4 pm.")

    turn = call_obj.turns[0]
    assert turn.timings.filler is False
    assert turn.silence_filler is False
    assert [t["name"] for t in turn.timings.tool_calls] == ["check_hours"]
    assert turn.response_ids == set(turn.said)  # no clip (filler) was said in this turn
    answer_id, phrases = _answer_phrases(call_obj, 0)
    assert " ".join(phrases) == "On Saturday, we're open from 10 am to 4 pm."
    # Every mark the phone got after the question belongs to the answer: nothing else was played.
    question_end = _last_speech_end(call)
    marks_after = [e.detail for e in _events(call, "mark_received") if e.t > question_end]
    assert marks_after == [p.mark for p in call_obj.tracker.phrases(answer_id)]
    assert all(m in call.marks_echoed for m in marks_after)


# ---- 5. parallel tool calls -----------------------------------------------------------------------------


async def test_two_tool_calls_make_one_assistant_message_and_one_result_each() -> None:
    question = "Are you open Friday, and where is order 1002?"
    async with bench(greeting=QUICK_GREETING) as b:
        _, _, call_obj = await _one_question(b, question, "the estimate is next Monday.")

    first, follow_up = b.openai.chat_requests
    assert first.last_user_text == question
    assistant, tool_messages = _tool_round(follow_up)
    calls = assistant["tool_calls"]
    assert len(calls) == 2
    assert all(isinstance(c["function"]["arguments"], str) for c in calls)
    assert {c["function"]["name"]: json.loads(c["function"]["arguments"]) for c in calls} == {
        "check_hours": {"day": "friday"},
        "lookup_order": {"order_id": "1002"},
    }
    assert len(tool_messages) == 2
    assert sorted(m["tool_call_id"] for m in tool_messages) == sorted(c["id"] for c in calls)
    _, phrases = _answer_phrases(call_obj, 0)
    spoken = " ".join(phrases)
    assert "9 am to 8 pm" in spoken and "garden hose" in spoken, spoken


async def test_two_slow_tool_calls_run_at_the_same_time() -> None:
    stock_ran: list[float] = []

    async def check_stock(item: str) -> dict[str, str]:
        started = time.monotonic()
        await asyncio.sleep(1.0)
        stock_ran.append(time.monotonic() - started)
        return {"item": item, "stock": "3 in stock"}

    line = store_line()
    tools = (*store_line(order_delay_s=1.0).tools, _tool("check_stock", check_stock))
    responder = _calls_then_store(ScriptedToolCall("lookup_order", {"order_id": "1001"}),
                                  ScriptedToolCall("check_stock", {"item": "hose"}))
    async with bench(responder=responder, line=dataclasses.replace(line, tools=tools),
                     greeting=QUICK_GREETING) as b:
        _, _, call_obj = await _one_question(b, "Is my hose in stock?", "stock 3 in stock.")

    first, follow_up = b.openai.chat_requests
    figures = {t["name"]: t for t in call_obj.turns[0].timings.tool_calls}
    assert set(figures) == {"lookup_order", "check_stock"}
    assert all(t["ok"] and isinstance(t["ms"], int) and t["ms"] >= 1000 for t in figures.values()), figures
    assert stock_ran and stock_ran[0] >= 1.0
    # Two 1 s tools one after the other would take >= 2 s; together they take ~1 s.
    assert follow_up.received_at - first.received_at < 1.8


# ---- 6. broken tools ------------------------------------------------------------------------------------


async def test_failing_and_hanging_tools_become_error_results_and_the_caller_still_hears_an_answer() -> None:
    async def inventory(item: str) -> str:
        raise RuntimeError("inventory database is down")

    async def supplier(item: str) -> str:
        await asyncio.sleep(30)
        return "never"

    line = dataclasses.replace(store_line(), tools=(_tool("inventory", inventory),
                                                    _tool("supplier", supplier, timeout_s=0.4)))
    responder = _calls_then_store(ScriptedToolCall("inventory", {"item": "hose"}),
                                  ScriptedToolCall("supplier", {"item": "hose"}))
    async with bench(responder=responder, line=line, greeting=QUICK_GREETING) as b:
        _, _, call_obj = await _one_question(b, "Is my hose in stock?", "just now.")

    first, follow_up = b.openai.chat_requests
    assistant, tool_messages = _tool_round(follow_up)
    names = {c["id"]: c["function"]["name"] for c in assistant["tool_calls"]}
    results = {names[m["tool_call_id"]]: m["content"] for m in tool_messages}
    assert set(results) == {"inventory", "supplier"}
    assert all(isinstance(r, str) and "error" in json.loads(r) for r in results.values()), results
    assert "timed out" in results["supplier"]
    # The hanging tool was given up on at its timeout, not waited for.
    assert follow_up.received_at - first.received_at < 5.0
    turn = call_obj.turns[0]
    assert turn.error is None  # a tool failure is an answer, not a provider error (no apology)
    answer_id, phrases = _answer_phrases(call_obj, 0)
    assert " ".join(phrases) == STORE(follow_up).text
    assert all(p.state == "played" for p in call_obj.tracker.phrases(answer_id))


# ---- 7. barge-in ----------------------------------------------------------------------------------------


def _long_answer_then_store(request: ChatRequest) -> Reply:
    if request.last_user_text == "What do you sell?" and not request.is_follow_up:
        return Reply(text=LONG_ANSWER)
    return STORE(request)


@pytest.mark.parametrize("streaming", [False, True], ids=["per-phrase", "per-answer-session"])
async def test_barge_in_clears_playback_and_history_keeps_only_what_was_heard(streaming: bool) -> None:
    interruption = "Are you open on Sunday?"
    settings = {"tts_streaming": streaming}
    async with bench(responder=_long_answer_then_store, greeting=QUICK_GREETING, settings=settings) as b:
        call, _ = await dial(b)
        async with call:
            await greeted(call, quiet=GREETING_QUIET_S)
            await call.say("What do you sell?")
            await call.wait_for_bot_audio(timeout=10)
            await call.silence(0.8)
            await _ask(b, call, interruption, "we're closed.")
        call_obj = await finished_call(b)

    assert call.protocol_errors == []
    (clear_index,) = [i for i, e in enumerate(call.events) if e.kind == "clear_received"]
    clear = call.events[clear_index]
    barge_start = _events(call, "caller_speech_start")[-1]
    assert 0 < clear.t - barge_start.t < 1.0
    # Playback stopped at the clear, and nothing played again until the caller had finished.
    assert any(e.kind == "bot_audio_end" and e.t <= clear.t for e in call.events[clear_index:])
    resumed = min(e.t for e in _events(call, "bot_audio_start") if e.t > clear.t)
    assert resumed > _last_speech_end(call)

    # What the caller heard of the long answer: the phrases whose marks came back before the clear.
    echoed_before_clear = {e.detail for e in call.events[:clear_index] if e.kind == "mark_echoed"}
    answer_id, said = _answer_phrases(call_obj, 0)
    assert " ".join(said) == LONG_ANSWER
    spoken = call_obj.tracker.phrases(answer_id)
    heard = [p.text for p in spoken if p.mark in echoed_before_clear]
    assert heard, spoken  # the short first phrase was over long before the caller spoke
    assert len(heard) < len(said)  # the tail was cut
    assert [p.state == "played" for p in spoken] == [p.mark in echoed_before_clear for p in spoken]
    assert call_obj.turns[0].barge_in is True

    # History holds that heard part only, then the interruption and its answer.
    messages = call_obj.conversation.messages
    asked = next(i for i, m in enumerate(messages) if m.get("content") == "What do you sell?")
    assert messages[asked + 1] == {"role": "assistant", "content": " ".join(heard)}
    assert "workshop" not in json.dumps(messages)
    assert messages[asked + 2] == {"role": "user", "content": interruption}
    assert messages[-1] == {"role": "assistant", "content": "On Sunday we're closed."}
    assert call_obj.turns[1].transcript == interruption
    # The model was asked about the interruption with the cut history.
    assert b.openai.chat_requests[1].messages[asked + 1]["content"] == " ".join(heard)
    if streaming:  # the long answer was one request, released (cancelled) at the barge-in
        answer_requests = [r for r in b.tts.synth_requests if r["text"] in said]
        assert {r["kind"] for r in answer_requests} == {"streaming"}


# ---- 8. the greeting ------------------------------------------------------------------------------------


async def test_greeting_is_played_first_and_is_in_history() -> None:
    async with bench() as b:
        call, _ = await dial(b)
        async with call:
            await call.wait_for_bot_audio(after=0.0, timeout=10)
            await call.wait_for_bot_silence(quiet=0.4, timeout=10)
            await _ask(b, call, "What do you sell?", "What would you like to know?")
        call_obj = await finished_call(b)

    greeting = call_obj.line.greeting
    assert b.tts.synth_requests[0]["text"] == greeting
    speech_start = _events(call, "caller_speech_start")[0].t
    first_start, first_end = _events(call, "bot_audio_start")[0].t, _events(call, "bot_audio_end")[0].t
    assert first_end <= speech_start
    # The first stretch of bot audio is the whole greeting (the emulated voice: 30 ms per character).
    assert abs((first_end - first_start) - len(greeting) * 0.030) < 0.1
    first_mark = _events(call, "mark_received")[0].detail
    assert call_obj.tracker.is_played(first_mark)
    assert next(e.t for e in _events(call, "mark_echoed") if e.detail == first_mark) <= speech_start
    greeting_message = {"role": "assistant", "content": greeting}
    assert call_obj.conversation.messages[1] == greeting_message
    assert [m["role"] for m in b.openai.chat_requests[0].messages] == ["system", "assistant", "user"]
    assert b.openai.chat_requests[0].messages[1] == greeting_message


# ---- regressions ----------------------------------------------------------------------------------------


async def test_caller_talking_while_the_first_phrase_is_synthesized_still_gets_an_answer() -> None:
    """A barge-in while the Speaker waits for a phrase's audio must not leave its sender stuck."""
    async with bench(greeting=QUICK_GREETING, tts_first_byte_s=1.5) as b:
        call, _ = await dial(b)
        async with call:
            await greeted(call, quiet=GREETING_QUIET_S)
            await call.say("What do you sell?")
            # The bot has the answer text within ~0.5 s, its first phrase's TTS takes 1.5 s: the caller
            # adds a question in between, which barges in on the phrase still being synthesized.
            await call.silence(0.7)
            await call.say("Are you open on Sunday?")
            try:
                await call.wait_for_bot_audio(timeout=6)
                answered = True
            except TimeoutError:
                answered = False
        call_obj = await finished_call(b)

    assert call_obj.turns[0].barge_in is True  # the scenario happened as described
    assert answered, "the caller heard nothing after their second question"
