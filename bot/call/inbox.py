"""``Inbox``: the one queue a Call's loop reads: the stream's messages and its stages' news, in the order
they arrived, each stamped with the time it arrived.

Rules:
- A reader task (``read``) parses each frame of the socket (``bot.core.twilio_messages``) and puts the
  message in. It reads at most ``READ_AHEAD`` messages ahead of the loop: past that it waits until the
  loop has handled everything in the inbox, so a call that cannot keep up stops reading its socket (and
  TCP pushes back on Twilio) instead of queueing without bound.
- When the frames end, for whatever reason, ``StreamEnded`` goes in last (with the error reading
  raised, if it did), so the loop ends after everything that came before it.
- A stage's ``post`` (``bot.call.events``) never blocks and never fails: its news goes in at once.
- Each item carries the time it arrived (the call's clock), so a figure taken from it (first audio,
  first heard, the caller audio's pace) is the time it happened, not the time the loop came round to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass

from bot.call.events import CallEvent
from bot.core.twilio_messages import InboundMessage, parse_message

# Messages the reader may parse ahead of the loop (160 ms of audio): enough that reading never waits for
# a loop busy with a barge-in, few enough that a call that cannot keep up stops reading its socket.
READ_AHEAD = 8


@dataclass(frozen=True)
class StreamEnded:
    """The socket's frames are over (closed by either side, or failed: ``error`` if reading raised)."""

    error: Exception | None = None


Inbound = InboundMessage | CallEvent | StreamEnded


class Inbox:
    def __init__(self, clock: Callable[[], float], *, max_frame_chars: int) -> None:
        self._clock = clock
        self._max_frame_chars = max_frame_chars
        self._queue: asyncio.Queue[tuple[float, Inbound]] = asyncio.Queue()

    def post(self, event: CallEvent) -> None:
        """Every stage's ``post``."""
        self._put(event)

    def _put(self, item: Inbound) -> None:
        self._queue.put_nowait((self._clock(), item))

    async def read(self, frames: AsyncIterable[str | bytes]) -> None:
        """The reader task's body: the socket's frames, parsed, until they end."""
        error: Exception | None = None
        try:
            async for raw in frames:
                self._put(parse_message(raw, max_chars=self._max_frame_chars))
                if self._queue.qsize() >= READ_AHEAD:
                    await self._queue.join()
        except Exception as exc:  # the loop raises it in the call's task, as reading there did
            error = exc
        finally:
            self._put(StreamEnded(error))

    async def get(self) -> tuple[float, Inbound]:
        """The next item and the time it arrived; call ``done`` once it is handled."""
        return await self._queue.get()

    def done(self) -> None:
        self._queue.task_done()

    def leftover_news(self) -> list[tuple[float, CallEvent]]:
        """After the loop: the stages' news still in the inbox (frames left unread are dropped)."""
        items = []
        while not self._queue.empty():
            at, item = self._queue.get_nowait()
            if isinstance(item, CallEvent):
                items.append((at, item))
        return items
