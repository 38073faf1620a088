"""How late an event loop wakes a short sleep, again and again: the benchmarks' probe of a loop's health.

Rules:
- ``loop_lag`` sleeps ``period_s`` until ``stop`` is set and appends each wake-up's lateness (seconds) to
  ``samples``; the caller reads them (p99, max). A loop stalled by other work wakes the probe late.
"""

from __future__ import annotations

import asyncio


async def loop_lag(samples: list[float], stop: asyncio.Event, period_s: float) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        await asyncio.sleep(period_s)
        samples.append(loop.time() - started - period_s)
