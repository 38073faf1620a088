"""Clocks for tests that decide what time it is.

Rules:
- A ``FakeClock`` is the ``Callable[[], float]`` the product takes as ``clock=`` (recorder, retention,
  inspector auth, the TTS emulator's quota): it returns ``now``, and only the test moves ``now``.
"""

from __future__ import annotations

from collections.abc import Callable


class FakeClock:
    """A clock that stands still until the test sets ``now``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


_: Callable[[], float] = FakeClock()  # the product's clock type (mypy checks it)
