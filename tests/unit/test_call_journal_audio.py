"""``CallJournal.caller_audio``: paced by the call's clock, recorded, capped at the line's longest call."""

from __future__ import annotations

from dataclasses import replace

import structlog

from bot.call.journal import END_ALLOWANCE_S, CallJournal
from bot.core.twilio_messages import Start
from bot.recording import CallRecorder
from bot.sim.store_line import store_line
from tests.support.clocks import FakeClock
from tests.support.fakes import MemorySink

START = Start("MZ1", "CA1", "AC1", ("inbound",), "audio/x-mulaw", 8000, 1, {})


def test_caller_audio_is_capped_at_the_lines_longest_call_plus_the_goodbye() -> None:
    line = store_line()
    line = replace(line, timeouts=replace(line.timeouts, max_call_s=1.0))
    clock, sink = FakeClock(100.0), MemorySink()
    journal = CallJournal(started_at=clock())
    journal.call_started(START, line, CallRecorder(sink, clock=clock))
    for i in range(4000):  # 80 s at Twilio's pace, past 1 s + the allowance
        assert journal.caller_audio(clock(), i * 20, b"\x7f" * 160)
        clock.now += 0.02
    assert len(sink.files["caller.ulaw"]) == int((1.0 + END_ALLOWANCE_S) * 8000)
    assert journal.invalid == {}


def test_audio_ahead_of_the_clock_is_dropped_counted_and_logged_once() -> None:
    clock, sink = FakeClock(100.0), MemorySink()
    journal = CallJournal(started_at=clock())
    journal.call_started(START, store_line(), CallRecorder(sink, clock=clock))
    with structlog.testing.capture_logs() as logs:
        kept = [journal.caller_audio(clock(), i * 20, b"\x7f" * 160) for i in range(500)]  # 10 s at once
    assert kept == [True] * 100 + [False] * 400
    assert journal.invalid == {"audio_ahead": 400}
    assert [e["kind"] for e in logs if e["event"] == "invalid_frame"] == ["audio_ahead"]
    assert len(sink.files["caller.ulaw"]) == 100 * 160  # dropped audio is not recorded either
