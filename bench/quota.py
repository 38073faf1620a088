"""Quota benchmark: N concurrent calls under Google's default Text-to-Speech quota, no call silent.

One process on 127.0.0.1 (bot/sim/rig.py): the bot, the provider emulators and N simulated phones.
The TTS emulator enforces Google's default quotas (``TtsQuota()``: 200 Chirp 3 HD requests per minute per
project, 100 concurrent streams; https://docs.cloud.google.com/text-to-speech/quotas) on the real clock;
the bot runs with ``TTS_FALLBACK`` (a Neural2 voice: its own quota) unless ``--no-fallback``. Each call:
the greeting, then Q questions, each asked once the whole answer before it has played (two phrases:
``echo_responder``), then hang up.

It prints: calls that heard everything (greeting and every whole answer, no apology, no turn error),
TTS requests (Chirp 3 HD accepted, refused including retries, the fallback voice's), the fallbacks
counted in ``/metrics``, the caller's wait from the end of each question to the answer's first sound
(p50/p95/max) and the longest silence inside an answer (an answer's phrases back to back: 0).

    python bench/quota.py [--calls 40] [--questions 3] [--quota 200] [--no-fallback] [--streaming]

Figures, not assertions. Bounded: every call has 120 s.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections import Counter

import structlog

from bot.sim.rig import bench
from emulators.openai_script import echo_responder
from emulators.phone_call import PhoneCall
from emulators.tts_quota import TtsQuota

GREETING = "Hi, how can I help?"
QUESTIONS = ("Opening hours?", "Do you sell paint?", "Where are you?", "Any deals today?", "Parking?")
FALLBACK_VOICE = "en-US-Neural2-C"
CALL_TIMEOUT_S = 120.0


async def converse(call: PhoneCall, questions: tuple[str, ...]) -> None:
    async with asyncio.timeout(CALL_TIMEOUT_S), call:
        played = 1  # the greeting's mark
        for question in questions:
            while len(call.marks_echoed) < played:  # noqa: ASYNC110 (the phone has no event for it)
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            await call.say(question)
            played += 2  # echo_responder: "You said:" and the question
        while len(call.marks_echoed) < played:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await call.hang_up()


def gaps_inside_answers(call: PhoneCall) -> list[float]:
    """Silences between bot audio with no caller speech in between (inside one answer)."""
    gaps, last_end = [], None
    for event in call.events:
        if event.kind == "caller_speech_start":
            last_end = None
        elif event.kind == "bot_audio_end":
            last_end = event.t
        elif event.kind == "bot_audio_start" and last_end is not None:
            gaps.append(max(0.0, event.t - last_end))
    return gaps


def quantile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else 0.0


async def run(
    calls: int, questions: tuple[str, ...], fallback: bool, per_minute: int | None, streaming: bool
) -> None:
    settings: dict[str, object] = {"tts_streaming": streaming}
    if fallback:
        settings["tts_fallback"] = FALLBACK_VOICE
    quota = TtsQuota(chirp3_per_minute=per_minute)  # from the first request (the warm-up's clips)
    async with bench(
        responder=echo_responder, greeting=GREETING, silence_filler_s=30.0, settings=settings, tts_quota=quota
    ) as b:
        phones = [await b.phone.dial() for _ in range(calls)]
        started = time.monotonic()
        results = await asyncio.gather(
            *(converse(call, questions) for call in phones), return_exceptions=True
        )
        elapsed = time.monotonic() - started
        async with asyncio.timeout(30):
            while len(b.finished_calls) < calls:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        metrics = b.server.deps.metrics
        assert metrics is not None
        fallbacks = metrics.registry.get_sample_value(
            "phonebot_tts_fallbacks_total", {"fallback": "google", "kind": "quota"}
        )
    by_sid = {c.call_sid: c for c in b.finished_calls}
    expected = [GREETING] + [p for q in questions for p in ("You said:", f"{q}.")]
    whole = 0
    errors: Counter[str] = Counter()
    for call, result in zip(phones, results, strict=True):
        bot_call = by_sid.get(call.call_sid)
        if isinstance(result, BaseException) or bot_call is None:
            errors[type(result).__name__] += 1
            continue
        heard = []
        for mark in call.marks_echoed:  # marks are named r<response>-p<n>; echoed once played
            phrases = bot_call.tracker.phrases(int(mark[1 : mark.index("-")]))
            heard += [p.text for p in phrases if p.mark == mark]
        turn_errors = [t.error for t in bot_call.turns if t.error]
        errors.update(turn_errors)
        whole += heard == expected and not turn_errors
    requests = Counter(r["voice_name"] for r in b.tts.synth_requests)
    waits = [w for call in phones for w in call.turn_latencies()]
    gaps = [g for call in phones for g in gaps_inside_answers(call)]
    accepted = quota.accepted["chirp3"]
    lines = [
        f"{calls} calls x {len(questions)} questions in {elapsed:.1f} s, "
        f"Chirp 3 HD quota {per_minute or 'none'}/min, fallback {'on' if fallback else 'off'}, "
        f"{'streaming' if streaming else 'unary'}",
        f"  heard everything: {whole}/{calls}; errors: {dict(errors) or 'none'}",
        f"  Chirp 3 HD requests: {accepted} accepted, {quota.refused} refused (retries included); "
        f"{FALLBACK_VOICE}: {requests[FALLBACK_VOICE]}; /metrics fallbacks: {fallbacks or 0:.0f}",
        f"  wait for the answer: p50 {quantile(waits, 0.5):.2f} s, p95 {quantile(waits, 0.95):.2f} s, "
        f"max {max(waits, default=0.0):.2f} s (n={len(waits)})",
        f"  silence inside an answer: max {max(gaps, default=0.0):.2f} s, p95 {quantile(gaps, 0.95):.2f} s "
        f"(n={len(gaps)})",
    ]
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--questions", type=int, default=3, choices=range(1, len(QUESTIONS) + 1))
    parser.add_argument("--no-fallback", action="store_true")
    parser.add_argument("--quota", type=int, default=200, help="Chirp 3 HD requests per minute; 0: none")
    parser.add_argument("--streaming", action="store_true", help="TTS_STREAMING=true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    questions = QUESTIONS[: args.questions]
    asyncio.run(run(args.calls, questions, not args.no_fallback, args.quota or None, args.streaming))


if __name__ == "__main__":
    main()
