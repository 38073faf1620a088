"""WAV (RIFF) container helpers: strip a header to get raw samples, build WAV files.

Rules:
- Google TTS returns MULAW and LINEAR16 audio inside a WAV container. A μ-law WAV (format tag 7)
  has an 18-byte ``fmt `` chunk and usually a ``fact`` chunk, so the header is not a fixed 44
  bytes: ``strip_wav_header`` walks the chunks to ``data``.
- Chunks are ``id(4) size(4, little-endian) payload``; a payload of odd size is followed by one
  pad byte that the size does not count.
- Streaming writers do not know the final length: a ``data`` size of 0xFFFFFFFF (or any size
  running past the end of the bytes we hold) means "to the end"; we clamp instead of failing.
- Input that does not start with ``RIFF`` is already raw audio and passes through unchanged.
  A RIFF input without a reachable ``data`` chunk (truncated or garbled) raises ``WavError``.
- The stdlib ``wave`` module cannot read or write format tag 7, so ``ulaw_wav`` packs the header
  by hand. PCM16 WAVs use ``wave``. Pure: files are built in memory, nothing touches the disk.
"""

from __future__ import annotations

import array
import io
import struct
import wave

_RIFF_HEADER = struct.Struct("<4sI4s")  # b"RIFF", size, b"WAVE"
_CHUNK_HEADER = struct.Struct("<4sI")  # id, size
_WAVE_FORMAT_MULAW = 7


class WavError(ValueError):
    """A RIFF/WAVE byte string that cannot be parsed."""


def strip_wav_header(data: bytes) -> bytes:
    """Return the payload of the ``data`` chunk if ``data`` is a WAV file, else ``data`` as is."""
    if not data.startswith(b"RIFF"):
        return data
    if len(data) < _RIFF_HEADER.size:
        raise WavError(f"truncated RIFF header ({len(data)} bytes)")
    _, _, form = _RIFF_HEADER.unpack_from(data, 0)
    if form != b"WAVE":
        raise WavError(f"RIFF form is {form!r}, not b'WAVE'")
    pos = _RIFF_HEADER.size
    while pos + _CHUNK_HEADER.size <= len(data):
        chunk_id, size = _CHUNK_HEADER.unpack_from(data, pos)
        start = pos + _CHUNK_HEADER.size
        if chunk_id == b"data":
            return data[start : min(start + size, len(data))]
        pos = start + size + (size & 1)
    raise WavError("RIFF/WAVE data has no data chunk (truncated or garbled)")


def pcm16_wav(pcm16: bytes, sample_rate: int = 8000, channels: int = 1) -> bytes:
    """Wrap PCM16 samples in a WAV file. A trailing partial frame (e.g. an odd byte) is dropped."""
    if sample_rate <= 0 or channels <= 0:
        raise ValueError(f"invalid WAV shape: {sample_rate} Hz, {channels} channels")
    frame_size = 2 * channels
    whole = len(pcm16) - len(pcm16) % frame_size
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm16[:whole])
    return out.getvalue()


def ulaw_wav(ulaw: bytes, sample_rate: int = 8000) -> bytes:
    """Wrap mono μ-law bytes in a WAV file: format tag 7, 18-byte ``fmt ``, ``fact``, ``data``."""
    if sample_rate <= 0:
        raise ValueError(f"invalid sample rate {sample_rate}")
    # fmt: tag, channels, rate, byte rate, block align, bits per sample, cbSize (0 extra bytes).
    fmt = struct.pack("<HHIIHHH", _WAVE_FORMAT_MULAW, 1, sample_rate, sample_rate, 1, 8, 0)
    fact = struct.pack("<I", len(ulaw))  # number of samples
    pad = b"\x00" if len(ulaw) % 2 else b""
    body = b"".join(
        (
            b"WAVE",
            _CHUNK_HEADER.pack(b"fmt ", len(fmt)),
            fmt,
            _CHUNK_HEADER.pack(b"fact", len(fact)),
            fact,
            _CHUNK_HEADER.pack(b"data", len(ulaw)),
            ulaw,
            pad,
        )
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def interleave_stereo(left_pcm16: bytes, right_pcm16: bytes) -> bytes:
    """Interleave two mono PCM16 streams into one stereo stream (left, right, left, ...).

    The shorter side is padded with silence; an odd trailing byte on either side is dropped.
    """
    left = array.array("h", left_pcm16[: len(left_pcm16) // 2 * 2])
    right = array.array("h", right_pcm16[: len(right_pcm16) // 2 * 2])
    # Samples are moved as opaque 2-byte units, so the host byte order does not matter.
    stereo = array.array("h", bytes(4 * max(len(left), len(right))))
    stereo[0 : 2 * len(left) : 2] = left
    stereo[1 : 2 * len(right) : 2] = right
    return stereo.tobytes()
