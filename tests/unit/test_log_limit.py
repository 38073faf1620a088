"""LineLimiter and the structlog processor: a flood of rejection lines becomes a few lines and a count.

Rules checked here (``bot.telemetry.log_limit``): per reason, at most ``limit`` lines per window pass, the
rest are
counted and handed over once by ``take_suppressed``; reasons are independent; a new window starts afresh;
the processor limits only the events in ``REJECTIONS``; the summary line carries the count.
"""

from __future__ import annotations

import io
import json

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from bot.telemetry import log_limit
from bot.telemetry.log_limit import LineLimiter, log_suppressed
from bot.telemetry.logs import configure_logging


def test_the_first_lines_of_a_window_pass_and_the_rest_are_counted() -> None:
    limiter = LineLimiter(limit=3, window_s=10)
    passed = [limiter.admit("webhook_signature_rejected", now=0.1 * i) for i in range(50)]
    assert passed == [True] * 3 + [False] * 47
    assert limiter.take_suppressed() == {"webhook_signature_rejected": 47}
    assert limiter.take_suppressed() == {}


def test_reasons_have_their_own_budgets_and_a_new_window_starts_afresh() -> None:
    limiter = LineLimiter(limit=1, window_s=10)
    assert limiter.admit("a", now=0.0) and limiter.admit("b", now=0.0)
    assert not limiter.admit("a", now=9.9)
    assert limiter.admit("a", now=10.0)
    assert not limiter.admit("a", now=10.5)
    assert limiter.take_suppressed() == {"a": 2}


def test_a_clock_going_back_starts_a_new_window() -> None:
    limiter = LineLimiter(limit=1, window_s=10)
    assert limiter.admit("a", now=100.0)
    assert limiter.admit("a", now=50.0)


@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 3, allow_nan=False)), max_size=300))
def test_per_window_at_most_limit_pass_and_nothing_is_lost(events: list[tuple[str, float]]) -> None:
    limiter = LineLimiter(limit=4, window_s=10)
    now, passed, window_start = 0.0, dict[str, int](), dict[str, float]()
    total_passed = 0
    for reason, step in events:
        now += step
        if now - window_start.get(reason, -1e9) >= 10:
            window_start[reason], passed[reason] = now, 0
        if limiter.admit(reason, now):
            passed[reason] += 1
            total_passed += 1
        assert passed[reason] <= 4
    assert total_passed + sum(limiter.take_suppressed().values()) == len(events)


@pytest.fixture
def out(monkeypatch: pytest.MonkeyPatch, restore_logging: None) -> io.StringIO:
    monkeypatch.setattr(log_limit, "LIMITER", LineLimiter(limit=2, window_s=60))
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    return stream


def test_only_rejection_lines_are_limited_and_the_summary_counts_the_rest(out: io.StringIO) -> None:
    log = structlog.get_logger("bot.test")
    for _ in range(10):
        log.warning("webhook_signature_rejected", path="/status")
        log.info("call_status", status="completed")
    log_suppressed(log_limit.LIMITER, 60.0)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in events].count("webhook_signature_rejected") == 2
    assert [e["event"] for e in events].count("call_status") == 10
    [summary] = [e for e in events if e["event"] == "log_lines_suppressed"]
    assert (summary["reason"], summary["suppressed"], summary["level"]) == (
        "webhook_signature_rejected",
        8,
        "warning",
    )
