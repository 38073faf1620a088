"""The simulated phone's pacing figures: gaps inside one answer are stutters, pauses between answers not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.playback import FRAME_BYTES, PlaybackBuffer

AUDIO = b"\x10" * FRAME_BYTES  # one 20 ms frame


def play(buffer: PlaybackBuffer, ticks: range) -> None:
    for n in ticks:
        buffer.tick(n * 0.02)


def test_back_to_back_phrases_of_one_answer_have_no_gap() -> None:
    buffer = PlaybackBuffer()
    for phrase in ("r1-p1", "r1-p2"):
        buffer.push_audio(AUDIO * 3, at=0.0)
        buffer.push_mark(phrase, at=0.0)
    play(buffer, range(10))
    assert buffer.frames_played == 6
    assert buffer.gaps == []


def test_audio_running_out_inside_a_phrase_is_a_gap_until_the_tick_that_resumes_it() -> None:
    buffer = PlaybackBuffer()
    buffer.push_audio(AUDIO * 2, at=0.0)
    play(buffer, range(5))  # plays ticks 0-1, dry from 0.04
    buffer.push_audio(AUDIO, at=0.095)
    buffer.push_mark("r1-p1", at=0.095)
    play(buffer, range(5, 7))
    assert buffer.frames_played == 3
    assert buffer.gaps == [pytest.approx(0.06)]


def test_late_next_phrase_of_the_same_answer_is_a_gap_whether_its_mark_came_before_the_tick_or_not() -> None:
    for mark_before_tick in (True, False):
        buffer = PlaybackBuffer()
        buffer.push_audio(AUDIO, at=0.0)
        buffer.push_mark("r4-p1", at=0.0)
        play(buffer, range(3))  # dry from 0.02; the mark is echoed
        buffer.push_audio(AUDIO, at=0.05)
        if mark_before_tick:
            buffer.push_mark("r4-p2", at=0.05)
        play(buffer, range(3, 4))
        if not mark_before_tick:
            buffer.push_mark("r4-p2", at=0.07)
        assert buffer.gaps == [pytest.approx(0.04)], mark_before_tick


def test_pause_before_another_answer_is_not_a_gap() -> None:
    buffer = PlaybackBuffer()
    buffer.push_audio(AUDIO, at=0.0)
    buffer.push_mark("r1-p1", at=0.0)
    play(buffer, range(10))
    buffer.push_audio(AUDIO, at=0.2)
    buffer.push_mark("r2-p2", at=0.2)
    play(buffer, range(10, 12))
    assert buffer.gaps == []
    assert buffer.frames_played == 2


def test_clear_forgets_the_silence_it_caused() -> None:
    buffer = PlaybackBuffer()
    buffer.push_audio(AUDIO * 5, at=0.0)
    play(buffer, range(2))
    buffer.clear()
    play(buffer, range(2, 6))
    buffer.push_audio(AUDIO, at=0.12)
    buffer.push_mark("r2-p1", at=0.12)
    play(buffer, range(6, 8))
    assert buffer.gaps == []


@given(st.lists(st.tuples(st.integers(1, 400), st.integers(0, 3), st.booleans()), max_size=30))
def test_gaps_are_never_negative_and_frames_are_counted_once(
    chunks: list[tuple[int, int, bool]],
) -> None:
    """Chunks of random size arriving after random idle ticks, each maybe closing a phrase."""
    buffer = PlaybackBuffer()
    tick = 0
    total = 0
    for n, (size, idle, mark) in enumerate(chunks):
        play(buffer, range(tick, tick + idle))
        tick += idle
        buffer.push_audio(AUDIO[:1] * size, at=tick * 0.02)
        total += size
        if mark:
            buffer.push_mark(f"r{n % 2}-p{n}", at=tick * 0.02)
    while not buffer.is_empty:
        buffer.tick(tick * 0.02)
        tick += 1
    assert all(gap >= 0 for gap in buffer.gaps)
    assert total / FRAME_BYTES <= buffer.frames_played <= total / FRAME_BYTES + len(chunks)
