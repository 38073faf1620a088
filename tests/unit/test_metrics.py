"""``CallMetrics``: journal events and Twilio status callbacks become Prometheus series, in a registry
of the server's own."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from bot.server.twilio.status import CALL_STATUSES, CallStatus, note_call_status
from bot.telemetry.metrics import RECENT_LAG_SAMPLES, CallMetrics


def samples(metrics: CallMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_events_feed_counters_and_latency_histograms() -> None:
    metrics = CallMetrics()
    live = {"a", "b"}
    metrics.count_active(lambda: len(live))
    metrics.observe("turn", {"voice_to_voice_ms": 900, "first_audio_sent_ms": 400, "tool_filler": True})
    metrics.observe("turn", {"voice_to_voice_ms": None, "silence_filler": True})
    metrics.observe("provider_error", {"provider": "openai-chat", "kind": "stall"})
    metrics.observe("barge_in", {"clear_ms": 1})
    metrics.observe("invalid", {"kind": "bad_json"})
    metrics.observe("invalid", {"kind": "bad_json"})
    metrics.observe("call_ended", {"ended_by": "end_call"})
    metrics.observe("something_else", {})
    got = samples(metrics)
    assert got[("phonebot_active_calls", ())] == 2
    assert got[("phonebot_turns_total", ())] == 2
    assert got[("phonebot_turn_voice_to_voice_seconds_count", ())] == 1
    assert got[("phonebot_turn_voice_to_voice_seconds_bucket", (("le", "1.0"),))] == 1
    assert got[("phonebot_turn_voice_to_voice_seconds_bucket", (("le", "0.75"),))] == 0
    assert got[("phonebot_turn_first_audio_sent_seconds_sum", ())] == 0.4
    assert got[("phonebot_fillers_total", (("kind", "tool"),))] == 1
    assert got[("phonebot_fillers_total", (("kind", "silence"),))] == 1
    assert got[("phonebot_provider_errors_total", (("kind", "stall"), ("provider", "openai-chat")))] == 1
    assert got[("phonebot_barge_ins_total", ())] == 1
    assert got[("phonebot_dropped_frames_total", (("kind", "bad_json"),))] == 2
    assert got[("phonebot_calls_total", (("ended_by", "end_call"),))] == 1


def test_two_servers_never_share_series() -> None:
    first, second = CallMetrics(), CallMetrics()
    first.observe("barge_in", {})
    assert samples(first)[("phonebot_barge_ins_total", ())] == 1
    assert samples(second)[("phonebot_barge_ins_total", ())] == 0


def test_status_callbacks_count_by_call_status_and_unknown_ones_as_other() -> None:
    metrics = CallMetrics()
    for status in ("ringing", "completed", "completed", "on-fire"):
        note_call_status({"CallSid": "CA1", "CallStatus": status, "From": "+15550199"}, metrics)
    got = samples(metrics)
    assert got[("phonebot_call_status_total", (("status", "completed"),))] == 2
    assert got[("phonebot_call_status_total", (("status", "ringing"),))] == 1
    assert got[("phonebot_call_status_total", (("status", "other"),))] == 1


@pytest.mark.parametrize(
    ("duration", "seconds"), [("37", 37), ("0", 0), ("", None), ("-4", None), ("1.5", None), ("²", None)]
)
def test_status_callback_duration_is_whole_seconds_or_none(duration: str, seconds: int | None) -> None:
    assert CallStatus.from_form({"CallDuration": duration}).duration_s == seconds


@given(st.dictionaries(st.sampled_from(["CallSid", "CallStatus", "CallDuration", "From"]), st.text()))
def test_any_status_callback_form_is_read_into_bounded_values(form: dict[str, str]) -> None:
    status = CallStatus.from_form(form)
    assert len(status.call_sid) <= 64 and len(status.status) <= 64
    assert status.metric_label in CALL_STATUSES | {"other"}
    assert status.duration_s is None or 0 <= status.duration_s < 10**9


async def test_loop_lag_watcher_observes_until_cancelled() -> None:
    metrics = CallMetrics()
    watcher = asyncio.create_task(metrics.watch_loop_lag(interval_s=0.01))
    await asyncio.sleep(0.2)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    text = metrics.exposition().decode()
    [count] = [line for line in text.splitlines() if line.startswith("phonebot_event_loop_lag_seconds_count")]
    assert float(count.split()[-1]) >= 3


async def test_recent_loop_lag_is_the_worst_of_the_last_samples() -> None:
    """What /readyz sheds load on: a blocked loop shows at once, and is forgotten RECENT_LAG_SAMPLES later."""
    metrics = CallMetrics()
    assert metrics.recent_loop_lag_s() == 0.0
    watcher = asyncio.create_task(metrics.watch_loop_lag(interval_s=0.01))
    try:
        await asyncio.sleep(0.03)
        time.sleep(0.4)  # noqa: ASYNC251 - the loop blocked, as a long synchronous call would block it
        await asyncio.sleep(0.03)
        assert metrics.recent_loop_lag_s() >= 0.35
        await asyncio.sleep(0.01 * RECENT_LAG_SAMPLES * 3)
        assert metrics.recent_loop_lag_s() < 0.35
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
