"""One simulated call's Media Streams session, played in real time the way Twilio plays it.

Rules:
- Three tasks per call. The caller sender and the player tick every 20 ms on one absolute schedule
  (``origin + n * 20 ms`` on ``loop.time()``), so frame n of both timelines is the same instant. A late
  loop never drops time: a task that falls behind runs the missed ticks back to back.
- The sender sends one ``media`` frame per tick, always (queued speech, else comfort noise). The player
  consumes 160 bytes per tick from ``PlaybackBuffer`` and echoes marks when their audio has played; ``clear``
  empties it and echoes the pending marks at once. The receiver checks every bot frame with
  ``check_bot_frame``: violations become ``protocol_errors`` plus a "protocol_error" event, never a crash.
- Every message the phone sends except ``connected`` takes the next ``sequenceNumber`` under one lock, so
  numbers go out in order. ``send_raw`` frames are sent as given and take no number.
- Event times are seconds since dial. Audio events carry their frame's scheduled time (a frame only holds
  audio that had arrived or been queued by then); others the moment they happen, so ``events`` (in
  recording order) may be up to a frame out of time order. bot_audio_start/end bracket playback between
  idle ticks (a whole tick with nothing to play).
- The bot closing the socket ends the stream (``closed_by_bot``): tasks stop, buffered audio is lost, pending
  ``say`` calls return, and every wait that can no longer succeed raises ``TimeoutError`` at once. So does
  ``drop`` (the connection is cut: no ``stop``, no close frame). Either way ``on_stream_end`` is then told
  (``SimulatedPhone`` follows the ``<Connect action>`` there, ``emulators.phone_action``); a hang-up is not.
- Every wait has a timeout. ``hang_up`` (or leaving ``async with``) sends ``stop``, closes the socket,
  stops the tasks, closes the HTTP session, and re-raises a crash of the phone's own tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import aiohttp

from media.codec import pcm16_to_ulaw

from .call_record import SAMPLE_RATE, PhoneEvent, stereo_wav, turn_latencies
from .caller_audio import CallerAudio
from .playback import FRAME_BYTES, ULAW_SILENCE, PlaybackBuffer
from .twilio_wire import (
    BotClear,
    BotFrameError,
    BotMark,
    BotMedia,
    check_bot_frame,
    connected_message,
    dtmf_message,
    mark_message,
    media_message,
    start_message,
    stop_message,
)
from .voice import ToneCodebook

FRAME_S = 0.020
DTMF_DIGITS = frozenset("0123456789*#ABCD")
_CLOSE_TIMEOUT_S = 5.0

T = TypeVar("T")


class PhoneCall:
    """A connected call; made by ``SimulatedPhone.dial``."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
        dial_time: float,
        call_sid: str,
        stream_sid: str,
        account_sid: str,
        twiml: str,
        stream_url: str,
        parameters: dict[str, str],
        codebook: ToneCodebook,
        noise_rms: int,
    ) -> None:
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.twiml = twiml
        self.stream_url = stream_url
        self.parameters = parameters
        self.events: list[PhoneEvent] = []
        self.protocol_errors: list[str] = []
        self.marks_echoed: list[str] = []
        self.closed_by_bot = False
        self.dropped = False
        self.on_stream_end: Callable[[], None] | None = None  # the stream ended, not by hanging up
        self._session = session
        self._ws = ws
        self._account_sid = account_sid
        self._codebook = codebook
        self._loop = asyncio.get_running_loop()
        self._dial_time = dial_time
        self._origin = dial_time  # set when the stream starts
        self._send_lock = asyncio.Lock()
        self._seq = 0
        self._caller: CallerAudio[asyncio.Future[None]] = CallerAudio(noise_rms)
        self._caller_speaking = False
        self._caller_frames: list[bytes] = []
        self._playback = PlaybackBuffer()
        self._bot_frames: list[bytes] = []
        self._bot_playing = False
        self._last_bot_audio_end = 0.0
        self._changed = asyncio.Event()
        self._ticking: list[asyncio.Task[None]] = []
        self._receiver: asyncio.Task[None] | None = None
        self._failures: list[BaseException] = []
        self._ended = False
        self._hanging_up = False
        self._hung_up = False

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def _open(self) -> None:
        """Send ``connected`` and ``start``, then start streaming and playing."""
        await self._ws.send_str(connected_message())
        await self._send(
            partial(
                start_message,
                stream_sid=self.stream_sid,
                account_sid=self._account_sid,
                call_sid=self.call_sid,
                custom_parameters=self.parameters,
            )
        )
        self._origin = self._loop.time()
        self._ticking = [self._spawn(self._run_caller()), self._spawn(self._run_player())]
        self._receiver = self._spawn(self._run_receiver())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            self._failures.append(failure)
            for future in self._caller.drop_all():
                if not future.done():  # a cancelled say() already gave up on its future
                    future.set_exception(RuntimeError(f"a simulated phone task crashed: {failure!r}"))
            self._notify()

    async def hang_up(self) -> None:
        """Send ``stop`` and close the socket (unless the bot already did); stop everything. Idempotent."""
        if self._hung_up:
            return
        self._hung_up = True
        if not self._ended:
            self._hanging_up = True
            await _cancel(self._ticking)
            await self._send(
                partial(
                    stop_message,
                    stream_sid=self.stream_sid,
                    account_sid=self._account_sid,
                    call_sid=self.call_sid,
                )
            )
            try:
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await self._ws.close()
            except (TimeoutError, aiohttp.ClientError, ConnectionError):
                pass  # the socket is gone either way
            self._finish(by_bot=False, detail="phone hung up")
        await _cancel([*self._ticking, *([self._receiver] if self._receiver else [])])
        await self._session.close()
        self._raise_if_broken()

    async def drop(self) -> None:
        """The line drops: the TCP connection is cut with no ``stop`` and no close frame (a network fault)."""
        if self._ended:
            return
        self.dropped = True
        transport = self._ws._writer.transport  # aiohttp keeps it private; abort() is the only way to cut
        transport.abort()
        await self._wait("the stream to end", _CLOSE_TIMEOUT_S, lambda: self._ended or None)

    async def __aenter__(self) -> PhoneCall:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.hang_up()

    def _finish(self, *, by_bot: bool, detail: str) -> None:
        if self._ended:
            return
        self._ended = True
        self.closed_by_bot = by_bot
        for task in self._ticking:
            task.cancel()
        for future in self._caller.drop_all():
            if not future.done():
                future.set_result(None)
        if self._bot_playing:
            self._stop_playing(min(self._now(), self._last_bot_audio_end))
        self._record("ws_closed", self._now(), detail)

    # ---- what the test does ------------------------------------------------------------------------------

    async def say(self, text: str) -> None:
        """Speak ``text`` in the codebook voice; return once all of it is on the wire (or the call ended)."""
        await self.say_audio(self._codebook.speak(text))

    async def say_audio(self, pcm16: bytes) -> None:
        ulaw = pcm16_to_ulaw(pcm16)
        if not ulaw or self._ended:
            return
        done: asyncio.Future[None] = self._loop.create_future()
        self._caller.enqueue(ulaw, done, self._loop.time())
        await done

    async def ask_after_greeting(self, question: str, *, quiet: float = 0.6) -> None:
        """The common short call: hear the whole greeting, say ``question``, hear the whole answer."""
        await self.wait_for_bot_audio(after=0.0, timeout=10)
        await self.wait_for_bot_silence(quiet=quiet, timeout=15)
        await self.say(question)
        await self.wait_for_bot_audio(timeout=10)
        await self.wait_for_bot_silence(quiet=quiet, timeout=15)

    async def play_ulaw(self, ulaw: bytes, *, at: float | None = None) -> None:
        """Send recorded caller audio as it is (μ-law, comfort noise included) from the first frame at or
        after ``at`` (phone time, s since dial; default the stream's first frame, timestamp 0); return once
        all of it is on the wire (or the call ended)."""
        if not ulaw or self._ended:
            return
        done: asyncio.Future[None] = self._loop.create_future()
        self._caller.enqueue(ulaw, done, self._origin if at is None else self._dial_time + at)
        await done

    @property
    def stream_start(self) -> float:
        """Phone time (s since dial) of the stream's first frame: a recording's t = 0."""
        return self._origin - self._dial_time

    def now(self) -> float:
        """Phone time: seconds since dial, the clock of ``events``."""
        return self._now()

    async def silence(self, seconds: float) -> None:
        """Wait while the sender streams comfort noise."""
        await asyncio.sleep(seconds)

    async def send_raw(self, frame: str | bytes) -> None:
        """Send a frame exactly as given (bytes = binary frame): for malformed-input tests."""
        async with self._send_lock:
            if isinstance(frame, bytes):
                await self._ws.send_bytes(frame)
            else:
                await self._ws.send_str(frame)

    async def send_dtmf(self, digit: str) -> None:
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        await self._send(partial(dtmf_message, stream_sid=self.stream_sid, digit=digit))

    # ---- waits -----------------------------------------------------------------------------------------
    # A ``timeout`` parameter (ruff ASYNC109) is the API: tests read better with it than wrapped in timeouts.

    async def wait_for_bot_audio(self, *, after: float | None = None, timeout: float = 10.0) -> float:  # noqa: ASYNC109
        """The t at which bot audio started playing at or after ``after`` (default: the caller's last
        utterance end)."""
        since = self._last_caller_speech_end() if after is None else after

        def started() -> float | None:
            return next((e.t for e in self.events if e.kind == "bot_audio_start" and e.t >= since), None)

        return await self._wait(f"bot audio after t={since:.3f}", timeout, started)

    async def wait_for_bot_silence(self, *, quiet: float = 1.0, timeout: float = 20.0) -> float:  # noqa: ASYNC109
        """Wait until nothing has played for ``quiet`` s and nothing is queued; return when audio ended."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self._raise_if_broken()
                    idle = not self._bot_playing and self._playback.is_empty
                    if self._ended or (idle and self._now() - self._last_bot_audio_end >= quiet):
                        return self._last_bot_audio_end
                    await asyncio.sleep(FRAME_S)
        except TimeoutError:
            raise TimeoutError(f"bot still talking after {timeout}s") from None

    async def wait_for_mark(self, name: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        await self._wait(f"mark {name!r} echoed", timeout, lambda: name in self.marks_echoed or None)

    async def wait_closed(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the bot closes the socket."""
        await self._wait("the bot closing the socket", timeout, lambda: self.closed_by_bot or None)

    async def _wait(self, what: str, timeout: float, check: Callable[[], T | None]) -> T:  # noqa: ASYNC109
        timer = asyncio.timeout(timeout)
        try:
            async with timer:
                while True:
                    result = check()
                    if result is not None:
                        return result
                    self._raise_if_broken()
                    if self._ended:
                        raise TimeoutError(f"no {what}: the call has ended")
                    await self._changed.wait()
        except TimeoutError:
            if timer.expired():
                raise TimeoutError(f"no {what} within {timeout}s") from None
            raise

    # ---- results ---------------------------------------------------------------------------------------

    def bot_played_ulaw(self) -> bytes:
        """What the caller heard, μ-law, one byte per 1/8000 s from stream start; silence where nothing
        played. Same length as ``caller_sent_ulaw``."""
        return self._timeline(self._bot_frames)

    def caller_sent_ulaw(self) -> bytes:
        """What the phone sent, μ-law, aligned with ``bot_played_ulaw``."""
        return self._timeline(self._caller_frames)

    def stereo_wav(self) -> bytes:
        """PCM16 stereo 8 kHz WAV: caller on the left, the bot as heard on the right."""
        return stereo_wav(self.caller_sent_ulaw(), self.bot_played_ulaw())

    @property
    def playback(self) -> PlaybackBuffer:
        """The outbound buffer (read its pacing figures: ``frames_played``, ``gaps``)."""
        return self._playback

    def turn_latencies(self) -> list[float]:
        """Per answered caller utterance: seconds from its end until the bot's answer started playing."""
        return turn_latencies(self.events)

    def _timeline(self, frames: list[bytes]) -> bytes:
        n_frames = max(len(self._bot_frames), len(self._caller_frames))
        return b"".join(frames) + ULAW_SILENCE * (FRAME_BYTES * (n_frames - len(frames)))

    # ---- tasks -----------------------------------------------------------------------------------------

    async def _run_caller(self) -> None:
        n = 0
        while True:
            due = self._origin + n * FRAME_S
            await self._sleep_until(due)
            t = due - self._dial_time
            frame = self._caller.next_frame(due)
            self._caller_frames.append(frame.audio)
            if frame.speech and not self._caller_speaking:
                self._caller_speaking = True
                self._record("caller_speech_start", t)
            sent = await self._send(
                partial(
                    media_message,
                    stream_sid=self.stream_sid,
                    chunk=n + 1,
                    timestamp_ms=n * 20,
                    ulaw=frame.audio,
                )
            )
            if frame.drained:
                self._caller_speaking = False
                self._record("caller_speech_end", t + frame.speech / SAMPLE_RATE)
            for future in frame.finished:
                if not future.done():
                    future.set_result(None)
            if not sent:
                return
            n += 1

    async def _run_player(self) -> None:
        n = 0
        while True:
            due = self._origin + n * FRAME_S
            await self._sleep_until(due)
            t = due - self._dial_time
            frame = self._playback.tick(due)
            self._bot_frames.append(frame.audio)
            for name in frame.echoed_marks:
                await self._echo_mark(name, t)
            if frame.played:
                if not self._bot_playing:
                    self._bot_playing = True
                    self._record("bot_audio_start", t)
                self._last_bot_audio_end = t + frame.played / SAMPLE_RATE
            elif self._bot_playing:
                self._stop_playing(self._last_bot_audio_end)
            n += 1

    async def _run_receiver(self) -> None:
        async for message in self._ws:
            if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                await self._on_bot_frame(message.data)
            elif message.type == aiohttp.WSMsgType.ERROR:
                if not self.dropped:
                    self._protocol_error(f"WebSocket error: {self._ws.exception()!r}"[:120])
                break
        if not self._hanging_up:
            if self.dropped:
                self._finish(by_bot=False, detail="the line dropped")
            else:
                self._finish(by_bot=True, detail=f"closed by the bot, code {self._ws.close_code}")
            await self._session.close()
            if self.on_stream_end is not None:
                self.on_stream_end()

    async def _on_bot_frame(self, data: str | bytes) -> None:
        frame = check_bot_frame(data, self.stream_sid)
        now = self._now()
        if isinstance(frame, BotMedia):
            self._playback.push_audio(frame.ulaw, self._loop.time())
        elif isinstance(frame, BotMark):
            self._playback.push_mark(frame.name, self._loop.time())
            self._record("mark_received", now, frame.name)
        elif isinstance(frame, BotClear):
            self._record("clear_received", now)
            marks = self._playback.clear()
            if self._bot_playing:
                self._stop_playing(min(now, self._last_bot_audio_end))
            for name in marks:
                await self._echo_mark(name, now)
        elif isinstance(frame, BotFrameError):
            self._protocol_error(frame.reason)

    # ---- helpers ---------------------------------------------------------------------------------------

    async def _send(self, build: Callable[[int], str]) -> bool:
        """Send the message ``build(sequenceNumber)``; False if the socket is gone."""
        async with self._send_lock:
            if self._ws.closed:
                return False
            self._seq += 1
            try:
                await self._ws.send_str(build(self._seq))
            except (ConnectionError, aiohttp.ClientError):
                return False
            return True

    async def _echo_mark(self, name: str, t: float) -> None:
        if await self._send(partial(mark_message, stream_sid=self.stream_sid, name=name)):
            self.marks_echoed.append(name)
            self._record("mark_echoed", t, name)

    def _stop_playing(self, end: float) -> None:
        self._bot_playing = False
        self._last_bot_audio_end = end
        self._record("bot_audio_end", end)

    def _protocol_error(self, reason: str) -> None:
        self.protocol_errors.append(reason)
        self._record("protocol_error", self._now(), reason)

    def _record(self, kind: str, t: float, detail: str = "") -> None:
        self.events.append(PhoneEvent(t, kind, detail))
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _now(self) -> float:
        return self._loop.time() - self._dial_time

    def _last_caller_speech_end(self) -> float:
        return max((e.t for e in self.events if e.kind == "caller_speech_end"), default=0.0)

    def _raise_if_broken(self) -> None:
        if self._failures:
            raise RuntimeError("a simulated phone task crashed") from self._failures[0]

    async def _sleep_until(self, when: float) -> None:
        delay = when - self._loop.time()
        # Behind schedule: still yield once, so catching up cannot starve the other tasks.
        await asyncio.sleep(max(0.0, delay))


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    current = asyncio.current_task()
    others = [task for task in tasks if task is not current]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
