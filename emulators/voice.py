"""A synthetic caller voice that the transcription emulator can "understand".

Rules:
- Each distinct sentence a test or the demo wants the caller to say gets a code k in a shared
  ``ToneCodebook``; its audio is a sine at ``BASE_HZ + k * STEP_HZ``, shaped into word-like bursts
  (one burst per word, short gaps that are far below any end-of-turn silence).
- The transcription emulator measures the tone's frequency by counting zero crossings of the loud
  samples and maps it back to the sentence. A truncated utterance (the caller cut off, a barge-in
  fragment) still decodes to the same sentence, which keeps end-to-end tests deterministic.
- The audio survives the 8 kHz mu-law round trip: codes stay far below the 4 kHz Nyquist limit and
  are spaced wider than the estimator's error.
This is not speech: the real speech path (Whisper on synthetic speech) belongs to the offline engines.
"""

from __future__ import annotations

import math
import struct
import threading

SAMPLE_RATE = 8000
BASE_HZ = 400.0
STEP_HZ = 30.0
MAX_CODES = 100
WORD_MS = 260
GAP_MS = 70
AMPLITUDE = 9000
# Samples quieter than this are ignored when measuring the frequency (noise, fades).
LOUD = 2500


class ToneCodebook:
    """Maps sentences to tone codes and back; shared by the phone and the STT emulator."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._texts: list[str] = []
        self._lock = threading.Lock()

    def code(self, text: str) -> int:
        with self._lock:
            if text not in self._codes:
                if len(self._texts) >= MAX_CODES:
                    raise ValueError(f"codebook full: at most {MAX_CODES} distinct sentences")
                self._codes[text] = len(self._texts)
                self._texts.append(text)
            return self._codes[text]

    def frequency(self, text: str) -> float:
        return BASE_HZ + self.code(text) * STEP_HZ

    def speak(self, text: str) -> bytes:
        """PCM16 mono 8 kHz audio for ``text``: one tone burst per word."""
        freq = self.frequency(text)
        words = max(1, len(text.split()))
        word_n = SAMPLE_RATE * WORD_MS // 1000
        gap_n = SAMPLE_RATE * GAP_MS // 1000
        ramp = SAMPLE_RATE * 15 // 1000
        samples: list[int] = []
        step = 2 * math.pi * freq / SAMPLE_RATE
        t = 0
        for w in range(words):
            for i in range(word_n):
                env = min(1.0, i / ramp, (word_n - 1 - i) / ramp)
                samples.append(int(AMPLITUDE * env * math.sin(step * t)))
                t += 1
            if w != words - 1:
                samples.extend([0] * gap_n)
                t += gap_n
        return struct.pack(f"<{len(samples)}h", *samples)

    def transcribe(self, pcm16: bytes) -> str | None:
        """The sentence whose tone ``pcm16`` carries, or None if no tone is found."""
        freq = measure_frequency(pcm16)
        if freq is None:
            return None
        k = round((freq - BASE_HZ) / STEP_HZ)
        with self._lock:
            if 0 <= k < len(self._texts) and abs(freq - (BASE_HZ + k * STEP_HZ)) < STEP_HZ / 2:
                return self._texts[k]
        return None


def measure_frequency(pcm16: bytes) -> float | None:
    """Frequency of the loud tone in ``pcm16``.

    Splits the audio into 10 ms windows, joins consecutive loud windows into runs, and in each run
    measures the time between its first and last zero crossing (interpolated between samples).
    """
    n = len(pcm16) // 2
    samples = struct.unpack(f"<{n}h", pcm16[: n * 2])
    win = SAMPLE_RATE // 100
    runs: list[tuple[int, int]] = []
    for start in range(0, n - win + 1, win):
        w = samples[start : start + win]
        if max(w) < LOUD or min(w) > -LOUD:
            continue  # silence, noise or a fade: no reliable crossings
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], start + win)
        else:
            runs.append((start, start + win))
    half_periods = 0.0
    span = 0.0
    for lo, hi in runs:
        crossings = [
            i + a / (a - b)
            for i, (a, b) in enumerate(zip(samples[lo : hi - 1], samples[lo + 1 : hi], strict=True), lo)
            if (a < 0) != (b < 0)
        ]
        if len(crossings) >= 3:
            half_periods += len(crossings) - 1
            span += crossings[-1] - crossings[0]
    if span < SAMPLE_RATE // 20:
        return None
    return half_periods * SAMPLE_RATE / (2 * span)
