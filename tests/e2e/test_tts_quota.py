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

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from emulators.harness import bench
from emulators.openai_server import echo_responder
from emulators.tts_quota import TtsQuota

from .fault_helpers import GREETING, NO_SILENCE_FILLER, ask, finished_call, greeted, heard, said

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
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        text = await response.text()
    return {
        (s.labels["fallback"], s.labels["kind"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "phonebot_tts_fallbacks_total"
    }


async def test_a_used_up_quota_is_spoken_by_the_fallback_voice_and_counted() -> None:
    question = "Opening hours?"
    async with bench(
        responder=echo_responder,
        greeting=GREETING,
        silence_filler_s=NO_SILENCE_FILLER,
        settings={"tts_fallback": FALLBACK_VOICE},
    ) as b:
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
    assert len(chirp) >= 2 * 2 and b.tts.quota.refused == len(chirp)  # each phrase was retried first
    spoken = sorted((r["text"], r["language_code"]) for r in neural)
    assert spoken == sorted((text, "en-US") for text in said(question))
    assert counted == {("google", "quota"): 2.0}
