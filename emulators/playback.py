"""Twilio's outbound buffer, modelled frame by frame: what the caller hears and when marks come back.

Rules:
- The bot's media and marks join one FIFO queue in the order they arrive. Nothing plays by itself: the
  owner calls ``tick`` once per 20 ms frame, and each tick takes the next 160 bytes of audio (8000 bytes/s),
  crossing chunk boundaries and marks, padded with μ-law silence when the queue runs dry.
- A frame handed out by tick k finishes playing at tick k+1. So a mark is echoed by the first tick at which
  every byte queued before it has finished: at the start of the same tick if those bytes ended exactly on
  the previous frame boundary (or there were none), else at the start of the next one. Echoes keep queue
  order.
- Causal: each item carries its arrival time and a tick at time ``now`` only takes items that arrived by
  then, so a tick processed late (a busy loop) never plays audio before it reached the phone.
- ``clear`` drops every queued byte at once and returns every pending mark (queued, or crossed but not yet
  echoed), in order, to be echoed immediately: Twilio returns them on clear too.
- Pacing, as the caller hears it: ``frames_played`` counts the frames holding bot audio and ``gaps`` lists
  each silence inside one answer, from the moment the audio ran out to the tick that resumed it. Inside a
  phrase any gap counts; across a phrase boundary (a mark) only when the next phrase's mark names the same
  response (``r<id>-p<n>``): the pause between two answers is not a stutter. ``clear`` forgets a pending gap.
- Pure: no clocks, no I/O, no asyncio.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
ULAW_SILENCE = b"\xff"


@dataclass(frozen=True)
class PlayedFrame:
    audio: bytes  # always FRAME_BYTES: the bot's audio, then silence
    played: int  # how many of those bytes are the bot's audio (0: nothing played)
    echoed_marks: tuple[str, ...]  # marks to echo now, at the start of this frame


class PlaybackBuffer:
    """FIFO of the bot's μ-law audio (bytes) and marks (str), consumed one 20 ms frame per tick."""

    def __init__(self) -> None:
        self._queue: deque[tuple[float, bytes | str]] = deque()  # (arrival time, audio or mark name)
        self._head_offset = 0  # bytes of the head chunk already played; avoids re-slicing big chunks
        self._queued_bytes = 0
        self._crossed_marks: list[str] = []  # passed inside the frame now playing; echoed next tick
        self.frames_played = 0
        self.gaps: list[float] = []
        self._playing = False
        self._dry_at: float | None = None  # when the audio ran out, while not yet resumed
        self._boundary: str | None = None  # response of the mark passed since the last audio byte
        self._maybe_gap: tuple[float, str] | None = None  # gap across a phrase boundary, awaiting its mark

    @property
    def queued_bytes(self) -> int:
        """Audio bytes not yet handed to a frame."""
        return self._queued_bytes

    @property
    def is_empty(self) -> bool:
        """No audio and no mark is waiting."""
        return not self._queue and not self._crossed_marks

    def push_audio(self, ulaw: bytes, at: float = -math.inf) -> None:
        """Queue audio that arrived at time ``at`` (default: long ago)."""
        if ulaw:
            self._queue.append((at, bytes(ulaw)))
            self._queued_bytes += len(ulaw)

    def push_mark(self, name: str, at: float = -math.inf) -> None:
        if self._maybe_gap is not None:
            gap, response = self._maybe_gap
            self._maybe_gap = None
            if _response(name) == response:
                self.gaps.append(gap)
        self._queue.append((at, name))

    def clear(self) -> list[str]:
        """Drop all queued audio; return the pending marks, in order, to echo right away."""
        marks = self._crossed_marks + [item for _, item in self._queue if isinstance(item, str)]
        self._queue.clear()
        self._crossed_marks = []
        self._head_offset = 0
        self._queued_bytes = 0
        self._playing = False
        self._dry_at = self._maybe_gap = self._boundary = None
        return marks

    def tick(self, now: float = math.inf) -> PlayedFrame:
        """Start the frame beginning at ``now``: echo the marks whose audio has finished and take up to 160
        bytes of what had arrived by ``now``."""
        echoed = self._crossed_marks
        self._crossed_marks = []
        out = bytearray()
        while self._queue and self._queue[0][0] <= now:
            head = self._queue[0][1]
            if isinstance(head, str):
                self._queue.popleft()
                # Audio taken in this frame is only now starting to play; the mark waits for it.
                (self._crossed_marks if out else echoed).append(head)
                self._boundary = _response(head)
                continue
            room = FRAME_BYTES - len(out)
            if room == 0:
                break
            if self._dry_at is not None:
                self._resumed(now + len(out) / 8000)
            take = head[self._head_offset : self._head_offset + room]
            self._boundary = None
            out += take
            self._head_offset += len(take)
            if self._head_offset == len(head):
                self._queue.popleft()
                self._head_offset = 0
        self._queued_bytes -= len(out)
        played = len(out)
        if played:
            self.frames_played += 1
            self._playing = True
        if played < FRAME_BYTES and self._playing:
            self._playing = False
            self._dry_at = now + played / 8000
        out += ULAW_SILENCE * (FRAME_BYTES - played)
        return PlayedFrame(bytes(out), played, tuple(echoed))

    def _resumed(self, at: float) -> None:
        assert self._dry_at is not None
        gap = max(0.0, at - self._dry_at)
        if self._boundary is None:
            self.gaps.append(gap)  # inside a phrase
        else:
            # The resumed phrase's mark may already be queued behind its audio.
            mark = next((item for _, item in self._queue if isinstance(item, str)), None)
            if mark is None:
                self._maybe_gap = (gap, self._boundary)
            elif _response(mark) == self._boundary:
                self.gaps.append(gap)
        self._dry_at = None


def _response(mark: str) -> str:
    """``r12`` of the bot's ``r12-p3`` mark names; any other name is its own response."""
    head, _, _ = mark.partition("-")
    return head
