"""Twilio webhook helpers: signature checks and the TwiML that connects the call to our socket.

Rules:
- Signatures are checked with twilio's ``RequestValidator`` over the URL Twilio used. Behind a TLS
  proxy aiohttp sees ``http://``, so the public URL comes from ``PUBLIC_BASE_URL`` when it is set.
  ``X-Forwarded-*`` headers are never trusted.
- Every form-encoded webhook (``/voice``, ``/status``) goes through ``signed_form``: the signature covers
  the public URL with its query string and every value of every form field, so a field repeated or
  changed after signing, or a signature made for another URL, is refused.
- The WebSocket upgrade is signed over the ``wss://`` URL from our TwiML, with no params.
- Per-call values travel as ``<Parameter>``s (they arrive in ``start.customParameters``); the
  Stream URL never carries a query string.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from aiohttp import web
from multidict import MultiDict
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

SIGNATURE_HEADER = "X-Twilio-Signature"


class SignatureChecker:
    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def valid(self, url: str, params: Mapping[str, str], signature: str | None) -> bool:
        """``params``: a dict, or a ``MultiDict`` whose repeated fields are all signed (``getall``)."""
        if not signature:
            return False
        return bool(self._validator.validate(url, params, signature))


async def signed_form(
    request: web.Request, checker: SignatureChecker, public_base_url: str | None
) -> dict[str, str] | None:
    """The form of a webhook POST if its ``X-Twilio-Signature`` is valid for the public URL, else None."""
    form = await request.post()
    fields = MultiDict((name, str(value)) for name, value in form.items())
    url = public_http_url(request, public_base_url)
    if not checker.valid(url, fields, request.headers.get(SIGNATURE_HEADER)):
        return None
    # Twilio never repeats a field; one signed repeated keeps its first value here.
    return dict(fields)


def public_http_url(request: web.Request, public_base_url: str | None) -> str:
    if public_base_url:
        return public_base_url + str(request.rel_url)
    return str(request.url)


def public_host(request: web.Request, public_base_url: str | None) -> str:
    if public_base_url:
        return urlsplit(public_base_url).netloc
    return request.host


def public_ws_url(request: web.Request, public_base_url: str | None, path: str = "") -> str:
    return f"wss://{public_host(request, public_base_url)}{path or request.path}"


def stream_twiml(stream_url: str, parameters: Mapping[str, str]) -> str:
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)
