"""Rejection lines under a flood: at most a few per reason per window, then one summary of what was dropped.

Every refused request (a bad signature, a body too large or too slow, a busy replica, a refused stream)
logs a warning. An outsider sending thousands of them a second would otherwise write thousands of lines
a second: disk, log shipping and the operator's attention. Metrics count every refusal; the log keeps
enough lines to see what is happening.

Rules:
- ``LineLimiter`` (pure, the clock is an argument): per reason, the first ``limit`` lines of each fixed
  ``window_s`` window pass, the rest are counted as suppressed. ``take_suppressed`` hands the counts over
  once and resets them.
- Only the events in ``REJECTIONS`` are limited, keyed by event name (a fixed set: bounded state).
  Every other line passes untouched.
- ``limit_rejection_lines`` is the structlog processor (``bot.telemetry.logs``) over the process-wide
  ``LIMITER``;
  ``report_suppressed`` (run by the server) logs one ``log_lines_suppressed`` line per reason and window
  that dropped any, with the count, so nothing is silently lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import structlog

LIMIT = 5  # lines per reason per window
WINDOW_S = 10.0
REJECTIONS = frozenset(
    {
        "webhook_signature_rejected",
        "webhook_body_too_large",
        "webhook_bodies_over_cap",
        "webhook_body_read_timeout",
        "webhook_body_aborted",
        "webhook_not_a_call_of_ours",
        "websocket_signature_rejected",
        "callback_repeated",
        "call_refused_busy",
        "call_refused_draining",
        "stream_refused",
        "stream_refused_over_cap",
        "calls_auth_failed",
        "calls_auth_throttled",
    }
)
log = structlog.get_logger("bot.telemetry.log_limit")


@dataclass
class LineLimiter:
    """Fixed-window line budget per reason (module rules)."""

    limit: int = LIMIT
    window_s: float = WINDOW_S
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict, init=False)  # start, lines passed
    _suppressed: dict[str, int] = field(default_factory=dict, init=False)

    def admit(self, reason: str, now: float) -> bool:
        """True if this line may be written; False if it is counted as suppressed instead."""
        start, passed = self._windows.get(reason, (now, 0))
        if now - start >= self.window_s or now < start:  # a new window (or the clock went back)
            start, passed = now, 0
        if passed < self.limit:
            self._windows[reason] = (start, passed + 1)
            return True
        self._windows[reason] = (start, passed)
        self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
        return False

    def take_suppressed(self) -> dict[str, int]:
        """The lines dropped per reason since the last call (reasons with none are left out)."""
        taken, self._suppressed = self._suppressed, {}
        return taken


LIMITER = LineLimiter()


def limit_rejection_lines(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: drops a rejection line over its budget (module rules)."""
    if event.get("event") in REJECTIONS and not LIMITER.admit(str(event["event"]), time.monotonic()):
        raise structlog.DropEvent
    return event


def log_suppressed(limiter: LineLimiter, window_s: float) -> None:
    for reason, count in sorted(limiter.take_suppressed().items()):
        log.warning("log_lines_suppressed", reason=reason, suppressed=count, window_s=window_s)


async def report_suppressed(_app: object, limiter: LineLimiter = LIMITER) -> AsyncIterator[None]:
    """An aiohttp ``cleanup_ctx``: every window, one summary line per reason that dropped lines."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(limiter.window_s)
            log_suppressed(limiter, limiter.window_s)

    task = asyncio.create_task(loop(), name="log-suppressed")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    log_suppressed(limiter, limiter.window_s)  # what the last window dropped
