"""What Twilio sends the bot's HTTP surface, for tests: the call's webhook form, the public URLs, and
``X-Twilio-Signature`` values.

Rules:
- Signatures come from twilio's own ``RequestValidator`` exactly as Twilio signs
  (https://www.twilio.com/docs/usage/webhooks/webhooks-security): the webhook over the public ``https://``
  URL with its form params, the Media Streams upgrade over the ``wss://`` URL with none. The default token
  is the bench's (``bot.sim.rig.AUTH_TOKEN``); a served bot's is ``tests.support.served.TWILIO_SECRET``.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator

from bot.sim.rig import AUTH_TOKEN, PUBLIC_BASE_URL

VOICE_URL = PUBLIC_BASE_URL + "/voice"
STREAM_URL = "wss://bot.example.com/media"
FORM = {
    "AccountSid": "AC" + "0" * 32,
    "CallSid": "CA" + "1" * 32,
    "CallStatus": "ringing",
    "Direction": "inbound",
    "From": "+15550199",
    "To": "+15550100",
}


def sign(url: str, params: Mapping[str, str], token: str = AUTH_TOKEN) -> str:
    """The ``X-Twilio-Signature`` Twilio sends with a request to ``url`` carrying ``params``."""
    return str(RequestValidator(token).compute_signature(url, dict(params)))
