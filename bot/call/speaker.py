"""The Speaker: phrases in, mu-law media frames and marks out to Twilio, in order.

Rules:
- ``say()`` only enqueues; one sender task sends phrases strictly in the order they were said.
- Synthesis runs ahead of playback: the phrase being sent plus the next ``LOOKAHEAD`` phrases are
  synthesized concurrently, so phrase N+1 is ready while phrase N plays.
- An answer's phrases (``say(..., answer=True)``) go on one ``SpeechSession`` when the voice has them
  (one TTS request per answer instead of one per phrase; Google's quotas count requests): each phrase is
  pushed when said, so the session synthesizes ahead by itself. The session ends when a phrase of
  another response is said or ``end_answer()`` is called, and is cancelled with the queue (barge-in,
  hang-up, error). Voices without sessions, and fixed lines, are synthesized per phrase as above.
  A stream does not mark where a phrase ends (``media/splitter.py`` estimates it), and its last
  phrase is complete only when the stream ends, so the owner calls ``end_answer`` as soon as a
  response's text is over (the Agent's ``on_text_end``), before any tools run.
- Each phrase goes out as media messages of ``OUT_CHUNK_BYTES`` (100 ms), the last one padded with
  silence to a whole 20 ms frame, then a mark registered with the ``MarkTracker``; the mark's echo
  tells what the caller actually heard. 100 ms rather than 20 ms: a fifth of the messages to encode and
  send (and for Twilio to parse) with hundreds of calls on one loop, and ``clear`` is unaffected (it
  drops whatever Twilio holds, at any size).
- ``clear()`` (barge-in) drops every queued phrase, cancels their synthesis, sends ``clear`` and
  settles pending marks as unheard. A generation counter makes the sender drop a phrase it was in
  the middle of sending.
- It reports through one ``post`` (``bot.call.events``): ``AudioStarted`` at a response's first frame,
  ``AudioSent`` and ``MarkSent`` as they go out (what a recording keeps), ``Played`` when a mark comes back
  played (and whether all of its response has been), ``SpeechFailed``. It never calls its owner otherwise.
- A synthesis error drops the queued phrases and is posted as ``SpeechFailed``; the owner (the Call)
  decides what the caller hears next. The Speaker never raises into the call.
- A send that raises ``ConnectionError`` means the socket is gone: the Speaker stops for good. It drops
  its queue, sends nothing more and reports nothing more as sent (``AudioSent`` is only what went out).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from bot.call.events import AudioSent, AudioStarted, MarkSent, Played, SpeakerEvent, SpeechFailed
from bot.core.heard import EchoResult, MarkTracker
from bot.core.twilio_messages import clear_message, mark_message, media_message
from bot.providers.tts.protocol import SpeechSession, TextToSpeech, open_session
from media.codec import SAMPLE_RATE, ULAW_FRAME_BYTES, Framer
from media.errors import ProviderError

LOOKAHEAD = 2
OUT_CHUNK_BYTES = 5 * ULAW_FRAME_BYTES  # 100 ms of audio per media message
log = structlog.get_logger(__name__)


@dataclass(eq=False)
class _Phrase:
    text: str
    response_id: int
    audio: bytes | None = None  # pre-synthesized clip
    chunks: asyncio.Queue[bytes | BaseException | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    session: SpeechSession | None = None  # the answer's request this phrase's audio comes on
    sent_bytes: int = 0


def _ignore(event: SpeakerEvent) -> None:
    """No owner listening (a Speaker on its own, in tests)."""


class Speaker:
    def __init__(
        self,
        tts: TextToSpeech,
        send: Callable[[str], Awaitable[None]],
        stream_sid: str,
        tracker: MarkTracker,
        *,
        post: Callable[[SpeakerEvent], None] | None = None,
    ) -> None:
        self._tts = tts
        self._send = send
        self._stream_sid = stream_sid
        self.tracker = tracker
        self._post = post or _ignore
        self._sent_marks: dict[str, tuple[int, float]] = {}  # mark -> (response id, seconds of audio)
        self._queue: deque[_Phrase] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._generation = 0
        self._sending = False
        self._framer = Framer(OUT_CHUNK_BYTES)
        self._audio_started: set[int] = set()
        self._sender: asyncio.Task[None] | None = None
        self._session: SpeechSession | None = None  # the answer being spoken on one request
        self._session_rid = -1
        self.gone = False  # a send found the socket gone
        self.closed = False  # the call is over (``close``): nothing more is said

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name="speaker-sender")

    @property
    def speaking(self) -> bool:
        """Anything queued, being sent, or sent but not yet heard (never, once the socket is gone)."""
        return not self.gone and (bool(self._queue) or self._sending or self.tracker.speaking)

    def queued(self, response_id: int) -> bool:
        """Some phrase of ``response_id`` is still waiting to be (or being) sent."""
        return any(p.response_id == response_id for p in self._queue)

    def say(self, text: str, response_id: int, *, audio: bytes | None = None, answer: bool = False) -> None:
        """Queue a phrase: a clip (``audio``), a phrase of a streamed answer (``answer``), or a fixed line."""
        if self.gone or self.closed:
            return  # nobody can hear it
        if response_id != self._session_rid:
            self.end_answer()
        phrase = _Phrase(text, response_id, audio)
        if audio is not None:
            phrase.chunks.put_nowait(audio)
            phrase.chunks.put_nowait(None)
        elif answer and (session := self._answer_session(response_id)) is not None:
            phrase.session = session
            phrase.task = asyncio.create_task(self._synthesize(phrase, session.push(text)), name="tts")
        self._queue.append(phrase)
        self._idle.clear()
        self._start_synthesis()
        self._wake.set()

    def _start_synthesis(self) -> None:
        for phrase in list(self._queue)[: LOOKAHEAD + 1]:
            if phrase.audio is None and phrase.task is None:
                phrase.task = asyncio.create_task(self._synthesize(phrase), name="tts")

    def _answer_session(self, response_id: int) -> SpeechSession | None:
        session = self._session
        if session is None or not session.accepting:
            session = self._session = open_session(self._tts)
            self._session_rid = response_id
        return session

    def end_answer(self, response_id: int | None = None) -> None:
        """No more phrases of the answer (``response_id``, or whichever is open): its session, if any,
        ends once their audio is in."""
        if response_id is not None and response_id != self._session_rid:
            return
        if self._session is not None:
            self._session.end()
        self._session = None
        self._session_rid = -1

    async def _synthesize(self, phrase: _Phrase, audio: AsyncIterator[bytes] | None = None) -> None:
        try:
            async for chunk in audio if audio is not None else self._tts.synthesize(phrase.text):
                phrase.chunks.put_nowait(chunk)
            phrase.chunks.put_nowait(None)
        except ProviderError as exc:
            phrase.chunks.put_nowait(exc)
        except Exception as exc:  # a provider bug must not kill the call
            phrase.chunks.put_nowait(ProviderError("tts", "error", type(exc).__name__))
            log.exception("tts_unexpected_error")

    async def _send_loop(self) -> None:
        while True:
            if not self._queue:
                self._update_idle()
                self._wake.clear()
                await self._wake.wait()
                continue
            phrase = self._queue[0]
            generation = self._generation
            self._sending = True
            try:
                await self._send_phrase(phrase, generation)
            finally:
                self._sending = False
            if self.gone:
                self._update_idle()
                return
            if generation == self._generation and self._queue and self._queue[0] is phrase:
                self._queue.popleft()
                self._start_synthesis()

    async def _send_phrase(self, phrase: _Phrase, generation: int) -> None:
        while True:
            item = await phrase.chunks.get()
            if generation != self._generation:
                return
            if item is None:
                break
            if isinstance(item, BaseException):
                self._fail(phrase, item)
                return
            sent: list[bytes] = []
            try:
                for frame in self._framer.push(item):
                    if not await self._send_frame(phrase, frame):
                        return
                    sent.append(frame)
                    if generation != self._generation:
                        return
            finally:
                self._report_sent(phrase, b"".join(sent))
        tail = self._framer.flush(pad_to=ULAW_FRAME_BYTES)
        if tail is not None:
            if not await self._send_frame(phrase, tail):
                return
            self._report_sent(phrase, tail)
        if generation != self._generation:
            return
        name = self.tracker.sent(phrase.text, phrase.response_id)
        self._sent_marks[name] = (phrase.response_id, phrase.sent_bytes / SAMPLE_RATE)
        if await self._emit(mark_message(self._stream_sid, name)):
            self._post(MarkSent(phrase.response_id, name, phrase.text))

    def _report_sent(self, phrase: _Phrase, audio: bytes) -> None:
        if audio:
            self._post(AudioSent(phrase.response_id, audio))

    async def _send_frame(self, phrase: _Phrase, frame: bytes) -> bool:
        """False if the socket is gone (the frame did not go out)."""
        if phrase.response_id not in self._audio_started:
            self._audio_started.add(phrase.response_id)
            self._post(AudioStarted(phrase.response_id))
        if not await self._emit(media_message(self._stream_sid, frame)):
            return False
        phrase.sent_bytes += len(frame)
        return True

    async def _emit(self, message: str) -> bool:
        """Send one message; False (and the Speaker stops for good) once the socket is gone."""
        if self.gone:
            return False
        try:
            await self._send(message)
        except ConnectionError:
            log.info("speaker_socket_gone")
            self.gone = True
            self._drop_queue()
            self._framer.reset()
            self._update_idle()
            return False
        return True

    def _fail(self, phrase: _Phrase, exc: BaseException) -> None:
        error = exc if isinstance(exc, ProviderError) else ProviderError("tts", "error", type(exc).__name__)
        self._drop_queue()
        self._framer.reset()
        self._post(SpeechFailed(phrase.response_id, error))

    def _drop_queue(self) -> None:
        self._generation += 1
        # Every request still speaking for a queued phrase is released now (an ended session may still be
        # sending the audio of its last phrases), not when its audio would have ended.
        sessions = {p.session for p in self._queue if p.session is not None} | {self._session}
        for session in sessions:
            if session is not None:
                session.cancel()
        self._session = None
        self._session_rid = -1
        for phrase in self._queue:
            if phrase.task is not None:
                phrase.task.cancel()
            phrase.chunks.put_nowait(None)  # wakes a sender waiting on this phrase's audio
        self._queue.clear()

    async def clear(self) -> set[int]:
        """Barge-in: stop everything the caller has not heard yet; returns the cut response ids."""
        cut = {p.response_id for p in self._queue}
        self._drop_queue()
        self._framer.reset()
        await self._emit(clear_message(self._stream_sid))
        cut |= {p.response_id for p in self.tracker.clear()}
        self._update_idle()
        return cut

    def on_mark(self, name: str) -> EchoResult:
        result = self.tracker.echoed(name)
        sent = self._sent_marks.pop(name, None)
        if result is EchoResult.PLAYED and sent is not None:
            response_id, seconds = sent
            left = self.tracker.pending(response_id) or self.queued(response_id)
            self._post(Played(response_id, seconds, all_heard=not left))
        self._update_idle()
        return result

    def _update_idle(self) -> None:
        if not self.speaking:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Until everything said so far has been heard (or cleared)."""
        await self._idle.wait()

    async def close(self) -> None:
        self.closed = True
        self._drop_queue()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
