"""``GET /metrics`` after a real call: Prometheus text with the call's turn, latency and the active calls."""

from __future__ import annotations

from bot.sim.rig import bench
from tests.support.metrics import scrape
from tests.support.phone import a_call_ended, ask_after_greeting


async def test_metrics_count_the_live_call_and_its_turn() -> None:
    async with bench(stt_delay_s=0.05, llm_first_token_s=0.05) as b:
        async with await b.phone.dial() as call:
            await ask_after_greeting(call, "What are your opening hours on Saturday?")
            during = await scrape(b.server.url)
            await call.hang_up()
        await a_call_ended(b)
        after = await scrape(b.server.url)
    assert during["phonebot_active_calls"] == 1 and after["phonebot_active_calls"] == 0
    assert after["phonebot_turns_total"] == 1
    assert after["phonebot_turn_voice_to_voice_seconds_count"] == 1
    assert 0 < after["phonebot_turn_voice_to_voice_seconds_sum"] < 10
    # The loop-lag watcher samples every 100 ms for as long as the server runs (the call took seconds).
    assert after["phonebot_event_loop_lag_seconds_count"] >= 5
    assert 0 <= after["phonebot_event_loop_lag_seconds_sum"] < after["phonebot_event_loop_lag_seconds_count"]
