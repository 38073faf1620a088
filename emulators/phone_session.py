"""One simulated call's Media Streams session: the socket, its clock, its three tasks, and how it ends.

Rules:
- Three tasks per call. The caller sender and the player tick every 20 ms on one absolute schedule
  (``origin + n * 20 ms`` on ``loop.time()``), so frame n of both timelines is the same instant. A late
  loop never drops time: a task that falls behind runs the missed ticks back to back.
- The sender sends one ``media`` frame per tick, always (queued speech, else comfort noise:
  ``emulators.caller_audio``). The player ticks the ``Ear`` (``emulators.phone_ear``: what the caller
  hears). The receiver checks every bot frame with ``check_bot_frame`` and hands the valid ones to the ear:
  violations become ``protocol_errors`` plus a "protocol_error" event, never a crash.
- Every message the phone sends except ``connected`` takes the next ``sequenceNumber`` under one lock, so
  numbers go out in order. ``send_raw`` frames are sent as given and take no number.
- Event times are seconds since dial. Audio events carry their frame's scheduled time (a frame only holds
  audio that had arrived or been queued by then); others the moment they happen, so ``events`` (in
  recording order) may be up to a frame out of time order. Every event wakes the waits (``_wait``).
- The bot closing the socket ends the stream (``closed_by_bot``): tasks stop, buffered audio is lost, pending
  ``say`` calls return, and every wait that can no longer succeed raises ``TimeoutError`` at once. So does
  ``drop`` (the connection is cut: no ``stop``, no close frame). Either way ``on_stream_end`` is then told
  (``SimulatedPhone`` follows the ``<Connect action>`` there, ``emulators.phone_action``); a hang-up is not.
- ``hang_up`` (or leaving ``async with``) sends ``stop``, closes the socket, stops the tasks, closes the
  HTTP session, and re-raises a crash of the phone's own tasks; a crash also fails pending ``say`` calls
  and every wait.
- What a test does and asks of the call (say, waits, results) is ``emulators.phone_call.PhoneCall``, this
  session with its script on top.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from functools import partial
from types import TracebackType
from typing import Any, Self, TypedDict, TypeVar, Unpack

import aiohttp

from .call_record import SAMPLE_RATE, PhoneEvent
from .caller_audio import CallerAudio
from .phone_ear import Ear
from .twilio_wire import (
    BotFrameError,
    check_bot_frame,
    connected_message,
    mark_message,
    media_message,
    start_message,
    stop_message,
)

FRAME_S = 0.020
_CLOSE_TIMEOUT_S = 5.0

T = TypeVar("T")


class StreamArgs(TypedDict):
    """What a new stream is made of (``SimulatedPhone.dial``): the socket and its session (the stream owns
    both), when the phone dialled, the ids, the ``<Stream>``'s parameters and the caller's noise level."""

    session: aiohttp.ClientSession
    ws: aiohttp.ClientWebSocketResponse
    dial_time: float
    call_sid: str
    stream_sid: str
    account_sid: str
    parameters: dict[str, str]  # the <Parameter>s of the TwiML's <Stream>, sent in ``start``
    noise_rms: int


class StreamSession:
    """A connected stream; ``SimulatedPhone.dial`` makes one (as a ``PhoneCall``) and opens it."""

    def __init__(self, **stream: Unpack[StreamArgs]) -> None:
        self.call_sid = stream["call_sid"]
        self.stream_sid = stream["stream_sid"]
        self.parameters = stream["parameters"]
        self.events: list[PhoneEvent] = []
        self.protocol_errors: list[str] = []
        self.closed_by_bot = False
        self.dropped = False
        self.on_stream_end: Callable[[], None] | None = None  # the stream ended, not by hanging up
        self._session = stream["session"]
        self._ws = stream["ws"]
        self._account_sid = stream["account_sid"]
        self._loop = asyncio.get_running_loop()
        self._dial_time = stream["dial_time"]
        self._origin = self._dial_time  # set when the stream starts
        self._send_lock = asyncio.Lock()
        self._seq = 0
        self._caller: CallerAudio[asyncio.Future[None]] = CallerAudio(stream["noise_rms"])
        self._caller_speaking = False
        self._caller_frames: list[bytes] = []
        self._ear = Ear(self._record, self._send_mark)
        self._changed = asyncio.Event()
        self._ticking: list[asyncio.Task[None]] = []
        self._receiver: asyncio.Task[None] | None = None
        self._failures: list[BaseException] = []
        self._ended = False
        self._hanging_up = False
        self._hung_up = False

    @property
    def marks_echoed(self) -> list[str]:
        """Names of the marks echoed to the bot, in order."""
        return self._ear.marks_echoed

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def open(self) -> None:
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

    async def __aenter__(self) -> Self:
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
        self._ear.stop(self._now())
        self._record("ws_closed", self._now(), detail)

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
            await self._ear.tick(due, due - self._dial_time)
            n += 1

    async def _run_receiver(self) -> None:
        async for message in self._ws:
            if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                frame = check_bot_frame(message.data, self.stream_sid)
                if isinstance(frame, BotFrameError):
                    self.protocol_error(frame.reason)
                else:
                    await self._ear.hear(frame, at=self._loop.time(), now=self._now())
            elif message.type == aiohttp.WSMsgType.ERROR:
                if not self.dropped:
                    self.protocol_error(f"WebSocket error: {self._ws.exception()!r}"[:120])
                break
        if not self._hanging_up:
            if self.dropped:
                self._finish(by_bot=False, detail="the line dropped")
            else:
                self._finish(by_bot=True, detail=f"closed by the bot, code {self._ws.close_code}")
            await self._session.close()
            if self.on_stream_end is not None:
                self.on_stream_end()

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

    async def _send_mark(self, name: str) -> bool:
        return await self._send(partial(mark_message, stream_sid=self.stream_sid, name=name))

    def protocol_error(self, reason: str) -> None:
        """Note something the bot (or its TwiML) did that Twilio would not accept."""
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

    def _raise_if_broken(self) -> None:
        if self._failures:
            raise RuntimeError("a simulated phone task crashed") from self._failures[0]

    async def _wait(self, what: str, timeout: float, check: Callable[[], T | None]) -> T:  # noqa: ASYNC109
        """``check()`` once it is not None, re-checked at every event; TimeoutError once the call ended."""
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
