"""μ-law <-> PCM16 conversion, resampling with carried state, and fixed-size framing.

Rules:
- Telephony audio is 8 kHz mono. Twilio frames are 20 ms: 160 μ-law bytes, or 320 bytes of PCM16
  (16-bit signed little-endian). μ-law silence is 0xFF (``lin2ulaw`` of sample 0).
- This is the only module that imports ``audioop`` (stdlib up to 3.12, ``audioop-lts`` on 3.13+);
  everything else goes through these functions. The 3.11/3.12 DeprecationWarning is silenced here.
- PCM16 input with an odd trailing byte (half a sample) is not an error: the functions that take
  PCM16 drop it, except ``Resampler`` which carries it into the next ``convert`` call, because a
  stream may be split anywhere.
- ``audioop.ratecv`` keeps filter/phase state between chunks; without it, samples are lost at every
  chunk edge. ``Resampler`` carries that state, so one instance serves one stream direction, and its
  output does not depend on how the input was chunked. Output length per chunk varies by a sample.
- ``Framer`` cuts an arbitrary byte stream into whole frames and holds the remainder back until more
  bytes arrive; ``flush`` pads the remainder to a whole frame.
- Pure: no I/O, no clocks, no asyncio.
"""

from __future__ import annotations

import warnings
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

SAMPLE_RATE = 8000
FRAME_MS = 20
ULAW_FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000  # 160: one byte per sample
PCM_FRAME_BYTES = ULAW_FRAME_BYTES * 2  # 320: two bytes per sample
ULAW_SILENCE = b"\xff"

_SAMPLE_WIDTH = 2  # PCM16


def _whole_samples(pcm16: bytes) -> bytes:
    """Drop an odd trailing byte; audioop raises on a partial sample."""
    return pcm16[:-1] if len(pcm16) % 2 else pcm16


def ulaw_to_pcm16(data: bytes) -> bytes:
    """Decode μ-law bytes to PCM16 (two output bytes per input byte)."""
    return audioop.ulaw2lin(data, _SAMPLE_WIDTH)


def pcm16_to_ulaw(data: bytes) -> bytes:
    """Encode PCM16 to μ-law. An odd trailing byte (half a sample) is dropped."""
    return audioop.lin2ulaw(_whole_samples(data), _SAMPLE_WIDTH)


def rms(pcm16: bytes) -> int:
    """Root mean square of PCM16 samples (0 for empty input). Never call it on μ-law bytes."""
    return int(audioop.rms(_whole_samples(pcm16), _SAMPLE_WIDTH))


class Resampler:
    """Mono PCM16 sample-rate converter for one stream direction.

    Carries ``audioop.ratecv`` state (and a stray odd byte) between ``convert`` calls, so the
    concatenated output equals a one-shot conversion of the concatenated input.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        # ratecv's state is opaque (and typed differently by the stdlib and audioop-lts stubs).
        self._state: Any = None
        self._odd_byte = b""

    def convert(self, pcm16: bytes) -> bytes:
        if self._odd_byte or len(pcm16) % 2:
            pcm16 = self._odd_byte + pcm16
            cut = len(pcm16) - len(pcm16) % 2
            pcm16, self._odd_byte = pcm16[:cut], pcm16[cut:]
        if self.in_rate == self.out_rate:
            return pcm16
        if not pcm16:
            return b""
        out, self._state = audioop.ratecv(pcm16, _SAMPLE_WIDTH, 1, self.in_rate, self.out_rate, self._state)
        return bytes(out)

    def reset(self) -> None:
        """Forget carried state, e.g. after a clear/barge-in, so the next chunk starts afresh."""
        self._state = None
        self._odd_byte = b""


class Framer:
    """Cuts a byte stream into frames of exactly ``frame_bytes``, holding back the remainder."""

    def __init__(self, frame_bytes: int = ULAW_FRAME_BYTES, pad: bytes = ULAW_SILENCE) -> None:
        if frame_bytes <= 0:
            raise ValueError(f"frame_bytes must be positive, got {frame_bytes}")
        if not pad:
            raise ValueError("pad must not be empty")
        self.frame_bytes = frame_bytes
        self.pad = pad
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back, waiting to complete a frame."""
        return len(self._buffer)

    def push(self, data: bytes) -> list[bytes]:
        """Add bytes; return every whole frame now available (possibly none)."""
        self._buffer += data
        n_whole = len(self._buffer) // self.frame_bytes * self.frame_bytes
        if n_whole == 0:
            return []
        size = self.frame_bytes
        frames = [bytes(self._buffer[i : i + size]) for i in range(0, n_whole, size)]
        del self._buffer[:n_whole]
        return frames

    def flush(self, pad_to: int | None = None) -> bytes | None:
        """The remainder padded with ``pad`` to a whole frame (or to a whole multiple of ``pad_to``
        bytes, when frames are several 20 ms frames long), or None if nothing is held."""
        if not self._buffer:
            return None
        unit = pad_to or self.frame_bytes
        missing = -len(self._buffer) % unit
        # pad may be several bytes (e.g. b"\x00\x00" for PCM16); repeat it and cut to fit.
        padding = (self.pad * (missing // len(self.pad) + 1))[:missing]
        frame = bytes(self._buffer) + padding
        self._buffer.clear()
        return frame

    def reset(self) -> None:
        """Drop the held-back remainder."""
        self._buffer.clear()
