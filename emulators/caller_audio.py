"""The caller's side of the line, frame by frame: queued speech, else comfort noise.

Rules:
- Real Twilio streams inbound media continuously, so every frame is 160 μ-law bytes: queued speech first
  (utterances back to back, crossing their boundaries), the rest of the frame comfort noise.
- Comfort noise is Gaussian at ``noise_rms`` (PCM16 units), from a seeded generator so runs are repeatable;
  ``noise_rms=0`` gives digital silence. One second of it is made up front and looped.
- Each utterance carries a token that ``next_frame`` hands back in the frame holding its last byte, so the
  owner can report "all of it is on the wire" once that frame is sent.
- Causal: an utterance queued at time ``at`` starts no earlier than the first frame beginning at or after
  ``at``, even when that frame is produced late.
- ``drained`` says speech ran out inside this frame: the caller stopped talking.
- Pure: no clocks, no I/O, no asyncio.
"""

from __future__ import annotations

import functools
import math
import random
import struct
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from media.codec import pcm16_to_ulaw

from .playback import FRAME_BYTES

_NOISE_SAMPLES = 8000  # one second at 8 kHz, looped
_PCM16_MAX = 32767

Token = TypeVar("Token")


@dataclass(frozen=True)
class CallerFrame(Generic[Token]):
    audio: bytes  # always FRAME_BYTES of μ-law
    speech: int  # how many of those bytes are queued speech (the rest is noise)
    finished: tuple[Token, ...]  # utterances whose last byte is in this frame
    drained: bool  # speech was taken and the queue is now empty


@functools.lru_cache(maxsize=8)  # every call of a test run uses the same few levels
def comfort_noise_ulaw(noise_rms: int, n_samples: int = _NOISE_SAMPLES, seed: int = 8000) -> bytes:
    """``n_samples`` of Gaussian noise at ``noise_rms``, μ-law encoded."""
    rng = random.Random(seed)
    samples = [max(-_PCM16_MAX, min(_PCM16_MAX, round(rng.gauss(0.0, noise_rms)))) for _ in range(n_samples)]
    return pcm16_to_ulaw(struct.pack(f"<{n_samples}h", *samples))


class CallerAudio(Generic[Token]):
    """FIFO of caller utterances (μ-law) with a looping comfort-noise bed underneath."""

    def __init__(self, noise_rms: int) -> None:
        if noise_rms < 0:
            raise ValueError(f"noise_rms must be >= 0, got {noise_rms}")
        self._noise = comfort_noise_ulaw(noise_rms)
        self._noise_offset = 0
        self._queue: deque[tuple[float, bytes, Token]] = deque()  # (queued at, μ-law, token)
        self._head_offset = 0

    def enqueue(self, ulaw: bytes, token: Token, at: float = -math.inf) -> None:
        """Queue an utterance at time ``at``; ``token`` comes back in the frame holding its last byte."""
        self._queue.append((at, bytes(ulaw), token))

    def next_frame(self, now: float = math.inf) -> CallerFrame[Token]:
        """The frame beginning at ``now``."""
        out = bytearray()
        finished: list[Token] = []
        had_speech = self._available(now)
        while self._available(now) and len(out) < FRAME_BYTES:
            _, ulaw, token = self._queue[0]
            take = ulaw[self._head_offset : self._head_offset + FRAME_BYTES - len(out)]
            out += take
            self._head_offset += len(take)
            if self._head_offset == len(ulaw):
                self._queue.popleft()
                self._head_offset = 0
                finished.append(token)
        speech = len(out)
        out += self._take_noise(FRAME_BYTES - speech)
        return CallerFrame(bytes(out), speech, tuple(finished), had_speech and not self._available(now))

    def drop_all(self) -> list[Token]:
        """Forget every queued utterance (the call ended); return their tokens."""
        tokens = [token for _, _, token in self._queue]
        self._queue.clear()
        self._head_offset = 0
        return tokens

    def _available(self, now: float) -> bool:
        return bool(self._queue) and self._queue[0][0] <= now

    def _take_noise(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self._noise[self._noise_offset : self._noise_offset + n - len(out)]
            out += chunk
            self._noise_offset = (self._noise_offset + len(chunk)) % len(self._noise)
        return bytes(out)
