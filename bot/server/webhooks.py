"""Twilio's webhooks: ``POST /voice`` (the TwiML that connects a call to our stream), ``POST /action``
(the ``<Connect action>``: what a call does once its stream ended) and the signed callbacks
``POST /status`` and ``POST /stream-status``. Their rules are the application's (``bot.server.app``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from bot.core.binding import PARAMETER, binding_for_form, is_account_sid, is_call_sid
from bot.server.settings import Settings
from bot.server.state import CALLS, CHECKER, DEPS, DRAINING, ENDED, FORMS, RECENT, SETTINGS
from bot.server.twilio.connect_action import RESUMED, AfterStream, after_stream, note_connect_action
from bot.server.twilio.webhook import empty_twiml, public_url, public_ws_url, signed_form, stream_twiml
from bot.telemetry.metrics import CallMetrics

log = structlog.get_logger("bot.server.app")  # the application's lines, whichever module writes them


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


def forbidden(request: web.Request, event: str) -> web.Response:
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
        return forbidden(request, "webhook_signature_rejected")
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
        return forbidden(request, "webhook_signature_rejected")
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


def status_callback(route: str, note: Callable[[Mapping[str, str], CallMetrics | None], object]) -> Handler:
    """``/status`` and ``/stream-status``: signed, counted once however often it comes (module rules)."""

    async def callback(request: web.Request) -> web.Response:
        form = await _signed_form(request)
        if form is None:
            return forbidden(request, "webhook_signature_rejected")
        if not await request.app[RECENT].repeated(request, route):
            note(form, request.app[DEPS].metrics)
        return web.Response(status=204)

    return callback
