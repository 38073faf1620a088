"""``LocalHttpEmulator``: the shared shell of the HTTP emulators, an aiohttp server on 127.0.0.1; and
``LocalServer``, what every emulator's server is (the gRPC TTS emulator's too).

Rules:
- ``start`` listens on a free port of 127.0.0.1 only and returns ``base_url`` (``BASE_PATH`` appended);
  ``stop`` sets ``stopping`` first, so scripted waits end at once, then closes the server. Both are
  idempotent in the usual sense: starting twice is an error, stopping twice does nothing.
- Fresh asyncio primitives at each start (``_on_start``): each start may run in another event loop.
- Usable as ``async with Emulator(...) as emu``: ``LocalServer`` gives that to any server with ``start``
  and ``stop``.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from aiohttp import web


class LocalServer:
    """A server an emulator runs on 127.0.0.1: ``start`` (its address), ``stop``, or ``async with``."""

    async def start(self) -> str:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class LocalHttpEmulator(LocalServer):
    BASE_PATH = ""

    def __init__(self) -> None:
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    def _app(self) -> web.Application:
        raise NotImplementedError

    def _on_start(self) -> None:
        """Make the subclass's own asyncio primitives for this start's event loop."""

    async def start(self) -> str:
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        self._stopping = asyncio.Event()
        self._on_start()
        runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runner = runner
        self.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}{self.BASE_PATH}"
        return self.base_url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self._stopping.set()
            await runner.cleanup()
