"""Collect DTMF key presses into entries (an account number, a menu choice ...).

Rules:
- Keys are ``0``-``9``, ``*`` and ``#``; anything else is ignored (no effect at all).
- An entry ends, and its digits are returned (never empty, never holding the finish key), when:
  the finish key is pressed after at least one digit (``push``); ``max_digits`` digits were collected
  (``push``); or ``timeout_s`` passed since the last key (``poll``, or the next ``push``, whichever comes
  first). The finish key with nothing collected is ignored.
- A key pushed after the deadline, before anyone polled, first ends the stale entry: ``push`` returns it
  and the new digit starts the next entry (a finish key just ends the stale entry).
- Every collected digit ends up in exactly one returned entry, in order.
- Pure: the caller passes the time (any monotonic clock, in seconds); no asyncio, no I/O.
"""

from __future__ import annotations

KEYS = frozenset("0123456789*#")


class DtmfCollector:
    def __init__(self, *, finish_key: str = "#", timeout_s: float = 5.0, max_digits: int = 32) -> None:
        if finish_key not in KEYS:
            raise ValueError(f"finish_key must be one of 0-9, * or #, got {finish_key!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if max_digits < 1:
            raise ValueError(f"max_digits must be >= 1, got {max_digits}")
        self.finish_key = finish_key
        self.timeout_s = timeout_s
        self.max_digits = max_digits
        self._digits: list[str] = []
        self._last_key_at = 0.0

    @property
    def collecting(self) -> bool:
        """An entry is under way (at least one digit collected)."""
        return bool(self._digits)

    @property
    def deadline(self) -> float | None:
        """When ``poll`` will return the entry under way; None if there is none."""
        return self._last_key_at + self.timeout_s if self._digits else None

    def push(self, digit: str, now: float) -> str | None:
        """Take one key; returns an entry if this key ended one."""
        if digit not in KEYS:
            return None
        stale = self.poll(now)
        if digit == self.finish_key:
            return stale if stale is not None else self._take()
        self._digits.append(digit)
        self._last_key_at = now
        if stale is not None:
            return stale  # the new digit starts the next entry (a stale entry means max_digits > 1)
        if len(self._digits) >= self.max_digits:
            return self._take()
        return None

    def poll(self, now: float) -> str | None:
        """The entry under way if ``timeout_s`` passed since its last key, else None."""
        deadline = self.deadline
        if deadline is not None and now >= deadline:
            return self._take()
        return None

    def _take(self) -> str | None:
        if not self._digits:
            return None
        entry = "".join(self._digits)
        self._digits.clear()
        return entry
