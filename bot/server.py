"""Running the app: ``bot serve`` for production, and an in-process server for the demo and tests."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass

import structlog
from aiohttp import web

from bot.app import create_app
from bot.line import LineConfig, default_line
from bot.logs import configure_logging
from bot.providers import build_deps, warm_up
from bot.settings import Settings

log = structlog.get_logger("bot.server")


@dataclass
class RunningServer:
    app: web.Application
    runner: web.AppRunner
    url: str  # http://127.0.0.1:PORT
    warming: asyncio.Future[None]  # the providers' warm-up (done before the first call, normally)

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_server(settings: Settings, line: LineConfig | None = None) -> RunningServer:
    """Start the bot on ``settings.host``/``settings.port`` (port 0 = any free port)."""
    deps = build_deps(settings, line or default_line())
    app = create_app(settings, deps)
    warming = asyncio.ensure_future(warm_up(deps))  # in the background: /healthz answers at once

    async def stop_warming(_app: web.Application) -> None:
        warming.cancel()

    app.on_shutdown.append(stop_warming)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = runner.addresses[0][1]
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "127.0.0.1") else settings.host
    return RunningServer(app, runner, f"http://{host}:{port}", warming)


async def serve(settings: Settings) -> None:
    configure_logging(settings.log_level, secrets=settings.secrets())
    server = await start_server(settings)
    log.info(
        "listening",
        host=settings.host,
        port=settings.port,
        url=server.url,
        public_base_url=settings.public_base_url,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting_down")
    await server.stop()
