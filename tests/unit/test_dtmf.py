"""DtmfCollector: entries end on the finish key, on max_digits, or after a pause; no digit is lost."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.keypad import KEYS, DtmfCollector


def test_finish_key_returns_digits_without_it() -> None:
    dtmf = DtmfCollector()
    assert dtmf.push("1", 0.0) is None
    assert dtmf.push("2", 0.5) is None
    assert dtmf.push("*", 0.7) is None
    assert dtmf.push("#", 1.0) == "12*"
    assert not dtmf.collecting
    assert dtmf.deadline is None


def test_finish_key_alone_is_ignored() -> None:
    dtmf = DtmfCollector()
    assert dtmf.push("#", 0.0) is None
    assert dtmf.push("#", 0.1) is None
    assert not dtmf.collecting
    assert dtmf.push("4", 0.2) is None
    assert dtmf.push("#", 0.3) == "4"


def test_other_finish_key() -> None:
    dtmf = DtmfCollector(finish_key="*")
    assert dtmf.push("#", 0.0) is None  # an ordinary key now
    assert dtmf.push("9", 0.1) is None
    assert dtmf.push("*", 0.2) == "#9"


@pytest.mark.parametrize("key", ["", "a", "A", "12", " ", "٣", "w", "\n"])
def test_invalid_keys_are_ignored(key: str) -> None:
    dtmf = DtmfCollector()
    dtmf.push("5", 0.0)
    assert dtmf.push(key, 4.0) is None
    assert dtmf.deadline == 5.0  # the timer did not move
    assert dtmf.push("#", 4.5) == "5"


def test_invalid_key_does_not_start_an_entry() -> None:
    dtmf = DtmfCollector()
    assert dtmf.push("x", 0.0) is None
    assert not dtmf.collecting
    assert dtmf.poll(100.0) is None


def test_max_digits_returns_at_once() -> None:
    dtmf = DtmfCollector(max_digits=3)
    assert dtmf.push("1", 0.0) is None
    assert dtmf.push("2", 0.0) is None
    assert dtmf.push("3", 0.0) == "123"
    assert not dtmf.collecting
    assert dtmf.push("4", 0.1) is None
    assert dtmf.collecting


def test_max_digits_one() -> None:
    dtmf = DtmfCollector(max_digits=1)
    assert dtmf.push("7", 0.0) == "7"
    assert dtmf.push("8", 10.0) == "8"
    assert dtmf.push("#", 11.0) is None


def test_poll_returns_after_timeout_since_last_key() -> None:
    dtmf = DtmfCollector(timeout_s=2.0)
    dtmf.push("1", 10.0)
    assert dtmf.deadline == 12.0
    dtmf.push("2", 11.0)
    assert dtmf.deadline == 13.0
    assert dtmf.poll(12.5) is None
    assert dtmf.collecting
    assert dtmf.poll(13.0) == "12"  # exactly at the deadline
    assert dtmf.poll(13.0) is None
    assert not dtmf.collecting
    assert dtmf.deadline is None


def test_poll_without_entry_is_none() -> None:
    dtmf = DtmfCollector()
    assert dtmf.poll(0.0) is None
    assert dtmf.poll(1e9) is None


def test_push_after_deadline_ends_the_stale_entry() -> None:
    dtmf = DtmfCollector(timeout_s=1.0)
    dtmf.push("1", 0.0)
    dtmf.push("2", 0.5)
    assert dtmf.push("3", 5.0) == "12"  # nobody polled in time
    assert dtmf.collecting
    assert dtmf.deadline == 6.0
    assert dtmf.push("#", 5.5) == "3"


def test_finish_key_after_deadline_returns_the_stale_entry() -> None:
    dtmf = DtmfCollector(timeout_s=1.0)
    dtmf.push("1", 0.0)
    assert dtmf.push("#", 3.0) == "1"
    assert not dtmf.collecting


def test_collecting_and_deadline() -> None:
    dtmf = DtmfCollector(timeout_s=3.0)
    assert not dtmf.collecting and dtmf.deadline is None
    dtmf.push("0", 1.0)
    assert dtmf.collecting and dtmf.deadline == 4.0


@pytest.mark.parametrize(
    "kwargs",
    [{"finish_key": "x"}, {"finish_key": ""}, {"timeout_s": 0.0}, {"timeout_s": -1.0}, {"max_digits": 0}],
)
def test_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DtmfCollector(**kwargs)  # type: ignore[arg-type]


_keys = st.sampled_from([*sorted(KEYS), "x", "", "10"])
_events = st.lists(
    st.tuples(st.sampled_from(["push", "poll"]), _keys, st.floats(0.0, 20.0, allow_nan=False)), max_size=60
)


@given(
    events=_events,
    finish_key=st.sampled_from(["#", "*", "0"]),
    timeout_s=st.floats(0.1, 10.0),
    max_digits=st.integers(1, 8),
    monotonic=st.booleans(),
)
def test_every_digit_lands_in_exactly_one_entry(
    events: list[tuple[str, str, float]], finish_key: str, timeout_s: float, max_digits: int, monotonic: bool
) -> None:
    dtmf = DtmfCollector(finish_key=finish_key, timeout_s=timeout_s, max_digits=max_digits)
    pushed: list[str] = []
    entries: list[str] = []
    now = 0.0
    for action, key, t in events:
        now = now + t if monotonic else t
        if action == "push":
            if key in KEYS and key != finish_key:
                pushed.append(key)
            result = dtmf.push(key, now)
        else:
            result = dtmf.poll(now)
        if result is not None:
            entries.append(result)
        deadline = dtmf.deadline
        assert dtmf.collecting == (deadline is not None)
    final = dtmf.poll(float("inf"))
    if final is not None:
        entries.append(final)
    assert not dtmf.collecting
    assert all(entries), "an entry is never empty"
    assert all(finish_key not in e and len(e) <= max_digits for e in entries)
    assert "".join(entries) == "".join(pushed)
