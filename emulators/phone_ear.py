"""What the caller hears: the bot's media, marks and clears, played out 20 ms at a time as Twilio plays them.

Rules:
- The bot's ``media`` and ``mark`` messages queue in one ``PlaybackBuffer``, in arrival order. Each tick
  plays 160 bytes and echoes the marks whose audio has now played; ``clear`` empties the buffer and echoes
  the pending marks at once.
- A mark counts as echoed (``marks_echoed``, a "mark_echoed" event) only once its echo is on the wire.
- bot_audio_start/end bracket playback between idle ticks (a whole tick with nothing to play). Audio events
  carry their frame's scheduled time; the end is when the last byte finished playing, or the instant a clear
  (or the stream's end) cut it short.
- ``frames`` keeps one 160-byte frame per tick: what the caller heard, silence where nothing played.
- No tasks, no socket: the session (``emulators.phone_session``) ticks the ear, hands it the bot's checked
  frames and sends its echoes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .call_record import SAMPLE_RATE
from .playback import PlaybackBuffer
from .twilio_wire import BotClear, BotMark, BotMedia

Record = Callable[[str, float, str], None]  # (event kind, phone time, detail): the call's event log
Echo = Callable[[str], Awaitable[bool]]  # send a mark's echo; False if the socket is gone


class Ear:
    """The caller's ear on one stream."""

    def __init__(self, record: Record, echo: Echo) -> None:
        self.playback = PlaybackBuffer()
        self.marks_echoed: list[str] = []
        self.frames: list[bytes] = []
        self.playing = False
        self.last_audio_end = 0.0  # phone time
        self._record = record
        self._echo = echo

    async def tick(self, due: float, t: float) -> None:
        """Play the frame due at loop time ``due`` (phone time ``t``)."""
        frame = self.playback.tick(due)
        self.frames.append(frame.audio)
        for name in frame.echoed_marks:
            await self._echo_mark(name, t)
        if frame.played:
            if not self.playing:
                self.playing = True
                self._record("bot_audio_start", t, "")
            self.last_audio_end = t + frame.played / SAMPLE_RATE
        elif self.playing:
            self._stop(self.last_audio_end)

    async def hear(self, frame: BotMedia | BotMark | BotClear, *, at: float, now: float) -> None:
        """Take one checked bot frame that arrived at loop time ``at`` (phone time ``now``)."""
        if isinstance(frame, BotMedia):
            self.playback.push_audio(frame.ulaw, at)
        elif isinstance(frame, BotMark):
            self.playback.push_mark(frame.name, at)
            self._record("mark_received", now, frame.name)
        else:
            self._record("clear_received", now, "")
            marks = self.playback.clear()
            self.stop(now)
            for name in marks:
                await self._echo_mark(name, now)

    def stop(self, now: float) -> None:
        """Playback is cut at phone time ``now`` (a clear, the stream's end), unless it already ended."""
        if self.playing:
            self._stop(min(now, self.last_audio_end))

    def quiet_for(self, seconds: float, now: float) -> bool:
        """Nothing plays, nothing is queued, and the last audio ended ``seconds`` or more before ``now``."""
        return not self.playing and self.playback.is_empty and now - self.last_audio_end >= seconds

    async def _echo_mark(self, name: str, t: float) -> None:
        if await self._echo(name):
            self.marks_echoed.append(name)
            self._record("mark_echoed", t, name)

    def _stop(self, end: float) -> None:
        self.playing = False
        self.last_audio_end = end
        self._record("bot_audio_end", end, "")
