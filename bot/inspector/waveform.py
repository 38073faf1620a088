"""Audio overviews for the inspector: waveform peaks per pixel bucket and speech spans found by energy.

Rules:
- Pure; input is 8 kHz μ-law on a recording's timeline (offset 0 = t 0, 8000 bytes/s).
- Peaks: per bucket the lowest and highest sample in -1..1. μ-law bytes are ranked by linear value once
  (256 entries), so min/max run on bytes in C: an hour of audio takes about a second, not a minute.
- Audio placed in pieces on a silent timeline (the bot's, as heard) gets its peaks from the pieces
  (``placed_peaks``), never laid out: memory follows the audio, not the times it is placed at.
- Speech: 20 ms frames whose RMS is above both an absolute floor and a multiple of the call's quiet level
  (its 20th percentile); pauses under 0.3 s are bridged, blips under 0.1 s dropped. An overview, not a
  VAD: it only has to agree with the eye.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
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


def placed_peaks(pieces: Iterable[tuple[int, bytes]], buckets: int, duration_s: float) -> Peaks:
    """``waveform_peaks`` of non-overlapping (start offset, audio) pieces laid on silence from offset 0
    (``bot.recording.playback.ulaw_timeline``), computed without laying them out."""
    buckets = max(1, buckets)
    total = max(1, round(duration_s * BYTES_PER_SECOND))
    bounds = [i * total // buckets for i in range(buckets + 1)]
    lows: list[int | None] = [None] * buckets
    highs: list[int | None] = [None] * buckets
    covered = [0] * buckets
    laid_end = 0  # where the laid-out timeline would end: silence counts up to there only
    for start, audio in pieces:
        end = start + len(audio)
        laid_end = max(laid_end, end)
        ranked = audio.translate(_RANK_TABLE)
        i = min(buckets - 1, start * buckets // total) if start < total else buckets
        while i > 0 and bounds[i] > start:
            i -= 1
        while i < buckets and bounds[i] < end:
            low, high = max(start, bounds[i]), min(end, bounds[i + 1])
            if high > low:
                part = ranked[low - start : high - start]
                small, big, was_low, was_high = min(part), max(part), lows[i], highs[i]
                lows[i] = small if was_low is None else min(small, was_low)
                highs[i] = big if was_high is None else max(big, was_high)
                covered[i] += high - low
            i += 1
    silence = _RANK_TABLE[0xFF]
    out_lows: list[float] = []
    out_highs: list[float] = []
    for i in range(buckets):
        laid = max(0, min(bounds[i + 1], laid_end) - bounds[i])
        lowest, highest = lows[i], highs[i]
        if covered[i] < laid:  # some silence laid in this bucket too
            lowest = silence if lowest is None else min(lowest, silence)
            highest = silence if highest is None else max(highest, silence)
        out_lows.append(0.0 if lowest is None else round(_RANK_VALUE[lowest] / 32768, 3))
        out_highs.append(0.0 if highest is None else round(_RANK_VALUE[highest] / 32768, 3))
    return Peaks(duration_s / buckets, tuple(out_lows), tuple(out_highs))


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
