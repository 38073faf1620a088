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
- Its sids are Twilio's: two letters and 32 hex digits (https://www.twilio.com/docs/glossary/what-is-a-sid);
  a test that passes any other call or account sid gets ``ValueError`` (Twilio never sends one; the
  forged streams of ``tests/e2e/test_stream_binding.py`` are sent by hand).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp
from twilio.request_validator import RequestValidator
from yarl import URL

from .call_record import PhoneEvent
from .phone_call import PhoneCall
from .voice import ToneCodebook

__all__ = ["PhoneCall", "PhoneEvent", "PhoneRejected", "SimulatedPhone"]

_HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
_WS_TIMEOUT = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0)
_SIGNATURE_HEADER = "X-Twilio-Signature"
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
    ) -> None:
        if not _ACCOUNT_SID.fullmatch(account_sid):
            raise ValueError(f"not a Twilio account sid (AC + 32 hex): {account_sid!r}")
        self.bot_url = bot_url.rstrip("/")
        self.public_base_url = (public_base_url or bot_url).rstrip("/")
        self.codebook = codebook if codebook is not None else ToneCodebook()
        self.account_sid = account_sid
        self.noise_rms = noise_rms
        self._validator = RequestValidator(auth_token)

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
            stream_url, parameters = _parse_stream_twiml(twiml)
            ws = await self._connect_stream(session, stream_url, ws_signature, stream_to or self.bot_url)
            call = PhoneCall(
                session=session,
                ws=ws,
                dial_time=dial_time,
                call_sid=call_sid,
                stream_sid="MZ" + secrets.token_hex(16),
                account_sid=self.account_sid,
                twiml=twiml,
                stream_url=stream_url,
                parameters=parameters,
                codebook=self.codebook,
                noise_rms=self.noise_rms,
            )
            for problem in _stream_url_problems(stream_url):
                call._protocol_error(problem)
            await call._open()
        except BaseException:
            await session.close()
            raise
        return call

    async def _post_webhook(
        self, session: aiohttp.ClientSession, form: dict[str, str], signature: str | None
    ) -> str:
        public_url = self.public_base_url + "/voice"
        if signature is None:
            signature = str(self._validator.compute_signature(public_url, form))
        headers = {"User-Agent": "TwilioProxy/1.1"}
        if signature:
            headers[_SIGNATURE_HEADER] = signature
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
            headers[_SIGNATURE_HEADER] = ws_signature
        base = URL(bot_url.rstrip("/"))
        target = base.with_scheme("wss" if base.scheme == "https" else "ws").with_path(
            urlsplit(stream_url).path or "/"
        )
        try:
            return await session.ws_connect(target, headers=headers, timeout=_WS_TIMEOUT, autoping=True)
        except aiohttp.WSServerHandshakeError as exc:
            raise PhoneRejected(exc.status, exc.message) from exc


def _parse_stream_twiml(twiml: str) -> tuple[str, dict[str, str]]:
    """The Stream URL and its parameters; PhoneRejected if the TwiML is not a <Connect><Stream>."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as exc:
        raise PhoneRejected(200, f"TwiML is not XML ({exc}): {twiml[:200]}") from exc
    stream = root.find("./Connect/Stream") if root.tag == "Response" else None
    url = stream.get("url") if stream is not None else None
    if stream is None or not url:
        raise PhoneRejected(200, f"TwiML has no <Response><Connect><Stream url>: {twiml[:200]}")
    parameters: dict[str, str] = {}
    for parameter in stream.findall("Parameter"):
        name = parameter.get("name")
        if name:
            parameters[name] = parameter.get("value", "")
    return url, parameters


def _stream_url_problems(url: str) -> list[str]:
    parts = urlsplit(url)
    problems = []
    if parts.scheme != "wss":
        problems.append(f"TwiML Stream url must be wss:// (Twilio 31920): {url[:80]}")
    if parts.query:
        problems.append(f"TwiML Stream url has a query string, unsupported (Twilio 31922): {url[:80]}")
    return problems
