"""End to end: the bot under Google's Text-to-Speech quotas (emulators/tts_quota.py).

Rules:
- The fixed lines of a flow (greeting, fillers, apology, goodbyes, reprompts) are synthesized once per
  process per voice and text, however many calls start while they are being synthesized: counted in the
  TTS emulator's requests, the bot's real google-cloud-texttospeech client over 127.0.0.1.
- RESOURCE_EXHAUSTED is retried within the phrase's budget, then spoken by the fallback voice
  (``TTS_FALLBACK``), counted in ``/metrics``: the caller never hears silence because of a quota.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bot.sim.rig import bench
from emulators.phone import PhoneCall
from emulators.tts_quota import TtsQuota
from tests.support.heard import APOLOGY, GREETING, NO_SILENCE_FILLER, echo_bench, heard, said
from tests.support.metrics import exposition, labelled
from tests.support.phone import ask, finished_call, greeted

FALLBACK_VOICE = "en-US-Neural2-C"  # another family: RequestsPerMinutePerProject, not the Chirp 3 HD one


async def test_fixed_lines_are_synthesized_once_however_many_calls_start_while_warming() -> None:
    async with bench(greeting=GREETING, silence_filler_s=NO_SILENCE_FILLER, tts_first_byte_s=0.3) as b:
        # Three calls ring while the server is still synthesizing its clips at start-up.
        calls = [await b.phone.dial() for _ in range(3)]
        await asyncio.gather(*(greeted(call) for call in calls))
        await asyncio.wait_for(b.server.warming, 10)
        for call in calls:
            await call.hang_up()
        for index in range(3):
            await finished_call(b, index)
        line = b.finished_calls[0].line
    texts = Counter(r["text"] for r in b.tts.synth_requests)
    clip_texts = set(line.clip_texts())
    assert GREETING in clip_texts
    assert {text: texts[text] for text in clip_texts} == dict.fromkeys(clip_texts, 1)


async def fallbacks(url: str) -> dict[tuple[str, str], float]:
    """``phonebot_tts_fallbacks_total`` by (fallback, kind), from ``GET /metrics``."""
    found = labelled(await exposition(url), "phonebot_tts_fallbacks_total", "fallback", "kind")
    return {(fallback, kind): value for (fallback, kind), value in found.items()}


@pytest.mark.parametrize("streaming", [True, False], ids=["session-per-answer", "unary-per-phrase"])
async def test_a_used_up_quota_is_spoken_by_the_fallback_voice_and_counted(streaming: bool) -> None:
    question = "Opening hours?"
    async with echo_bench(settings={"tts_fallback": FALLBACK_VOICE, "tts_streaming": streaming}) as b:
        await asyncio.wait_for(b.server.warming, 10)  # the clips, in the primary voice
        b.tts.quota = TtsQuota(chirp3_per_minute=0, clock=lambda: 0.0)  # Chirp 3 HD: used up this minute
        async with await b.phone.dial() as call:
            await greeted(call)
            await ask(call, question)
            await call.hang_up()
        bot_call = await finished_call(b)
        counted = await fallbacks(b.server.url)
    assert heard(call, bot_call) == [GREETING, *said(question)]  # whole, no apology, no silence
    assert [t.error for t in bot_call.turns] == [None]
    answer = [r for r in b.tts.synth_requests if r["text"] in said(question)]
    chirp = [r for r in answer if r["voice_name"] == "en-US-Chirp3-HD-Aoede"]
    neural = [r for r in answer if r["voice_name"] == FALLBACK_VOICE]
    if streaming:  # one refused streaming call for the answer, retried first; its texts never arrived
        assert chirp == [] and b.tts.quota.refused >= 2
    else:
        assert len(chirp) >= 2 * 2 and b.tts.quota.refused == len(chirp)  # each phrase was retried first
    spoken = sorted((r["text"], r["language_code"]) for r in neural)
    assert spoken == sorted((text, "en-US") for text in said(question))
    assert counted == {("google", "quota"): 2.0}


async def test_without_a_fallback_a_used_up_quota_is_the_apology_and_the_call_goes_on() -> None:
    async with echo_bench() as b:
        await asyncio.wait_for(b.server.warming, 10)  # the clips (the apology too) are cached
        b.tts.quota = TtsQuota(chirp3_per_minute=0, clock=lambda: 0.0)
        async with await b.phone.dial() as call:
            await greeted(call)
            await ask(call, "Opening hours?")
            b.tts.quota = None  # a new minute
            await ask(call, "Paint?")
            await call.hang_up()
        bot_call = await finished_call(b)
    assert heard(call, bot_call) == [GREETING, APOLOGY, *said("Paint?")]
    assert [t.error for t in bot_call.turns] == ["google-tts:quota", None]


QUESTIONS = ("Opening hours?", "Do you sell paint?", "Where are you?")


async def converse(call: PhoneCall, questions: tuple[str, ...], timeout_s: float = 60.0) -> None:
    """Greeting, then each question once the whole answer before it has played (its marks echoed: robust
    to a busy machine, unlike waiting for a quiet gap), then hang up."""
    async with asyncio.timeout(timeout_s), call:
        played = 1
        for question in questions:
            while len(call.marks_echoed) < played:  # noqa: ASYNC110 (the phone has no event for it)
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            await call.say(question)
            played += 2  # echo_responder answers in two phrases
        while len(call.marks_echoed) < played:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await call.hang_up()


@pytest.mark.parametrize(
    ("streaming", "limit"), [(True, 20), (False, 50)], ids=["session-per-answer", "unary-per-phrase"]
)
async def test_calls_over_the_quota_are_never_silent(streaming: bool, limit: int) -> None:
    """10 concurrent calls, 3 questions each (60 answer phrases: 60 unary requests, or 30 streaming calls
    of two phrases) under a Chirp 3 HD quota of 50 (unary) or 20 (sessions) a minute on the real clock:
    the overload of 40 calls under Google's default 200 (bench/quota.py runs that). Every caller hears
    the greeting and every whole answer, with no apology and no turn error; what the quota refused was
    retried, then spoken by the fallback voice and counted."""
    calls = 10
    quota = TtsQuota(chirp3_per_minute=limit)
    async with echo_bench(
        settings={"tts_fallback": FALLBACK_VOICE, "tts_streaming": streaming},
        tts_quota=quota,  # from the first request (the warm-up's clips)
    ) as b:
        phones = [await b.phone.dial() for _ in range(calls)]
        await asyncio.gather(*(converse(call, QUESTIONS) for call in phones))
        bot_calls = {c.call_sid: c for c in [await finished_call(b, i) for i in range(calls)]}
        counted = await fallbacks(b.server.url)
    expected = [GREETING, *(phrase for question in QUESTIONS for phrase in said(question))]
    for call in phones:
        bot_call = bot_calls[call.call_sid]
        assert heard(call, bot_call) == expected
        assert [t.error for t in bot_call.turns] == [None] * len(QUESTIONS)
    requests = Counter(r["voice_name"] for r in b.tts.synth_requests)
    fallen_back = counted.get(("google", "quota"), 0.0)
    assert fallen_back > 0 and requests[FALLBACK_VOICE] == fallen_back  # the quota was hit, and ridden out
    accepted = quota.accepted["chirp3"]
    assert accepted <= limit
    if not streaming:  # one request per phrase: each phrase was accepted once or spoken by the fallback
        assert accepted == requests["en-US-Chirp3-HD-Aoede"] - quota.refused  # refusals recorded too
        clips = len(set(next(iter(bot_calls.values())).line.clip_texts()))
        assert accepted + fallen_back == calls * len(QUESTIONS) * 2 + clips
