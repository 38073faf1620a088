"""``InboundPacer``: caller audio never runs ahead of the call's clock past the lead; catch-up bursts pass."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.pacing import LEAD_S, InboundPacer

FRAME = 160  # 20 ms of μ-law at 8 kHz
T0 = 1000.0


def test_real_time_frames_for_a_whole_long_call_are_all_admitted() -> None:
    pacer = InboundPacer(T0)
    assert all(pacer.admit(T0 + i * 0.02, FRAME) for i in range(50 * 900))  # 15 minutes
    assert pacer.dropped == 0 and pacer.admitted_s == pytest.approx(900)


def test_a_flood_at_once_is_admitted_up_to_the_lead_only() -> None:
    pacer = InboundPacer(T0)
    admitted = [pacer.admit(T0, FRAME) for _ in range(1000)]  # 20 s of audio in no time
    assert admitted.count(True) == int(LEAD_S * 50) == 100 and admitted[:100] == [True] * 100
    assert pacer.dropped == 900 and pacer.admitted_s == LEAD_S


def test_a_burst_catching_up_after_a_pause_is_admitted() -> None:
    pacer = InboundPacer(T0)
    assert all(pacer.admit(T0 + i * 0.02, FRAME) for i in range(50))
    # our loop stalled 5 s: the 250 frames Twilio sent meanwhile arrive together
    assert all(pacer.admit(T0 + 6.0, FRAME) for _ in range(250))
    assert pacer.dropped == 0


def test_a_late_start_within_the_lead_is_admitted() -> None:
    pacer = InboundPacer(T0)
    # the first frames reach us 1.9 s late, all together (a loop stall as the call begins)
    assert all(pacer.admit(T0, FRAME) for _ in range(95))
    assert pacer.dropped == 0


def test_dropped_audio_does_not_count_so_honest_frames_after_a_flood_pass() -> None:
    pacer = InboundPacer(T0)
    for _ in range(1000):
        pacer.admit(T0, FRAME)
    # the flood used up the lead; from then on real-time frames are admitted as the clock moves
    assert [pacer.admit(T0 + 0.02 * i, FRAME) for i in range(1, 51)] == [True] * 50


def test_a_frame_is_judged_by_its_size() -> None:
    pacer = InboundPacer(T0, lead_s=0.0)
    assert not pacer.admit(T0, 1)  # nothing may be ahead of the clock with no lead
    assert pacer.admit(T0 + 0.02, 160) and not pacer.admit(T0 + 0.02, 1)
    assert pacer.admit(T0 + 0.04, 80) and pacer.admit(T0 + 0.04, 80)


@pytest.mark.parametrize("lead_s", [-1.0, float("nan")])
def test_a_negative_or_nan_lead_is_refused(lead_s: float) -> None:
    with pytest.raises(ValueError, match="lead_s"):
        InboundPacer(T0, lead_s)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 3), st.integers(0, 5000)), max_size=200))
def test_admitted_audio_never_runs_ahead_of_the_clock_by_more_than_the_lead(
    frames: list[tuple[float, int]],
) -> None:
    pacer = InboundPacer(T0)
    now = T0
    admitted = 0
    for step, size in frames:
        now += step
        if pacer.admit(now, size):
            admitted += size
        assert admitted <= (now - T0 + LEAD_S) * 8000 + 0.5
    assert pacer.admitted_s == admitted / 8000


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0, LEAD_S * 0.99),  # when Twilio's stream began, after the Call was created
    st.lists(st.floats(0, 5), min_size=1, max_size=300),  # each frame's delay: jitter, a stalled loop
)
def test_twilio_pace_with_any_delays_is_never_dropped(start: float, delays: list[float]) -> None:
    """Frames sent every 20 ms and received late by any amount (in order) are all admitted."""
    pacer = InboundPacer(T0)
    received = T0
    for i, delay in enumerate(delays):
        received = max(received, T0 + start + i * 0.02 + delay)  # a socket delivers in order
        assert pacer.admit(received, FRAME), i
