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

from emulators.harness import bench

from .fault_helpers import GREETING, NO_SILENCE_FILLER, finished_call, greeted


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
