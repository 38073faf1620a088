"""An asyncio event loop whose clock runs ``speed`` times faster than the wall clock: replays in less time.

Rules:
- ``loop.time()`` is ``start + (monotonic() - start) * speed``; every timer (``asyncio.sleep``, timeouts,
  ``call_later``) is scheduled on it, so the phone's 20 ms frames, the emulators' latencies and the bot's
  own waits all shrink by ``speed`` together and keep their order.
- The selector waits ``timeout / speed`` of real time for a timeout given in loop time.
- Work outside the loop (threads: the embedded speech engines) takes real time, so it looks ``speed``
  times longer on this clock: latencies of such engines are inflated in a fast replay.
- ``speed == 1`` is an ordinary loop.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Mapping
from typing import Any


class _ScaledSelector(selectors.BaseSelector):
    """Delegates to a real selector; only the wait is scaled."""

    def __init__(self, inner: selectors.BaseSelector, speed: float) -> None:
        self._inner = inner
        self._speed = speed

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        return self._inner.select(None if timeout is None else timeout / self._speed)

    def close(self) -> None:
        self._inner.close()

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()


class ScaledClockLoop(asyncio.SelectorEventLoop):
    def __init__(self, speed: float) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self._origin = time.monotonic()
        super().__init__(_ScaledSelector(selectors.DefaultSelector(), speed))

    def time(self) -> float:
        return self._origin + (time.monotonic() - self._origin) * self.speed
