"""Silence and call-length timeouts: when to reprompt a quiet caller, give up on them, or end a long call.

Rules:
- Silence is measured from the last activity: the call's start, ``caller_active`` (the caller spoke or
  typed; also resets the reprompt count) or ``bot_active`` (the bot is speaking or thinking, or the
  caller is mid-utterance; the count is kept, so the bot's own reprompt does not earn another one).
- ``due(now)``: ``MAX_DURATION`` once ``max_call_s`` has passed since the start (it wins over silence);
  else, after ``reprompt_after_s`` of silence, ``REPROMPT`` while fewer than ``max_reprompts`` were
  given (counting it and restarting the silence timer), else ``GIVE_UP``.
- ``GIVE_UP`` and ``MAX_DURATION`` end the watch: from then on ``due`` is None and ``next_deadline`` None.
- Pure: the caller passes the time (any monotonic clock, in seconds); no asyncio, no I/O.
"""

from __future__ import annotations

import enum


class Due(enum.Enum):
    REPROMPT = "reprompt"
    GIVE_UP = "give_up"
    MAX_DURATION = "max_duration"


class SilenceWatch:
    def __init__(
        self, *, reprompt_after_s: float, max_reprompts: int, max_call_s: float, started_at: float
    ) -> None:
        if not reprompt_after_s > 0:
            raise ValueError(f"reprompt_after_s must be > 0, got {reprompt_after_s}")
        if max_reprompts < 0:
            raise ValueError(f"max_reprompts must be >= 0, got {max_reprompts}")
        if not max_call_s > 0:
            raise ValueError(f"max_call_s must be > 0, got {max_call_s}")
        self.reprompt_after_s = reprompt_after_s
        self.max_reprompts = max_reprompts
        self.max_call_s = max_call_s
        self.started_at = started_at
        self._last_activity = started_at
        self._reprompts = 0
        self._ended = False

    @property
    def reprompts(self) -> int:
        """Reprompts given since the caller was last active."""
        return self._reprompts

    @property
    def ended(self) -> bool:
        """``GIVE_UP`` or ``MAX_DURATION`` was returned: the call is ending."""
        return self._ended

    def caller_active(self, now: float) -> None:
        self._last_activity = now
        self._reprompts = 0

    def bot_active(self, now: float) -> None:
        self._last_activity = now

    def due(self, now: float) -> Due | None:
        if self._ended:
            return None
        # Compared with the very sums next_deadline returns, so waking at a deadline always fires it.
        if now >= self.started_at + self.max_call_s:
            self._ended = True
            return Due.MAX_DURATION
        if now < self._last_activity + self.reprompt_after_s:
            return None
        if self._reprompts < self.max_reprompts:
            self._reprompts += 1
            self._last_activity = now
            return Due.REPROMPT
        self._ended = True
        return Due.GIVE_UP

    def next_deadline(self) -> float | None:
        """The earliest time ``due`` may return something; None once the watch ended."""
        if self._ended:
            return None
        return min(self.started_at + self.max_call_s, self._last_activity + self.reprompt_after_s)
