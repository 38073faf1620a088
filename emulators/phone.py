"""A simulated Twilio phone: dials the bot's webhook and opens its Media Streams socket, as Twilio does.

Rules:
- ``dial`` follows Twilio's order: a signed form POST to ``/voice``; the TwiML answer must hold
  ``<Response><Connect><Stream url>`` with optional ``<Parameter name value>``; then a signed WebSocket
  upgrade; then ``connected`` and ``start``. The call itself lives in ``phone_call.PhoneCall``.
- Signatures come from twilio's own ``RequestValidator``: the webhook over ``public_base_url + "/voice"``
  (what Twilio believes it requested) with the form params; the upgrade over the ``wss://`` URL exactly as
  the TwiML gave it, with no params. An explicit ``signature``/``ws_signature`` overrides; ``""`` omits the
  header.
- The phone reaches the bot at ``bot_url`` (host and port) and takes only the path from the Stream URL, the
  way a tunnel maps the public name onto a local server. ``dial(stream_to=...)`` opens the stream on
  another server than the one that answered the webhook, as a load balancer in front of replicas may.
- A non-200 webhook answer or a refused upgrade is ``PhoneRejected``; so is TwiML without a Stream. A Stream
  URL Twilio would refuse (not ``wss``, or with a query string) is recorded as a protocol error, and the
  phone connects anyway so the test can inspect the rest of the call.
- Each call owns its ``aiohttp.ClientSession``; nothing is left open when ``dial`` fails.
- With ``follow_actions`` the phone does what Twilio does after a stream (``emulators.phone_action``): it
  posts the ``<Stream statusCallback>`` events, and once the stream ended other than by a hang-up (the bot
  closed it, or ``PhoneCall.drop``) it requests the ``<Connect action>`` and follows the answer; a new
  ``<Connect><Stream>`` is a new ``PhoneCall`` of the same call (``resumed``). Requests and new streams go
  to ``reconnect_to`` when set (a load balancer sending them to another replica), else ``bot_url``.
  Without it (the default, for tests that look at one stream) a stream's end is the call's end.
- ``public_base_url`` may carry a path prefix: public URLs map onto the bot with the prefix stripped.
- Its sids are Twilio's: two letters and 32 hex digits (https://www.twilio.com/docs/glossary/what-is-a-sid);
  a test that passes any other call or account sid gets ``ValueError`` (Twilio never sends one; the
  forged streams of ``tests/e2e/test_stream_binding.py`` are sent by hand).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp
from twilio.request_validator import RequestValidator

from .call_record import PhoneEvent
from .phone_action import (
    SIGNATURE_HEADER,
    ConnectStream,
    NotTwiml,
    Posted,
    action_form,
    local_url,
    parse_connect_stream,
    post_signed,
    stream_status_form,
)
from .phone_call import PhoneCall
from .voice import ToneCodebook

__all__ = ["PhoneCall", "PhoneEvent", "PhoneRejected", "SimulatedPhone"]

_HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
_WS_TIMEOUT = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0)
_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")


class PhoneRejected(Exception):
    """The bot refused the call: the webhook or the WebSocket upgrade failed."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"call rejected: HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body


class SimulatedPhone:
    """Places calls to one bot, as Twilio would."""

    def __init__(
        self,
        *,
        bot_url: str,
        auth_token: str,
        public_base_url: str | None = None,
        codebook: ToneCodebook | None = None,
        account_sid: str = "AC" + "0" * 32,
        noise_rms: int = 40,
        follow_actions: bool = False,
    ) -> None:
        if not _ACCOUNT_SID.fullmatch(account_sid):
            raise ValueError(f"not a Twilio account sid (AC + 32 hex): {account_sid!r}")
        self.bot_url = bot_url.rstrip("/")
        self.public_base_url = (public_base_url or bot_url).rstrip("/")
        self.codebook = codebook if codebook is not None else ToneCodebook()
        self.account_sid = account_sid
        self.noise_rms = noise_rms
        self.follow_actions = follow_actions
        self.reconnect_to: str | None = None
        self.posted: list[Posted] = []  # action requests and stream status callbacks, in order
        self._validator = RequestValidator(auth_token)
        # id(call) -> what followed its stream: the new stream, or None (the call ended)
        self._after: dict[int, asyncio.Future[PhoneCall | None]] = {}
        self._following: set[asyncio.Task[None]] = set()
        self._updated: dict[str, str] = {}  # call sid -> "completed" / "redirected" through REST

    async def dial(
        self,
        *,
        to: str = "+15550100",
        from_: str = "+15550199",
        call_sid: str | None = None,
        signature: str | None = None,
        ws_signature: str | None = None,
        extra_form: Mapping[str, str] | None = None,
        stream_to: str | None = None,
    ) -> PhoneCall:
        """Ring the bot and connect its media stream; the call streams and plays until hung up.

        ``stream_to``: the server (``http://host:port``) that takes the stream; default ``bot_url``.
        """
        dial_time = asyncio.get_running_loop().time()
        call_sid = call_sid or "CA" + secrets.token_hex(16)
        if not _CALL_SID.fullmatch(call_sid):
            raise ValueError(f"not a Twilio call sid (CA + 32 hex): {call_sid!r}")
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "CallStatus": "ringing",
            "Called": to,
            "Caller": from_,
            "Direction": "inbound",
            "From": from_,
            "To": to,
            **(extra_form or {}),
        }
        session = aiohttp.ClientSession(timeout=_HTTP_TIMEOUT)
        try:
            twiml = await self._post_webhook(session, form, signature)
            connect = _connect_stream(twiml, self.public_base_url + "/voice")
        except BaseException:
            await session.close()
            raise
        return await self._open_stream(session, form, twiml, connect, dial_time, ws_signature, stream_to)

    def call_updated(self, call_sid: str, form: Mapping[str, str]) -> None:
        """Twilio's REST API changed the call (wire ``TwilioRestEmulator.on_update`` here).

        ``Status=completed`` ends it; new ``Twiml``/``Url`` replaces the ``<Connect>`` that was running
        (https://www.twilio.com/docs/guides/how-to-modify-calls-in-progress-in-python). Either way no
        ``<Connect action>`` follows: the verb it belongs to no longer runs."""
        self._updated[call_sid] = (
            "completed" if form.get("Status") in ("completed", "canceled") else "redirected"
        )

    async def wait_resumed(self, call: PhoneCall, timeout: float = 15.0) -> PhoneCall:  # noqa: ASYNC109
        """The new stream Twilio opened for ``call`` once its stream ended (see the module rules)."""
        resumed = await self._next_stream(call, timeout)
        if resumed is None:
            raise AssertionError("the call ended after its stream: the action answered no <Connect><Stream>")
        return resumed

    async def wait_call_ended(self, call: PhoneCall, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        """Until Twilio is done with ``call``'s stream; AssertionError if a new stream was opened."""
        resumed = await self._next_stream(call, timeout)
        if resumed is not None:
            await resumed.hang_up()
            raise AssertionError("the action answered a new <Connect><Stream>: the call went on")

    async def _next_stream(self, call: PhoneCall, timeout: float) -> PhoneCall | None:  # noqa: ASYNC109
        if id(call) not in self._after:
            raise ValueError("this phone does not follow actions (follow_actions=False)")
        return await asyncio.wait_for(asyncio.shield(self._after[id(call)]), timeout)

    async def _open_stream(
        self,
        session: aiohttp.ClientSession,
        form: dict[str, str],
        twiml: str,
        connect: ConnectStream,
        dial_time: float,
        ws_signature: str | None,
        stream_to: str | None,
    ) -> PhoneCall:
        """Connect one ``<Connect><Stream>``: the upgrade, ``connected`` and ``start``; owns ``session``."""
        reported = asyncio.Event()  # stream-started was posted (stream-stopped may not overtake it)
        try:
            server = stream_to or self.reconnect_to or self.bot_url
            ws = await self._connect_stream(session, connect.url, ws_signature, server)
            call = PhoneCall(
                session=session,
                ws=ws,
                dial_time=dial_time,
                call_sid=form["CallSid"],
                stream_sid="MZ" + secrets.token_hex(16),
                account_sid=self.account_sid,
                twiml=twiml,
                stream_url=connect.url,
                parameters=connect.parameters,
                codebook=self.codebook,
                noise_rms=self.noise_rms,
            )
            for problem in _stream_url_problems(connect.url):
                call.protocol_error(problem)
            if self.follow_actions:  # before open(): the bot may close the stream at once
                self._after[id(call)] = asyncio.get_running_loop().create_future()
                call.on_stream_end = lambda: self._after_stream(form, connect, call, reported)
            await call.open()
        except BaseException:
            await session.close()
            reported.set()
            raise
        try:
            if self.follow_actions:
                await self._stream_status(connect, call, "stream-started")
        finally:
            reported.set()
        return call

    def _after_stream(
        self, form: dict[str, str], connect: ConnectStream, call: PhoneCall, reported: asyncio.Event
    ) -> None:
        outcome = self._after[id(call)]

        async def follow() -> None:
            try:
                await reported.wait()
                outcome.set_result(await self._follow_action(form, connect, call))
            except asyncio.CancelledError:
                outcome.cancel()
                raise
            except Exception as exc:  # seen by whoever waits for it
                outcome.set_exception(exc)

        task = asyncio.ensure_future(follow())
        self._following.add(task)
        task.add_done_callback(self._following.discard)

    async def _follow_action(
        self, form: dict[str, str], connect: ConnectStream, call: PhoneCall
    ) -> PhoneCall | None:
        """The stream ended (not a hang-up): report it, then request the action and follow its answer."""
        error = "the connection was lost (31921)" if call.dropped else None
        await self._stream_status(connect, call, "stream-error" if error else "stream-stopped", error)
        if connect.action is None or call.call_sid in self._updated:
            return None  # no action: Twilio moves on to the next verb; there is none, the call ends
        session = aiohttp.ClientSession(timeout=_HTTP_TIMEOUT)
        try:
            server = self.reconnect_to or self.bot_url
            posted = await post_signed(
                session,
                self._validator,
                kind="action",
                public=connect.action,
                target=local_url(connect.action, self.public_base_url, server),
                form=action_form(form),
                method=connect.action_method,
            )
            self.posted.append(posted)
            try:
                following = (
                    parse_connect_stream(posted.body, connect.action) if posted.status == 200 else None
                )
            except NotTwiml:
                following = None  # Twilio: application error 11200, the call ends
            if following is None:
                await session.close()
                return None
            loop = asyncio.get_running_loop()
            return await self._open_stream(session, form, posted.body, following, loop.time(), None, None)
        except BaseException:
            await session.close()
            raise

    async def _stream_status(
        self, connect: ConnectStream, call: PhoneCall, event: str, error: str | None = None
    ) -> None:
        if connect.status_callback is None:
            return
        form = stream_status_form(
            account_sid=self.account_sid,
            call_sid=call.call_sid,
            stream_sid=call.stream_sid,
            event=event,
            error=error,
        )
        server = self.reconnect_to or self.bot_url
        async with aiohttp.ClientSession(timeout=_HTTP_TIMEOUT) as session:
            self.posted.append(
                await post_signed(
                    session,
                    self._validator,
                    kind="stream_status",
                    public=connect.status_callback,
                    target=local_url(connect.status_callback, self.public_base_url, server),
                    form=form,
                    method=connect.status_callback_method,
                )
            )

    async def _post_webhook(
        self, session: aiohttp.ClientSession, form: dict[str, str], signature: str | None
    ) -> str:
        public_url = self.public_base_url + "/voice"
        if signature is None:
            signature = str(self._validator.compute_signature(public_url, form))
        headers = {"User-Agent": "TwilioProxy/1.1"}
        if signature:
            headers[SIGNATURE_HEADER] = signature
        async with session.post(self.bot_url + "/voice", data=form, headers=headers) as response:
            body = await response.text()
            if response.status != 200:
                raise PhoneRejected(response.status, body)
            return body

    async def _connect_stream(
        self, session: aiohttp.ClientSession, stream_url: str, ws_signature: str | None, bot_url: str
    ) -> aiohttp.ClientWebSocketResponse:
        if ws_signature is None:
            ws_signature = str(self._validator.compute_signature(stream_url, {}))
        headers = {"User-Agent": "Twilio.TmeWs/1.0"}
        if ws_signature:
            headers[SIGNATURE_HEADER] = ws_signature
        target = local_url(stream_url, self.public_base_url, bot_url, websocket=True)
        try:
            return await session.ws_connect(target, headers=headers, timeout=_WS_TIMEOUT, autoping=True)
        except aiohttp.WSServerHandshakeError as exc:
            raise PhoneRejected(exc.status, exc.message) from exc


def _connect_stream(twiml: str, document_url: str) -> ConnectStream:
    """The answer's <Connect><Stream>; PhoneRejected if the TwiML has none."""
    try:
        connect = parse_connect_stream(twiml, document_url)
    except NotTwiml as exc:
        raise PhoneRejected(200, str(exc)) from exc
    if connect is None:
        raise PhoneRejected(200, f"TwiML has no <Response><Connect><Stream url>: {twiml[:200]}")
    return connect


def _stream_url_problems(url: str) -> list[str]:
    parts = urlsplit(url)
    problems = []
    if parts.scheme != "wss":
        problems.append(f"TwiML Stream url must be wss:// (Twilio 31920): {url[:80]}")
    if parts.query:
        problems.append(f"TwiML Stream url has a query string, unsupported (Twilio 31922): {url[:80]}")
    return problems
