"""Audio overviews for the inspector: waveform peaks per pixel bucket and speech spans found by energy.

Rules:
- Pure; input is 8 kHz μ-law on a recording's timeline (offset 0 = t 0, 8000 bytes/s).
- Peaks: per bucket the lowest and highest sample in -1..1. μ-law bytes are ranked by linear value once
  (256 entries), so min/max run on bytes in C: an hour of audio takes about a second, not a minute.
- Speech: 20 ms frames whose RMS is above both an absolute floor and a multiple of the call's quiet level
  (its 20th percentile); pauses under 0.3 s are bridged, blips under 0.1 s dropped. An overview, not a
  VAD: it only has to agree with the eye.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from bot.recording.format import BYTES_PER_SECOND
from media.codec import rms, ulaw_to_pcm16

_FRAME_BYTES: Final = 160  # 20 ms of μ-law
_SPEECH_RMS_FLOOR: Final = 300  # PCM16 RMS below this is never speech (line noise, comfort noise)
_SPEECH_OVER_NOISE: Final = 4.0  # speech must stand this far above the call's quiet level
_SPEECH_GAP_S: Final = 0.3  # pauses shorter than this stay inside one span
_SPEECH_MIN_S: Final = 0.1  # shorter blips are clicks, not speech


@dataclass(frozen=True)
class Span:
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Peaks:
    """Waveform overview: per bucket of ``bucket_s`` seconds, the lowest and highest sample, in -1..1."""

    bucket_s: float
    lows: tuple[float, ...]
    highs: tuple[float, ...]


def _ulaw_ranks() -> tuple[bytes, tuple[int, ...]]:
    """A translate table giving each μ-law byte its rank by linear value, and rank -> PCM16 value, so
    min/max of a bucket run in C on bytes instead of decoded samples."""
    linear = struct.unpack("<256h", ulaw_to_pcm16(bytes(range(256))))
    order = sorted(range(256), key=lambda b: linear[b])
    rank = [0] * 256
    for position, byte in enumerate(order):
        rank[byte] = position
    return bytes(rank), tuple(linear[b] for b in order)


_RANK_TABLE, _RANK_VALUE = _ulaw_ranks()


def waveform_peaks(ulaw: bytes, buckets: int, duration_s: float) -> Peaks:
    """Min/max per bucket over ``duration_s`` (audio shorter than that reads as silence)."""
    buckets = max(1, buckets)
    ranked = ulaw.translate(_RANK_TABLE)
    total = max(1, round(duration_s * BYTES_PER_SECOND))
    lows: list[float] = []
    highs: list[float] = []
    for i in range(buckets):
        part = ranked[i * total // buckets : (i + 1) * total // buckets]
        if part:
            lows.append(round(_RANK_VALUE[min(part)] / 32768, 3))
            highs.append(round(_RANK_VALUE[max(part)] / 32768, 3))
        else:
            lows.append(0.0)
            highs.append(0.0)
    return Peaks(duration_s / buckets, tuple(lows), tuple(highs))


def speech_spans(ulaw: bytes) -> tuple[Span, ...]:
    """Where the audio is loud enough to be speech, per 20 ms frame, short pauses bridged."""
    pcm = ulaw_to_pcm16(ulaw)
    levels = [rms(pcm[i : i + 2 * _FRAME_BYTES]) for i in range(0, len(pcm), 2 * _FRAME_BYTES)]
    if not levels:
        return ()
    quiet = sorted(levels)[len(levels) // 5]
    threshold = max(_SPEECH_RMS_FLOOR, quiet * _SPEECH_OVER_NOISE)
    frame_s = _FRAME_BYTES / BYTES_PER_SECOND
    spans: list[list[float]] = []
    for index, level in enumerate(levels):
        if level < threshold:
            continue
        start = index * frame_s
        if spans and start - spans[-1][1] <= _SPEECH_GAP_S:
            spans[-1][1] = start + frame_s
        else:
            spans.append([start, start + frame_s])
    return tuple(Span(round(a, 3), round(b, 3)) for a, b in spans if b - a >= _SPEECH_MIN_S)
