"""``bot.call.utterance``: a fixed line's fate (heard, failed, cut) and who is told of it."""

from __future__ import annotations

import asyncio
import contextlib

from bot.call.utterance import LiveLines, Utterance

TIMEOUT_S = 5.0


async def test_a_waiter_learns_the_line_was_heard() -> None:
    line = Utterance(1, "Goodbye.")
    waiting = asyncio.create_task(line.until_heard(TIMEOUT_S))
    await asyncio.sleep(0)
    line.heard()
    assert await waiting is True


async def test_a_failure_is_news_only_to_a_waiter() -> None:
    nobody_waits = Utterance(1, "Let me check.", in_history=False)
    assert nobody_waits.failed() is False  # the call decides (no apology for a filler)

    goodbye = Utterance(2, "Goodbye.")
    waiting = asyncio.create_task(goodbye.until_heard(TIMEOUT_S))
    await asyncio.sleep(0)
    assert goodbye.failed() is True  # the waiter acts anyway
    assert await waiting is False
    assert goodbye.failed() is False  # told once


async def test_a_line_not_heard_in_time_is_not_heard_and_fails_as_unwaited() -> None:
    line = Utterance(1, "Transferring you now.")
    assert await line.until_heard(0.01) is False
    assert line.failed() is False  # nobody waits any more: the call apologises as for any line


async def test_a_cancelled_waiter_leaves_the_line_to_be_heard() -> None:
    line = Utterance(1, "Transferring you now.")
    waiting = asyncio.create_task(line.until_heard(TIMEOUT_S))
    await asyncio.sleep(0)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    line.heard()
    assert await line.until_heard(TIMEOUT_S) is True


async def test_the_greeting_locks_barge_in_until_it_is_heard_cut_or_failed() -> None:
    for settle in ("heard", "cut", "failed"):
        lines = LiveLines()
        lines.add(Utterance(1, "Reprompt?"))
        assert not lines.locked()
        lines.add(Utterance(2, "Hello, this call is recorded.", interruptible=False))
        assert lines.locked()
        lines.heard(1)  # another line heard: still locked
        assert lines.locked()
        if settle == "heard":
            lines.heard(2)
        elif settle == "cut":
            lines.cut({2, 7})
        else:
            failed = lines.failed(2)
            assert failed is not None and failed.response_id == 2
        assert not lines.locked()
        assert lines.failed(2) is None  # settled once: gone from the live lines


async def test_an_answer_is_not_a_line() -> None:
    lines = LiveLines()
    assert lines.failed(5) is None
    lines.heard(5)
    lines.cut({5})
    assert not lines.locked()
