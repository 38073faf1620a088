"""The aiohttp application: ``POST /voice`` (TwiML), ``GET /media`` (Media Streams), ``POST /status``
(Twilio's call status callback), ``POST /stream-status`` (the stream's), ``POST /action`` (the
``<Connect action>``: what the call does once its stream ended), ``GET /healthz`` (liveness),
``GET /readyz`` (readiness), Prometheus
``GET /metrics``, and the call inspector at ``/calls`` (only with ``CALLS_TOKEN`` set).

A thin shell: it checks signatures, builds TwiML, and hands each WebSocket's frames to a ``Call``
through a ``MediaSocket`` (bounded sends, a receive deadline, a close that cannot hang). Once a call is
over its observers are told before the socket is closed, so a peer that will not close cannot keep
them waiting.

Stateless across requests: ``/voice`` and ``/action`` only answer TwiML (built in one place,
``_connect_stream``), and the stream learns everything it needs from ``start`` (its
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
import time
from collections.abc import AsyncIterator, Callable, Mapping

import structlog
from aiohttp import WSCloseCode, web
from aiohttp.typedefs import Handler

from bot.call.call import Call
from bot.call.deps import CallDeps
from bot.core.binding import PARAMETER, binding_for_form, is_account_sid, is_call_sid
from bot.flows.line_book import LineDesk
from bot.inspector.routes import calls_routes
from bot.server.media_socket import MediaSocket
from bot.server.refusals import count_refusals
from bot.server.settings import Settings
from bot.server.stream_gate import Admitted, admit
from bot.server.twilio.callback_dedupe import Callbacks
from bot.server.twilio.connect_action import (
    RESUMED,
    AfterStream,
    EndedCalls,
    after_stream,
    note_connect_action,
)
from bot.server.twilio.status import note_call_status
from bot.server.twilio.stream_status import note_stream_status
from bot.server.twilio.webhook import (
    SIGNATURE_HEADER,
    FormLimits,
    SignatureChecker,
    empty_twiml,
    public_url,
    public_ws_url,
    signed_form,
    stream_twiml,
)
from bot.server.wiring import close_deps
from bot.telemetry.metrics import CONTENT_TYPE, CallMetrics

# Twilio frames are ~300 bytes. Frames up to MAX_FRAME_CHARS are parsed (bigger ones are counted as
# junk and ignored); past MAX_SOCKET_MESSAGE aiohttp closes the socket (1009): a socket_error ending.
MAX_FRAME_CHARS = 64 * 1024
MAX_SOCKET_MESSAGE = 1024 * 1024
log = structlog.get_logger("bot.server.app")

SETTINGS = web.AppKey("settings", Settings)
DEPS = web.AppKey("deps", CallDeps)
CHECKER = web.AppKey("checker", SignatureChecker)
CALLS = web.AppKey("calls", set[Call])
SOCKETS = web.AppKey("sockets", set[MediaSocket])
# Called with each Call when it ends (the demo's report; recordings are written by the Call's journal).
CALL_OBSERVERS = web.AppKey("call_observers", list[Callable[[Call], None]])
DRAINING = web.AppKey("draining", asyncio.Event)  # set once: new calls are refused
NO_CALLS = web.AppKey("no_calls", asyncio.Event)  # set while CALLS is empty (the drain waits on it)
AWAITING_START = web.AppKey("awaiting_start", list[int])  # [sockets upgraded, start not yet read]
FORMS = web.AppKey("forms", FormLimits)  # the unauthenticated bodies being read (bot.server.twilio.webhook)
ENDED = web.AppKey("ended", EndedCalls)  # calls this replica ended on purpose (goodbye, transfer)
RECENT = web.AppKey("recent", Callbacks)  # signed callbacks seen lately (bot.server.twilio.callback_dedupe)
# Why a call ended that says the stream was not lost: the bot ended it (see ``Telephony.ending``).
NOT_ON_PURPOSE = frozenset({None, "socket_error"})


def start_draining(app: web.Application) -> None:
    """Refuse new calls from now on; live calls and their streams are left alone (see the module rules)."""
    app[DRAINING].set()


async def wait_for_calls_to_end(app: web.Application) -> None:
    """Return once no call is live (at once if none is)."""
    await app[NO_CALLS].wait()


def _refused_while_draining(request: web.Request) -> web.Response | None:
    if not request.app[DRAINING].is_set():
        return None
    log.info("call_refused_draining", path=request.path)
    return web.Response(status=503, text="draining", headers={"Retry-After": "5"})


async def _signed_form(request: web.Request) -> dict[str, str] | None:
    app = request.app
    return await signed_form(request, app[CHECKER], app[SETTINGS].public_base_url, app[FORMS])


def _refused_over_capacity(request: web.Request) -> web.Response | None:
    """``/voice`` past ``MAX_CALLS``: 503, so Twilio requests the number's fallback URL (module rules)."""
    active, cap = len(request.app[CALLS]), request.app[SETTINGS].max_calls
    if active < cap:
        return None
    log.warning("call_refused_busy", active_calls=active, max_calls=cap)
    return web.Response(status=503, text="busy", headers={"Retry-After": "5"})


def _forbidden(request: web.Request, event: str) -> web.Response:
    log.warning(event, path=request.path)
    return web.Response(status=403, text="invalid signature")


def _connect_stream(
    request: web.Request, params: dict[str, str], binding: str, *, resumed: bool = False
) -> web.Response:
    """The TwiML that connects a call to our media stream: ``/voice``'s answer, and ``/action``'s when a
    lost stream comes back. The one place that builds the stream and its parameters (the ``binding``
    token among them: ``_binding_for``)."""
    base = request.app[SETTINGS].public_base_url
    # The stream routes again by "to" (any replica may take it); "line" is for people reading logs.
    line = request.app[DEPS].lines.route(params.get("To"))
    parameters = {"to": params.get("To", ""), "from": params.get("From", ""), "line": line.name}
    parameters[PARAMETER] = binding
    if resumed:
        parameters[RESUMED] = "1"
    twiml = stream_twiml(
        public_ws_url(request, base, "/media"),
        parameters,
        action_url=public_url(request, base, "/action"),
        status_callback_url=public_url(request, base, "/stream-status"),
    )
    log.info(
        "call_resumed" if resumed else "call_answered",
        call_sid=params.get("CallSid", ""),
        line=line.name,
        flow_version=line.version,
    )
    return web.Response(text=twiml, content_type="text/xml")


async def voice(request: web.Request) -> web.Response:
    if refused := _refused_while_draining(request) or _refused_over_capacity(request):
        return refused
    params = await _signed_form(request)
    if params is None:
        return _forbidden(request, "webhook_signature_rejected")
    settings = request.app[SETTINGS]
    binding = _binding_for(params, settings)
    if binding is None:
        return _not_our_call(params)
    return _connect_stream(request, params, binding)


async def connect_action(request: web.Request) -> web.Response:
    """Twilio's request once a call's stream ended (``bot.server.twilio.connect_action``); served while
    draining."""
    settings = request.app[SETTINGS]
    params = await _signed_form(request)
    if params is None:
        return _forbidden(request, "webhook_signature_rejected")
    outcome = after_stream(params, ended_here=params.get("CallSid", "") in request.app[ENDED])
    if not await request.app[RECENT].repeated(request, "action"):  # a retry still gets its TwiML
        note_connect_action(params, outcome, request.app[DEPS].metrics)
    if outcome is AfterStream.RESUME:
        binding = _binding_for(params, settings)
        if binding is None:
            return _not_our_call(params)
        return _connect_stream(request, params, binding, resumed=True)
    return web.Response(text=empty_twiml(), content_type="text/xml")


def _binding_for(params: dict[str, str], settings: Settings) -> str | None:
    token = settings.twilio_auth_token.get_secret_value()
    return binding_for_form(params, token, settings.twilio_account_sid, now=time.time())


def _not_our_call(params: dict[str, str]) -> web.Response:
    call_sid, account_sid = params.get("CallSid", ""), params.get("AccountSid", "")
    log.warning(
        "webhook_not_a_call_of_ours",
        call_sid=call_sid if is_call_sid(call_sid) else "malformed",
        account_sid=account_sid if is_account_sid(account_sid) else "malformed",
    )
    return web.Response(status=400, text="not a call of this account")


async def _admit(
    request: web.Request, socket: MediaSocket, frames: AsyncIterator[str | bytes]
) -> Admitted | None:
    """The stream's first frames if its ``start`` is bound to its webhook; else it is refused and closed.

    The upgrade's signature is one value per host, so only a bound ``start`` may make a call."""
    settings = request.app[SETTINGS]
    admitted = await admit(
        frames,
        settings.twilio_auth_token.get_secret_value(),
        account=settings.twilio_account_sid,
        max_frame_chars=MAX_FRAME_CHARS,
        timeout_s=settings.start_timeout_s,
    )
    if isinstance(admitted, Admitted):
        return admitted
    log.warning("stream_refused", **admitted.log_fields())
    metrics = request.app[DEPS].metrics
    if metrics is not None:
        metrics.observe("stream_refused", {"reason": admitted.reason.value})
    await socket.close(code=WSCloseCode.POLICY_VIOLATION, message=b"stream not bound to its call")
    return None


async def media(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    url = public_ws_url(request, settings.public_base_url)
    if not request.app[CHECKER].valid(url, {}, request.headers.get(SIGNATURE_HEADER)):
        return _forbidden(request, "websocket_signature_rejected")
    awaiting = request.app[AWAITING_START]
    if awaiting[0] >= settings.max_pending_streams:
        # The upgrade's signature is one value per host, replayable: without this, anyone who saw one
        # could hold any number of sockets for START_TIMEOUT_S each. Twilio's start comes in milliseconds.
        log.warning("stream_refused_over_cap", awaiting_start=awaiting[0])
        return web.Response(status=503, text="busy", headers={"Retry-After": "1"})
    ws = web.WebSocketResponse(max_msg_size=MAX_SOCKET_MESSAGE)
    await ws.prepare(request)
    structlog.contextvars.clear_contextvars()
    socket = MediaSocket(ws, request.transport, receive_timeout_s=settings.media_receive_timeout_s)
    request.app[SOCKETS].add(socket)
    frames = socket.frames()
    try:
        awaiting[0] += 1
        try:
            admitted = await _admit(request, socket, frames)
        finally:
            awaiting[0] -= 1
        if admitted is None:
            return ws  # refused: closed before any call work was done or recorded
        ended = request.app[ENDED]

        async def close_on_purpose() -> None:
            # Remembered before the socket closes: Twilio requests /action as soon as it sees the close.
            if call.ending not in NOT_ON_PURPOSE:
                ended.add(call.call_sid)
            await socket.close()

        deps, start = request.app[DEPS], admitted.start
        call = Call(deps, start, socket.send, close=close_on_purpose, max_frame_chars=MAX_FRAME_CHARS)
        socket.on_failure = call.socket_failed
        request.app[CALLS].add(call)
        request.app[NO_CALLS].clear()
        try:
            await call.run(frames)  # the frames after ``start``: the Call was built from it
        finally:
            request.app[CALLS].discard(call)
            if not request.app[CALLS]:
                request.app[NO_CALLS].set()
            for observer in request.app[CALL_OBSERVERS]:
                observer(call)
    finally:
        request.app[SOCKETS].discard(socket)
        try:
            await frames.aclose()
        finally:
            await socket.close()
    return ws


def _status_callback(route: str, note: Callable[[Mapping[str, str], CallMetrics | None], object]) -> Handler:
    """``/status`` and ``/stream-status``: signed, counted once however often it comes (module rules)."""

    async def callback(request: web.Request) -> web.Response:
        form = await _signed_form(request)
        if form is None:
            return _forbidden(request, "webhook_signature_rejected")
        if not await request.app[RECENT].repeated(request, route):
            note(form, request.app[DEPS].metrics)
        return web.Response(status=204)

    return callback


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
    app.router.add_post("/status", _status_callback("status", note_call_status))
    app.router.add_post("/stream-status", _status_callback("stream_status", note_stream_status))
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
