"""``bot.call.progress``: which progress line next, when, never twice in a row, at most N; and its driver.

The plan is pure and tested densely (``hypothesis`` over arbitrary sequences of turn events). The
driver runs on the event loop with a fake speaker and short delays; it is checked on order and
counts, never on tight latencies.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.call.progress import Companion
from bot.core.progress import DEFAULT_TEXTS, ProgressConfig, ProgressPlan
from bot.flows.line import LineConfig
from bot.flows.loader import FlowError, parse_flow

A, B, C = "Still checking.", "Nearly there.", "One more moment."


def plan(
    *texts: str, first: float = 1.5, every: float = 2.0, n: int = 3, last: str | None = None
) -> ProgressPlan:
    return ProgressPlan(ProgressConfig(texts, first, every, n), last)


# ---- the pure plan -----------------------------------------------------------------------------------


def test_nothing_is_due_before_a_filler() -> None:
    p = plan(A, B)
    assert p.due(10.0) is None
    assert p.take() is None
    assert p.said == 0


def test_first_line_after_first_after_s_then_every_s() -> None:
    p = plan(A, B, C, first=1.5, every=2.0)
    p.filler()
    assert p.due(10.0) == 11.5
    assert p.take() == A
    assert p.due(20.0) == 22.0
    assert p.take() == B
    assert p.take() == C


def test_at_most_max_lines_per_turn() -> None:
    p = plan(A, B, n=2)
    p.filler()
    assert [p.take(), p.take(), p.take()] == [A, B, None]
    assert p.due(0.0) is None
    assert p.said == 2


def test_zero_max_lines_says_nothing() -> None:
    p = plan(A, B, n=0)
    p.filler()
    assert p.due(0.0) is None and p.take() is None


def test_an_answer_phrase_disarms_and_the_next_filler_rearms() -> None:
    p = plan(A, B, C)
    p.filler()
    assert p.take() == A
    p.answer()
    assert p.due(5.0) is None and p.take() is None
    p.filler()
    assert p.due(5.0) == 7.0  # not the first line of the turn: every_s
    assert p.take() == B


def test_stop_ends_everything() -> None:
    p = plan(A, B)
    p.filler()
    p.stop()
    assert p.due(0.0) is None and p.take() is None


def test_never_the_same_line_twice_in_a_row_across_turns() -> None:
    first = plan(A, B, C, n=1)
    first.filler()
    assert first.take() == A
    second = plan(A, B, C, n=1, last=first.last_text)
    second.filler()
    assert second.take() == B  # rotation goes on from the call's last line


def test_a_single_text_is_said_once_and_not_again_next_turn() -> None:
    p = plan(A, n=3)
    p.filler()
    assert [p.take(), p.take()] == [A, None]
    nxt = plan(A, n=3, last=p.last_text)
    nxt.filler()
    assert nxt.due(0.0) is None and nxt.take() is None


def test_a_last_text_no_longer_in_the_flow_starts_from_the_first() -> None:
    p = plan(A, B, last="An old line.")
    p.filler()
    assert p.take() == A


def test_default_line_keeps_the_caller_company_within_two_seconds() -> None:
    line = LineConfig(name="t", greeting="Hi.", system_prompt="-")
    assert line.progress.texts == DEFAULT_TEXTS
    assert line.progress.first_after_s <= 2.0 and line.progress.every_s <= 2.0
    assert 2 <= line.progress.max_lines <= 3
    assert set(DEFAULT_TEXTS) <= set(line.clip_texts())  # pre-synthesized like every fixed line


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        ProgressConfig(every_s=-1.0)


EVENTS = st.lists(st.sampled_from(["filler", "answer", "take", "stop"]), max_size=40)


@given(
    texts=st.lists(st.sampled_from([A, B, C]), min_size=1, max_size=4),
    n=st.integers(0, 5),
    last=st.sampled_from([None, A, B, C]),
    events=EVENTS,
)
def test_any_sequence_never_repeats_never_exceeds_and_only_speaks_when_armed(
    texts: list[str], n: int, last: str | None, events: list[str]
) -> None:
    p = plan(*texts, n=n, last=last)
    said: list[str] = []
    armed = stopped = False
    for event in events:
        if event == "filler":
            p.filler()
            armed = True
        elif event == "answer":
            p.answer()
            armed = False
        elif event == "stop":
            p.stop()
            stopped = True
        else:
            due = p.due(0.0)
            text = p.take()
            assert (due is None) == (text is None)  # due exactly when a line may be taken
            if text is not None:
                assert armed and not stopped
                assert text in texts
                said.append(text)
    assert len(said) <= n
    spoken = [last, *said] if last is not None else said
    assert all(a != b for a, b in itertools.pairwise(spoken))
    assert p.said == len(said) and p.last_text == (said[-1] if said else last)


# ---- the driver --------------------------------------------------------------------------------------


class FakeSpeaker:
    """Says a line for ``play_s`` seconds; ``wait_idle`` like the real Speaker's."""

    def __init__(self, play_s: float = 0.02) -> None:
        self.play_s = play_s
        self.said: list[tuple[float, str]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._playing = 0

    @property
    def speaking(self) -> bool:
        return self._playing > 0

    def say(self, text: str) -> None:
        self.said.append((time.monotonic(), text))
        self._playing += 1
        self._idle.clear()
        asyncio.get_running_loop().call_later(self.play_s, self._done)

    def _done(self) -> None:
        self._playing -= 1
        if not self._playing:
            self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    def texts(self) -> list[str]:
        return [t for _, t in self.said]


def companion(speaker: FakeSpeaker, p: ProgressPlan) -> Companion:
    return Companion(
        p, say=speaker.say, idle=speaker.wait_idle, speaking=lambda: speaker.speaking, clock=time.monotonic
    )


async def test_driver_says_lines_after_the_filler_up_to_the_max_then_stops() -> None:
    speaker = FakeSpeaker()
    c = companion(speaker, plan(A, B, C, first=0.05, every=0.05, n=2))
    task = asyncio.create_task(c.run())
    speaker.say("filler")
    c.filler()
    async with asyncio.timeout(5):
        while len(speaker.said) < 3:  # noqa: ASYNC110 (the fake has no event for it)
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # no third line comes
    c.stop()
    async with asyncio.timeout(5):
        await task
    assert speaker.texts() == ["filler", A, B]
    (t0, _), (t1, _), (t2, _) = speaker.said
    # Each line waited for the previous one to be heard (0.02 s) plus the quiet (0.05 s).
    assert t1 - t0 >= 0.06 and t2 - t1 >= 0.06


async def test_driver_says_nothing_without_a_filler_and_ends_on_stop() -> None:
    speaker = FakeSpeaker()
    c = companion(speaker, plan(A, first=0.0, every=0.0))
    task = asyncio.create_task(c.run())
    await asyncio.sleep(0.1)
    c.stop()
    async with asyncio.timeout(5):
        await task
    assert speaker.said == []


async def test_an_answer_in_the_quiet_time_stops_the_line_and_restarts_the_quiet() -> None:
    speaker = FakeSpeaker()
    c = companion(speaker, plan(A, B, first=0.3, every=0.3))
    task = asyncio.create_task(c.run())
    c.filler()
    await asyncio.sleep(0.1)
    speaker.say("answer")
    c.answer()  # disarmed: nothing more, however long the quiet
    await asyncio.sleep(0.6)
    assert speaker.texts() == ["answer"]
    c.filler()  # the model is asked again after tools
    async with asyncio.timeout(5):
        while len(speaker.said) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    c.stop()
    await task
    assert speaker.texts() == ["answer", A]


async def test_something_else_said_during_the_quiet_postpones_the_line() -> None:
    speaker = FakeSpeaker(play_s=0.2)
    c = companion(speaker, plan(A, first=0.15, every=0.15))
    task = asyncio.create_task(c.run())
    c.filler()
    await asyncio.sleep(0.1)
    speaker.say("reprompt")  # not through the plan, the speaker is simply busy
    async with asyncio.timeout(5):
        while len(speaker.said) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    c.stop()
    await task
    (t_other, _), (t_line, text) = speaker.said
    assert text == A
    assert t_line - t_other >= 0.2  # only once the other line was heard


async def test_cancelling_the_driver_says_nothing_more() -> None:
    speaker = FakeSpeaker()
    c = companion(speaker, plan(A, B, first=0.1, every=0.1))
    task = asyncio.create_task(c.run())
    c.filler()
    await asyncio.sleep(0.02)
    task.cancel()  # barge-in cancels the watchdog task that runs it
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)
    assert speaker.said == []


# ---- the flow's settings -------------------------------------------------------------------------------


FLOW = """\
name: slow
default: true
greeting:
  text: Hello.
system_prompt: Think hard.
llm:
  first_token_timeout_s: 20
  turn_budget_s: 30
fillers:
  progress_texts: [Still thinking., Bear with me.]
  progress_after_s: 1
  progress_every_s: 2.5
  max_progress_lines: 2
"""


def test_a_flow_sets_its_waiting() -> None:
    line = parse_flow(FLOW).to_line_config(lambda spec: None)  # type: ignore[arg-type,return-value]
    assert line.progress == ProgressConfig(("Still thinking.", "Bear with me."), 1.0, 2.5, 2)
    assert line.turn_budget_s == 30.0 and line.chat.first_token_timeout_s == 20.0
    assert {"Still thinking.", "Bear with me."} <= set(line.clip_texts())


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("fillers:\n  progress_texts: []", "at least 1 item"),
        ("fillers:\n  max_progress_lines: -1", "fillers.max_progress_lines: must be >= 0, got -1"),
        ("llm:\n  turn_budget_s: 0", "llm.turn_budget_s: must be > 0, got 0"),
        ("llm:\n  first_token_timeout_s: -2", "llm.first_token_timeout_s: must be > 0, got -2"),
    ],
)
def test_bad_waiting_settings_are_flow_errors(setting: str, value: str) -> None:
    text = "name: x\ndefault: true\ngreeting:\n  text: Hi.\nsystem_prompt: Be brief.\n" + setting + "\n"
    with pytest.raises(FlowError) as caught:
        parse_flow(text, "flows/x.yaml")
    assert value in str(caught.value.problems[0])
