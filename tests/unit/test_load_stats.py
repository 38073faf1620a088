"""The load benchmark's figures: quantiles, Prometheus histograms, answer and barge-in latencies."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bench.load_calls import GOODBYE, HOURS, SUNDAY, WHAT_ELSE, CallResult
from bench.load_stats import (
    answer_latencies,
    bucket_quantile,
    clear_latency,
    complete_recordings,
    metric_totals,
    pct,
    summarise,
)
from emulators.call_record import PhoneEvent

EXPOSITION = """# HELP phonebot_event_loop_lag_seconds lag
# TYPE phonebot_event_loop_lag_seconds histogram
phonebot_event_loop_lag_seconds_bucket{le="0.005"} 90.0
phonebot_event_loop_lag_seconds_bucket{le="0.01"} 98.0
phonebot_event_loop_lag_seconds_bucket{le="0.02"} 100.0
phonebot_event_loop_lag_seconds_bucket{le="+Inf"} 100.0
phonebot_event_loop_lag_seconds_count 100.0
phonebot_dropped_frames_total{kind="not_json"} 2.0
phonebot_dropped_frames_total{kind="binary"} 3.0
"""


def events(*pairs: tuple[float, str]) -> list[PhoneEvent]:
    return [PhoneEvent(t, kind) for t, kind in pairs]


@given(st.lists(st.floats(-1e6, 1e6), min_size=1), st.floats(0, 1))
def test_pct_is_one_of_the_values_and_monotonic_in_q(values: list[float], q: float) -> None:
    assert pct(values, q) in values
    assert pct(values, 0) == min(values) and pct(values, 1) == max(values)
    assert pct(values, q / 2) <= pct(values, q)


def test_pct_of_nothing_is_nan() -> None:
    assert math.isnan(pct([], 0.5))


def test_histogram_quantile_is_the_first_bucket_bound_reaching_it_and_totals_sum_labels() -> None:
    assert bucket_quantile(EXPOSITION, "phonebot_event_loop_lag_seconds", 0.5) == 0.005
    assert bucket_quantile(EXPOSITION, "phonebot_event_loop_lag_seconds", 0.99) == 0.02
    assert math.isnan(bucket_quantile(EXPOSITION, "phonebot_missing", 0.99))
    assert metric_totals(EXPOSITION)["phonebot_dropped_frames_total"] == 5


def test_each_utterance_is_answered_by_the_first_bot_audio_before_the_caller_speaks_again() -> None:
    call = CallResult(0, 60, said=[HOURS, WHAT_ELSE, SUNDAY])
    call.events = events(
        (1.0, "caller_speech_start"), (2.0, "caller_speech_end"), (3.1, "bot_audio_start"),
        (5.0, "caller_speech_start"), (6.0, "caller_speech_end"), (7.2, "bot_audio_start"),
        (8.0, "caller_speech_start"), (8.15, "clear_received"), (9.0, "caller_speech_end"),
    )  # fmt: skip
    latencies = answer_latencies(call)
    assert set(latencies) == {0, 1} and math.isclose(latencies[1], 1.2)
    clear = clear_latency(call.events, call.said)
    assert clear is not None and math.isclose(clear, 0.15)


def test_summary_counts_failures_lost_recordings_and_uses_only_plain_turns(tmp_path: Path) -> None:
    (tmp_path / "day" / "CA1").mkdir(parents=True)
    (tmp_path / "day" / "CA1" / "meta.json").write_text('{"call_sid": "CA1", "complete": true}')
    (tmp_path / "day" / "CA2").mkdir(parents=True)
    (tmp_path / "day" / "CA2" / "meta.json").write_text('{"call_sid": "CA2", "complete": false}')
    assert complete_recordings(tmp_path) == {"CA1"}
    good = CallResult(0, 60, said=[HOURS, GOODBYE], frames_played=100, gaps=[0.04], call_sid="CA1")
    good.events = events(
        (1.0, "caller_speech_end"), (2.5, "bot_audio_start"), (3.0, "caller_speech_start"),
        (4.0, "caller_speech_end"), (5.2, "bot_audio_start"),
    )  # fmt: skip
    failed = CallResult(0, 30, error="TimeoutError: x", call_sid="CA2")
    figures = summarise(
        2, [good, failed], fixed_s=1.1, cpu_s=3.0, cores={"bot": 0.5}, idle_rss_mb=100, peak_rss_mb=101,
        metrics=EXPOSITION, phone_lags=[0.001], recordings=tmp_path, log_text="",
        tts_requests={"unary": 3, "streaming": 6},
    )  # fmt: skip
    assert (figures.calls, figures.failed, figures.lost_recordings) == (2, 1, 1)
    minutes = (60 + 30) / 60
    assert math.isclose(figures.tts_unary_per_call_minute, 3 / minutes)
    assert math.isclose(figures.tts_streaming_per_call_minute, 6 / minutes)
    assert figures.row().endswith(f"{9 / minutes:5.1f} ({3 / minutes:.1f}+{6 / minutes:.1f})")
    assert math.isclose(figures.overhead_p50_ms, 100)  # only the goodbye: 1.2 s - 1.1 s
    assert figures.stutters == 1 and figures.pacing_max_ms == 40 and figures.pacing_p50_ms == 0
    assert figures.cpu_s_per_call_minute == 2.0 and figures.rss_per_call_mb == 0.5
    assert figures.dropped_frames == 5 and figures.bot_lag_p99_ms == 20
