"""The Call: one phone call, from Twilio's ``start`` to ``stop``.

Rules:
- Built once, from Twilio's ``start`` (admitted by ``bot.server.stream_gate``): the line, every stage and
  the Speaker exist before the first frame after it is read; a second ``start`` is junk.
- One loop (``run``) reads one inbox (``bot.call.inbox``): the stream's messages, parsed by a reader
  task, and the stages' news (``bot.call.events``), in the order they arrived. ``_dispatch`` handles each
  with one ``match``; nothing else reacts to them.
- Every frame goes through the pure parser; junk (audio ahead of the clock too) is counted, logged once
  per kind and ignored. Audio goes mu-law -> PCM16 -> ``Endpointer`` inline (microseconds per frame).
- It owns the state and is the only place that cancels work: the turn task (``bot.call.respond``: STT
  -> Agent -> Speaker), the turn's watchdog (``bot.call.waiting``) and the Speaker. It builds each stage
  with the stages below it; no stage calls the Call: their news comes up as events, and what follows
  from it (barge in, close the socket) the Call does in its loop.
- Barge-in: caller speech of ``min_speech_ms`` while the bot speaks or thinks sends ``clear`` at once,
  cancels the turn (LLM stream, tools, pending TTS) and keeps history to what the caller heard
  (``MarkTracker``); a turn cut before its transcript hands its audio (``TurnTaking.carry``) on.
- Never silent (``bot.call.waiting``, the Agent's fillers): when the Speaker cannot say a phrase of the
  turn (``SpeechFailed``), the Call cancels the turn and apologises; the next turn goes on.
- The line (``LineConfig``) is chosen at ``start`` from the called number (``to`` parameter) and kept
  to the end of the call, whatever reloads happen meanwhile.
- What the call allows when (barge-in, a turn, keys, silence) is the state table of
  ``bot.core.call_state``: once the call is ending (a goodbye or a transfer), nothing more is answered.
- ``stop`` or the socket closing cancels everything of the call at once; no provider request starts
  after it. A failed socket (``socket_failed``) ends it as ``socket_error``; a dead one stops the Speaker.
  News still in the inbox then is handled before the recording closes (what was sent is kept), but a
  call that is over apologises to no one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import assert_never

import structlog

from bot.call import events
from bot.call.actions import CallActions
from bot.call.agent import Agent
from bot.call.deps import CallDeps
from bot.call.inbox import Inbox, StreamEnded
from bot.call.journal import CallJournal
from bot.call.lines import Lines
from bot.call.respond import Responder
from bot.call.speaker import Speaker
from bot.call.telephony import Telephony
from bot.call.turn_taking import TurnTaking, settle
from bot.call.turns import Turn
from bot.call.waiting import CallWaiting
from bot.core.call_state import Act, Phase, allows, phase_of
from bot.core.heard import EchoResult, MarkTracker
from bot.core.history import Conversation
from bot.core.twilio_messages import (
    Connected,
    Dtmf,
    InboundMessage,
    Invalid,
    Mark,
    Media,
    Start,
    Stop,
)
from bot.providers.clips import ClipCache
from bot.tools.registry import ToolRegistry
from media.codec import ulaw_to_pcm16
from media.errors import ProviderError
from media.vad import Endpointer, SpeechEnded, SpeechPaused, SpeechResumed, SpeechStarted

log = structlog.get_logger("bot.call.call")


class Call:
    """One call, built once Twilio's ``start`` is known (``bot.server.stream_gate`` admits it): its line,
    stages and Speaker exist from the first frame on."""

    def __init__(
        self,
        deps: CallDeps,
        start: Start,
        send: Callable[[str], Awaitable[None]],
        *,
        close: Callable[[], Awaitable[object]] | None = None,
        clock: Callable[[], float] | None = None,
        max_frame_chars: int = 64 * 1024,
    ) -> None:
        self.deps = deps
        self._start = start
        self._send_raw = send
        self._close_socket = close
        self._clock = clock = clock or deps.clock
        self.account_sid = start.account_sid
        self.call_sid = start.call_sid
        self.closed = False
        self.line = line = deps.lines.route(start.custom_parameters.get("to"))
        self.journal = CallJournal(deps.metrics, started_at=clock())
        self.note = self.journal.note
        self.tracker = MarkTracker()
        self._detector = deps.detector() if deps.detector is not None else None
        self.endpointer = Endpointer(line.endpointing, self._detector)
        self.conversation = Conversation(line.system_prompt)
        self.actions = CallActions()
        tools = ToolRegistry.of((*deps.flow_tools(line.tools), *self.actions.tools(line)))
        self.agent = Agent(deps.llm, tools, line, self.conversation, clock=clock)
        voice = deps.voices.for_line(line)
        self.clips: ClipCache = voice.clips
        self._inbox = Inbox(clock, max_frame_chars=max_frame_chars)
        self.speaker = Speaker(voice.tts, self._send, start.stream_sid, self.tracker, post=self._inbox.post)
        self.agent.on_text_end = self.speaker.end_answer  # one TTS stream per response, ended at once
        self.lines = Lines(self.speaker, self.conversation, self.clips, apology=line.apology_text)
        # The Call hands each stage its work and the stages below it; the waiting side's watchdog is
        # scheduled by the turn taking it reads, so it is named here once both exist.
        self.taking = TurnTaking(self._run_turn, lambda turn: self.waiting.watchdog(turn), clock)
        self.waiting = CallWaiting(line, self.speaker, self.lines, self.taking, clock)
        self.phone = Telephony(
            self._inbox.post,
            line,
            start,
            deps.control,
            clock,
            history=self.conversation,
            note=self.journal.note,
            lines=self.lines,
            taking=self.taking,
            actions=self.actions,
        )
        self.responder = Responder(
            line,
            deps.stt,
            self.conversation,
            self.agent,
            self.speaker,
            self.lines,
            waiting=self.waiting,
            actions=self.actions,
            phone=self.phone,
            clock=clock,
            note=self.journal.note,
        )
        self._warming: asyncio.Future[None] | None = None  # the line's clips, made at start
        self._started_at = clock()
        self._shut_down = False

    @property
    def ending(self) -> str | None:
        """Why the call is ending (no new turns, no barge-in), or None."""
        return self.phone.ending

    @property
    def transferred_to(self) -> str | None:
        return self.phone.transferred_to

    @property
    def turns(self) -> list[Turn]:
        return self.taking.turns

    @property
    def invalid(self) -> Counter[str]:
        """Junk frames of this call, by kind."""
        return self.journal.invalid

    # ---- inbound -------------------------------------------------------------------------------

    async def run(self, frames: AsyncIterable[str | bytes]) -> None:
        """The stream's frames after ``start`` and the stages' news, until ``stop`` or the socket ends."""
        reader: asyncio.Task[None] | None = None
        try:
            await self._begin()
            reader = asyncio.create_task(self._inbox.read(frames), name="call-reader")
            while True:
                at, item = await self._inbox.get()
                try:
                    if isinstance(item, StreamEnded) and item.error is not None:
                        raise item.error
                    if isinstance(item, Stop | StreamEnded):
                        break
                    await self._dispatch(at, item)
                finally:
                    self._inbox.done()
        finally:
            if reader is not None:
                reader.cancel()  # after ``stop``, or before the socket's frames are closed by its owner
                await settle([reader])
            await self.shutdown()

    async def _dispatch(self, at: float, item: InboundMessage | events.CallEvent) -> None:
        """One inbox item, ``at`` the time it arrived: the stream's messages and every stage's news."""
        match item:
            case Media(timestamp_ms=timestamp_ms, payload=payload):
                await self._heard_audio(at, timestamp_ms, payload)
            case Mark(name=name):
                result = self.speaker.on_mark(name)
                if result is EchoResult.UNKNOWN:
                    self.journal.count_invalid("unknown_mark", name[:40])
                else:
                    self.journal.mark_echoed(name, result.value)
            case Dtmf(digit=digit):
                await self._key(at, digit)
            case Start():
                self.journal.count_invalid("duplicate_start", "")
            case Invalid(kind=kind, detail=detail):
                self.journal.count_invalid(kind.value, detail)
            case Connected() | Stop():
                pass  # ``connected`` belongs before ``start``; ``stop`` ends the loop before it comes here
            case events.AudioStarted(response_id):
                self._turn_figure(lambda turn: turn.audio_started(response_id, at))
            case events.AudioSent(response_id, audio):
                self.journal.bot_sent(response_id, audio, "", "")
            case events.MarkSent(response_id, mark, text):
                self.journal.bot_sent(response_id, b"", mark, text)
            case events.Played(response_id, seconds, all_heard):
                if all_heard:
                    self.lines.live.heard(response_id)
                self._turn_figure(lambda turn: turn.played(response_id, at, seconds))
            case events.SpeechFailed(response_id, error):
                self._speech_failed(response_id, error)
            case events.Tick():
                await self._tick(at)
            case events.LineReleased():
                await self.close()
            case events.SocketFailed(reason, close_code):
                self.phone.socket_failed(reason, close_code)
            case _:
                assert_never(item)  # mypy: every kind of message and news is handled here

    async def _heard_audio(self, at: float, timestamp_ms: int, payload: bytes) -> None:
        if not self.journal.caller_audio(at, timestamp_ms, payload):
            return  # ahead of the clock: junk (bot.core.pacing)
        for event in self.endpointer.push(ulaw_to_pcm16(payload)):
            if isinstance(event, SpeechStarted):
                await self._on_speech_started()
            elif isinstance(event, SpeechPaused):
                if allows(self.phase(), Act.TURN):
                    self.taking.paused(event, self.line)
            elif isinstance(event, SpeechResumed):
                await self.taking.drop_speculation()
            elif isinstance(event, SpeechEnded):
                await self._on_speech_ended(event)

    async def _begin(self) -> None:
        """``start``: the call's log context and recording, the Speaker and the supervisor, the greeting."""
        start = self._start
        structlog.contextvars.bind_contextvars(call_sid=start.call_sid, stream_sid=start.stream_sid)
        recorder = self.deps.recorder(start.call_sid, self._clock) if self.deps.recorder is not None else None
        self.journal.call_started(start, self.line, recorder)
        self.speaker.start()
        self._warming = asyncio.ensure_future(self.clips.ensure(self.line.clip_texts()))
        self.phone.start()
        if opening := self.line.resume_text if start.resumed else self.line.greeting:
            self.lines.say(opening, interruptible=self.line.greeting_interruptible)

    # ---- turn taking ---------------------------------------------------------------------------

    def phase(self) -> Phase:
        """Where the call is (``bot.core.call_state``), from the facts its stages own."""
        ending, thinking, hearing = self.ending is not None, self.taking.thinking(), self.endpointer.in_speech
        return phase_of(ending=ending, speaking=self.speaker.speaking, thinking=thinking, hearing=hearing)

    def busy(self) -> bool:
        """The bot speaks or thinks, or the caller is mid-utterance: their silence is not silence."""
        return not allows(self.phase(), Act.SILENCE_COUNTS)

    async def _on_speech_started(self) -> None:
        self.phone.watch.caller_active(self._clock())
        await self.caller_interrupts()

    async def caller_interrupts(self) -> None:
        """Speech or a key while the bot speaks or thinks: barge in, unless that is not allowed now."""
        if not self.line.barge_in or not allows(self.phase(), Act.BARGE_IN):
            return
        if self.lines.live.locked():
            return  # the greeting is not interruptible until it has been heard
        await self._barge_in()

    async def _barge_in(self) -> None:
        started = self._clock()
        heard = await self.interrupt()
        self.note("barge_in", clear_ms=round((self._clock() - started) * 1000), cut_responses=sorted(heard))

    async def interrupt(self) -> dict[int, str]:
        """Stop the bot now: cancel the turn, clear what is playing, keep history to what was heard."""
        turn, turn_task = self.taking.current, self.taking.task
        cancelled = self.taking.cancel()  # first, so nothing new is queued behind the clear
        self.journal.clear()
        affected = await self.speaker.clear()
        self.lines.live.cut(affected)
        await settle(cancelled)
        self.actions.drop_pending()
        # The last turn was cut if its work was cancelled or its speech cleared (not a reprompt after it).
        cut = turn is not None and (turn_task in cancelled or bool(affected & turn.response_ids))
        if turn is not None and cut and turn.stt_done_at is None:
            self.taking.carry(turn.audio, self.line)  # cut before we knew what was said: keep it
        heard = self.agent.settle(self.tracker.heard_text, cut=affected)
        if turn is not None and cut:
            turn.barge_in = True
            self._maybe_log_turn(turn)
        return heard

    async def _key(self, at: float, digit: str) -> None:
        self.journal.key(digit)
        if not self.line.dtmf.enabled or not allows(self.phase(), Act.KEYS):
            self.journal.count_invalid("dtmf_ignored", "key")  # never the key: logs hold no typed digits
            return
        if not self.phone.entering:
            await self.caller_interrupts()  # typing over the bot stops it, like speaking does
        await self.phone.on_key(digit, at)

    async def _tick(self, at: float) -> None:
        if self.closed:
            return
        longest = await self.phone.tick(at, busy=self.busy())
        if longest is not None:  # the longest call's goodbye cuts in: the bot stops first
            await self.taking.drop_speculation()
            if self.busy():
                await self.interrupt()
            self.phone.end(longest)

    async def _on_speech_ended(self, event: SpeechEnded) -> None:
        self.phone.watch.caller_active(self._clock())
        if not allows(self.phase(), Act.TURN):
            await self.taking.drop_speculation()
            return  # saying goodbye or transferring: nothing more is answered
        await self.taking.ended(event, self.line)

    async def _run_turn(self, turn: Turn) -> None:
        """The turn's task (scheduled by ``TurnTaking``): the Responder's work, then the turn's log line."""
        try:
            await self.responder.run(turn)
        finally:
            turn.finished = True
            self._maybe_log_turn(turn)

    # ---- what the stages report (``bot.call.events``, dispatched by ``_dispatch``) ---------------

    def _turn_figure(self, took: Callable[[Turn], bool]) -> None:
        """The current turn takes a figure from the Speaker's news; logged once its figures are in."""
        turn = self.taking.current
        if turn is not None and took(turn):
            self._maybe_log_turn(turn)

    def _speech_failed(self, response_id: int, error: ProviderError) -> None:
        self.note("provider_error", warning=True, provider=error.provider, kind=error.kind)
        line = self.lines.live.failed(response_id)
        if line is not None and line.failed():
            return  # a goodbye or transfer line that cannot be said: the call acts anyway
        if line is not None and not line.in_history:
            return  # a filler or the apology itself could not be synthesized: do not loop
        turn = self.taking.current
        if turn is not None and response_id in turn.response_ids:
            turn.error = f"{error.provider}:{error.kind}"
            if self.taking.task is not None and not self.taking.task.done():
                self.taking.task.cancel()
            self.agent.settle(turn.said_text)
        if not self._shut_down:  # news handled after the call ended: there is no one to apologise to
            self.lines.apologise(turn)

    def socket_failed(self, reason: str, close_code: int | None) -> None:
        """The media socket's ``on_failure``: news like any stage's."""
        self._inbox.post(events.SocketFailed(reason, close_code))

    def _maybe_log_turn(self, turn: Turn) -> None:
        self.journal.turn_progress(turn, call_closed=self.closed)

    # ---- outbound and teardown -----------------------------------------------------------------

    async def _send(self, text: str) -> None:
        if self.closed:
            raise ConnectionResetError("the call's socket is closed")
        try:
            await self._send_raw(text)
        except (ConnectionError, RuntimeError) as exc:
            self.closed = True  # the socket is gone; the reader loop ends the call
            raise ConnectionResetError(str(exc)) from exc

    async def close(self) -> None:
        """End the call from our side: close the socket (the reader loop then shuts the call down)."""
        self.closed = True
        if self._close_socket is not None:
            await self._close_socket()

    async def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        self.closed = True
        await self.taking.drop_speculation()
        await settle(self.taking.cancel())
        await self.phone.stop()
        if self._warming is not None:
            self._warming.cancel()
        await self.speaker.close()
        for at, event in self._inbox.leftover_news():  # after the loop: what was sent, a failed socket
            await self._dispatch(at, event)
        if self._detector is not None:
            self._detector.close()  # a pooled model goes back to its pool (a no-op by default)
        self.journal.finish_turns(self.turns)
        seconds = self._clock() - self._started_at
        await self.journal.end(ended_by=self.ending or "caller", turns=len(self.turns), seconds=seconds)
