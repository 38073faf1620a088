"""When the replayed caller speaks (``bot.sim.replay.schedule``), and a barge-in cut at another word being a
timing difference in the diff (``bot.sim.replay.diff``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bot.recording import CallRecorder, LocalStore, Recording
from bot.sim.replay.diff import compare, cut_elsewhere, render
from bot.sim.replay.recorded import RecordedTurn
from bot.sim.replay.schedule import BURST_GAP_S, PAD_S, Span, bot_bursts, cues, padded, plan
from tests.support.clocks import FakeClock

GREETING = Span(0.0, 3.0)


def test_speech_after_the_greeting_waits_for_the_greeting_to_end_then_the_same_silence() -> None:
    ((span, digit, anchor, offset, _),) = plan([Span(3.6, 5.0)], [], [GREETING])
    assert (span, digit, anchor) == (Span(3.6, 5.0), "", "after_bot")
    assert abs(offset - 0.6) < 1e-9


def test_a_barge_in_is_placed_after_the_first_audio_of_the_answer_it_cut() -> None:
    answer = Span(6.0, 12.0)
    planned = plan([Span(3.5, 5.0), Span(7.5, 8.5)], [], [GREETING, answer])
    assert [p[2] for p in planned] == ["after_bot", "barge_in"]
    _, _, _, offset, burst = planned[1]
    assert abs(offset - 1.5) < 1e-9 and burst == 1  # 1.5 s into the answer, whenever it starts


def test_a_barge_in_into_the_answer_after_a_filler_names_the_second_burst() -> None:
    filler, answer = Span(6.0, 7.0), Span(8.0, 12.0)
    planned = plan([Span(3.5, 5.0), Span(9.0, 10.0)], [], [GREETING, filler, answer])
    assert planned[1][2:] == ("barge_in", 1.0, 2)


def test_speech_while_the_bot_was_silent_since_the_caller_keeps_its_gap() -> None:
    planned = plan([Span(3.5, 5.0), Span(5.8, 6.5)], [], [GREETING])  # a pause mid-sentence: no answer
    assert planned[1][2] == "after_caller" and abs(planned[1][3] - 0.8) < 1e-9


def test_keys_interleave_with_speech_and_chain_on_each_other() -> None:
    prompt = Span(6.0, 8.0)
    planned = plan([Span(3.5, 5.0)], [(8.5, "1"), (8.7, "0"), (8.9, "#")], [GREETING, prompt])
    assert [(p[1], p[2]) for p in planned] == [
        ("", "after_bot"),
        ("1", "after_bot"),
        ("0", "after_caller"),
        ("#", "after_caller"),
    ]
    assert [round(p[3], 3) for p in planned[1:]] == [0.5, 0.2, 0.2]


def test_a_key_pressed_over_the_bot_is_a_barge_in() -> None:
    ((_, digit, anchor, offset, burst),) = plan([], [(1.0, "5")], [GREETING])
    assert (digit, anchor, burst) == ("5", "barge_in", 1) and abs(offset - 1.0) < 1e-9


def test_the_first_words_with_no_bot_audio_count_from_the_stream_start() -> None:
    assert plan([Span(0.4, 1.0)], [], []) == [(Span(0.4, 1.0), "", "after_caller", 0.4, 0)]


def test_bursts_bridge_only_gaps_shorter_than_an_idle_tick() -> None:
    chunks = [(1.0, 2.0), (2.0, 2.5), (2.5 + BURST_GAP_S / 2, 3.0), (3.5, 4.0), (0.0, 0.0)]
    assert bot_bursts(chunks) == [Span(1.0, 3.0), Span(3.5, 4.0)]


def test_padding_never_crosses_a_neighbour_or_the_audio_ends() -> None:
    assert padded([Span(0.1, 1.0), Span(1.2, 2.0), Span(3.0, 3.9)], 4.0, pad=0.2) == [
        Span(0.0, 1.1),
        Span(1.1, 2.2),
        Span(2.8, 4.0),
    ]


spans = st.lists(st.tuples(st.floats(0, 100), st.floats(0.05, 5)), max_size=8).map(
    lambda pairs: [Span(a, a + d) for a, d in sorted(pairs)]
)


@given(spans, spans, st.lists(st.tuples(st.floats(0, 100), st.sampled_from("0123#")), max_size=5))
def test_every_cue_is_planned_once_in_order_with_a_consistent_anchor(
    utterances: list[Span], bursts: list[Span], keys: list[tuple[float, str]]
) -> None:
    planned = plan(utterances, keys, bursts)
    assert len(planned) == len(utterances) + len(keys)
    assert [p[0].start for p in planned] == sorted(p[0].start for p in planned)
    for span, _, anchor, offset, burst in planned:
        assert offset >= 0
        assert (burst >= 1) == (anchor == "barge_in")
        if anchor == "barge_in":  # the burst it names was playing when the cue started
            assert any(b.start <= span.start < b.end for b in bursts)


# ---- the diff: cut at another point ---------------------------------------------------------------------


def turn(answer: str, *, barge_in: bool, tools: tuple[str, ...] = ()) -> RecordedTurn:
    return RecordedTurn(3, "what else?", False, answer, tools, 1000, barge_in, None)


FULL = "I can help with opening hours and the status of your order. What would you like to know?"


def test_an_answer_cut_at_another_word_is_a_timing_difference_not_a_change() -> None:
    old = turn("I can help with opening hours and the status of your order.", barge_in=True)
    new = turn(FULL, barge_in=True)
    diff = compare([old], [new])
    assert diff.turns[0].cut_elsewhere and not diff.changed(0.0) and diff.timing_changes() == 1
    text = "\n".join(render(diff, 0.0))
    assert "turn 1   timing" in text and "cut at another point" in text and "CHANGED" not in text


def test_a_cut_answer_with_other_words_or_other_tools_is_still_a_change() -> None:
    assert not cut_elsewhere(turn("We are closed.", barge_in=True), turn(FULL, barge_in=True))
    diff = compare([turn("I can help", barge_in=True, tools=("a()",))], [turn(FULL, barge_in=True)])
    assert diff.changed(0.0)


def test_answers_nobody_cut_that_differ_are_a_change() -> None:
    assert not cut_elsewhere(turn("I can help", barge_in=False), turn(FULL, barge_in=False))
    assert compare([turn("I can help", barge_in=False)], [turn(FULL, barge_in=False)]).changed(0.0)


def test_a_cut_on_one_side_only_is_timing_too() -> None:
    assert cut_elsewhere(turn("I can help", barge_in=True), turn(FULL, barge_in=False))
    assert not cut_elsewhere(turn(FULL, barge_in=True), turn(FULL, barge_in=False))  # the same words


# ---- cues from a recording ------------------------------------------------------------------------------


def test_a_recording_becomes_cues_whose_barge_in_knows_it_cut_an_answer(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    sink = LocalStore(tmp_path).create("CA1", datetime(2026, 1, 2, tzinfo=UTC))
    rec = CallRecorder(sink, clock=clock)
    rec.start(call_sid="CA1", flow="store", parameters={})
    loud, quiet = b"\x00" * 160, b"\xff" * 160
    speech = [(1.5, 2.5), (3.5, 4.0)]
    for n in range(300):  # 6 s of 20 ms frames
        rec.caller_audio(n * 20, loud if any(a <= n * 0.02 < b for a, b in speech) else quiet)
    rec.bot_audio(b"\x10" * 8000, response_id=1, mark="")  # the greeting, 0 to 1 s
    clock.now = 3.0
    rec.bot_audio(b"\x11" * 16000, response_id=2, mark="")  # the answer, from 3 s; cut at 3.5 s
    clock.now = 3.6
    rec.clear()
    rec.event("turn", turn=1, transcript="when do you open?", said={"2": "We open at ten."}, barge_in=True)
    rec.finalize(ended_by="caller", turns=1)
    first, second = cues(Recording.load(sink.path), [])
    assert (first.anchor, first.into_answer) == ("after_bot", False)
    assert abs(first.offset - (1.5 - PAD_S - 1.0)) < 0.03 and len(first.audio) == round(first.duration * 8000)
    assert (second.anchor, second.burst, second.into_answer) == ("barge_in", 1, True)
    assert abs(second.offset - (0.5 - PAD_S)) < 0.03  # after the answer's first audio, not the call's start
