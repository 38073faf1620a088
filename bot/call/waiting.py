"""A call's waiting side: the silence filler and the progress lines of each turn.

Rules:
- The turn's watchdog task (started by ``TurnTaking`` when the turn is confirmed, cancelled with the
  turn on barge-in or hang-up) says the silence filler when no audio came ``silence_filler_s`` after
  the caller finished, then drives the turn's ``Companion`` (``bot.call.progress``) until the turn ends.
- Every filler (the silence filler, a tool filler) arms the turn's progress lines; every phrase of
  the answer disarms them. Fillers and progress lines are said with ``in_history=False``: the model
  never reads them and they are never apologised for.
- The last progress line said is remembered for the whole call, so no line is said twice in a row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from bot.call.progress import Companion
from bot.call.speaker import Speaker
from bot.call.turn_taking import TurnTaking
from bot.call.turns import Turn
from bot.call.utterance import Utterance
from bot.core.progress import ProgressPlan
from bot.flows.line import LineConfig


class WaitingSide(Protocol):
    """What the waiting side needs from its call."""

    line: LineConfig
    speaker: Speaker
    taking: TurnTaking

    def say_line(self, text: str, turn: Turn | None = None, *, in_history: bool = True) -> Utterance: ...


class CallWaiting:
    def __init__(self, call: WaitingSide, clock: Callable[[], float]) -> None:
        self._call = call
        self._clock = clock
        self.last_progress: str | None = None

    async def watchdog(self, turn: Turn) -> None:
        line = self._call.line
        await asyncio.sleep(max(0.0, line.silence_filler_s - (self._clock() - turn.speech_end_at)))
        current = turn is self._call.taking.current
        if (
            current
            and turn.first_audio_at is None
            and not turn.barge_in
            and (not turn.finished or turn.first_phrase_at is not None)
        ):
            turn.silence_filler = True
            self.filler(turn, line.silence_filler_text)
        if current and not turn.finished:
            await self.company(turn).run()  # until the turn ends (or this task is cancelled)

    def filler(self, turn: Turn, text: str) -> None:
        self._call.say_line(text, turn, in_history=False)
        self.company(turn).filler()

    def company(self, turn: Turn) -> Companion:
        """The turn's companion (made on first use: by the turn's answer or by its watchdog)."""
        if turn.company is None:
            speaker = self._call.speaker

            def say(text: str) -> None:
                turn.progress_lines += 1
                self.last_progress = text
                self._call.say_line(text, turn, in_history=False)

            plan = ProgressPlan(self._call.line.progress, self.last_progress)
            turn.company = Companion(
                plan, say=say, idle=speaker.wait_idle, speaking=lambda: speaker.speaking, clock=self._clock
            )
        return turn.company
