"""What the caller heard, for the end-to-end tests of faults, waits and quotas: the phrases behind the marks
the phone echoed, and the bench settings those tests share.

Rules:
- What the caller heard comes from the phone: a mark the phone echoed means its phrase played (these
  tests send no ``clear``), and the bot's ``MarkTracker`` names the phrase behind each mark.
- ``said`` is what ``echo_responder`` answers; ``GREETING`` and ``NO_SILENCE_FILLER`` are the bench
  arguments that keep the greeting short and the silence filler out of tests about something else;
  ``echo_bench`` is the bench with all three, ``greeted_call`` a call to it ready for the fault.
- Nothing here patches the bot: the helpers only read what the bench and the phone expose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from bot.call.call import Call
from bot.server.state import DEPS
from bot.sim.rig import Bench, bench
from bot.sim.store_line import store_line
from emulators.openai_script import echo_responder
from emulators.phone import PhoneCall
from tests.support.phone import greeted

GREETING = "Hi, how can I help?"
APOLOGY = store_line().apology_text
NO_SILENCE_FILLER = 30.0  # seconds: keeps the silence filler out of tests about something else

# An answer whose stream breaks (is cut, stalls, turns to garbage) after ``SALE_BREAKS_AFTER`` chunks. Chunk 1
# is the role, chunk k+1 the k-th word, and a phrase is cut when the word after it arrives: two whole
# phrases were streamed (``SALE_HEARD``, kept in history as ``SALE_KEPT``), the third never ends.
SALE = "Our sale starts today, with tools at half price. Paint is cheaper too."
SALE_BREAKS_AFTER = 13
SALE_HEARD = ["Our sale starts today,", "with tools at half price."]
SALE_KEPT = "Our sale starts today, with tools at half price."


def echo_bench(**overrides: Any) -> AbstractAsyncContextManager[Bench]:
    """The bench of these tests: ``echo_responder`` answers, ``GREETING`` greets, the silence filler is out
    of the way; ``overrides`` are ``bench``'s other arguments."""
    shared: dict[str, Any] = {
        "responder": echo_responder,
        "greeting": GREETING,
        "silence_filler_s": NO_SILENCE_FILLER,
    }
    return bench(**(shared | overrides))


def said(question: str) -> list[str]:
    """The phrases ``echo_responder`` answers ``question`` with."""
    return ["You said:", f"{question}."]


def heard(phone: PhoneCall, bot_call: Call) -> list[str]:
    """The phrases the caller heard, in order: one per mark the phone echoed."""
    texts: list[str] = []
    for mark in phone.marks_echoed:
        response_id = int(mark[1 : mark.index("-")])  # marks are named r<response>-p<n>
        phrase = next(p for p in bot_call.tracker.phrases(response_id) if p.mark == mark)
        assert phrase.state == "played", phrase
        texts.append(phrase.text)
    return texts


def caller_speech_ends(phone: PhoneCall) -> list[float]:
    return [e.t for e in phone.events if e.kind == "caller_speech_end"]


@asynccontextmanager
async def greeted_call(b: Bench) -> AsyncIterator[PhoneCall]:
    """A call to the bench, once its greeting has played and the line's clips (apology, fillers) are cached:
    where a test of faults starts."""
    async with await b.phone.dial() as call:
        await greeted(call)
        await clips_cached(b)
        yield call


async def clips_cached(b: Bench, timeout_s: float = 10.0) -> None:
    """Until the line's pre-synthesized clips (apology, fillers) are in the bot's cache."""
    deps = b.server.app[DEPS]
    line = deps.lines.route(None)
    clips = deps.voices.for_line(line).clips
    texts = [line.apology_text, line.silence_filler_text, line.filler_text]
    texts += [tool.filler for tool in line.tools if tool.filler]
    async with asyncio.timeout(timeout_s):
        while any(clips.get(t) is None for t in texts):  # noqa: ASYNC110 (no event)
            await asyncio.sleep(0.02)
