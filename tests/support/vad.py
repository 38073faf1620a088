"""Signals for the endpointer tests (``media.vad``): 8 kHz 16-bit PCM tones, silence and noise, and a
runner that pushes audio in chunks as the media socket does.

Rules:
- Every signal is deterministic (noise takes a seed), so a failing example replays.
"""

from __future__ import annotations

import array
import math
import random
import sys

from media.vad import Endpointer, EndpointerEvent

BYTES_PER_MS = 16


def pcm16(samples: list[int]) -> bytes:
    """16-bit little-endian PCM of ``samples``, whatever the machine's byte order."""
    data = array.array("h", samples)
    if sys.byteorder == "big":
        data.byteswap()
    return data.tobytes()


def tone(ms: int, amplitude: int = 8000, freq: float = 440.0, phase_from: int = 0) -> bytes:
    n = ms * 8
    return pcm16([int(amplitude * math.sin(2 * math.pi * freq * (phase_from + i) / 8000)) for i in range(n)])


def silence(ms: int) -> bytes:
    return bytes(ms * BYTES_PER_MS)


def noise(ms: int, level: float, seed: int = 1) -> bytes:
    """Gaussian noise whose rms is about `level`."""
    rng = random.Random(seed)
    return pcm16([max(-32768, min(32767, round(rng.gauss(0, level)))) for _ in range(ms * 8)])


def mix(a: bytes, b: bytes) -> bytes:
    sa, sb = array.array("h", a), array.array("h", b)
    return pcm16([max(-32768, min(32767, x + y)) for x, y in zip(sa, sb, strict=True)])


def run(endpointer: Endpointer, audio: bytes, chunk: int = 320) -> list[tuple[int, EndpointerEvent]]:
    """Push `audio` in chunks; return (now_ms when the event came out, event)."""
    out: list[tuple[int, EndpointerEvent]] = []
    for i in range(0, len(audio), chunk):
        for event in endpointer.push(audio[i : i + chunk]):
            out.append((endpointer.now_ms, event))
    return out


def events_of(endpointer: Endpointer, audio: bytes, chunk: int = 320) -> list[EndpointerEvent]:
    return [event for _, event in run(endpointer, audio, chunk)]
