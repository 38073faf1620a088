"""The aiohttp application: ``POST /voice`` (TwiML), ``GET /media`` (Media Streams), ``POST /status``
(Twilio's call status callback), ``POST /stream-status`` (the stream's), ``POST /action`` (the
``<Connect action>``: what the call does once its stream ended), ``GET /healthz`` (liveness),
``GET /readyz`` (readiness), Prometheus
``GET /metrics``, and the call inspector at ``/calls`` (only with ``CALLS_TOKEN`` set).

The handlers live beside it: Twilio's webhooks in ``bot.server.webhooks``, the stream in
``bot.server.media_route``, the state they share in ``bot.server.state``; these rules are theirs.

A thin shell: it checks signatures, builds TwiML, and hands each WebSocket's frames to a ``Call``
through a ``MediaSocket`` (bounded sends, a receive deadline, a close that cannot hang). Once a call is
over its observers are told before the socket is closed, so a peer that will not close cannot keep
them waiting.

Stateless across requests: ``/voice`` and ``/action`` only answer TwiML (built in one place,
``bot.server.webhooks._connect_stream``), and the stream learns everything it needs from ``start`` (its
``customParameters``), so any replica can take any call's stream. A stream lost before the call ended on
purpose comes back through ``/action`` on any replica (``bot.server.twilio.connect_action``).

Each stream is bound to its webhook (``bot.core.binding``, ``bot.server.stream_gate``): ``/voice`` adds a
``binding`` parameter, an HMAC keyed with the auth token over the call's sids and an expiry, and a
``start`` without a matching one is closed with 1008 before any ``Call`` exists. Twilio signs the upgrade
over the bare ``wss://`` URL, one value per host, so that signature alone never names a call.

A callback (``/status``, ``/stream-status``, ``/action``) seen again byte for byte within 10 minutes (a
retry, a replay) is answered as before, counted once (``bot.server.twilio.callback_dedupe``).

Admission: a webhook body is read only within ``FormLimits`` (``bot.server.twilio.webhook``). ``/readyz``
turns
503 at ``MAX_CALLS`` live calls or with the loop lagging past ``READY_MAX_LOOP_LAG_S`` (the load balancer
sends new calls elsewhere first); ``/voice`` at ``MAX_CALLS`` answers 503, not a busy message, so Twilio
requests the number's fallback URL (another region or replica set) and the caller may still be served.
A media socket with no valid ``start`` within ``START_TIMEOUT_S`` is closed; until then it is no call,
and at most ``MAX_PENDING_STREAMS`` wait at once (an upgrade past that gets 503).
Streams themselves are not capped: each bound ``start`` comes from a ``/voice`` this or another replica
answered under its cap, and a refused stream drops its call (no fallback, see draining).

Draining (``start_draining``, on SIGTERM): ``/voice`` answers 503 so Twilio uses the number's fallback
and ``/healthz`` answers 503 ``draining``. Streams are still served: a stream belongs to a call some
replica already answered, and no Twilio page says a refused upgrade falls back anywhere (the call would
drop, error 31920). Live calls go on untouched, and so do ``/action`` and the status callbacks (they
continue or report on calls, they start none). At the drain deadline the streams are closed and each
call's ``/action`` moves it to another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import WSCloseCode, web

from bot.call.deps import CallDeps
from bot.flows.line_book import LineDesk
from bot.inspector.routes import calls_routes
from bot.server.media_route import media
from bot.server.media_socket import MediaSocket
from bot.server.refusals import count_refusals
from bot.server.settings import Settings
from bot.server.state import (
    AWAITING_START,
    CALL_OBSERVERS,
    CALLS,
    CHECKER,
    DEPS,
    DRAINING,
    ENDED,
    FORMS,
    NO_CALLS,
    RECENT,
    SETTINGS,
    SOCKETS,
)
from bot.server.twilio.callback_dedupe import Callbacks
from bot.server.twilio.connect_action import EndedCalls
from bot.server.twilio.status import note_call_status
from bot.server.twilio.stream_status import note_stream_status
from bot.server.twilio.webhook import FormLimits, SignatureChecker
from bot.server.webhooks import connect_action, status_callback, voice
from bot.server.wiring import close_deps
from bot.telemetry.metrics import CONTENT_TYPE

log = structlog.get_logger("bot.server.app")


def start_draining(app: web.Application) -> None:
    """Refuse new calls from now on; live calls and their streams are left alone (see the module rules)."""
    app[DRAINING].set()


async def wait_for_calls_to_end(app: web.Application) -> None:
    """Return once no call is live (at once if none is)."""
    await app[NO_CALLS].wait()


async def healthz(request: web.Request) -> web.Response:
    lines = request.app[DEPS].lines
    flows = lines.book.versions() if isinstance(lines, LineDesk) else {}
    draining = request.app[DRAINING].is_set()
    # 503 while draining: the load balancer stops sending calls here before the process goes.
    return web.json_response(
        {"status": "draining" if draining else "ok", "active_calls": len(request.app[CALLS]), "flows": flows},
        status=503 if draining else 200,
    )


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 503 while draining, at ``MAX_CALLS``, or with the event loop lagging past
    ``READY_MAX_LOOP_LAG_S``, so the load balancer sends new calls to other replicas (module rules)."""
    settings, metrics = request.app[SETTINGS], request.app[DEPS].metrics
    active = len(request.app[CALLS])
    lag = metrics.recent_loop_lag_s() if metrics is not None else 0.0
    reasons = [
        reason
        for reason, applies in (
            ("draining", request.app[DRAINING].is_set()),
            ("max_calls", active >= settings.max_calls),
            ("loop_lag", lag > settings.ready_max_loop_lag_s),
        )
        if applies
    ]
    body = {"status": "unready" if reasons else "ready", "reasons": reasons, "active_calls": active}
    return web.json_response({**body, "loop_lag_s": round(lag, 3)}, status=503 if reasons else 200)


def create_app(settings: Settings, deps: CallDeps) -> web.Application:
    # client_max_size: a chunked body (no Content-Length to refuse early) stops there with 413.
    refusals = [count_refusals(deps.metrics)] if deps.metrics is not None else []
    app = web.Application(client_max_size=settings.body_max_bytes, middlewares=refusals)
    app[SETTINGS] = settings
    app[DEPS] = deps
    app[CHECKER] = SignatureChecker(settings.twilio_auth_token.get_secret_value())
    app[CALLS] = set()
    app[SOCKETS] = set()
    app[CALL_OBSERVERS] = []
    app[DRAINING] = asyncio.Event()
    app[NO_CALLS] = asyncio.Event()
    app[NO_CALLS].set()
    app[ENDED] = EndedCalls()
    app[RECENT] = Callbacks(deps.metrics)
    app[AWAITING_START] = [0]
    app[FORMS] = FormLimits(
        settings.body_max_bytes, settings.body_read_timeout_s, settings.max_pending_bodies
    )
    app.router.add_post("/voice", voice)
    app.router.add_get("/media", media)
    app.router.add_post("/status", status_callback("status", note_call_status))
    app.router.add_post("/stream-status", status_callback("stream_status", note_stream_status))
    app.router.add_post("/action", connect_action)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if deps.metrics is not None:
        metrics = deps.metrics
        calls = app[CALLS]
        metrics.count_active(lambda: len(calls))

        async def scrape(_request: web.Request) -> web.Response:
            return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

        app.router.add_get("/metrics", scrape)

        async def watch_loop(_app: web.Application) -> AsyncIterator[None]:
            watcher = asyncio.create_task(metrics.watch_loop_lag(), name="loop-lag")
            yield
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

        app.cleanup_ctx.append(watch_loop)
    if deps.recordings is not None:
        token = settings.calls_token.get_secret_value() if settings.calls_token else None
        app.router.add_routes(calls_routes(deps.recordings, token))

    async def hang_up_all(app: web.Application) -> None:
        # Shutting down: end live calls' streams now (each Call finalizes itself) instead of letting
        # aiohttp wait out its shutdown timeout on open sockets. Twilio then requests each call's
        # /action, which another replica answers with a new stream: the call goes on there.
        sockets: set[MediaSocket] = app[SOCKETS]
        await asyncio.gather(
            *(s.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down") for s in list(sockets))
        )

    async def cleanup(app: web.Application) -> None:
        await close_deps(app[DEPS])

    app.on_shutdown.append(hang_up_all)
    app.on_cleanup.append(cleanup)
    return app
