"""``Rendezvous``: a deterministic proof that calls run concurrently, for tests of code that runs them.

Rules:
- ``arrive(who)`` returns only once ``count`` different callers have arrived. Calls run one after another
  never all arrive: the first waits forever and the test's own timeout fails it. No sleeps, no timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable


class Rendezvous:
    def __init__(self, count: int) -> None:
        self._count = count
        self._arrived: set[Hashable] = set()
        self._everyone = asyncio.Event()

    async def arrive(self, who: Hashable) -> None:
        self._arrived.add(who)
        if len(self._arrived) == self._count:
            self._everyone.set()
        await self._everyone.wait()
