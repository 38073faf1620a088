"""A local fake of Twilio's REST endpoint for updating a live call (127.0.0.1 only, ephemeral port).

Rules:
- Serves only ``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json``; ``base_url`` has no path,
  it stands in for ``https://api.twilio.com``.
- Every request is recorded in ``requests`` first, refused ones included, then answered in this order:
  1. ``faults``: if not empty, one status is popped and answered with Twilio's error JSON, no checks made.
     ``HANG`` (0) never answers: the handler waits until the client goes away or the server stops.
  2. HTTP Basic auth, Twilio's two pairings and nothing else (https://www.twilio.com/docs/iam/api-keys,
     https://www.twilio.com/docs/usage/requests-to-twilio): the account sid with the account's auth token,
     or an API key sid (``api_keys``) with that key's own secret. A key sid with the auth token, the
     account sid with a key's secret, another account's sid or path: 401 (Twilio code 20003). The
     emulator stands for one account (``account_sid``, by default the simulated phone's).
  3. The path's call sid must be Twilio-shaped (``CA`` + 32 hex, https://www.twilio.com/docs/glossary/
     what-is-a-sid); otherwise 404 (20404), as for a call that does not exist.
  4. The form needs exactly one of ``Status`` (``completed`` or ``canceled``), ``Twiml``, ``Url``.
     Otherwise 400 (Twilio code 21201 for none or several, 21218 for an unknown status).
  5. Success: ``on_update`` (if set) is awaited with the request *before* the answer goes out, so by the
     time the client's call returns the hook has run (a test may wire it to ``SimulatedPhone.call_updated``,
     as tests/e2e/test_connect_action.py does; the rig leaves it unset).
     An exception from the hook propagates: aiohttp answers 500. Then 200 with a call resource whose
     status is ``completed`` for ``Status=completed``, else ``in-progress`` (Twilio ignores ``canceled``
     on a call that is already answered; new TwiML keeps the call up).
- Error bodies use Twilio's legacy JSON shape ``{code, message, more_info, status}``, which the SDK turns
  into ``TwilioRestException``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from aiohttp import hdrs, web

from emulators.local_http import LocalHttpEmulator

ACCOUNT_SID = "AC" + "0" * 32  # the simulated phone's account (emulators.phone.SimulatedPhone)
_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
HANG = 0  # a fault that never answers (for client timeout tests)
_API_VERSION = "2010-04-01"
_STATUSES = ("completed", "canceled")
_FAULT_MESSAGES = {
    400: (21201, "Bad request"),
    401: (20003, "Authenticate"),
    403: (20403, "Forbidden"),
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "An internal server error has occurred"),
    503: (20503, "Service unavailable"),
}


@dataclass(frozen=True)
class RestRequest:
    method: str
    path: str
    form: dict[str, str]
    username: str | None  # None without a (decodable) Basic auth header
    authorized: bool
    account_sid: str
    call_sid: str


def twilio_error(status: int, code: int, message: str) -> web.Response:
    """An error answer shaped like Twilio's."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status)


def _basic_auth(request: web.Request) -> tuple[str, str] | None:
    """(login, password) of an HTTP Basic ``Authorization`` header, None if absent or malformed."""
    # Decoded by hand: aiohttp 3.14 deprecates BasicAuth.
    scheme, _, encoded = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    login, colon, password = decoded.partition(":")
    return (login, password) if colon else None


class TwilioRestEmulator(LocalHttpEmulator):
    """See the module docstring. ``async with TwilioRestEmulator(token) as emu: emu.base_url``."""

    def __init__(
        self, auth_token: str, *, account_sid: str = ACCOUNT_SID, api_keys: Mapping[str, str] | None = None
    ) -> None:
        """``api_keys``: API key sid -> that key's secret (keys of ``account_sid``)."""
        super().__init__()
        self.auth_token = auth_token
        self.account_sid = account_sid
        self.api_keys = dict(api_keys or {})
        self.requests: list[RestRequest] = []
        self.faults: collections.deque[int] = collections.deque()
        self.on_update: Callable[[RestRequest], Awaitable[None]] | None = None
        self._recorded = asyncio.Condition()

    def _on_start(self) -> None:
        self._recorded = asyncio.Condition()

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(f"/{_API_VERSION}/Accounts/{{account_sid}}/Calls/{{call_sid}}.json", self._update)
        return app

    # A ``timeout`` parameter (ruff ASYNC109) is the API, like the phone emulator's ``wait_for_*``.
    async def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[RestRequest]:  # noqa: ASYNC109
        """The first ``n`` requests, once that many arrived; ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout), self._recorded:
            await self._recorded.wait_for(lambda: len(self.requests) >= n)
        return self.requests[:n]

    async def _record(self, request: RestRequest) -> None:
        self.requests.append(request)
        async with self._recorded:
            self._recorded.notify_all()

    def _authorized(self, credentials: tuple[str, str] | None, account_sid: str) -> bool:
        if credentials is None:
            return False
        login, password = credentials
        # The password that goes with this login: the auth token for the account sid, a key's own
        # secret for its key sid; any other login has none (and never matches the auth token).
        if login == self.account_sid:
            expected = self.auth_token
        elif login in self.api_keys:
            expected = self.api_keys[login]
        else:
            expected = None
        # Compared even for an unknown login: no early exit that would time which part was wrong.
        password_ok = secrets.compare_digest(password.encode(), (expected or self.auth_token).encode())
        return expected is not None and password_ok and account_sid == self.account_sid

    async def _hang(self, request: web.Request) -> None:
        """Wait until the client goes away or the server stops."""
        while not self._stopping.is_set():
            if request.transport is None or request.transport.is_closing():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 0.05)

    async def _update(self, request: web.Request) -> web.StreamResponse:
        account_sid = request.match_info["account_sid"]
        call_sid = request.match_info["call_sid"]
        posted = await request.post()
        form = {key: value for key, value in posted.items() if isinstance(value, str)}
        credentials = _basic_auth(request)
        authorized = self._authorized(credentials, account_sid)
        record = RestRequest(
            method=request.method,
            path=request.path,
            form=form,
            username=credentials[0] if credentials else None,
            authorized=authorized,
            account_sid=account_sid,
            call_sid=call_sid,
        )
        await self._record(record)

        if self.faults:
            fault = self.faults.popleft()
            if fault == HANG:
                await self._hang(request)
                raise web.HTTPServiceUnavailable()  # only reached on shutdown or once the client left
            code, message = _FAULT_MESSAGES.get(fault, (fault, "Emulated fault"))
            return twilio_error(fault, code, message)
        if not authorized:
            return twilio_error(401, 20003, "Authenticate")
        if not _CALL_SID.fullmatch(call_sid):
            return twilio_error(404, 20404, "The requested resource was not found")
        error = _form_error(form)
        if error is not None:
            return twilio_error(400, *error)

        if self.on_update is not None:
            await self.on_update(record)
        call_status = "completed" if form.get("Status") == "completed" else "in-progress"
        return web.json_response(_call_resource(account_sid, call_sid, call_status))


def _form_error(form: dict[str, str]) -> tuple[int, str] | None:
    given = [key for key in ("Status", "Twiml", "Url") if key in form]
    if len(given) != 1:
        return 21201, f"Exactly one of Status, Twiml or Url is required, got {given or 'none'}"
    if given == ["Status"] and form["Status"] not in _STATUSES:
        return 21218, f"Invalid Status: {form['Status'][:40]!r}"
    return None


def _call_resource(account_sid: str, call_sid: str, status: str) -> dict[str, Any]:
    now = formatdate(usegmt=True)  # Twilio dates are RFC 2822
    uri = f"/{_API_VERSION}/Accounts/{account_sid}/Calls/{call_sid}.json"
    return {
        "sid": call_sid,
        "account_sid": account_sid,
        "parent_call_sid": None,
        "status": status,
        "direction": "inbound",
        "from": "+15550100",
        "to": "+15550199",
        "date_created": now,
        "date_updated": now,
        "start_time": now,
        "end_time": now if status == "completed" else None,
        "duration": None,
        "price": None,
        "api_version": _API_VERSION,
        "uri": uri,
        "subresource_uris": {},
    }
