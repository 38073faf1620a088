"""The smallest whole call: greeting, one question, a spoken answer."""

from __future__ import annotations

from bot.sim.rig import bench
from tests.support.phone import ask_after_greeting


async def test_question_answered_in_speech() -> None:
    async with bench(stt_delay_s=0.05, llm_first_token_s=0.05) as b:
        async with await b.phone.dial() as call:
            await ask_after_greeting(call, "What are your opening hours on Saturday?")
            await call.hang_up()
        assert call.protocol_errors == []
    spoken = [r["text"] for r in b.tts.synth_requests]
    assert any("10 am to 4 pm" in t for t in spoken), spoken
    assert b.openai.transcription_requests[0]["text"] == "What are your opening hours on Saturday?"
    call_obj = b.finished_calls[0]
    assert call_obj.turns[0].transcript == "What are your opening hours on Saturday?"
