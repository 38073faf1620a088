"""Latency benchmark: simulated calls against the bot with emulators at fixed latencies.

Prints, per turn, voice-to-voice at the phone's ear (caller's last sound -> first bot sound heard),
the bot's own overhead (voice-to-voice minus the emulated STT, LLM first-token and TTS first-byte
latencies and the end-of-turn silence), and the barge-in ``clear`` latency (caller's first sound ->
``clear`` at the phone). Then p50/p95 of each.

``--offline`` runs the bot on its embedded engines (silero VAD, Whisper, piper) with an espeak-ng
caller: then only the model is emulated, and the overhead includes STT and TTS on this machine.

Runs twice by default: without speculation (the overhead figure is clean: nothing overlaps the
end-of-turn silence) and with the line's default speculation (STT and the model start during the
silence; the overhead goes negative, which is the point).

    python bench/latency.py [--calls 3] [--speculation off,llm]

Figures, not assertions: this is not a test. 127.0.0.1 only; bounded by --calls.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.sim.rig import bench
from bot.sim.store_line import store_line
from bot.telemetry.logs import configure_logging
from emulators.openai_script import ChatRequest, Reply
from emulators.phone_call import PhoneCall

STT_S = 0.150
LLM_FIRST_TOKEN_S = 0.300
TTS_FIRST_BYTE_S = 0.150

QUESTIONS = ["What is your address?", "Do you sell paint?", "Do you have parking?"]
LONG_QUESTION = "Tell me everything about the store."
INTERRUPTION = "Sorry, one more question."
LONG_ANSWER = (
    "We are a small hardware store on Main Street. We sell tools, paint, garden supplies and "
    "hardware. We cut keys, mix paint and rent out carpet cleaners. Parking is behind the store."
)


def make_responder(token_s: float) -> Callable[[ChatRequest], Reply]:
    def responder(request: ChatRequest) -> Reply:
        text = (request.last_user_text or "").lower()
        answer = LONG_ANSWER if "everything" in text else "Sure, we're at 12 Main Street, next to the bakery."
        return Reply(text=answer, first_token_delay_s=LLM_FIRST_TOKEN_S, chunk_delay_s=token_s)

    return responder


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_call(call: PhoneCall, speak: Callable[[str], bytes]) -> float | None:
    """Speak the script; return the barge-in clear latency (s)."""
    await call.wait_for_bot_audio(after=0.0, timeout=10)
    await call.wait_for_bot_silence(quiet=0.6, timeout=20)
    for question in QUESTIONS:
        await call.say_audio(speak(question))
        await call.wait_for_bot_audio(timeout=10)
        await call.wait_for_bot_silence(quiet=0.6, timeout=20)
    await call.say_audio(speak(LONG_QUESTION))
    await call.wait_for_bot_audio(timeout=10)
    await call.silence(1.0)
    barge_at = len(call.events)
    await call.say_audio(speak(INTERRUPTION))
    await call.wait_for_bot_audio(timeout=10)
    await call.wait_for_bot_silence(quiet=0.6, timeout=20)
    later = call.events[barge_at:]
    onset = next((e.t for e in later if e.kind == "caller_speech_start"), None)
    cleared = next((e.t for e in later if e.kind == "clear_received"), None)
    return None if onset is None or cleared is None else cleared - onset


async def run(
    calls: int,
    speculation: str,
    token_s: float = 0.0,
    first_phrase_min: int | None = None,
    offline: bool = False,
    min_speech_ms: int | None = None,
) -> dict[str, list[float]]:
    line = dataclasses.replace(store_line(), speculation=speculation)
    if min_speech_ms is not None:
        line = dataclasses.replace(
            line, endpointing=dataclasses.replace(line.endpointing, min_speech_ms=min_speech_ms)
        )
    if first_phrase_min is not None:
        line = dataclasses.replace(
            line, phrases=dataclasses.replace(line.phrases, first_phrase_min_length=first_phrase_min)
        )
    end_silence_s = line.endpointing.end_silence_ms / 1000
    # Offline, STT and TTS are the bot's own work (embedded engines): only the model is emulated.
    fixed = LLM_FIRST_TOKEN_S + end_silence_s + (0 if offline else STT_S + TTS_FIRST_BYTE_S)
    v2v: list[float] = []
    clears: list[float] = []
    async with bench(
        responder=make_responder(token_s),
        line=line,
        stt_delay_s=STT_S,
        tts_first_byte_s=TTS_FIRST_BYTE_S,
        offline=offline,
    ) as b:
        if offline:
            from emulators.espeak_voice import EspeakVoice

            speak = EspeakVoice(voice="en-us+m3", rate=140).speak
        else:
            speak = b.codebook.speak
        await b.server.warming
        for n in range(calls):
            async with await b.phone.dial() as call:
                clear = await one_call(call, speak)
                await call.hang_up()
            turns = call.turn_latencies()
            print(
                f"  call {n + 1}: voice-to-voice "
                + ", ".join(f"{t * 1000:.0f}" for t in turns)
                + f" ms; clear {'n/a' if clear is None else f'{clear * 1000:.0f} ms'}",
                flush=True,
            )
            v2v += turns
            if clear is not None:
                clears.append(clear)
    return {"v2v": v2v, "overhead": [t - fixed for t in v2v], "clear": clears}


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: no data"
    ms = [v * 1000 for v in values]
    return f"{name}: p50 {pct(ms, 0.5):.0f} ms, p95 {pct(ms, 0.95):.0f} ms (n={len(ms)})"


async def main() -> None:
    configure_logging("warning")  # the bot's per-turn lines would drown the figures
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--speculation", default="off,llm")
    parser.add_argument(
        "--token-ms",
        type=float,
        default=0.0,
        help="emulated time between streamed tokens (0: the whole answer at once)",
    )
    parser.add_argument(
        "--first-phrase-min",
        type=int,
        default=None,
        help="override the line's first_phrase_min_length (the early first cut)",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="embedded engines (silero, Whisper, piper) with an espeak-ng caller; only the model is emulated",
    )
    parser.add_argument("--min-speech-ms", type=int, default=None, help="override endpointing.min_speech_ms")
    args = parser.parse_args()
    print(
        f"Emulated latencies: STT {STT_S * 1000:.0f} ms, LLM first token {LLM_FIRST_TOKEN_S * 1000:.0f} ms, "
        f"TTS first byte {TTS_FIRST_BYTE_S * 1000:.0f} ms; end-of-turn silence "
        f"{store_line().endpointing.end_silence_ms} ms"
    )
    for mode in args.speculation.split(","):
        print(f"speculation={mode}:", flush=True)
        figures = await run(
            args.calls, mode, args.token_ms / 1000, args.first_phrase_min, args.offline, args.min_speech_ms
        )
        print("  " + summary("voice-to-voice at the phone", figures["v2v"]))
        print(
            "  "
            + summary("bot overhead (v2v - emulated latencies - end-of-turn silence)", figures["overhead"])
        )
        print("  " + summary("barge-in clear after speech onset", figures["clear"]))


if __name__ == "__main__":
    asyncio.run(main())
