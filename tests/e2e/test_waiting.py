"""End to end: waiting for a slow model is not a failure; the caller is kept company and hears the answer.

Rules:
- Each test is one whole call on the bench (the bot's real ``openai`` SDK against the emulator over
  127.0.0.1) with the model's latency scripted per request in the emulator; nothing of the bot is
  patched. Deadlines are shortened through the flow's settings (``turn_budget_s``) or the server's
  (``LLM_STALL_TIMEOUT_S``), as a deployment would.
- What the caller heard comes from the phone's mark echoes (``heard``); when it was heard, from the
  phone's own clock. Timings are asserted as lower bounds and generous upper bounds only.
- A slow answer has quiet gaps longer than ``QUIET_S`` (filler, then 1.5 s, then a progress line), so
  these tests wait for ``SLOW_QUIET_S`` of silence before they take the answer as finished.
"""

from __future__ import annotations

import dataclasses

from bot.core.progress import ProgressConfig
from bot.sim.rig import bench
from bot.sim.store_line import store_line
from emulators.latency import LogNormal
from emulators.openai_script import Reply, ScriptedToolCall, echo_responder
from emulators.phone import PhoneCall
from tests.support.heard import (
    APOLOGY,
    GREETING,
    SALE,
    SALE_BREAKS_AFTER,
    SALE_HEARD,
    SALE_KEPT,
    caller_speech_ends,
    echo_bench,
    greeted_call,
    heard,
    said,
)
from tests.support.phone import ask, finished_call
from tests.support.recordings import assert_finalized, recording_of

LINE = store_line()
FILLER = LINE.silence_filler_text
PROGRESS = LINE.progress.texts
SLOW_QUIET_S = 3.2  # longer than any gap in a slow answer (filler -> line 1.5 s, line -> line 2-3 s)


async def ask_slow(call: PhoneCall, question: str) -> None:
    """Say ``question``; return once the bot spoke and then was quiet for ``SLOW_QUIET_S``."""
    await call.say(question)
    await call.wait_for_bot_audio(timeout=10)
    await call.wait_for_bot_silence(quiet=SLOW_QUIET_S, timeout=40)


def echoed_at(call: PhoneCall, mark_index: int) -> float:
    """Phone time at which the ``mark_index``-th echoed mark's phrase finished playing."""
    echoes = [e for e in call.events if e.kind == "mark_echoed"]
    return echoes[mark_index].t


async def test_a_first_token_5s_after_tools_gets_the_filler_one_progress_line_then_the_answer() -> None:
    answer = "On Monday we're open from nine to five."
    # Lines every 3 s rather than 2 s: exactly one fits before a 5 s token even on a busy machine.
    progress = ProgressConfig(every_s=3.0)
    async with bench(responder=echo_responder, greeting=GREETING, progress=progress) as b:
        async with greeted_call(b) as call:
            b.openai.replies.extend(
                [
                    Reply(tool_calls=[ScriptedToolCall("check_hours", {"day": "monday"})]),
                    Reply(text=answer, first_token_delay_s=5.0),  # the follow-up after the tool
                ]
            )
            await ask_slow(call, "Are you open on Monday?")
            await ask(call, "Thanks, and on Sunday?")
            await call.hang_up()
        bot_call = await finished_call(b)
        recording = recording_of(b, call.call_sid)
    assert heard(call, bot_call) == [
        GREETING,
        FILLER,
        PROGRESS[0],
        "On Monday we're open from nine to five.",
        *said("Thanks, and on Sunday?"),
    ]
    turn = bot_call.turns[0]
    assert turn.error is None and turn.silence_filler and turn.progress_lines == 1
    # The late answer is in history; the filler and the progress line never are.
    assert [m.get("content") for m in bot_call.conversation.messages if m["role"] == "assistant"][
        -2
    ] == answer
    assert not any(m.get("content") in (FILLER, *PROGRESS) for m in b.openai.chat_requests[-1].messages)
    # The turn's log line (and the recording's turn event) counts the progress lines.
    assert [t["progress_lines"] for t in recording.events_of("turn")] == [1, 0]
    assert_finalized(recording, turns=2)


async def test_a_first_token_later_than_the_turn_budget_gets_the_apology_at_the_budget() -> None:
    budget_s = 5.0
    async with bench(responder=echo_responder, greeting=GREETING, turn_budget_s=budget_s) as b:
        async with greeted_call(b) as call:
            b.openai.replies.append(Reply(text="This comes far too late.", first_token_delay_s=60.0))
            await ask_slow(call, "Is my order ready?")
            await ask(call, "Hello?")
            await call.hang_up()
        bot_call = await finished_call(b)
    lines = heard(call, bot_call)
    apology_at = lines.index(APOLOGY)
    assert lines[1] == FILLER and lines[apology_at + 1 :] == said("Hello?")
    between = lines[2:apology_at]
    assert 1 <= len(between) <= 2 and all(line in PROGRESS for line in between), lines  # company, no repeats
    assert between[0] != between[-1] or len(between) == 1
    turn = bot_call.turns[0]
    assert turn.error == "llm:turn_budget" and turn.progress_lines == len(between)
    # The apology came at the budget, not before it: it finished playing at least budget_s after the
    # caller stopped talking (the speculative request starts ~0.2 s after that at the earliest).
    apology_heard = echoed_at(call, apology_at) - caller_speech_ends(call)[0]
    assert budget_s <= apology_heard <= budget_s + 6.0
    assert len(b.openai.chat_requests) == 2  # the late request was given up, not retried


async def test_a_stream_that_stops_mid_answer_keeps_what_was_said_then_apologises() -> None:
    async with echo_bench(settings={"llm_stall_timeout_s": 1.0}) as b:
        async with greeted_call(b) as call:
            b.openai.replies.append(Reply(text=SALE, stall_after_chunks=SALE_BREAKS_AFTER))
            await ask_slow(call, "Any deals today?")
            await ask(call, "Say that again?")
            await call.hang_up()
        bot_call = await finished_call(b)
    assert heard(call, bot_call) == [
        GREETING,
        *SALE_HEARD,
        APOLOGY,  # no progress line inside an answer
        *said("Say that again?"),
    ]
    assert [t.error for t in bot_call.turns] == ["openai-chat:stall", None]
    after = b.openai.chat_requests[-1].messages
    assert after[-2] == {"role": "assistant", "content": SALE_KEPT}


async def test_barge_in_while_waiting_stops_the_progress_lines_and_the_next_turn_is_answered() -> None:
    line = dataclasses.replace(LINE, progress=ProgressConfig(first_after_s=0.5, every_s=5.0))
    async with bench(responder=echo_responder, greeting=GREETING, line=line) as b:
        async with greeted_call(b) as call:
            b.openai.replies.append(Reply(text="Never heard.", first_token_delay_s=60.0))
            await call.say("Where is my parcel?")
            filler_at = await call.wait_for_bot_audio(timeout=10)
            await call.wait_for_bot_audio(after=filler_at + 0.5, timeout=10)  # the first progress line
            await call.wait_for_bot_silence(quiet=0.2, timeout=10)
            await ask(call, "Never mind that.")  # barges in on the thinking bot
            await call.wait_for_bot_silence(quiet=SLOW_QUIET_S, timeout=20)
            await call.hang_up()
        bot_call = await finished_call(b)
    assert heard(call, bot_call) == [GREETING, FILLER, PROGRESS[0], *said("Never mind that.")]
    first = bot_call.turns[0]
    assert first.barge_in and first.progress_lines == 1 and first.error is None
    assert bot_call.turns[1].progress_lines == 0


async def test_long_tailed_model_latency_is_waited_for_and_every_turn_is_answered() -> None:
    # Seed 2 draws a 5.2 s first token for the first request, then ~1 s ones; the cap keeps every draw
    # under the first-token deadline (8 s), so a slow model costs company, never an apology.
    latency = LogNormal(median_s=0.6, p99_s=6.0, cap_s=7.0)
    questions = ["What can you do?", "And what else?", "Tell me more."]
    async with bench(greeting=GREETING, llm_first_token_s=latency, llm_seed=2) as b:
        async with greeted_call(b) as call:
            for question in questions:
                await ask_slow(call, question)
            await call.hang_up()
        bot_call = await finished_call(b)
    lines = heard(call, bot_call)
    assert APOLOGY not in lines
    assert [t.error for t in bot_call.turns] == [None, None, None]
    assert len(b.openai.chat_requests) == 3  # one draw per turn, in order: the first turn drew 5.2 s
    assert all(t.first_phrase_at is not None for t in bot_call.turns)  # every answer came and was said
    assert bot_call.turns[0].silence_filler and bot_call.turns[0].progress_lines >= 1, lines
