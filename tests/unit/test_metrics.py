"""``CallMetrics``: journal events become Prometheus series, in a registry of the server's own."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import CallMetrics


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
