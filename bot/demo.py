"""``bot demo``: one whole phone call on 127.0.0.1, start to finish, that a person can follow.

Starts the OpenAI emulator (serving a SCRIPTED store conversation, not a language model), the Google
TTS emulator and the bot itself, then dials the bot from the simulated Twilio phone through the signed
webhook and the Media Streams socket. The caller asks about opening hours, asks for an order (a slow
tool, so the bot says its filler), interrupts a long answer (barge-in) and says goodbye. Each turn is
printed with what the caller said, what the bot heard, what it answered and the latencies; the call is
written as a stereo WAV (caller left, bot as heard right).

The caller's voice is tone-coded (``emulators.voice``), so the emulated transcription is exact; real
speech engines are a separate, offline-engines piece of work.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import structlog

from bot.call import Call
from bot.line import default_line
from bot.logs import configure_logging
from emulators.harness import AUTH_TOKEN, OPENAI_KEY, bench
from emulators.phone_call import PhoneCall
from emulators.store_script import StoreScript

# Emulated provider latencies: the figures the latency targets are stated against.
STT_DELAY_S = 0.15
LLM_FIRST_TOKEN_S = 0.30
TTS_FIRST_BYTE_S = 0.15
ORDER_LOOKUP_S = 1.2

CALLER_TURNS = [
    "What are your opening hours on Saturday?",
    "Can you check on my order 1001 please?",
    "What do you sell?",
    "Are you open on Sunday?",
    "Great, thanks. That's all, bye!",
]
BARGE_IN_TURN = 2  # the caller talks over the bot's answer to this one
BARGE_IN_AFTER_S = 1.5


def _print(text: str = "") -> None:
    print(text, flush=True)


async def _converse(call: PhoneCall) -> None:
    await call.wait_for_bot_audio(after=0.0, timeout=10)
    await call.wait_for_bot_silence(quiet=0.8, timeout=20)
    for i, sentence in enumerate(CALLER_TURNS):
        if i == BARGE_IN_TURN + 1:
            _print(f"  caller (talking over the bot): {sentence}")
        else:
            _print(f"  caller: {sentence}")
        await call.say(sentence)
        if i == BARGE_IN_TURN:
            await call.wait_for_bot_audio(timeout=10)
            await call.silence(BARGE_IN_AFTER_S)  # let the bot talk a while, then talk over it
            continue
        await call.wait_for_bot_audio(timeout=10)
        await call.wait_for_bot_silence(quiet=0.8, timeout=20)


def _report(call: Call | None, phone: PhoneCall) -> None:
    if call is None:
        _print("(the bot did not report the call)")
        return
    latencies = phone.turn_latencies()
    _print("\nTurn by turn (times from the moment the caller stopped speaking):")
    for turn, heard_at_phone in zip(call.turns, latencies + [None] * len(call.turns), strict=False):
        f = turn.figures()
        answer = " ".join(" ".join(turn.said[rid]) for rid in sorted(turn.said))
        _print(f"- turn {turn.number}: bot heard: {turn.transcript!r}")
        tools = ", ".join(f"{t['name']}({t['args']}) {t['ms']} ms" for t in f["tools"]) or "none"
        extras = [
            x
            for x, on in (
                ("filler said", f["tool_filler"]),
                ("interrupted by the caller", f["barge_in"]),
                ("silence filler", f["silence_filler"]),
            )
            if on
        ]
        _print(f"    answered: {answer!r}" + (f"  [{'; '.join(extras)}]" if extras else ""))
        _print(f"    tools: {tools}")
        phone_ms = "n/a" if heard_at_phone is None else f"{heard_at_phone * 1000:.0f} ms"
        _print(
            f"    stt {f['stt_ms']} ms, llm first token {f['llm_first_token_ms']} ms, first audio sent "
            f"{f['first_audio_sent_ms']} ms, heard {f['first_audio_heard_ms']} ms (bot's estimate); "
            f"voice-to-voice measured at the phone {phone_ms}"
        )


def run_demo(out_dir: str = "out") -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "demo-bot.log"
    wav_path = out / "demo-call.wav"
    with log_path.open("w", encoding="utf-8") as log_file:
        configure_logging("info", secrets=[AUTH_TOKEN, OPENAI_KEY], stream=log_file)
        try:
            started = time.monotonic()
            wav = asyncio.run(_call())
        finally:
            structlog.reset_defaults()
    wav_path.write_bytes(wav)
    _print(f"\nCall recording (stereo, caller left, bot as heard right): {wav_path}")
    _print(f"Bot log (JSON lines): {log_path}")
    _print(f"Demo finished in {time.monotonic() - started:.1f} s")
    return 0


async def _call() -> bytes:
    _print("Demo call on 127.0.0.1: the model is a SCRIPTED store conversation served by the local")
    _print("OpenAI emulator; speech is the local Google TTS emulator; the phone is a simulated Twilio.")
    async with bench(
        responder=StoreScript(first_token_delay_s=LLM_FIRST_TOKEN_S),
        line=default_line(lookup_delay_s=ORDER_LOOKUP_S),
        stt_delay_s=STT_DELAY_S,
        tts_first_byte_s=TTS_FIRST_BYTE_S,
        tts_ms_per_char=55.0,
    ) as b:
        _print(f"Dialing the bot at {b.server.url} (signed webhook, then the Media Streams socket)...")
        async with await b.phone.dial() as call:
            await _converse(call)
            await call.hang_up()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(b.call_ended.wait(), 5.0)
        _report(b.finished_calls[0] if b.finished_calls else None, call)
        return call.stereo_wav()
