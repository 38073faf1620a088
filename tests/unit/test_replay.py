"""The replay's pure parts: what a recording holds for a replay, the turn-by-turn diff, the recorded model and
voice, and the scaled clock.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bot.providers.tts.protocol import TextToSpeech, VoiceOptions
from bot.recording import CallRecorder, LocalStore, Recording
from bot.sim.replay import recorded
from bot.sim.replay.clock import ScaledClockLoop
from bot.sim.replay.diff import compare, render
from bot.sim.replay.model import NO_ANSWER, RecordedModel
from bot.sim.replay.recorded import RecordedTurn, RoundKey, request_key
from bot.sim.replay.speech import RecordedSpeech
from bot.sim.replay.words import word_distance
from emulators.openai_script import ChatRequest
from tests.support.clocks import FakeClock

SYSTEM = {"role": "system", "content": "You are the phone assistant of Corner Hardware, a store."}


def turn_event(number: int, heard: str, answer: str, **more: Any) -> dict[str, Any]:
    return {
        "turn": number,
        "typed": False,
        "transcript": heard,
        "said": {str(number * 2): answer},
        "voice_to_voice_ms": 900 + number,
        "tools": [],
        "barge_in": False,
        "error": None,
        "llm_ttft_ms": 250,
        "llm": [{"messages": 3, "text": answer, "tool_calls": [], "first_chunk_ms": 250}],
        **more,
    }


def make_recording(tmp_path: Path) -> Recording:
    clock = FakeClock(0.0)
    sink = LocalStore(tmp_path).create("CA1", datetime(2026, 1, 2, tzinfo=UTC))
    rec = CallRecorder(sink, clock=clock)
    rec.start(call_sid="CA1", flow="store", parameters={"to": "+15550100", "from": "+15550199"})
    rec.caller_audio(0, b"\x01" * 160)
    rec.bot_audio(b"\x10" * 320, response_id=1, mark="")
    rec.event("mark_sent", mark="r1-p1", response_id=1, text="Hello there.")
    rec.bot_audio(b"\x11" * 160, response_id=1, mark="")
    rec.event("mark_sent", mark="r1-p2", response_id=1, text="How can I help?")
    clock.now = 2.0
    rec.event("dtmf", digit="1")
    clock.now = 2.5
    rec.event("dtmf", digit="#")
    rec.bot_audio(b"\x12" * 480, response_id=4, mark="")
    rec.clear()  # cut before its mark: not a phrase
    tools = [{"name": "check_hours", "ok": True, "ms": 0, "args": '{"day": "saturday"}'}]
    llm = [
        {
            "text": "",
            "tool_calls": [{"id": "call_1", "name": "check_hours", "arguments": '{"day": "saturday"}'}],
            "tool_results": ['{"hours": "10-4"}'],
        },
        {"text": "We open at ten.", "tool_calls": []},
    ]
    rec.event("turn", **turn_event(1, "When do you open?", "We open at ten.", tools=tools, llm=llm))
    rec.event("turn", **turn_event(2, "yes", "Good."))
    rec.event("turn", **turn_event(3, "yes", "Bye now."))
    rec.finalize(ended_by="end_call", turns=3)
    return Recording.load(sink.path)


def test_turns_keys_and_phrases_come_out_of_a_recording(tmp_path: Path) -> None:
    rec = make_recording(tmp_path)
    turns = recorded.turns(rec)
    assert [t.heard for t in turns] == ["When do you open?", "yes", "yes"]
    assert turns[0].tools == ('check_hours({"day":"saturday"})',)  # arguments normalised
    assert turns[0].answer == "We open at ten." and turns[0].voice_to_voice_ms == 901
    assert recorded.keys(rec) == [(2.0, "1"), (2.5, "#")]
    assert recorded.phrase_audio(rec) == {"Hello there.": b"\x10" * 320, "How can I help?": b"\x11" * 160}


def test_phrase_audio_is_what_was_sent_since_the_last_mark_and_a_clear_drops_it() -> None:
    def audio(t: float, offset: int, rid: int) -> dict[str, Any]:
        return {"t": t, "type": "bot_audio", "offset": offset, "bytes": 2, "response_id": rid, "mark": ""}

    def mark(t: float, rid: int, text: str) -> dict[str, Any]:
        return {"t": t, "type": "mark_sent", "mark": f"m{t}", "response_id": rid, "text": text}

    events = [
        *(audio(0.0, 0, 1), mark(0.0, 1, "Hi.")),
        *(audio(0.1, 2, 1), audio(0.1, 4, 2), {"t": 0.2, "type": "clear"}),  # both cut before their marks
        *(audio(0.3, 6, 1), mark(0.3, 1, "Hi."), mark(0.3, 2, "Bye.")),  # "Hi." again: the first audio wins
        *(audio(0.4, 8, 2), mark(0.4, 2, "Bye.")),
    ]
    rec = Recording(Path("mem"), {"format": 1}, events, False, b"", b"aabbccddee")
    assert recorded.phrase_audio(rec) == {"Hi.": b"aa", "Bye.": b"ee"}


def test_answers_are_keyed_by_question_occurrence_and_round(tmp_path: Path) -> None:
    found = recorded.answers(make_recording(tmp_path))
    first = found.rounds[RoundKey("When do you open?", 1, 0)]
    assert first.tool_calls == (("call_1", "check_hours", '{"day": "saturday"}'),)
    assert found.rounds[RoundKey("When do you open?", 1, 1)].text == "We open at ten."
    assert found.rounds[RoundKey("yes", 1, 0)].text == "Good."
    assert found.rounds[RoundKey("yes", 2, 0)].text == "Bye now."
    assert found.rounds[RoundKey("yes", 2, 0)].first_chunk_ms == 250


def test_request_key_counts_occurrences_and_tool_rounds() -> None:
    user = {"role": "user", "content": "yes"}
    tool_round = {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}
    assert request_key([SYSTEM]) is None
    assert request_key([SYSTEM, user]) == RoundKey("yes", 1, 0)
    assert request_key([SYSTEM, user, {"role": "assistant", "content": "ok"}, user]) == RoundKey("yes", 2, 0)
    tool_msg = {"role": "tool", "tool_call_id": "c", "content": "{}"}
    assert request_key([SYSTEM, user, tool_round, tool_msg]) == RoundKey("yes", 1, 1)
    parts = {"role": "user", "content": [{"type": "text", "text": "y"}, {"type": "text", "text": "es"}]}
    assert request_key([SYSTEM, parts]) == RoundKey("yes", 1, 0)


def chat(*messages: dict[str, Any]) -> ChatRequest:
    return ChatRequest(
        body={"messages": list(messages)}, messages=list(messages), headers={}, received_at=0.0
    )


def test_recorded_model_serves_answers_and_reports_misses(tmp_path: Path) -> None:
    model = RecordedModel(recorded.answers(make_recording(tmp_path)))
    reply = model(chat(SYSTEM, {"role": "user", "content": "When do you open?"}))
    assert [(c.name, c.arguments, c.call_id) for c in reply.tool_calls] == [
        ("check_hours", '{"day": "saturday"}', "call_1")
    ]
    assert reply.first_token_delay_s == 0.3  # this round's timing was not recorded: the default
    missed = model(chat(SYSTEM, {"role": "user", "content": "Something new"}))
    assert missed.text == NO_ANSWER and missed.tool_calls == []
    assert model.served == 1 and model.misses == [RoundKey("Something new", 1, 0)]


class Synth(TextToSpeech):
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def synthesize(self, text: str, voice: VoiceOptions | None = None):  # type: ignore[no-untyped-def]
        self.asked.append(text)
        yield b"\x7f" * 80


async def test_recorded_speech_plays_recorded_phrases_and_synthesizes_the_rest() -> None:
    fallback = Synth()
    speech = RecordedSpeech({"Hello.": b"\x01" * 9000}, fallback)
    chunks = [c async for c in speech.synthesize("Hello.")]
    assert b"".join(chunks) == b"\x01" * 9000 and len(chunks) == 3
    assert [c async for c in speech.synthesize("New words.")] == [b"\x7f" * 80]
    assert speech.served == 1 and speech.synthesized == ["New words."] and fallback.asked == ["New words."]


def turn(number: int, answer: str, *, heard: str = "hi", tools: tuple[str, ...] = ()) -> RecordedTurn:
    return RecordedTurn(number, heard, False, answer, tools, 1000, False, None)


def test_diff_flags_changed_answers_tools_and_missing_turns() -> None:
    old = [turn(1, "We open at ten."), turn(2, "Bye.", tools=("end_call({})",)), turn(3, "Extra.")]
    new = [turn(1, "We open at ten.", heard="hi there"), turn(2, "Bye.")]
    diff = compare(old, new, old_outcome="end_call", new_outcome="end_call")
    assert [t.changed(0.0) for t in diff.turns] == [False, True, True]
    assert diff.turns[0].heard_changed and not diff.turns[0].changed(0.0)  # heard differently, same answer
    assert diff.changed(0.0) and diff.heard_changes() == 1
    text = "\n".join(render(diff, 0.0))
    assert "turn 2   CHANGED" in text and "end_call({}) -> none" in text and "missing" in text


def test_tolerance_applies_to_answers_only() -> None:
    old, new = (
        [turn(1, "I can help with our opening hours today")],
        [turn(1, "I can help with the opening hours today")],
    )
    diff = compare(old, new)
    assert diff.turns[0].answer_distance == 1 / 8  # one word of eight
    assert diff.changed(0.0) and not diff.changed(0.2)
    assert compare(old, old, old_outcome="caller", new_outcome="end_call").changed(1.0)  # the ending counts


@given(st.text(max_size=60), st.text(max_size=60))
def test_word_distance_is_a_bounded_symmetric_measure(a: str, b: str) -> None:
    d = word_distance(a, b)
    assert 0.0 <= d <= 1.0 and d == word_distance(b, a)
    assert word_distance(a, a) == 0.0


def test_scaled_clock_runs_timers_faster_and_in_order() -> None:
    order: list[str] = []

    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        start, real = loop.time(), time.monotonic()

        async def later(delay: float, name: str) -> None:
            await asyncio.sleep(delay)
            order.append(name)

        await asyncio.gather(later(0.8, "b"), later(0.4, "a"), later(1.2, "c"))
        return loop.time() - start, time.monotonic() - real

    with asyncio.Runner(loop_factory=lambda: ScaledClockLoop(4.0)) as runner:
        loop_elapsed, real_elapsed = runner.run(main())
    assert order == ["a", "b", "c"]
    assert loop_elapsed >= 1.2 and real_elapsed < loop_elapsed / 2  # 4x nominal; generous for a busy machine
