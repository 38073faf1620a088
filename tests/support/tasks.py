"""The bot's asyncio tasks, for tests that prove a call leaves none behind.

Rules:
- A task is the bot's unless it is the test's own, the emulators' (grpc.aio's accept tasks) or an idle
  keep-alive HTTP connection; a request still being handled (a media socket) is the bot's.
- Waits are bounded: a leak fails the test after ``timeout_s``, a slow teardown does not.
"""

from __future__ import annotations

import asyncio
from typing import Any

_NOT_THE_BOTS = (
    "AioServer.",  # the TTS emulator: grpc.aio replaces its accept task per RPC
    "RequestHandler.start",  # an idle keep-alive HTTP connection (the bot's SDK clients to the emulators)
)


def bot_tasks(tasks: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """Tasks other than this test's, the emulators' and idle HTTP connections'. A request still being
    handled (a media socket) runs in its own ``RequestHandler._handle_request`` task, so it is kept."""
    return {
        t
        for t in tasks
        if t is not asyncio.current_task()
        and not getattr(t.get_coro(), "__qualname__", "").startswith(_NOT_THE_BOTS)
    }


async def no_leaked_tasks(before: set[asyncio.Task[Any]], timeout_s: float = 5.0) -> None:
    """Every task started since ``before`` (bar the emulators') has ended within ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (leaked := bot_tasks(asyncio.all_tasks() - before)) and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert not leaked, [(t.get_name(), t.get_coro()) for t in leaked]
