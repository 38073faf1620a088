"""Keeping the caller company while the answer is slow: short progress lines ("Still checking...").

Rules:
- The plan (when a line is due, which one) is pure: ``bot.core.progress``.
- ``Companion`` is the thin asyncio driver of one turn's plan: it waits until everything said has
  been heard (``idle``), then for the quiet time, and says the line unless something was said
  meanwhile. It ends with ``stop`` (the turn is over) or by being cancelled (barge-in, hang-up).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bot.core.progress import ProgressPlan


class Companion:
    """Drives one turn's ``ProgressPlan`` on the event loop (see the module rules)."""

    def __init__(
        self,
        plan: ProgressPlan,
        *,
        say: Callable[[str], None],
        idle: Callable[[], Awaitable[None]],
        speaking: Callable[[], bool],
        clock: Callable[[], float],
    ) -> None:
        self.plan = plan
        self._say = say
        self._idle = idle
        self._speaking = speaking
        self._clock = clock
        self._changed = asyncio.Event()

    def filler(self) -> None:
        self.plan.filler()
        self._changed.set()

    def answer(self) -> None:
        self.plan.answer()
        self._changed.set()

    def stop(self) -> None:
        self.plan.stop()
        self._changed.set()

    async def run(self) -> None:
        while not self.plan.stopped:
            self._changed.clear()
            await self._idle()  # quiet starts when the caller has heard everything said so far
            due = self.plan.due(self._clock())
            try:
                async with asyncio.timeout(None if due is None else max(0.0, due - self._clock())):
                    await self._changed.wait()
                continue  # something was said (or the plan changed): the quiet starts again
            except TimeoutError:
                pass
            if self._speaking():
                continue  # said by someone else meanwhile (a reprompt, a goodbye): wait for it
            text = self.plan.take()
            if text is not None:
                self._say(text)
