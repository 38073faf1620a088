"""``bot demo``: one whole phone call on 127.0.0.1, start to finish, that a person can follow.

Starts the bot with its embedded speech engines (silero VAD, Whisper tiny.en, piper), the OpenAI
emulator serving a SCRIPTED store conversation (not a language model, but reached through the real
``openai`` SDK), and a simulated Twilio phone that dials the bot through the signed webhook and the
Media Streams socket. The bot answers with the shipped call flow, ``flows/store.yaml``. The caller
speaks with espeak-ng: asks for opening hours, for an order (a slow lookup, so the bot says its
filler), talks over a long answer (barge-in), types an order number on the keypad and says goodbye;
the bot says the flow's goodbye and hangs up through the (emulated) Twilio REST API. Each turn is
printed as it happens; at the end the call is written as a stereo WAV (caller left, bot as heard
right) and the word error rate of what the bot heard against what the caller said is printed.

``--emulated`` runs the same call against the cloud-provider emulators instead (OpenAI transcription,
Google TTS) with a tone-coded caller whose transcription is exact; it needs no offline extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from bot.call.call import Call
from bot.server.state import CALLS
from bot.sim.rig import API_KEY_SECRET, AUTH_TOKEN, OPENAI_KEY, Bench, bench
from bot.sim.store_line import SHIPPED_FLOWS
from bot.sim.wer import conversation_error_rate
from bot.telemetry.logs import configure_logging
from emulators.phone_call import PhoneCall
from emulators.store_script import StoreScript

# Emulated latencies where an emulator stands in for a cloud service.
STT_DELAY_S = 0.15
LLM_FIRST_TOKEN_S = 0.30
TTS_FIRST_BYTE_S = 0.15

CALLER_TURNS = [
    "What time do you open on Saturday?",
    "My order number is 1234.",
    "What else can you help me with?",
    "Are you open on Sunday?",
    "#1001#",  # typed on the keypad (an order number), not said
    "Thank you, goodbye!",
]
BARGE_IN_TURN = 2  # the caller talks over the bot's answer to this one
BARGE_IN_AFTER_S = 1.5


def _typed(step: str) -> str | None:
    """The keys of a keypad step ("#1001#" -> "1001#"), or None for speech."""
    return step[1:] if step.startswith("#") else None


def _print(text: str = "") -> None:
    print(text, flush=True)


@dataclass
class Demo:
    b: Bench
    phone: PhoneCall
    speak: Callable[[str], bytes]
    printed: int = 0  # turns already reported

    def live_call(self) -> Call | None:
        calls = self.b.server.app[CALLS]
        if calls:
            return next(iter(calls))
        return self.b.finished_calls[0] if self.b.finished_calls else None

    def report_new_turns(self) -> None:
        call = self.live_call()
        if call is None:
            return
        latencies = self.phone.turn_latencies()
        for turn in call.turns[self.printed :]:
            if not turn.logged and not turn.barge_in:
                return  # still being answered
            f = turn.figures()
            answer = " ".join(" ".join(turn.said[rid]) for rid in sorted(turn.said))
            notes = [
                note
                for note, on in (
                    ("filler said while the tool ran", f["tool_filler"]),
                    ("cut off by the caller", f["barge_in"]),
                    ("silence filler", f["silence_filler"]),
                )
                if on
            ]
            tools = ", ".join(f"{t['name']}({t['args']}) {t['ms']} ms" for t in f["tools"])
            spoken = sum(1 for t in call.turns[: turn.number] if t.typed is None)  # the phone times speech
            timed = turn.typed is None and spoken <= len(latencies)
            phone_ms = latencies[spoken - 1] * 1000 if timed else None
            heard = f"keypad {turn.transcript!r}" if turn.typed is not None else repr(turn.transcript)
            _print(f"    bot heard:  {heard}")
            _print(f"    bot said:   {answer!r}" + (f"  [{'; '.join(notes)}]" if notes else ""))
            if tools:
                _print(f"    tools:      {tools}")
            _print(
                f"    latency:    STT {f['stt_ms']} ms, first LLM token {f['llm_first_token_ms']} ms, first "
                f"audio sent {f['first_audio_sent_ms']} ms after the end of turn; voice-to-voice at the "
                f"phone {'n/a' if phone_ms is None else f'{phone_ms:.0f} ms'}"
            )
            self.printed += 1

    async def converse(self) -> None:
        call = self.phone
        await call.wait_for_bot_audio(after=0.0, timeout=15)
        await call.wait_for_bot_silence(quiet=0.8, timeout=30)
        for i, sentence in enumerate(CALLER_TURNS):
            keys = _typed(sentence)
            if keys is not None:
                _print(f"- caller types on the keypad: {keys}")
                for key in keys:
                    await call.send_dtmf(key)
                    await call.silence(0.2)
            else:
                _print(f"- caller{' (talking over the bot)' if i == BARGE_IN_TURN + 1 else ''}: {sentence}")
                await call.say_audio(self.speak(sentence))
            await call.wait_for_bot_audio(timeout=15)
            if i == BARGE_IN_TURN:
                await call.silence(BARGE_IN_AFTER_S)  # let the bot talk a while, then talk over it
                continue
            await self.answered()
            self.report_new_turns()

    async def answered(self) -> None:
        """Until the bot has finished answering the caller's last turn (tool filler and pauses included)."""
        async with asyncio.timeout(30):
            while True:
                await self.phone.wait_for_bot_silence(quiet=0.8, timeout=30)
                call = self.live_call()
                if call is None or call.closed or not call.turns or call.turns[-1].finished:
                    return
                await asyncio.sleep(0.1)  # a tool still running after its filler: the answer follows


def run_demo(out_dir: str = "out", *, emulated: bool = False) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "demo-bot.log"
    wav_path = out / "demo-call.wav"
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log_file:
        configure_logging("info", secrets=[AUTH_TOKEN, API_KEY_SECRET, OPENAI_KEY], stream=log_file)
        try:
            wav, wer = asyncio.run(_call(emulated, out / "recordings"))
        finally:
            structlog.reset_defaults()
    wav_path.write_bytes(wav)
    _print(f"\nWord error rate of what the bot heard against the caller's script: {wer:.1%}")
    _print(f"Call recording (stereo, caller left, bot as heard right): {wav_path}")
    _print(f"Bot log (JSON lines): {log_path}")
    _print(f"Demo finished in {time.monotonic() - started:.1f} s")
    return 0


def _caller_voice(b: Bench, emulated: bool) -> Callable[[str], bytes]:
    if emulated:
        return b.codebook.speak
    from emulators.espeak_voice import EspeakVoice

    return EspeakVoice(voice="en-us+m3", rate=140).speak


async def _call(emulated: bool, recordings: Path) -> tuple[bytes, float]:
    engines = (
        "cloud-provider emulators (OpenAI transcription, Google TTS) and a tone-coded caller"
        if emulated
        else "embedded engines: silero VAD, Whisper tiny.en, piper (caller voice: espeak-ng)"
    )
    _print("Demo call on 127.0.0.1. The language model is SCRIPTED: the local OpenAI-compatible emulator")
    _print(f"answers from keywords, through the real openai SDK. Speech: {engines}.")
    async with bench(
        responder=StoreScript(first_token_delay_s=LLM_FIRST_TOKEN_S),
        flows=str(SHIPPED_FLOWS),
        # A simulated caller with test numbers: its keys are kept, so `bot replay` can press them again.
        settings={"recordings_dir": str(recordings), "recording_keep_caller_number_and_keys": True},
        stt_delay_s=STT_DELAY_S,
        tts_first_byte_s=TTS_FIRST_BYTE_S,
        tts_ms_per_char=55.0,
        offline=not emulated,
    ) as b:
        speak = _caller_voice(b, emulated)
        await b.server.warming  # models loaded and clips synthesized before the phone rings
        _print(f"Dialing the bot at {b.server.url} (signed webhook, then the Media Streams socket)...")
        async with await b.phone.dial() as phone:
            demo = Demo(b, phone, speak)
            await demo.converse()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(b.call_ended.wait(), 15.0)  # the bot hangs up after its goodbye
            await phone.hang_up()
        demo.report_new_turns()
        call = b.finished_calls[0] if b.finished_calls else None
        for request in b.rest.requests:
            _print(f"Twilio REST: {request.method} {request.path} {request.form}")
        recorder = call.journal.recorder if call is not None else None
        if recorder is not None and recorder.recording_id:
            _print(f"The bot's recording of the call: {recordings / recorder.recording_id}")
        if call is not None and call.ending == "end_call":
            goodbye = call.line.end_call.goodbye if call.line.end_call else ""
            _print(f"The bot said its goodbye ({goodbye!r}), then hung up through Twilio REST.")
        heard = [t.transcript for t in call.turns if t.typed is None] if call else []
        said = [s for s in CALLER_TURNS if _typed(s) is None]
        return phone.stereo_wav(), conversation_error_rate(said, heard) if heard else 1.0
