"""RecentCallbacks and callback_key: a signed callback seen again within the TTL is a repeat; memory bounded.

Rules checked here (``bot.server.twilio.callback_dedupe``): the same key within ``ttl_s`` of its last
sighting is
a repeat, after it is new again; a repeat refreshes its entry; at most ``max_keys`` are kept, the least
recently seen dropped first; the key separates path, signature and body.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.server.twilio.callback_dedupe import RecentCallbacks, callback_key

KEY = callback_key("/status", "sig", b"CallSid=CA1&CallStatus=completed")


def test_the_same_callback_within_the_ttl_is_a_repeat_and_after_it_is_new() -> None:
    recent = RecentCallbacks(ttl_s=600, max_keys=10)
    assert not recent.seen_before(KEY, now=0.0)
    assert all(recent.seen_before(KEY, now=t) for t in (1.0, 300.0, 599.0))
    assert not recent.seen_before(KEY, now=599.0 + 600.0)  # 600 s after its last sighting


def test_a_replay_loop_keeps_refreshing_its_own_entry() -> None:
    recent = RecentCallbacks(ttl_s=10, max_keys=10)
    assert not recent.seen_before(KEY, now=0.0)
    assert all(recent.seen_before(KEY, now=float(t)) for t in range(9, 100, 9))


def test_distinct_callbacks_are_not_repeats() -> None:
    recent = RecentCallbacks()
    ringing = callback_key("/status", "sig1", b"CallStatus=ringing")
    completed = callback_key("/status", "sig2", b"CallStatus=completed")
    assert not recent.seen_before(ringing, now=0.0)
    assert not recent.seen_before(completed, now=0.0)
    assert recent.seen_before(ringing, now=1.0) and recent.seen_before(completed, now=1.0)


def test_past_max_keys_the_least_recently_seen_is_forgotten() -> None:
    recent = RecentCallbacks(ttl_s=600, max_keys=2)
    a, b, c = (callback_key("/status", s, b"") for s in "abc")
    recent.seen_before(a, now=0.0)
    recent.seen_before(b, now=1.0)
    recent.seen_before(a, now=2.0)  # a is now the most recent
    recent.seen_before(c, now=3.0)  # evicts b
    assert len(recent) == 2
    assert recent.seen_before(a, now=4.0)
    assert not recent.seen_before(b, now=5.0)


def test_the_key_separates_path_signature_and_body() -> None:
    assert callback_key("/status", "ab", b"c") != callback_key("/status", "a", b"bc")
    assert callback_key("/status", "s", b"x") != callback_key("/stream-status", "s", b"x")
    assert len(KEY) == 32


def test_nonsense_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        RecentCallbacks(ttl_s=0)
    with pytest.raises(ValueError):
        RecentCallbacks(max_keys=0)


@given(
    st.lists(st.tuples(st.integers(0, 30), st.floats(0, 5, allow_nan=False)), max_size=200),
    st.integers(1, 8),
)
def test_never_more_than_max_keys_and_a_repeat_was_seen_within_the_ttl(
    events: list[tuple[int, float]], max_keys: int
) -> None:
    recent = RecentCallbacks(ttl_s=20, max_keys=max_keys)
    now, last_seen = 0.0, dict[int, float]()
    for name, step in events:
        now += step
        repeat = recent.seen_before(callback_key("/status", str(name), b""), now)
        if repeat:
            assert name in last_seen and now - last_seen[name] < 20
        last_seen[name] = now
        assert len(recent) <= max_keys
