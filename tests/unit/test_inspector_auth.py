"""The ``/calls`` failure limiter and session value: a burst of failures, then one per refill period; a full
bucket is forgotten; tracked addresses are bounded (least recently failed dropped first); the session value
depends on the token and is not the token."""

from __future__ import annotations

from bot.inspector.auth import FailureLimiter, cookie_header, session_value
from tests.support.clocks import FakeClock


def test_a_burst_then_one_attempt_per_refill_period() -> None:
    clock = FakeClock()
    limiter = FailureLimiter(burst=3, refill_s=5.0, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") == 0
        limiter.failed("10.0.0.1", "query")
    assert limiter.retry_after("10.0.0.1") == 5
    assert limiter.retry_after("10.0.0.2") == 0  # per address
    clock.now += 2.0
    assert limiter.retry_after("10.0.0.1") == 3
    clock.now += 3.0
    assert limiter.retry_after("10.0.0.1") == 0  # one more attempt earned
    limiter.failed("10.0.0.1", "query")
    assert limiter.retry_after("10.0.0.1") == 5
    clock.now += 15.0
    assert limiter.retry_after("10.0.0.1") == 0 and len(limiter) == 0  # full again: forgotten


def test_tracked_addresses_are_bounded() -> None:
    clock = FakeClock()
    limiter = FailureLimiter(burst=1, refill_s=60.0, max_addresses=100, clock=clock)
    for n in range(1000):
        limiter.failed(f"10.0.{n // 256}.{n % 256}", "header")
    assert len(limiter) == 100
    assert limiter.retry_after("10.0.3.231") > 0  # the most recent are kept
    assert limiter.retry_after("10.0.0.0") == 0  # the oldest were dropped


def test_session_value_is_keyed_by_the_token() -> None:
    token = "a-long-enough-token-for-the-inspector-0123"
    value = session_value(token)
    assert len(value) == 64 and token not in value and value == session_value(token)
    assert value != session_value(token + "x")
    assert cookie_header(token).endswith("; HttpOnly; Secure; SameSite=Strict; Path=/calls")
