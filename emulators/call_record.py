"""What a simulated call leaves behind: its events, and the analyses tests run on them.

Rules:
- ``PhoneEvent.t`` is seconds since dial. Kinds: caller_speech_start/end, bot_audio_start/end, mark_received,
  mark_echoed, clear_received, protocol_error, ws_closed.
- Timelines are μ-law, one byte per 1/8000 s from stream start, caller and bot aligned sample for sample.
- Pure: no clocks, no I/O.
"""

from __future__ import annotations

import array
import io
import sys
import wave
from collections.abc import Sequence
from dataclasses import dataclass

from media.codec import ulaw_to_pcm16

SAMPLE_RATE = 8000


@dataclass(frozen=True)
class PhoneEvent:
    t: float  # seconds since dial
    kind: str
    detail: str = ""


def stereo_wav(left_ulaw: bytes, right_ulaw: bytes) -> bytes:
    """PCM16 stereo 8 kHz WAV of two equally long μ-law channels."""
    if len(left_ulaw) != len(right_ulaw):
        raise ValueError(f"channels differ in length: {len(left_ulaw)} != {len(right_ulaw)}")
    stereo = array.array("h", bytes(4 * len(left_ulaw)))
    stereo[0::2] = array.array("h", ulaw_to_pcm16(left_ulaw))
    stereo[1::2] = array.array("h", ulaw_to_pcm16(right_ulaw))
    if sys.byteorder == "big":
        stereo.byteswap()  # WAV is little-endian; array is native
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(stereo.tobytes())
    return out.getvalue()


def turn_latencies(events: Sequence[PhoneEvent]) -> list[float]:
    """Per caller utterance: the first bot_audio_start after its end (and before the caller speaks again)
    minus that end. Utterances the bot did not answer are left out."""
    ends = [e.t for e in events if e.kind == "caller_speech_end"]
    starts = [e.t for e in events if e.kind == "caller_speech_start"]
    bot_starts = [e.t for e in events if e.kind == "bot_audio_start"]
    latencies: list[float] = []
    for end in ends:
        next_speech = min((s for s in starts if s >= end), default=float("inf"))
        answer = min((b for b in bot_starts if end <= b < next_speech), default=None)
        if answer is not None:
            latencies.append(answer - end)
    return latencies
