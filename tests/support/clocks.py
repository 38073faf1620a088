"""Clocks for tests that decide what time it is.

Rules:
- A ``FakeClock`` is the ``Callable[[], float]`` the product takes as ``clock=`` (recorder, retention,
  inspector auth, the TTS emulator's quota): it returns ``now``, and only the test moves ``now``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

# When the recording tests' calls start: 30 s before midnight at a month's end, so a call ends on the next
# day and month while its recording files under its start date.
STARTED = datetime(2025, 1, 31, 23, 59, 30, tzinfo=UTC)


class FakeClock:
    """A clock that stands still until the test sets ``now``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


_: Callable[[], float] = FakeClock()  # the product's clock type (mypy checks it)
