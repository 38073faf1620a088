"""The load benchmark's callers: N slots, each placing the scripted call again and again for a while.

Rules:
- Slot i starts ``i * ramp / n`` seconds in, so the calls' turns do not march in step.
- A slot places calls back to back until ``duration`` has passed since the first slot started (the last
  call is always finished, never cut).
- Callers pause a random 0.3-3 s (seeded per call) before each utterance, as people do: the calls' turns
  drift apart instead of hitting the bot in waves.
- A call that fails (the bot refuses it, a wait times out, the phone sees a protocol error) is kept with
  its error: the figures count it, nothing raises out of a slot.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from emulators.call_record import PhoneEvent
from emulators.phone import SimulatedPhone
from emulators.phone_call import PhoneCall
from emulators.voice import ToneCodebook

HOURS = "What time do you open on Saturday?"
ORDER = "My order number is 1234."
WHAT_ELSE = "What else can you help me with?"
SUNDAY = "Are you open on Sunday?"
GOODBYE = "Thank you, goodbye!"
SENTENCES = [HOURS, ORDER, WHAT_ELSE, SUNDAY, GOODBYE]
# Utterances answered by the model's words straight away (no tool round first): the overhead figure.
PLAIN = frozenset({WHAT_ELSE, GOODBYE})
BARGE_IN_AFTER_S = 1.0
CALL_TIMEOUT_S = 120.0


@dataclass
class CallResult:
    started: float  # time.monotonic()
    ended: float
    events: list[PhoneEvent] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # utterances in order
    frames_played: int = 0
    gaps: list[float] = field(default_factory=list)
    error: str | None = None
    call_sid: str = ""

    @property
    def minutes(self) -> float:
        return (self.ended - self.started) / 60


async def _script(call: PhoneCall, voice: dict[str, bytes], said: list[str], think: random.Random) -> None:
    async def say(sentence: str, *, pause: bool = True) -> None:
        if pause:
            await asyncio.sleep(think.uniform(0.3, 3.0))
        said.append(sentence)
        await call.say_audio(voice[sentence])

    await call.wait_for_bot_audio(after=0.0, timeout=15)
    await call.wait_for_bot_silence(quiet=0.8, timeout=30)
    await say(HOURS)
    await call.wait_for_bot_audio(timeout=15)
    await call.wait_for_bot_silence(quiet=0.8, timeout=30)
    await say(ORDER)
    await call.wait_for_bot_audio(timeout=15)
    await call.wait_for_bot_silence(quiet=2.5, timeout=30)  # filler, the slow lookup, then the answer
    await say(WHAT_ELSE)
    await call.wait_for_bot_audio(timeout=15)
    await asyncio.sleep(BARGE_IN_AFTER_S)
    await say(SUNDAY, pause=False)  # talks over the answer
    await call.wait_for_bot_audio(timeout=15)
    await call.wait_for_bot_silence(quiet=0.8, timeout=30)
    await say(GOODBYE)
    await call.wait_closed(timeout=30)  # the goodbye line, then the bot hangs up


async def place_call(phone: SimulatedPhone, voice: dict[str, bytes], seed: int) -> CallResult:
    result = CallResult(started=time.monotonic(), ended=0.0)
    try:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            call = await phone.dial(to="+15550100")
            result.call_sid = call.call_sid
            try:
                await _script(call, voice, result.said, random.Random(seed))
            finally:
                await call.hang_up()
                result.events = list(call.events)
                result.frames_played = call.playback.frames_played
                result.gaps = list(call.playback.gaps)
            if call.protocol_errors:
                result.error = "protocol error: " + call.protocol_errors[0]
    except Exception as exc:  # a failed call is a figure, not a crash
        result.error = f"{type(exc).__name__}: {exc}"[:200]
    result.ended = time.monotonic()
    return result


async def run_slots(
    bot_url: str, codebook: ToneCodebook, n: int, ramp: float, duration: float
) -> list[CallResult]:
    """``n`` concurrent callers for ``duration`` seconds; every call's result."""
    from bot.sim.rig import AUTH_TOKEN, PUBLIC_BASE_URL

    phone = SimulatedPhone(
        bot_url=bot_url, auth_token=AUTH_TOKEN, public_base_url=PUBLIC_BASE_URL, codebook=codebook
    )
    voice = {sentence: codebook.speak(sentence) for sentence in SENTENCES}
    start = time.monotonic()
    results: list[CallResult] = []

    async def slot(i: int) -> None:
        await asyncio.sleep(i * ramp / n)
        while True:
            results.append(await place_call(phone, voice, seed=len(results)))
            if time.monotonic() - start >= duration:
                return

    await asyncio.gather(*(slot(i) for i in range(n)))
    return results
