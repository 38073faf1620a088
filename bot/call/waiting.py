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

from bot.call.lines import Lines
from bot.call.progress import Companion
from bot.call.speaker import Speaker
from bot.call.turn_taking import TurnTaking
from bot.call.turns import Turn
from bot.core.progress import ProgressPlan
from bot.flows.line import LineConfig


class CallWaiting:
    """Handed the stages it keeps company with (all below the Call): it never calls the Call."""

    def __init__(
        self, line: LineConfig, speaker: Speaker, lines: Lines, taking: TurnTaking, clock: Callable[[], float]
    ) -> None:
        self._line = line
        self._speaker = speaker
        self._lines = lines
        self._taking = taking
        self._clock = clock
        self.last_progress: str | None = None

    async def watchdog(self, turn: Turn) -> None:
        line = self._line
        await asyncio.sleep(max(0.0, line.silence_filler_s - (self._clock() - turn.speech_end_at)))
        current = turn is self._taking.current
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
        self._lines.say(text, turn, in_history=False)
        self.company(turn).filler()

    def company(self, turn: Turn) -> Companion:
        """The turn's companion (made on first use: by the turn's answer or by its watchdog)."""
        if turn.company is None:
            speaker = self._speaker

            def say(text: str) -> None:
                turn.progress_lines += 1
                self.last_progress = text
                self._lines.say(text, turn, in_history=False)

            plan = ProgressPlan(self._line.progress, self.last_progress)
            turn.company = Companion(
                plan, say=say, idle=speaker.wait_idle, speaking=lambda: speaker.speaking, clock=self._clock
            )
        return turn.company
