"""Running the app: ``bot serve`` for production, and an in-process server for the demo and tests.

Rules:
- Start-up loads and builds every call flow (``FLOWS_PATH``) before listening: an invalid flow stops
  the server with the same ``file:line: field: reason`` lines as ``bot flows check``.
- Start-up and reloads check the models in use (``bot.flows.model_check``): flow settings the model
  rejects stop them like an invalid flow; a model within 60 days of its shutdown is logged as a warning
  (``model_shutdown_near``), one past it as an error (``model_shut_down``), with the date and the flow
  file:line, and the server still starts.
- SIGHUP reloads the flows. A reload that fails is logged problem by problem and changes nothing;
  one that succeeds swaps the whole book at once. Live calls keep the line they started with.
- With recordings on and a retention limit set (``RECORDING_MAX_AGE_DAYS``, ``RECORDING_MAX_BYTES``), the
  retention sweeper (``bot.recording.retention``) runs at start and every ``RECORDING_SWEEP_INTERVAL_S``
  in a thread, from start until the server stops.
- Flow files are read, parsed, checked and built (Python tools imported, HTTP tools' variables read)
  in a worker thread, at start-up and reload alike: on the loop, a reload of many flows held every
  call's audio while it ran (``bench/reload.py`` measures how long). Only the swap, and what needs the
  loop (the clips' synthesis, the HTTP tools' session on first use), run on the loop. So a Python
  tool's module must not need a running event loop while it is imported.
- One reload runs at a time: a request while one runs (SIGHUP twice) makes exactly one more run
  after it, which reads the files as they are then; more requests meanwhile join that run.
- SIGTERM or SIGINT drains: new calls are refused (503) while live ones (and streams of calls already
  answered) go on until they end or ``DRAIN_TIMEOUT_S`` passes; the streams still open are then closed
  (Twilio's ``<Connect action>`` request moves each call to another replica, ``bot.server.app``) and the
  process exits 0. A second signal cuts the wait short.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import structlog
from aiohttp import web

from bot.call.deps import CallDeps
from bot.flows.build import build_book
from bot.flows.line import LineConfig
from bot.flows.line_book import LineBook, LineDesk
from bot.flows.loader import FlowError, FlowSet, load_flows
from bot.flows.model_check import check_models
from bot.recording.retention import DAY_S, RetentionPolicy, RetentionSweeper, SweepResult, sweep_every
from bot.server.app import create_app, start_draining, wait_for_calls_to_end
from bot.server.settings import Settings
from bot.server.state import CALLS
from bot.server.wiring import build_deps, choose, close_deps, warm_clips, warm_up
from bot.telemetry.log_limit import report_suppressed
from bot.telemetry.logs import configure_logging
from bot.telemetry.metrics import CallMetrics

log = structlog.get_logger("bot.server.serve")


@dataclass
class RunningServer:
    app: web.Application
    runner: web.AppRunner
    url: str  # http://127.0.0.1:PORT
    warming: asyncio.Future[None]  # the providers' warm-up (done before the first call, normally)
    deps: CallDeps
    desk: LineDesk
    settings: Settings
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    _reloading: asyncio.Task[bool] | None = None
    _reload_again: bool = False  # a reload was requested while one ran: run once more after it

    async def stop(self) -> None:
        if self._reloading is not None:
            self._reloading.cancel()  # its thread finishes on its own; nothing is swapped in
        await self.runner.cleanup()

    async def drain(self, timeout_s: float, cut_short: asyncio.Event | None = None) -> int:
        """Refuse new calls and wait up to ``timeout_s`` (or until ``cut_short`` is set) for live ones
        to end; the number still live. ``stop`` hangs those up."""
        started = asyncio.get_running_loop().time()
        start_draining(self.app)
        log.info("draining", active_calls=len(self.app[CALLS]), timeout_s=timeout_s)
        waits = [asyncio.ensure_future(wait_for_calls_to_end(self.app))]
        if cut_short is not None:
            waits.append(asyncio.ensure_future(_until(cut_short)))
        try:
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        left = len(self.app[CALLS])
        seconds = round(asyncio.get_running_loop().time() - started, 3)
        cut = cut_short is not None and cut_short.is_set()
        log.info("drained", calls_hung_up=left, seconds=seconds, cut_short=cut)
        return left

    def request_reload(self) -> asyncio.Task[bool]:
        """Reload the flows (SIGHUP), coalesced with a reload already running (see the module rules)."""
        if self._reloading is not None and not self._reloading.done():
            log.info("flows_reload_queued", reason="a reload is running; one more runs after it")
            self._reload_again = True
            return self._reloading
        self._reloading = asyncio.ensure_future(self._reload_until_current())
        return self._reloading

    async def reload(self) -> bool:
        """Load the flows again and wait; True if the files as they are now are in use."""
        return await asyncio.shield(self.request_reload())

    async def _reload_until_current(self) -> bool:
        while True:
            self._reload_again = False
            done = await self._reload_once()
            if not self._reload_again:
                return done

    async def _reload_once(self) -> bool:
        if not self.desk.from_files:
            log.warning("flows_reload_skipped", reason="this server was started with a fixed line")
            return False
        kept = self.desk.book.versions()
        try:
            book = await asyncio.to_thread(book_from_files, self.settings, self.deps)
        except FlowError as exc:
            log.error("flows_reload_failed", problems=[str(p) for p in exc.problems], kept=kept)
            return False
        except Exception as exc:  # a bug, not a flow's mistake: still, the running flows stay
            # No traceback: its frames' locals would include the environment (build_book's env).
            crash = f"the reload crashed: {type(exc).__name__}: {exc}"
            log.error("flows_reload_failed", problems=[crash], kept=kept)
            return False
        self.desk.swap(book)  # on the loop: one assignment, so a call sees the old book or the new one
        log.info("flows_reloaded", flows=book.versions(), generation=self.desk.generation)
        task = asyncio.ensure_future(warm_clips(self.deps, book))  # new texts: synthesize them now
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return True


def book_from_files(settings: Settings, deps: CallDeps) -> LineBook:
    """``FLOWS_PATH`` loaded, checked and built (a worker thread's job; see the module rules)."""
    flows = load_flows(settings.flows_path)
    check_models_in_use(flows, settings)
    return build_book(flows, env=os.environ, http=deps.http, voices=deps.voices)


def check_models_in_use(flows: FlowSet | None, settings: Settings, today: date | None = None) -> None:
    """Log each model near its shutdown (warning) or past it (error); raise ``FlowError`` for flow settings
    the model rejects (every turn would fail). ``today`` defaults to today's date in UTC."""
    stt_model = settings.stt_model if choose(settings).stt == "openai" else None
    today = today or datetime.now(UTC).date()
    report = check_models(flows, llm_model=settings.llm_model, stt_model=stt_model, today=today)
    if report.invalid:
        raise FlowError(report.invalid)
    for level, problem in report.shutdowns:
        if level == "error":
            log.error("model_shut_down", problem=str(problem))
        else:
            log.warning("model_shutdown_near", problem=str(problem))


def _recording_retention(
    settings: Settings, metrics: CallMetrics | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The retention sweeper's task, from the app's start to its cleanup (see the module rules)."""
    policy = RetentionPolicy(
        max_age_s=settings.recording_max_age_days * DAY_S, max_bytes=settings.recording_max_bytes
    )
    sweeper = RetentionSweeper(Path(settings.recordings_dir), policy)

    def count(result: SweepResult) -> None:
        if metrics is not None:
            metrics.recordings_bytes.set(result.total_bytes)
            for deletion in result.deleted:
                metrics.recordings_deleted.labels(deletion.reason).inc()

    async def run(_app: web.Application) -> AsyncIterator[None]:
        if not policy.enabled:
            yield
            return
        task = asyncio.create_task(
            sweep_every(sweeper, settings.recording_sweep_interval_s, count), name="recording-retention"
        )
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return run


async def _until(event: asyncio.Event) -> None:
    await event.wait()


async def start_server(
    settings: Settings,
    line: LineConfig | LineBook | None = None,
    *,
    on_deps: Callable[[CallDeps], None] | None = None,
) -> RunningServer:
    """Start the bot on ``settings.host``/``settings.port`` (port 0 = any free port).

    ``line``: a fixed line or book (tests); None loads the flow files at ``settings.flows_path``.
    ``on_deps`` may adjust the providers before anything uses them (a replay's clock and voices).
    Raises ``FlowError`` for invalid flows.
    """
    flows = await asyncio.to_thread(load_flows, settings.flows_path) if line is None else None
    check_models_in_use(flows, settings)
    engines = {str(flow.voice.provider) for flow in flows.flows} - {"auto"} if flows else set()
    if isinstance(line, LineConfig):
        line = LineBook.single(line)
    desk = LineDesk(line or LineBook(()), from_files=flows is not None)
    deps = build_deps(settings, desk, engines=engines)
    if on_deps is not None:
        on_deps(deps)
    if flows is not None:
        try:
            book = await asyncio.to_thread(
                build_book, flows, env=os.environ, http=deps.http, voices=deps.voices
            )
            desk.swap(book, initial=True)
        except BaseException:
            await close_deps(deps)
            raise
        log.info("flows_loaded", flows=desk.book.versions(), path=str(Path(settings.flows_path)))
    app = create_app(settings, deps)
    # bot.telemetry.log_limit: what the rejection-line budget dropped
    app.cleanup_ctx.append(report_suppressed)
    warming = asyncio.ensure_future(warm_up(deps, desk.book))  # in the background: /healthz answers at once

    async def stop_warming(_app: web.Application) -> None:
        warming.cancel()

    app.on_shutdown.append(stop_warming)
    if deps.recordings is not None:
        app.cleanup_ctx.append(_recording_retention(settings, deps.metrics))
    # keepalive_timeout: aiohttp's default keeps an idle connection (or one whose headers never finish)
    # for 3630 s (aiohttp/web_protocol.py:182, timer armed at connection_made :368-372). lingering_time:
    # how long the unread body of a refused request is read and dropped before closing (:700-726).
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        keepalive_timeout=settings.keepalive_timeout_s,
        lingering_time=1.0,
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = runner.addresses[0][1]
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "127.0.0.1") else settings.host
    return RunningServer(app, runner, f"http://{host}:{port}", warming, deps, desk, settings)


async def serve(settings: Settings) -> None:
    configure_logging(settings.log_level, secrets=settings.secrets())
    server = await start_server(settings)
    # Once warm (modules imported, flows built, clips synthesized), move every object alive to the GC's
    # permanent generation: a full collection then scans only what calls create. Without this, each
    # full collection walked every start-up object too and held the one event loop, every call's
    # audio included, for tens of milliseconds under load (bench/load.py shows the loop lag).
    server.warming.add_done_callback(lambda _: gc.freeze())
    log.info(
        "listening",
        host=settings.host,
        port=settings.port,
        url=server.url,
        public_base_url=settings.public_base_url,
    )
    stop = asyncio.Event()
    cut_short = asyncio.Event()

    def on_stop_signal() -> None:
        (cut_short if stop.is_set() else stop).set()  # the second signal ends the drain

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_stop_signal)
    loop.add_signal_handler(signal.SIGHUP, server.request_reload)
    await stop.wait()
    await server.drain(settings.drain_timeout_s, cut_short)
    log.info("shutting_down")
    await server.stop()
