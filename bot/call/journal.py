"""``CallJournal``: what a call tells the world about itself: structlog lines and its recording.

Rules:
- One place for both: an event that is logged is also recorded (when the call has a recording), so
  the log and the recording never disagree. Nothing here is logged per audio frame; audio goes only
  to the recording.
- Junk frames are counted by kind and logged once per kind; the counts go in ``call_ended``. Caller
  audio ahead of the call's clock (``bot.core.pacing``) is junk too (``audio_ahead``): neither
  recorded nor passed on.
- A turn's log line carries figures only; its recorded event also carries what was heard and said
  and each model request's answer (``Turn.content``), which logs must not hold.
- Without a recording every recording method is a no-op, so the call never checks.
- The stream's ``binding`` parameter (``bot.core.binding``) is never recorded; logs carry parameter
  names only.
- The recording's caller audio is capped at the line's longest call (``max_call_s``) plus
  ``END_ALLOWANCE_S`` for the time-limit goodbye and hang-up that follow it.
- The server's metrics (``bot.telemetry.metrics``), when given, see the same events: every logged one, each
  turn's figures, and every junk frame (not only the first of its kind).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import structlog

from bot import __version__ as BOT_VERSION
from bot.call.turns import Turn
from bot.core.binding import PARAMETER as BINDING_PARAMETER
from bot.core.pacing import InboundPacer
from bot.core.twilio_messages import Start
from bot.flows.line import LineConfig
from bot.recording.writer import CallRecorder
from bot.telemetry.metrics import CallMetrics

log = structlog.get_logger("bot.call.call")

END_ALLOWANCE_S = 60.0  # after max_call_s: the goodbye is said and heard, then the call hangs up


class CallJournal:
    def __init__(self, metrics: CallMetrics | None = None, *, started_at: float) -> None:
        self.metrics = metrics
        self.recorder: CallRecorder | None = None
        self.invalid: Counter[str] = Counter()
        self.pacer = InboundPacer(started_at)  # on the Call's clock, like every ``now`` given here

    def call_started(self, start: Start, line: LineConfig, recorder: CallRecorder | None) -> None:
        """The ``call_started`` line (parameter names only), and the recording opened with the call's meta."""
        log.info(
            "call_started",
            line=line.name,
            flow_version=line.version,
            parameters=sorted(start.custom_parameters),
        )
        self.recorder = recorder
        if recorder is not None:
            recorder.start(
                call_sid=start.call_sid,
                stream_sid=start.stream_sid,
                flow=line.name,
                flow_version=line.version,
                bot_version=BOT_VERSION,
                # The stream's binding token could open a stream for this call until it expires: kept out.
                parameters={k: v for k, v in start.custom_parameters.items() if k != BINDING_PARAMETER},
                # Bounds a call killed before its duration is written (``bot.recording.events``).
                max_duration_s=line.timeouts.max_call_s + END_ALLOWANCE_S,
            )
            recorder.limit_caller_audio(line.timeouts.max_call_s + END_ALLOWANCE_S)

    def note(self, event: str, /, *, warning: bool = False, **fields: Any) -> None:
        (log.warning if warning else log.info)(event, **fields)
        if self.metrics is not None:
            self.metrics.observe(event, fields)
        if self.recorder is not None:
            self.recorder.event(event, **fields)

    def count_invalid(self, kind: str, detail: str) -> None:
        self.invalid[kind] += 1
        if self.metrics is not None:
            self.metrics.observe("invalid", {"kind": kind})
        if self.invalid[kind] == 1:  # once per kind per call; the total is in call_ended
            self.note("invalid_frame", warning=True, kind=kind, detail=detail)

    def finish_turns(self, turns: list[Turn]) -> None:
        """The call is over: every turn not logged yet is finished and logged."""
        for turn in turns:
            if not turn.logged:
                turn.finished = True
                self.turn_progress(turn, call_closed=True)

    def turn_progress(self, turn: Turn, *, call_closed: bool) -> None:
        """Log a turn once: when it is finished and confirmed, and its first phrase heard (or never
        will be: cut, failed, or the call is over)."""
        if turn.logged or not turn.finished or not turn.confirmed.is_set():
            return
        unheard = turn.first_heard_at is None and turn.first_phrase_at is not None
        if unheard and not turn.barge_in and turn.error is None and not call_closed:
            return  # its first phrase has not been heard yet: logged again when it is
        turn.logged = True
        log.info("turn", **turn.figures())
        if self.metrics is not None:
            self.metrics.observe("turn", turn.figures())
        if self.recorder is not None:
            self.recorder.event("turn", **turn.figures(), **turn.content())

    async def end(self, *, ended_by: str, turns: int, seconds: float) -> None:
        """The ``call_ended`` line, then the recording is finalized (its fsync off the event loop)."""
        self.note(
            "call_ended",
            ended_by=ended_by,
            turns=turns,
            seconds=round(seconds, 1),
            invalid=dict(self.invalid),
        )
        if self.recorder is not None:
            await asyncio.to_thread(self.recorder.finalize, ended_by=ended_by, turns=turns)

    def caller_audio(self, now: float, timestamp_ms: int, ulaw: bytes) -> bool:
        """A media frame received at ``now`` (the call's clock): recorded and True, or (ahead of the
        clock: not Twilio's pace) counted as junk and False, and the Call drops it."""
        if not self.pacer.admit(now, len(ulaw)):
            self.count_invalid("audio_ahead", f"more than {self.pacer.lead_s:g} s ahead of the clock")
            return False
        if self.recorder is not None:
            self.recorder.caller_audio(timestamp_ms, ulaw)
        return True

    # ---- recording only ------------------------------------------------------------------------

    def bot_sent(self, response_id: int, audio: bytes, mark: str, text: str) -> None:
        """The Speaker's ``on_sent``: a chunk of audio, or (no audio) a phrase's mark and its text: the
        phrase is the audio of ``response_id`` sent since its previous mark (replay reuses it as TTS)."""
        if self.recorder is None:
            return
        if audio:
            self.recorder.bot_audio(audio, response_id=response_id, mark=mark)
        else:
            self.recorder.event("mark_sent", mark=mark, response_id=response_id, text=text)

    def key(self, digit: str) -> None:
        """A keypad key as Twilio sent it (recording only: logs never hold what was typed)."""
        if self.recorder is not None:
            self.recorder.event("dtmf", digit=digit[:4])

    def mark_echoed(self, name: str, result: str) -> None:
        if self.recorder is not None:
            self.recorder.event("mark_echoed", mark=name, result=result)

    def clear(self) -> None:
        if self.recorder is not None:
            self.recorder.clear()
