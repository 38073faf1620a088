"""Twilio webhook helpers: signature checks and the TwiML that connects the call to our socket.

Rules:
- Signatures are checked with twilio's ``RequestValidator`` over the URL Twilio used. Behind a TLS
  proxy aiohttp sees ``http://``, so the public URL comes from ``PUBLIC_BASE_URL`` when it is set.
  ``X-Forwarded-*`` headers are never trusted.
- Every form-encoded webhook (``/voice``, ``/status``, ``/stream-status``, ``/action``) goes through
  ``signed_form``: the signature covers the public URL with its query string and every value of every
  form field, so a field repeated or changed after signing, or a signature made for another URL, is
  refused.
- A form is read only once it may be Twilio's (``FormLimits``): a request with no signature header is
  refused 403 and one whose ``Content-Length`` is over ``max_bytes`` 413, before a byte of body is read;
  the body is read under ``read_timeout_s`` (408) by at most ``max_pending`` requests at once (503 past
  that). An unauthenticated peer can hold at most ``max_pending x max_bytes`` for ``read_timeout_s``.
  Each refusal closes the connection (``Connection: close``): its unread body is not worth waiting for.
  A peer that disconnects mid-body is one ``webhook_body_aborted`` line, never an ERROR traceback.
- The WebSocket upgrade is signed over the ``wss://`` URL from our TwiML, with no params.
- ``PUBLIC_BASE_URL`` may carry a path prefix (``https://example.com/bot``): every URL handed to Twilio
  (the stream, ``action``, ``statusCallback``) and every URL a signature is checked against keeps it; the
  proxy in front strips it, so the routes themselves are served at ``/media``, ``/status``...
- Per-call values travel as ``<Parameter>``s (they arrive in ``start.customParameters``); the
  Stream URL never carries a query string.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from multidict import MultiDict
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

SIGNATURE_HEADER = "X-Twilio-Signature"
log = structlog.get_logger("bot.server.twilio.webhook")


@dataclass
class FormLimits:
    """How much unauthenticated body the webhooks take (module rules). Twilio's forms are a few KiB."""

    max_bytes: int = 64 * 1024
    read_timeout_s: float = 5.0
    max_pending: int = 64
    pending: int = field(default=0, init=False)  # forms being read now


def _refuse(request: web.Request, error: web.HTTPException, event: str, **fields: object) -> NoReturn:
    log.warning(event, path=request.path, **fields)
    error.force_close()  # Connection: close; aiohttp drops the unread body within lingering_time
    if error.status_code == 503:
        error.headers["Retry-After"] = "1"
    raise error


class SignatureChecker:
    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def valid(self, url: str, params: Mapping[str, str], signature: str | None) -> bool:
        """``params``: a dict, or a ``MultiDict`` whose repeated fields are all signed (``getall``)."""
        if not signature:
            return False
        return bool(self._validator.validate(url, params, signature))


async def signed_form(
    request: web.Request,
    checker: SignatureChecker,
    public_base_url: str | None,
    limits: FormLimits | None = None,
) -> dict[str, str] | None:
    """The form of a webhook POST if its ``X-Twilio-Signature`` is valid for the public URL, else None.

    Raises ``web.HTTPException`` (403, 413, 408, 503) for a body refused before or while it is read."""
    limits = limits or FormLimits()
    if not request.headers.get(SIGNATURE_HEADER):
        forbidden = web.HTTPForbidden(text="invalid signature")
        _refuse(request, forbidden, "webhook_signature_rejected", reason="unsigned", body_read=False)
    size = request.content_length
    if size is not None and size > limits.max_bytes:
        too_large = web.HTTPRequestEntityTooLarge(limits.max_bytes, size)
        _refuse(request, too_large, "webhook_body_too_large", bytes=size)
    if limits.pending >= limits.max_pending:
        _refuse(request, web.HTTPServiceUnavailable(), "webhook_bodies_over_cap", pending=limits.pending)
    limits.pending += 1
    try:
        async with asyncio.timeout(limits.read_timeout_s):
            form = await request.post()  # chunked bodies: aiohttp stops at client_max_size (413)
    except TimeoutError:
        _refuse(request, web.HTTPRequestTimeout(), "webhook_body_read_timeout", seconds=limits.read_timeout_s)
    except ConnectionResetError:
        # The peer went away mid-body (aiohttp: "Connection lost"): one line, not aiohttp's ERROR traceback
        # ("Error handling request"). The 400 is never seen; aiohttp drops it with the connection.
        log.info("webhook_body_aborted", path=request.path)
        raise web.HTTPBadRequest(text="body incomplete") from None
    finally:
        limits.pending -= 1
    fields = MultiDict((name, str(value)) for name, value in form.items())
    url = public_http_url(request, public_base_url)
    if not checker.valid(url, fields, request.headers.get(SIGNATURE_HEADER)):
        return None
    # Twilio never repeats a field; one signed repeated keeps its first value here.
    return dict(fields)


def public_http_url(request: web.Request, public_base_url: str | None) -> str:
    """The URL Twilio requested: ``PUBLIC_BASE_URL`` (path prefix included) + the path the proxy passed on."""
    if public_base_url:
        return public_base_url + str(request.rel_url)
    return str(request.url)


def public_url(request: web.Request, public_base_url: str | None, path: str) -> str:
    """The public ``https://`` URL of one of our routes, for TwiML (``action``, ``statusCallback``)."""
    if public_base_url:
        return public_base_url + path
    return f"{request.scheme}://{request.host}{path}"


def public_ws_url(request: web.Request, public_base_url: str | None, path: str = "") -> str:
    """The ``wss://`` URL of a route (default: this request's), ``PUBLIC_BASE_URL``'s path prefix kept: a
    proxy that serves the bot under ``https://example.com/bot`` passes ``/bot/media`` on as ``/media``."""
    if public_base_url:
        parts = urlsplit(public_base_url)
        return f"wss://{parts.netloc}{parts.path.rstrip('/')}{path or request.path}"
    return f"wss://{request.host}{path or request.path}"


def stream_twiml(
    stream_url: str,
    parameters: Mapping[str, str],
    *,
    action_url: str | None = None,
    status_callback_url: str | None = None,
) -> str:
    """``<Response><Connect action><Stream url statusCallback><Parameter>...``.

    ``action``: when the stream ends Twilio requests it and follows the TwiML it answers; without one the
    call ends (https://www.twilio.com/docs/voice/twiml/connect). ``statusCallback``: Twilio posts
    ``stream-started``/``stream-stopped``/``stream-error`` there (https://www.twilio.com/docs/voice/twiml/stream,
    https://www.twilio.com/docs/api/errors/31921).
    """
    response = VoiceResponse()
    connect = Connect(action=action_url) if action_url else Connect()
    if status_callback_url:
        stream = connect.stream(
            url=stream_url, status_callback=status_callback_url, status_callback_method="POST"
        )
    else:
        stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def empty_twiml() -> str:
    """``<Response/>``: nothing more to do, Twilio ends the call."""
    return str(VoiceResponse())
