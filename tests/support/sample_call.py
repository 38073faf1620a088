"""A sample recorded call for the inspector and recording-reader tests: four turns written by the real
``CallRecorder`` on a ``FakeClock``.

Rules:
- The call is fixed (``CALLER_SPEECH``, ``DURATION`` and the events below): tests assert on what the
  reader, the inspector page and its routes make of it. Turn 2 is a barge-in, turn 4 is typed, and one
  event kind (``mystery_event``) is unknown to the inspector.
- ``until_s`` stops the call before that time without finalizing it, as a killed process leaves it.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.recording import CallRecorder, LocalStore
from media.codec import pcm16_to_ulaw
from tests.support.clocks import FakeClock

SID = "CAinspect0001"
STARTED = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
XSS = "<script>alert(1)</script>"


def tone(seconds: float, hz: float, amplitude: int = 8000) -> bytes:
    count = round(seconds * 8000)
    samples = [round(amplitude * math.sin(2 * math.pi * hz * i / 8000)) for i in range(count)]
    return pcm16_to_ulaw(struct.pack(f"<{count}h", *samples))


CALLER_SPEECH = ((2.0, 3.5), (8.0, 9.2), (13.0, 14.0))
DURATION = 20.0


def write_sample_call(
    root: Path, *, transcript: str = "What are your opening hours?", until_s: float | None = None
) -> Path:
    """A whole call into ``LocalStore(root)``; ``until_s`` stops before that time, unfinalized (a kill)."""
    clock = FakeClock()
    sink = LocalStore(root).create(SID, STARTED)
    recorder = CallRecorder(sink, clock=clock)
    actions: list[tuple[float, Callable[[], None]]] = []

    def at(t: float, action: Callable[[], None]) -> None:
        actions.append((t, action))

    def say(t: float, rid: int, mark: str, text: str, seconds: float) -> None:
        audio = tone(seconds, 250)
        at(t, lambda: recorder.bot_audio(audio, response_id=rid, mark=""))
        at(t + 0.001, lambda: recorder.event("mark_sent", mark=mark, response_id=rid, text=text))

    def event(t: float, kind: str, **fields: Any) -> None:
        at(t, lambda: recorder.event(kind, **fields))

    speech, silence = tone(0.02, 400), b"\xff" * 160
    for frame in range(round(DURATION / 0.02)):
        t = frame * 0.02
        loud = any(a <= t < b for a, b in CALLER_SPEECH)
        at(t, functools.partial(recorder.caller_audio, frame * 20, speech if loud else silence))

    def turn(t: float, number: int, **fields: Any) -> None:
        figures = {"turn": number, "typed": False, "stt_ms": -100, "tools": [], "tool_filler": False}
        figures |= {"silence_filler": False, "barge_in": False, "error": None, "llm": []}
        event(t, "turn", **(figures | fields))

    say(0.0, 1, "r1-p1", "Hello, how can I help?", 1.5)
    event(1.5, "mark_echoed", mark="r1-p1", result="played")
    # Turn 1: speech 2.0-3.5, decided 4.0; a tool filler at 4.4, the answer at 5.3.
    say(4.4, 3, "r3-p2", "One moment.", 0.8)
    say(5.3, 4, "r4-p3", "Your order 1234 is out for delivery.", 2.0)
    llm = [
        {
            "messages": 5,
            "tools_offered": ["lookup_order"],
            "text": "",
            "tool_results": ["{}"],
            "tool_calls": [{"id": "c1", "name": "lookup_order", "arguments": '{"order_id":"1234"}'}],
        }
    ]
    turn(
        5.4,
        1,
        utterance_ms=1500,
        llm_first_token_ms=1200,
        first_audio_sent_ms=400,
        first_audio_heard_ms=420,
        voice_to_voice_ms=920,
        tools=[{"name": "lookup_order", "ok": True, "ms": 800, "args": '{"order_id":"1234"}'}],
        tool_filler=True,
        transcript="My order is 1234.",
        said={"4": "Your order 1234 is out for delivery."},
        llm=llm,
    )
    # Turn 2: speech 8.0-9.2, decided 9.7; its answer (10.3-15.3) is cut at 13.3 by the caller (13.0-14.0).
    say(10.3, 5, "r5-p4", "We open at nine.", 2.0)
    say(10.5, 5, "r5-p5", "And we close at five on weekdays.", 3.0)
    turn(
        10.9,
        2,
        utterance_ms=1200,
        llm_first_token_ms=300,
        first_audio_sent_ms=600,
        first_audio_heard_ms=620,
        voice_to_voice_ms=1120,
        barge_in=True,
        transcript=transcript,
        said={"5": "We open at nine. And we close at five on weekdays."},
    )
    event(12.3, "mark_echoed", mark="r5-p4", result="played")
    at(13.3, recorder.clear)
    event(13.3005, "barge_in", clear_ms=2, cut_responses=[5])
    event(13.301, "mark_echoed", mark="r5-p5", result="cleared")
    # Turn 3: speech 13.0-14.0, decided 14.5, answer at 15.0.
    say(15.0, 7, "r7-p6", "Sorry, go ahead.", 1.0)
    turn(
        15.1,
        3,
        utterance_ms=1000,
        llm_first_token_ms=250,
        first_audio_sent_ms=500,
        first_audio_heard_ms=520,
        voice_to_voice_ms=1020,
        transcript="Wait, what about Sunday?",
        said={"7": "Sorry, go ahead."},
    )
    # Turn 4, typed: keys 1, 2 then the entry at 17.0, answer at 17.6.
    event(16.5, "dtmf", digit="1")
    event(16.7, "dtmf", digit="2")
    event(17.0, "dtmf_entry", digits=2)
    say(17.6, 8, "r8-p7", "Got it, option twelve.", 1.5)
    turn(
        17.7,
        4,
        utterance_ms=0,
        typed=True,
        stt_ms=0,
        llm_first_token_ms=400,
        first_audio_sent_ms=600,
        first_audio_heard_ms=610,
        voice_to_voice_ms=610,
        transcript="(typed on the keypad: 12)",
        said={"8": "Got it, option twelve."},
    )
    event(19.5, "mystery_event", payload="<b>bold</b>")
    event(19.6, "transfer_started", to="+15550100")
    event(19.8, "hanging_up", reason="end_call", goodbye_heard=True)
    event(19.95, "call_ended", ended_by="end_call", turns=4, seconds=20.0, invalid={})

    clock.now = 1000.0
    recorder.start(call_sid=SID, flow="store", started_at=STARTED)
    for t, action in sorted(actions, key=lambda item: item[0]):
        if until_s is not None and t >= until_s:
            return sink.path
        clock.now = 1000.0 + t
        action()
    clock.now = 1000.0 + DURATION
    recorder.finalize(ended_by="end_call", turns=4)
    return sink.path
