"""media.vad: SpeechPaused / SpeechResumed, the events that let the bot start work speculatively."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.vad import (
    Endpointer,
    EndpointerConfig,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    VoiceDetector,
)
from tests.support.vad import events_of, run, silence, tone

CONFIG = EndpointerConfig(pause_ms=200, end_silence_ms=500)


def test_pause_comes_before_end_and_carries_the_same_utterance() -> None:
    events = events_of(Endpointer(CONFIG), silence(300) + tone(600) + silence(700))
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, SpeechPaused, SpeechEnded]
    paused, ended = events[1], events[2]
    assert isinstance(paused, SpeechPaused) and isinstance(ended, SpeechEnded)
    assert (paused.onset_ms, paused.end_ms, paused.audio) == (ended.onset_ms, ended.end_ms, ended.audio)


def test_pause_fires_after_pause_ms_and_end_after_end_silence() -> None:
    timed = run(Endpointer(CONFIG), silence(300) + tone(600) + silence(700))
    _, (t_pause, paused), (t_end, ended) = timed
    assert isinstance(paused, SpeechPaused) and isinstance(ended, SpeechEnded)
    assert t_pause - paused.end_ms == 200
    assert t_end - ended.end_ms == 500


def test_speech_after_a_pause_resumes_and_the_turn_goes_on() -> None:
    audio = silence(300) + tone(500) + silence(300) + tone(500) + silence(700)
    events = events_of(Endpointer(CONFIG), audio)
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, SpeechPaused, SpeechResumed, SpeechPaused, SpeechEnded]
    first_pause, resumed, ended = events[1], events[2], events[4]
    assert isinstance(first_pause, SpeechPaused) and isinstance(ended, SpeechEnded)
    assert isinstance(resumed, SpeechResumed)
    assert resumed.at_ms == 300 + 500 + 300
    assert ended.end_ms > first_pause.end_ms and ended.onset_ms == first_pause.onset_ms


def test_short_gaps_between_words_do_not_pause() -> None:
    audio = silence(300) + (tone(300) + silence(100)) * 3 + silence(700)
    kinds = [type(e) for e in events_of(Endpointer(CONFIG), audio)]
    assert kinds == [SpeechStarted, SpeechPaused, SpeechEnded]


def test_pause_is_off_by_default() -> None:
    events = events_of(Endpointer(), silence(300) + tone(600) + silence(700))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]


@pytest.mark.parametrize("pause_ms", [500, 800, -1])
def test_pause_must_be_shorter_than_end_silence(pause_ms: int) -> None:
    with pytest.raises(ValueError, match="pause_ms"):
        EndpointerConfig(pause_ms=pause_ms, end_silence_ms=500)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 40)), max_size=30))
def test_events_follow_the_grammar(segments: list[tuple[bool, int]]) -> None:
    """Started (Paused Resumed)* [Paused] Ended, repeated; never anything else."""
    audio = b"".join(tone(n * 20) if loud else silence(n * 20) for loud, n in segments) + silence(700)
    state = "quiet"
    for event in events_of(Endpointer(CONFIG), audio):
        if isinstance(event, SpeechStarted):
            assert state == "quiet"
            state = "speech"
        elif isinstance(event, SpeechPaused):
            assert state == "speech"
            state = "paused"
        elif isinstance(event, SpeechResumed):
            assert state == "paused"
            state = "speech"
        else:
            assert state in ("speech", "paused")
            state = "quiet"
    assert state == "quiet"


class _AlwaysVoiced(VoiceDetector):
    """A detector that says "voiced" for every frame, with a declared onset lag."""

    def __init__(self, onset_lag_ms: int) -> None:
        self.onset_lag_ms = onset_lag_ms

    def voiced(self, frame_pcm16: bytes, rms: int) -> bool:
        return True

    def reset(self) -> None:
        pass


@pytest.mark.parametrize(("lag_ms", "frames_to_start"), [(0, 8), (60, 5), (500, 1)])
def test_a_detector_s_onset_lag_counts_as_speech_already_heard(lag_ms: int, frames_to_start: int) -> None:
    endpointer = Endpointer(EndpointerConfig(min_speech_ms=160), _AlwaysVoiced(lag_ms))
    started_after = next(
        n for n in range(1, 20) if any(isinstance(e, SpeechStarted) for e in endpointer.push(silence(20)))
    )
    assert started_after == frames_to_start
