"""Phone scripts for the end-to-end tests: what a caller does and waits for, and waits on the bot's side.

Rules:
- A script only drives the emulated phone (``emulators.phone.PhoneCall``) and reads what the bench
  exposes (``Bench.finished_calls``); it patches nothing.
- Waits are bounded and generous (a loaded 2-core machine): they fail a broken test, never a slow one.
  ``quiet`` (how long the bot must stay silent for its speech to count as played out) is a parameter,
  because some tests want a turn to end sooner than others.
- Phone times are seconds since dial; the bot and the emulators use ``time.monotonic()``. ``PhoneClock``
  brackets the dial moment, so a comparison between the two uses the conservative end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.call.call import Call
from bot.sim.rig import Bench
from emulators.phone import PhoneCall, PhoneEvent

QUIET_S = 0.6  # the bot's speech counts as played out after this much silence at the phone


async def greeted(call: PhoneCall, *, quiet: float = QUIET_S) -> float:
    """Until the bot's opening line (the greeting, or the resume line on a resumed stream) has played out;
    the phone time its audio ended."""
    await call.wait_for_bot_audio(after=0.0, timeout=10)
    return await call.wait_for_bot_silence(quiet=quiet, timeout=15)


async def ask(call: PhoneCall, question: str, *, quiet: float = QUIET_S) -> float:
    """Say ``question`` and wait until the bot's reply has played out; the phone time its audio started."""
    await call.say(question)
    started = await call.wait_for_bot_audio(timeout=10)
    await call.wait_for_bot_silence(quiet=quiet, timeout=15)
    return started


async def ask_after_greeting(call: PhoneCall, question: str, *, quiet: float = QUIET_S) -> None:
    """The common short call: hear the whole greeting, say ``question``, hear the whole answer."""
    await greeted(call, quiet=quiet)
    await ask(call, question, quiet=quiet)


async def a_call_ended(b: Bench, timeout_s: float = 10.0) -> None:
    """Until the bench's bot has ended a call (``Bench.call_ended``), whichever it was."""
    async with asyncio.timeout(timeout_s):
        await b.call_ended.wait()


async def finished_call(
    b: Bench, index: int = 0, *, call_sid: str | None = None, timeout_s: float = 10.0
) -> Call:
    """The ``index``-th call the bot finished, or the one of ``call_sid`` (waits for it)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if call_sid is None:
                found = b.finished_calls[index : index + 1]
            else:
                found = [c for c in b.finished_calls if c.call_sid == call_sid]
            if found:
                return found[0]
            await asyncio.sleep(0.02)  # bench.call_ended cannot say which call ended


async def one_call(
    b: Bench,
    to: str,
    sentence: str | None = None,
    *,
    after_greeting: Callable[[], Awaitable[None]] | None = None,
) -> tuple[PhoneCall, Call]:
    """Dial ``to``, hear the greeting, optionally say ``sentence`` and hear the answer, hang up; the phone's
    call (it saw no protocol error) and the bot's finished ``Call``."""
    async with await b.phone.dial(to=to) as call:
        await greeted(call)
        if after_greeting is not None:
            await after_greeting()
        if sentence is not None:
            await ask(call, sentence)
        await call.hang_up()
    assert call.protocol_errors == []
    return call, await finished_call(b, call_sid=call.call_sid)


def events(call: PhoneCall, kind: str) -> list[PhoneEvent]:
    """The phone's events of ``kind``, in order."""
    return [e for e in call.events if e.kind == kind]


def last_speech_end(call: PhoneCall) -> float:
    """The phone time the caller last stopped speaking."""
    return events(call, "caller_speech_end")[-1].t


async def until(what: str, check: Callable[[], object], timeout_s: float = 15.0) -> None:
    """Until ``check()`` is true; ``what`` names it in the failure."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass(frozen=True)
class PhoneClock:
    """Maps phone event times (seconds since dial) onto ``time.monotonic()``, as a bracket."""

    dialled_after: float
    dialled_before: float

    def latest(self, t: float) -> float:
        """The latest monotonic instant the phone time ``t`` can be."""
        return self.dialled_before + t

    def phone_time_at_least(self, monotonic: float) -> float:
        """A phone time no later than the monotonic instant ``monotonic``."""
        return monotonic - self.dialled_before


async def dial(b: Bench) -> tuple[PhoneCall, PhoneClock]:
    """Dial the bench's bot; the call and the clock bracketing the dial moment."""
    before = time.monotonic()
    call = await b.phone.dial()
    return call, PhoneClock(before, time.monotonic())
