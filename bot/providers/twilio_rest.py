"""Hang up or redirect a live call through Twilio's REST API, with the twilio SDK's async client.

Rules:
- One ``AsyncTwilioHttpClient`` (one aiohttp session) per ``TwilioRest``, made lazily on the first request
  so it belongs to the running event loop; ``aclose()`` closes it (a later request makes a new one).
  Basic auth goes out as a header, not aiohttp's deprecated ``BasicAuth``.
- One ``twilio.rest.Client`` per account sid: the account comes from the call (the Media Streams ``start``
  message carries ``accountSid``, checked against its binding before any call work starts).
- Basic auth is one of Twilio's two pairings, never a mix (https://www.twilio.com/docs/iam/api-keys,
  https://www.twilio.com/docs/usage/requests-to-twilio): with ``api_key`` the key sid and the key's own
  secret; without, the account sid and the auth token. Twilio answers 401 (20003) to anything else, e.g.
  a key sid with the auth token. The SDK sends ``username``/``password`` as given and uses ``account_sid``
  only for the URL (twilio/base/client_base.py ``__init__``, twilio/rest/__init__.py docstring).
- A sid that is not Twilio-shaped (two letters and 32 hex digits) is refused before any request
  (``bad_sid``): it would become part of the REST path.
- ``base_url`` replaces ``https://api.twilio.com`` (tests and the demo point it at the local emulator); then
  the SDK's edge/region rewriting (``TWILIO_EDGE``/``TWILIO_REGION``) is switched off, as it would mangle it.
- Each request is bounded by ``timeout_s``; the SDK is built without retries, so that bound is the whole cost.
- Every failure is ``ProviderError("twilio", kind, detail)`` with kind ``http_<status>``, ``timeout``,
  ``unreachable``, ``bad_response`` (a 2xx whose body is not JSON) or ``bad_sid``. The detail never holds
  a secret (``bot.core.redact``'s rule: ``[redacted]`` in its place).
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any, Protocol

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from bot.core.binding import is_account_sid, is_call_sid
from bot.core.redact import Redactor
from media.errors import ProviderError

_PROVIDER = "twilio"
_DETAIL_MAX_CHARS = 160


class CallControl(Protocol):
    """What the call brain needs to end or move a live call."""

    async def hang_up(self, account_sid: str, call_sid: str) -> None: ...

    async def redirect(self, account_sid: str, call_sid: str, twiml: str) -> None: ...

    async def aclose(self) -> None: ...


def transfer_twiml(number: str) -> str:
    """TwiML that dials ``number``."""
    response = VoiceResponse()
    response.dial(number)
    return str(response)


class _HeaderAuthHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's async client, sending Basic auth as a header: aiohttp 3.14 deprecates ``auth=BasicAuth``
    (a DeprecationWarning on every request). The SDK's logging skips Authorization headers."""

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  # the SDK's signature
        allow_redirects: bool = False,
    ) -> Any:
        if auth is not None:
            headers = {**(headers or {}), "Authorization": _basic_authorization(*auth)}
        return await super().request(method, url, params, data, headers, None, timeout, allow_redirects)


def _basic_authorization(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode("ascii")


class TwilioRest:
    """``CallControl`` over the real Twilio REST API (or the emulator at ``base_url``)."""

    def __init__(
        self,
        auth_token: str,
        *,
        api_key: tuple[str, str] | None = None,
        base_url: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        """``api_key``: (key sid, key secret); without it the account sid and ``auth_token`` authenticate."""
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self._auth_token = auth_token
        self._api_key = api_key
        self._redactor = Redactor.of([auth_token, api_key[1] if api_key else ""])
        self._base_url = base_url.rstrip("/") if base_url else None
        self._timeout_s = timeout_s
        self._http: Any = None  # AsyncTwilioHttpClient, made inside the running loop
        self._clients: dict[str, Any] = {}  # account sid -> twilio.rest.Client

    async def hang_up(self, account_sid: str, call_sid: str) -> None:
        """End the call (``Status=completed``); Twilio then sends the stream's ``stop``."""
        await self._update(account_sid, call_sid, status="completed")

    async def redirect(self, account_sid: str, call_sid: str, twiml: str) -> None:
        """Replace what the call is executing with ``twiml`` (the media stream ends)."""
        await self._update(account_sid, call_sid, twiml=twiml)

    async def aclose(self) -> None:
        http, self._http = self._http, None
        self._clients.clear()
        if http is not None:
            await http.close()

    def _client(self, account_sid: str) -> Any:
        client = self._clients.get(account_sid)
        if client is not None:
            return client
        if self._http is None:
            self._http = _HeaderAuthHttpClient()
        username, password = self._api_key or (account_sid, self._auth_token)
        client = Client(username, password, account_sid=account_sid, http_client=self._http)
        if self._base_url is not None:
            client.api.base_url = self._base_url
            client.edge = None  # the SDK would rewrite the host name from TWILIO_EDGE/TWILIO_REGION
            client.region = None
        self._clients[account_sid] = client
        return client

    async def _update(self, account_sid: str, call_sid: str, **fields: str) -> None:
        if not (is_account_sid(account_sid) and is_call_sid(call_sid)):
            raise self._error("bad_sid", call_sid[:40], "not a Twilio account and call sid")
        call = self._client(account_sid).api.v2010.accounts(account_sid).calls(call_sid)
        try:
            async with asyncio.timeout(self._timeout_s):
                await call.update_async(**fields)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise self._error(f"http_{exc.status}", call_sid, _http_detail(exc)) from exc
        except TimeoutError as exc:  # also aiohttp's ServerTimeoutError, a TimeoutError subclass
            raise self._error("timeout", call_sid, f"no answer in {self._timeout_s} s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise self._error("unreachable", call_sid, _error_text(exc)) from exc
        except json.JSONDecodeError as exc:
            raise self._error("bad_response", call_sid, "reply is not JSON") from exc

    def _error(self, kind: str, call_sid: str, text: str) -> ProviderError:
        detail = self._redactor.text(f"call {call_sid}: {text}")  # a server might echo anything back
        return ProviderError(_PROVIDER, kind, detail[:_DETAIL_MAX_CHARS])


def _http_detail(exc: TwilioRestException | TwilioServiceException) -> str:
    code = getattr(exc, "code", None)
    message = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", None) or ""
    return f"code {code}: {message}" if code is not None else str(message)


def _error_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
