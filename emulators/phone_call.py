"""The call a test holds: what the caller does on it, what a test waits for, and what it heard and sent.

Rules:
- ``PhoneCall`` is the stream (``emulators.phone_session.StreamSession``: socket, clock, tasks, ending) with
  the test's script on top; ``SimulatedPhone.dial`` makes and opens it.
- ``say``, ``say_audio`` and ``play_ulaw`` queue caller audio and return once all of it is on the wire, or
  at once if the call has ended. ``send_dtmf`` takes one DTMF digit (0-9, *, #, A-D), else ``ValueError``.
- Every wait has a timeout; a wait that can no longer succeed (the stream ended) raises ``TimeoutError`` at
  once, and a crash of the phone's own tasks is re-raised by every wait.
- Results are timelines from the stream's first frame, one μ-law byte per 1/8000 s: ``bot_played_ulaw``
  (what the caller heard) and ``caller_sent_ulaw`` have the same length, padded with silence.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Unpack

from media.codec import pcm16_to_ulaw

from .call_record import stereo_wav, turn_latencies
from .phone_session import FRAME_S, StreamArgs, StreamSession
from .playback import FRAME_BYTES, ULAW_SILENCE, PlaybackBuffer
from .twilio_wire import dtmf_message
from .voice import ToneCodebook

DTMF_DIGITS = frozenset("0123456789*#ABCD")


class PhoneCall(StreamSession):
    """A connected call; made by ``SimulatedPhone.dial``."""

    def __init__(
        self, *, twiml: str, stream_url: str, codebook: ToneCodebook, **stream: Unpack[StreamArgs]
    ) -> None:
        super().__init__(**stream)
        self.twiml = twiml
        self.stream_url = stream_url
        self._codebook = codebook

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
                    if self._ended or self._ear.quiet_for(quiet, self._now()):
                        return self._ear.last_audio_end
                    await asyncio.sleep(FRAME_S)
        except TimeoutError:
            raise TimeoutError(f"bot still talking after {timeout}s") from None

    async def wait_for_mark(self, name: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        await self._wait(f"mark {name!r} echoed", timeout, lambda: name in self.marks_echoed or None)

    async def wait_closed(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the bot closes the socket."""
        await self._wait("the bot closing the socket", timeout, lambda: self.closed_by_bot or None)

    def _last_caller_speech_end(self) -> float:
        return max((e.t for e in self.events if e.kind == "caller_speech_end"), default=0.0)

    # ---- results ---------------------------------------------------------------------------------------

    def bot_played_ulaw(self) -> bytes:
        """What the caller heard, μ-law, one byte per 1/8000 s from stream start; silence where nothing
        played. Same length as ``caller_sent_ulaw``."""
        return self._timeline(self._ear.frames)

    def caller_sent_ulaw(self) -> bytes:
        """What the phone sent, μ-law, aligned with ``bot_played_ulaw``."""
        return self._timeline(self._caller_frames)

    def stereo_wav(self) -> bytes:
        """PCM16 stereo 8 kHz WAV: caller on the left, the bot as heard on the right."""
        return stereo_wav(self.caller_sent_ulaw(), self.bot_played_ulaw())

    @property
    def playback(self) -> PlaybackBuffer:
        """The outbound buffer (read its pacing figures: ``frames_played``, ``gaps``)."""
        return self._ear.playback

    def turn_latencies(self) -> list[float]:
        """Per answered caller utterance: seconds from its end until the bot's answer started playing."""
        return turn_latencies(self.events)

    def _timeline(self, frames: list[bytes]) -> bytes:
        n_frames = max(len(self._ear.frames), len(self._caller_frames))
        return b"".join(frames) + ULAW_SILENCE * (FRAME_BYTES * (n_frames - len(frames)))
