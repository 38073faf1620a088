"""``TurnTaking``: the caller's speech and keys become turns, one answered after the other.

Rules:
- A pause in the caller's speech (``SpeechPaused``) may start a speculative turn: the turn's
  body runs (STT, and with ``speculation: llm`` the model too) but holds its answer until the turn is
  confirmed. The end of speech (``SpeechEnded``) with the same ``end_ms`` confirms it; anything else
  drops it (``drop_speculation``): its task is cancelled and awaited, and the turn body, cancelled
  before its turn was confirmed, undoes its own history (``Responder.run``, ``bot.call.respond``).
- It is handed the turn's work (the turn's task body, the Responder's, and the waiting side's watchdog)
  to schedule and cancel; it has no news of its own to report.
- A new turn never overtakes one still running (barge-in off, or a locked greeting): it waits for it
  (``Turn.after``), so history stays in order.
- Audio of a turn cut before it was transcribed is kept (``pending_audio``) and heard with the next
  turn, spoken or typed, so nothing the caller said is lost. What is carried is capped at the line's
  utterance limit (``endpointing.max_utterance_ms``, its most recent part): turns cut again and again
  cannot grow one STT upload without bound.
- Each confirmed turn gets its watchdog (``bot.call.waiting``); ``cancel`` stops the current turn and its
  watchdog and returns the tasks to await.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from bot.call.turns import Turn
from bot.flows.line import LineConfig
from media.codec import PCM_FRAME_BYTES
from media.vad import SpeechEnded, SpeechPaused

_PCM_BYTES_PER_MS = PCM_FRAME_BYTES // 20  # PCM16 at 8 kHz


def carried(audio: bytes, max_ms: int) -> bytes:
    """The most recent ``max_ms`` of PCM16 ``audio`` (all of it if shorter)."""
    limit = max(0, max_ms) * _PCM_BYTES_PER_MS
    return audio[len(audio) - limit :] if len(audio) > limit else audio


TurnBody = Callable[[Turn], Coroutine[Any, Any, None]]


class TurnTaking:
    def __init__(self, run: TurnBody, watch: TurnBody, clock: Callable[[], float]) -> None:
        self._run = run
        self._watch = watch
        self._clock = clock
        self.turns: list[Turn] = []
        self.current: Turn | None = None
        self.task: asyncio.Task[None] | None = None
        self.pending_audio = b""
        self._speculation: tuple[Turn, asyncio.Task[None]] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    def thinking(self) -> bool:
        return self.task is not None and not self.task.done()

    def _new_turn(self, event: SpeechEnded | SpeechPaused, line: LineConfig) -> Turn:
        return Turn(
            len(self.turns) + 1,
            self._clock(),
            event.end_ms - event.onset_ms,
            line.endpointing.end_silence_ms,
            end_ms=event.end_ms,
            audio=self.pending_audio + event.audio,
        )

    def carry(self, audio: bytes, line: LineConfig) -> None:
        """A turn was cut before its transcript: its audio goes with the next turn, up to the limit."""
        self.pending_audio = carried(audio, line.endpointing.max_utterance_ms)

    def paused(self, event: SpeechPaused, line: LineConfig) -> None:
        """The caller went quiet: start STT (and the model) now, speak only once the turn is confirmed."""
        if line.speculation == "off" or self._speculation is not None or self.thinking():
            return
        turn = self._new_turn(event, line)
        self._speculation = (turn, asyncio.create_task(self._run(turn), name="turn-speculative"))

    async def drop_speculation(self) -> None:
        """The caller went on talking: whatever was started is void, and history is as before (the turn
        body undoes its own, see the rules) once this returns."""
        if self._speculation is None:
            return
        _turn, task = self._speculation
        self._speculation = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def ended(self, event: SpeechEnded, line: LineConfig) -> None:
        speculation, self._speculation = self._speculation, None
        if speculation is not None and speculation[0].end_ms == event.end_ms:
            turn, task = speculation
            turn.speech_end_at = self._clock()
            self._begin(turn, task)
            return
        self._speculation = speculation
        await self.drop_speculation()
        self._begin(self._new_turn(event, line))

    async def typed(self, typed: str) -> None:
        """Keypad digits (as the model reads them) are the caller's turn."""
        await self.drop_speculation()  # before the new turn, whose history it must not roll back
        number = len(self.turns) + 1
        self._begin(Turn(number, self._clock(), 0, 0, audio=self.pending_audio, typed=typed))

    def _begin(self, turn: Turn, task: asyncio.Task[None] | None = None) -> None:
        if task is None:
            turn.after = self.task if self.thinking() else None
            task = asyncio.create_task(self._run(turn), name=f"turn-{turn.number}")
        self.pending_audio = b""
        self.turns.append(turn)
        self.current = turn
        self.task = task
        turn.confirmed.set()
        self._watchdog = asyncio.create_task(self._watch(turn), name="silence-watchdog")

    def cancel(self) -> list[asyncio.Task[None]]:
        """Cancel the current turn and its watchdog; the tasks to await (``settle``)."""
        tasks = [t for t in (self.task, self._watchdog) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        return tasks


async def settle(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for cancelled tasks to finish unwinding (their cleanup closes streams and requests)."""
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
