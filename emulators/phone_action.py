"""What simulated Twilio does around one ``<Connect><Stream>``: the TwiML it reads, the stream status
callbacks it posts, and the ``<Connect action>`` request it makes once the stream ended.

Twilio's documented rules reproduced here:
- ``<Connect action method>``: "When the <Connect> verb ends, Twilio sends an HTTP request to this URL
  with Twilio's standard request parameters along with some parameters specific to the nested noun. If you
  do not provide an action URL, <Connect> will finish and Twilio will move on to the next TwiML verb in
  the document. If there is no further verb, Twilio will end the phone call"; ``method`` is POST by
  default; ``action`` may be relative (https://www.twilio.com/docs/voice/twiml/connect). No page names
  parameters specific to ``<Stream>``, so only the standard ones are sent: ``AccountSid``, ``ApiVersion``,
  ``CallSid``, ``CallStatus``, ``Called``, ``Caller``, ``Direction``, ``From``, ``To``
  (https://www.twilio.com/docs/usage/webhooks/voice-webhooks), signed like every webhook
  (https://www.twilio.com/docs/usage/webhooks/webhooks-security).
- While the stream lives no later TwiML runs: "The only way Twilio executes TwiML instructions after
  <Connect><Stream> is if your server closes the WebSocket connection"
  (https://www.twilio.com/docs/voice/twiml/stream; error 31921 is that close,
  https://www.twilio.com/docs/api/errors/31921). A process that dies has its sockets closed by the
  kernel, which Twilio sees as that close. A connection lost with no close at all (``PhoneCall.drop``)
  is not documented: the emulator treats it the same way (the action is requested) and reports it as
  ``stream-error``. The caller hanging up ends the call: no action is requested.
- The answer is followed: a ``<Connect><Stream>`` opens a new stream (new StreamSid, the same call);
  anything else (``<Response/>``) ends the call; a failed request ends it (Twilio's 11200 application
  error).
- ``<Stream statusCallback statusCallbackMethod>``: POST (default) of ``stream-started`` once the stream
  is up, and of ``stream-stopped`` when it ends, or ``stream-error`` with ``StreamError`` when the
  connection was lost (https://www.twilio.com/docs/voice/twiml/stream, errors/31921). The other field
  names (``AccountSid``, ``CallSid``, ``StreamSid``, ``Timestamp``) follow Telnyx's Twilio-compatible
  schema (https://developers.telnyx.com/api-reference/callbacks/texml-stream): not read on twilio.com.

No I/O here but the one signed POST (``post_signed``); ``SimulatedPhone`` drives it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import aiohttp
from twilio.request_validator import RequestValidator
from yarl import URL

SIGNATURE_HEADER = "X-Twilio-Signature"


class NotTwiml(ValueError):
    """The answer is not XML."""


@dataclass(frozen=True)
class ConnectStream:
    """A ``<Response><Connect [action]><Stream url [statusCallback]><Parameter>...`` document."""

    url: str
    parameters: dict[str, str]
    action: str | None = None  # absolute (resolved against the document's URL)
    action_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"


def parse_connect_stream(twiml: str, document_url: str) -> ConnectStream | None:
    """The ``<Connect><Stream>`` of a TwiML answer, or None if it has none; ``NotTwiml`` if not XML."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as exc:
        raise NotTwiml(f"TwiML is not XML ({exc}): {twiml[:200]}") from exc
    connect = root.find("./Connect") if root.tag == "Response" else None
    stream = connect.find("Stream") if connect is not None else None
    url = stream.get("url") if stream is not None else None
    if connect is None or stream is None or not url:
        return None
    parameters: dict[str, str] = {}
    for parameter in stream.findall("Parameter"):
        name = parameter.get("name")
        if name:
            parameters[name] = parameter.get("value", "")
    action = connect.get("action")
    callback = stream.get("statusCallback")
    return ConnectStream(
        url=url,
        parameters=parameters,
        action=urljoin(document_url, action) if action else None,  # "Relative or absolute URL"
        action_method=(connect.get("method") or "POST").upper(),
        status_callback=urljoin(document_url, callback) if callback else None,
        status_callback_method=(stream.get("statusCallbackMethod") or "POST").upper(),
    )


def action_form(webhook_form: dict[str, str]) -> dict[str, str]:
    """The action request's parameters: the standard ones, the call now in progress."""
    standard = ("AccountSid", "ApiVersion", "CallSid", "Called", "Caller", "Direction", "From", "To")
    return {**{k: webhook_form[k] for k in standard if k in webhook_form}, "CallStatus": "in-progress"}


def stream_status_form(
    *, account_sid: str, call_sid: str, stream_sid: str, event: str, error: str | None = None
) -> dict[str, str]:
    form = {
        "AccountSid": account_sid,
        "CallSid": call_sid,
        "StreamSid": stream_sid,
        "StreamEvent": event,
        "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if error is not None:
        form["StreamError"] = error
    return form


def local_url(public: str, public_base_url: str, server: str, *, websocket: bool = False) -> str:
    """Where a public URL of the bot is served on 127.0.0.1: only its path (and, for HTTP, its query) is
    kept, with the public base's path prefix stripped, as a tunnel or proxy in front of the bot does."""
    base = URL(server.rstrip("/"))
    parts = urlsplit(public)
    prefix = urlsplit(public_base_url).path.rstrip("/")
    path = parts.path[len(prefix) :] if prefix and parts.path.startswith(prefix + "/") else parts.path
    if websocket:  # the query is dropped: Twilio refuses one in a Stream url (31922)
        return str(base.with_scheme("wss" if base.scheme == "https" else "ws").with_path(path or "/"))
    return str(base.with_path(path or "/").with_query(parts.query))


@dataclass
class Posted:
    """One signed webhook the simulated Twilio made, and the bot's answer."""

    kind: str  # "action" or "stream_status"
    url: str
    form: dict[str, str]
    status: int  # 0: no answer (connection refused, timeout)
    body: str = ""
    error: str = ""
    meta: dict[str, str] = field(default_factory=dict)


async def post_signed(
    session: aiohttp.ClientSession,
    validator: RequestValidator,
    *,
    kind: str,
    public: str,
    target: str,
    form: dict[str, str],
    method: str = "POST",
) -> Posted:
    """POST (or GET, params in the query) ``form`` to ``target``, signed over the ``public`` URL as Twilio
    signs: the URL plus the POST parameters; for GET the parameters are in the signed URL itself."""
    headers = {"User-Agent": "TwilioProxy/1.1"}
    try:
        if method == "GET":
            signed = str(URL(public).update_query(form))
            headers[SIGNATURE_HEADER] = str(validator.compute_signature(signed, {}))
            request = session.get(str(URL(target).update_query(form)), headers=headers)
        else:
            headers[SIGNATURE_HEADER] = str(validator.compute_signature(public, form))
            request = session.post(target, data=form, headers=headers)
        async with request as response:
            return Posted(kind, public, form, response.status, await response.text())
    except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
        return Posted(kind, public, form, 0, error=repr(exc)[:200])
