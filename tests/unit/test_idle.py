"""SilenceWatch: reprompt a quiet caller, give up after the last reprompt, end over-long calls."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.silence import Due, SilenceWatch


def watch(
    reprompt_after_s: float = 5.0,
    max_reprompts: int = 2,
    max_call_s: float = 600.0,
    started_at: float = 100.0,
) -> SilenceWatch:
    return SilenceWatch(
        reprompt_after_s=reprompt_after_s,
        max_reprompts=max_reprompts,
        max_call_s=max_call_s,
        started_at=started_at,
    )


def test_nothing_due_before_silence_is_long_enough() -> None:
    w = watch()
    assert w.due(100.0) is None
    assert w.due(104.9) is None
    assert w.next_deadline() == 105.0


def test_reprompts_then_gives_up() -> None:
    w = watch()
    assert w.due(105.0) is Due.REPROMPT
    assert w.reprompts == 1
    assert w.next_deadline() == 110.0  # the timer restarted at the reprompt
    assert w.due(109.0) is None
    assert w.due(110.0) is Due.REPROMPT
    assert w.reprompts == 2
    assert w.due(115.0) is Due.GIVE_UP
    assert w.ended
    assert w.next_deadline() is None
    assert w.due(1000.0) is None


def test_late_poll_gives_one_reprompt_at_a_time() -> None:
    w = watch()
    assert w.due(200.0) is Due.REPROMPT  # long overdue, still just one
    assert w.due(200.0) is None
    assert w.next_deadline() == 205.0


def test_zero_reprompts_gives_up_at_once() -> None:
    w = watch(max_reprompts=0)
    assert w.due(105.0) is Due.GIVE_UP
    assert w.due(106.0) is None


def test_caller_active_restarts_timer_and_resets_count() -> None:
    w = watch()
    assert w.due(105.0) is Due.REPROMPT
    assert w.due(110.0) is Due.REPROMPT
    w.caller_active(112.0)
    assert w.reprompts == 0
    assert w.next_deadline() == 117.0
    assert w.due(116.0) is None
    assert w.due(117.0) is Due.REPROMPT
    assert w.due(122.0) is Due.REPROMPT
    assert w.due(127.0) is Due.GIVE_UP


def test_bot_active_restarts_timer_but_keeps_count() -> None:
    w = watch()
    assert w.due(105.0) is Due.REPROMPT
    w.bot_active(106.0)  # the reprompt being spoken
    w.bot_active(108.0)
    assert w.reprompts == 1
    assert w.due(112.0) is None
    assert w.next_deadline() == 113.0
    assert w.due(113.0) is Due.REPROMPT
    w.bot_active(114.0)
    assert w.due(119.0) is Due.GIVE_UP


def test_max_duration_wins_over_silence() -> None:
    w = watch(max_call_s=30.0)
    for t in range(100, 130, 1):
        w.caller_active(float(t))
    assert w.next_deadline() == 130.0
    assert w.due(130.0) is Due.MAX_DURATION
    assert w.ended
    assert w.due(131.0) is None
    assert w.next_deadline() is None


def test_max_duration_even_when_silence_is_also_due() -> None:
    w = watch(reprompt_after_s=5.0, max_call_s=10.0)
    assert w.due(120.0) is Due.MAX_DURATION
    assert w.due(120.0) is None


def test_next_deadline_is_the_earlier_of_both() -> None:
    w = watch(reprompt_after_s=5.0, max_call_s=12.0)
    assert w.next_deadline() == 105.0
    w.caller_active(109.0)
    assert w.next_deadline() == 112.0


def test_activity_after_the_end_changes_nothing() -> None:
    w = watch(max_reprompts=0)
    assert w.due(105.0) is Due.GIVE_UP
    w.caller_active(106.0)
    w.bot_active(107.0)
    assert w.due(200.0) is None
    assert w.next_deadline() is None


@pytest.mark.parametrize(
    "kwargs",
    [{"reprompt_after_s": 0.0}, {"reprompt_after_s": -1.0}, {"max_reprompts": -1}, {"max_call_s": 0.0}],
)
def test_bad_settings(kwargs: dict[str, float]) -> None:
    settings: dict[str, float] = {
        "reprompt_after_s": 5.0,
        "max_reprompts": 2,
        "max_call_s": 60.0,
        "started_at": 0.0,
    }
    settings.update(kwargs)
    with pytest.raises(ValueError):
        SilenceWatch(**settings)  # type: ignore[arg-type]


_steps = st.lists(
    st.tuples(st.sampled_from(["due", "due", "caller", "bot"]), st.floats(0.0, 8.0, allow_nan=False)),
    max_size=80,
)


@given(
    steps=_steps,
    reprompt_after_s=st.floats(0.1, 10.0),
    max_reprompts=st.integers(0, 4),
    max_call_s=st.floats(0.5, 200.0),
    started_at=st.floats(-1e6, 1e6),
)
def test_watch_invariants(
    steps: list[tuple[str, float]],
    reprompt_after_s: float,
    max_reprompts: int,
    max_call_s: float,
    started_at: float,
) -> None:
    w = SilenceWatch(
        reprompt_after_s=reprompt_after_s,
        max_reprompts=max_reprompts,
        max_call_s=max_call_s,
        started_at=started_at,
    )
    now = started_at
    in_a_row = 0
    ends: list[Due] = []
    for action, dt in steps:
        now += dt
        if action == "caller":
            w.caller_active(now)
            in_a_row = 0
        elif action == "bot":
            w.bot_active(now)
        else:
            deadline = w.next_deadline()
            result = w.due(now)
            if ends:
                assert result is None, "nothing after the end"
                assert w.next_deadline() is None
            if result is not None:
                assert deadline is not None and now >= deadline, "never before next_deadline"
            if result is Due.REPROMPT:
                in_a_row += 1
                assert in_a_row <= max_reprompts
                assert w.reprompts == in_a_row
            elif result in (Due.GIVE_UP, Due.MAX_DURATION):
                ends.append(result)
            if result is Due.MAX_DURATION:
                assert now >= started_at + max_call_s
            if deadline is not None and now >= deadline and not ends and result is None:
                pytest.fail("a deadline passed and due() said nothing")
    assert len(ends) <= 1
    # Run the clock out: a watch that has not ended always ends by max_call_s.
    if not ends:
        for _ in range(max_reprompts + 2):
            deadline = w.next_deadline()
            assert deadline is not None
            result = w.due(deadline)
            assert result is not None
            if result is not Due.REPROMPT:
                break
        assert w.ended
        assert w.due(now + 1e9) is None
