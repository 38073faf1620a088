"""How much inspector work runs at once: a few slots, a bounded wait for one, 503 past it.

Rules:
- Every expensive inspector step (rendering a page, building a WAV, reading a recording to find its
  cached WAV) holds a slot; at most ``INSPECTOR_SLOTS`` run at once, in threads, so a handful of
  people (or one script) on ``/calls`` costs a bounded share of the pod's memory and CPU whatever they
  ask, and live calls keep theirs.
- A request waits for a slot up to ``INSPECTOR_WAIT_S`` (people opening a page wait rather than fail),
  then gets 503 with ``Retry-After``: a queue that never drains must not hold connections for good.
- Sending a built WAV's bytes holds no slot: it is a file read in chunks, cheap and bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

# A 15-minute call's page or WAV build peaks at a few tens of MB (issue 14, item 5): two at once keep
# the inspector's share of a 1 GiB pod small, and let one person's page load while another's WAV builds.
INSPECTOR_SLOTS = 2
INSPECTOR_WAIT_S = 30.0  # about the longest build of a long call on a busy 2-core pod, and then some
RETRY_AFTER_S = 5


class InspectorSlots:
    """``async with slots.hold():`` runs the block in one of ``limit`` slots (see the rules)."""

    def __init__(self, limit: int = INSPECTOR_SLOTS, wait_s: float = INSPECTOR_WAIT_S) -> None:
        self._semaphore = asyncio.Semaphore(limit)
        self._wait_s = wait_s

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        try:
            await asyncio.wait_for(self._semaphore.acquire(), self._wait_s)
        except TimeoutError as exc:
            raise web.HTTPServiceUnavailable(
                headers={"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"},
                text="503: the call inspector is busy, try again in a few seconds",
            ) from exc
        try:
            yield
        finally:
            self._semaphore.release()
