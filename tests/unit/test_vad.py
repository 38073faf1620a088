"""media.vad: the Endpointer driven with generated audio (tones, silence, noise) in 20 ms frames."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.codec import rms
from media.vad import Endpointer, EndpointerConfig, EndpointerEvent, SpeechEnded, SpeechStarted
from tests.support.vad import BYTES_PER_MS, events_of, mix, noise, pcm16, run, silence, tone


def assert_well_formed(events: list[EndpointerEvent], pre_roll_ms: int = 200) -> None:
    """Started/Ended alternate, starting with Started; each Ended matches its Started."""
    previous_end = 0
    for i, event in enumerate(events):
        if i % 2 == 0:
            assert isinstance(event, SpeechStarted), events
        else:
            started = events[i - 1]
            assert isinstance(event, SpeechEnded) and isinstance(started, SpeechStarted), events
            assert event.onset_ms == started.onset_ms
            assert event.end_ms > event.onset_ms >= previous_end
            audio_start = max(0, event.onset_ms - pre_roll_ms, previous_end)
            assert len(event.audio) == (event.end_ms - audio_start) * BYTES_PER_MS
            previous_end = event.end_ms


# --- basic turns over silence --------------------------------------------------------------------


def test_silence_alone_emits_nothing_and_lowers_the_floor() -> None:
    endpointer = Endpointer()
    initial = endpointer.noise_floor
    assert initial == pytest.approx(100.0)  # min_rms / threshold_ratio: threshold starts at min_rms
    assert events_of(endpointer, silence(3000)) == []
    assert endpointer.noise_floor < initial
    assert not endpointer.in_speech
    assert endpointer.now_ms == 3000


def test_tone_burst_gives_started_then_ended() -> None:
    endpointer = Endpointer()
    audio = silence(1000) + tone(600) + silence(1000)
    timeline = run(endpointer, audio)
    assert [type(e) for _, e in timeline] == [SpeechStarted, SpeechEnded]
    (started_at, started), (ended_at, ended) = timeline
    assert started == SpeechStarted(onset_ms=1000)
    assert started_at == 1000 + 160  # confirmed after min_speech_ms of voice
    assert isinstance(ended, SpeechEnded)
    assert (ended.onset_ms, ended.end_ms) == (1000, 1600)
    assert ended_at == 1600 + 500  # after end_silence_ms of continuous silence
    assert ended.audio == audio[(1000 - 200) * BYTES_PER_MS : 1600 * BYTES_PER_MS]
    assert not endpointer.in_speech


def test_in_speech_follows_the_events() -> None:
    endpointer = Endpointer()
    endpointer.push(silence(200))
    endpointer.push(tone(100))
    assert not endpointer.in_speech  # only 100 ms of voice so far
    assert endpointer.push(tone(60, phase_from=800)) == [SpeechStarted(onset_ms=200)]
    assert endpointer.in_speech
    run(endpointer, silence(480))
    assert endpointer.in_speech  # 480 ms < end_silence_ms
    assert [type(e) for e in endpointer.push(silence(20))] == [SpeechEnded]
    assert not endpointer.in_speech


@pytest.mark.parametrize(("burst_ms", "starts"), [(20, False), (140, False), (160, True), (180, True)])
def test_min_speech_boundary(burst_ms: int, starts: bool) -> None:
    events = events_of(Endpointer(), silence(500) + tone(burst_ms) + silence(1500))
    if starts:
        assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    else:
        assert events == []


def test_scattered_blips_within_the_window_add_up() -> None:
    # 80 + 80 ms of voice, 100 ms apart: 160 ms voiced inside 2 x min_speech_ms.
    events = events_of(Endpointer(), silence(500) + tone(80) + silence(100) + tone(80) + silence(1000))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    assert events[0] == SpeechStarted(onset_ms=500)


def test_blips_too_far_apart_never_start() -> None:
    blip = tone(100) + silence(400)
    assert events_of(Endpointer(), silence(300) + blip * 6) == []


def test_gap_shorter_than_end_silence_keeps_one_utterance() -> None:
    audio = silence(500) + tone(400) + silence(400) + tone(400) + silence(800)
    events = events_of(Endpointer(), audio)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    ended = events[1]
    assert isinstance(ended, SpeechEnded)
    assert (ended.onset_ms, ended.end_ms) == (500, 1700)
    assert ended.audio == audio[300 * BYTES_PER_MS : 1700 * BYTES_PER_MS]  # the gap is inside


def test_gap_longer_than_end_silence_gives_two_utterances() -> None:
    audio = silence(500) + tone(400) + silence(600) + tone(400) + silence(800)
    events = events_of(Endpointer(), audio)
    assert_well_formed(events)
    assert [(e.onset_ms, e.end_ms) for e in events if isinstance(e, SpeechEnded)] == [
        (500, 900),
        (1500, 1900),
    ]


def test_end_silence_boundary() -> None:
    config = EndpointerConfig(end_silence_ms=300)
    # 280 ms gap: one turn; 300 ms gap: the turn ends exactly there.
    one = events_of(Endpointer(config), silence(300) + tone(300) + silence(280) + tone(300) + silence(600))
    two = events_of(Endpointer(config), silence(300) + tone(300) + silence(300) + tone(300) + silence(600))
    assert len(one) == 2 and len(two) == 4


# --- pre-roll ------------------------------------------------------------------------------------


def test_pre_roll_contains_the_audio_before_the_onset() -> None:
    quiet = noise(1000, 30, seed=7)  # audible in the recording, far below the threshold
    audio = quiet + tone(400) + silence(700)
    (ended,) = [e for e in events_of(Endpointer(), audio) if isinstance(e, SpeechEnded)]
    assert ended.audio[: 200 * BYTES_PER_MS] == quiet[-200 * BYTES_PER_MS :]
    assert ended.audio[200 * BYTES_PER_MS :] == tone(400)


def test_pre_roll_is_clipped_at_stream_start() -> None:
    audio = silence(60) + tone(300) + silence(600)
    (ended,) = [e for e in events_of(Endpointer(), audio) if isinstance(e, SpeechEnded)]
    assert ended.onset_ms == 60
    assert ended.audio == audio[: 360 * BYTES_PER_MS]


def test_zero_pre_roll() -> None:
    audio = silence(500) + tone(300) + silence(600)
    (ended,) = [
        e for e in events_of(Endpointer(EndpointerConfig(pre_roll_ms=0)), audio) if isinstance(e, SpeechEnded)
    ]
    assert ended.audio == tone(300)


# --- max utterance -------------------------------------------------------------------------------


def talker(ms: int) -> bytes:
    """Continuous speech-like audio: 300 ms of voice, 100 ms pause, repeated."""
    unit = tone(300, amplitude=6000, freq=300) + silence(100)
    return (unit * (ms // 400 + 1))[: ms * BYTES_PER_MS]


def test_max_utterance_forces_an_end_and_speech_restarts() -> None:
    config = EndpointerConfig(max_utterance_ms=2000)
    audio = silence(400) + talker(5000) + silence(1000)
    events = events_of(Endpointer(config), audio)
    assert_well_formed(events)
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(ends) == 3
    first = ends[0]
    assert first.onset_ms == 400 and first.end_ms <= 400 + 2000
    assert all(e.end_ms - e.onset_ms <= 2000 for e in ends)
    # Consecutive pieces do not share audio: the next pre-roll is clipped at the previous end.
    assert ends[1].onset_ms - 200 < first.end_ms
    assert len(ends[1].audio) == (ends[1].end_ms - first.end_ms) * BYTES_PER_MS


def test_default_max_utterance_is_thirty_seconds() -> None:
    events = events_of(Endpointer(), talker(31000))
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(ends) == 1 and ends[0].onset_ms == 0 and 29000 < ends[0].end_ms <= 30000


# --- noise ---------------------------------------------------------------------------------------


def test_speech_over_quiet_noise_is_detected_and_floor_tracks_noise() -> None:
    background = noise(4000, 200, seed=3)
    speech = silence(1500) + tone(500) + silence(2000)
    endpointer = Endpointer()
    events = events_of(endpointer, mix(background, speech))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    assert events[0] == SpeechStarted(onset_ms=1500)
    assert 150 < endpointer.noise_floor < 250


def test_slowly_rising_noise_is_never_speech() -> None:
    rng = random.Random(5)
    samples = [rng.gauss(0, 1) for _ in range(12000 * 8)]
    ramp_len = 6000 * 8
    # rms rises from 0 to 800 over six seconds, then stays at 800 for six more.
    scaled = [round(x * 800 * min(1.0, i / ramp_len)) for i, x in enumerate(samples)]
    endpointer = Endpointer()
    assert events_of(endpointer, pcm16(scaled)) == []
    assert 650 < endpointer.noise_floor < 900


def test_sudden_steady_noise_is_not_speech_forever() -> None:
    endpointer = Endpointer()
    timeline = run(endpointer, silence(1000) + noise(12000, 800, seed=9))
    events = [e for _, e in timeline]
    # The step may look like one utterance, but it ends within noise_window + end_silence.
    assert len(events) <= 2
    assert_well_formed(events)
    if events:
        ended_at = timeline[-1][0]
        assert ended_at <= 1000 + 2000 + 500 + 100
    assert not endpointer.in_speech
    assert 600 < endpointer.noise_floor < 1000
    # Speech over that noise is still heard.
    speech = mix(noise(1500, 800, seed=11), tone(600, amplitude=10000) + silence(900))
    after = events_of(endpointer, speech)
    assert [type(e) for e in after] == [SpeechStarted, SpeechEnded]
    assert after[0] == SpeechStarted(onset_ms=13000)


def test_noise_floor_does_not_follow_speech() -> None:
    endpointer = Endpointer()
    events_of(endpointer, noise(2000, 150, seed=2))
    before = endpointer.noise_floor
    events_of(endpointer, tone(1500, amplitude=12000))
    assert endpointer.in_speech
    assert endpointer.noise_floor == pytest.approx(before)


def test_loud_speech_at_stream_start_is_not_taken_for_background() -> None:
    events = events_of(Endpointer(), talker(3000) + silence(1000))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    assert events[0] == SpeechStarted(onset_ms=0)


# --- time, chunking, reset -----------------------------------------------------------------------


def test_now_ms_counts_pushed_bytes() -> None:
    endpointer = Endpointer()
    endpointer.push(b"\x00" * 100)
    assert endpointer.now_ms == 6  # 100 / 16 = 6.25 ms
    endpointer.push(b"\x00" * 3)
    assert endpointer.now_ms == 6
    endpointer.push(b"\x00" * 5)
    assert endpointer.now_ms == 6
    endpointer.push(b"\x00" * 12)
    assert endpointer.now_ms == 7
    assert endpointer.push(b"") == []


def test_odd_and_large_chunks_give_the_same_events() -> None:
    audio = silence(700) + tone(500) + silence(300) + tone(200) + silence(900)
    reference = events_of(Endpointer(), audio)
    assert len(reference) == 2
    for chunk in (1, 77, 160, 321, 4000, len(audio)):
        assert events_of(Endpointer(), audio, chunk) == reference


def test_reset_mid_utterance_starts_a_fresh_stream() -> None:
    endpointer = Endpointer()
    events_of(endpointer, noise(1000, 200) + tone(400))
    assert endpointer.in_speech
    endpointer.reset()
    assert not endpointer.in_speech
    assert endpointer.now_ms == 0
    assert endpointer.noise_floor == pytest.approx(100.0)
    assert events_of(endpointer, silence(2000)) == []
    events = events_of(endpointer, tone(300) + silence(600))
    assert events[0] == SpeechStarted(onset_ms=2000)


def test_tone_level_matches_expectation() -> None:
    # Guards the helpers: a 8000-peak sine is well above min_rms, 30-rms noise well below.
    assert 5500 < rms(tone(100)) < 5800
    assert rms(noise(100, 30)) < 60


# --- config --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_speech_ms", 0),
        ("end_silence_ms", -20),
        ("pre_roll_ms", -1),
        ("max_utterance_ms", 0),
        ("threshold_ratio", 0.0),
        ("threshold_ratio", float("nan")),
        ("min_rms", -5),
        ("noise_floor_alpha", 0.0),
        ("noise_floor_alpha", 1.5),
        ("noise_window_ms", 0),
        ("max_utterance_ms", 100),  # not above min_speech_ms
    ],
)
def test_config_rejects_bad_values_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        EndpointerConfig(**{field: value})  # type: ignore[arg-type]


def test_config_defaults() -> None:
    config = EndpointerConfig()
    assert (config.min_speech_ms, config.end_silence_ms, config.pre_roll_ms) == (160, 500, 200)
    assert (config.max_utterance_ms, config.threshold_ratio, config.min_rms) == (30000, 3.0, 300)
    assert config.noise_floor_alpha == 0.05
    assert EndpointerConfig(pre_roll_ms=0).pre_roll_ms == 0


# --- properties ----------------------------------------------------------------------------------

SEGMENT = st.one_of(
    st.builds(silence, st.integers(0, 700)),
    st.builds(tone, st.integers(0, 700), st.integers(0, 20000), st.sampled_from([150.0, 440.0, 1000.0])),
    st.builds(noise, st.integers(0, 300), st.sampled_from([50.0, 400.0, 1500.0]), st.integers(0, 5)),
    st.binary(max_size=700),  # arbitrary bytes, odd lengths included
)
SMALL_CONFIG = EndpointerConfig(max_utterance_ms=1500, noise_window_ms=600)


@settings(max_examples=60, deadline=None)
@given(segments=st.lists(SEGMENT, max_size=12))
def test_arbitrary_audio_never_raises_and_events_alternate(segments: list[bytes]) -> None:
    for config in (EndpointerConfig(), SMALL_CONFIG):
        endpointer = Endpointer(config)
        events: list[EndpointerEvent] = []
        for segment in segments:
            events.extend(endpointer.push(segment))
            assert endpointer.in_speech == (len(events) % 2 == 1)
        assert_well_formed(events, config.pre_roll_ms)
        assert endpointer.now_ms == sum(len(s) for s in segments) // BYTES_PER_MS


@settings(max_examples=40, deadline=None)
@given(
    segments=st.lists(SEGMENT, min_size=1, max_size=8),
    cuts=st.lists(st.integers(0, 60000), max_size=10),
)
def test_events_do_not_depend_on_chunking(segments: list[bytes], cuts: list[int]) -> None:
    audio = b"".join(segments)
    reference = Endpointer(SMALL_CONFIG).push(audio)
    endpointer = Endpointer(SMALL_CONFIG)
    bounds = [0, *sorted(c for c in cuts if c < len(audio)), len(audio)]
    chunked = [e for a, b in itertools.pairwise(bounds) for e in endpointer.push(audio[a:b])]
    assert chunked == reference
