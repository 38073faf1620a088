"""Repeated Twilio callbacks: a signed request seen again within a while is answered, never counted again.

Twilio's facts: a webhook whose connection fails is retried (``rc``: 1 retry by default, at most 5;
https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides), the same request again. The
signature is an HMAC over the URL and the form fields, nothing time-bound
(https://www.twilio.com/docs/usage/webhooks/webhooks-security; twilio's ``request_validator.py``), so it
never expires. A retried callback, or one captured and replayed by anyone, is byte-identical to the
first: same path, same body, same ``X-Twilio-Signature``.
Two distinct status callbacks are never byte-identical: a call's differ in ``CallStatus``
and carry ``Timestamp``, ``SequenceNumber``, ``CallbackSource`` (as Twilio's call resource page lists
them, https://www.twilio.com/docs/voice/api/call-resource, not re-read here; the Twilio-compatible TeXML
schema of Telnyx says the same, ``SequenceNumber`` ordering a call's callbacks:
https://developers.telnyx.com/docs/voice/programmable-voice/texml-verbs/hangup/index); a stream's
differ in ``StreamEvent`` and ``Timestamp``, and each stream has its own ``StreamSid``
(``bot.server.twilio.stream_status``). A ``<Connect action>`` is requested once per ended stream, but its form
(the call's standard parameters) carries no time: a call whose stream was lost twice within the TTL may
send two identical ones. So a repeated ``/action`` is still answered in full (a retry needs its TwiML
too); only its count is skipped.

Rules:
- The key is a SHA-256 of the path, the signature and the raw body (``callback_key``): no form value
  (phone numbers) is kept, only digests.
- ``RecentCallbacks`` remembers keys for ``ttl_s`` after they were last seen (a replay keeps refreshing
  its own entry, so a replay loop never counts again) and at most ``max_keys`` of them, the least
  recently seen dropped first: memory is bounded whatever arrives (about 150 bytes a key).
- In memory, per replica: a replay sent to another replica counts once more there.
- ``RecentCallbacks`` is pure (the clock is an argument). ``Callbacks.repeated`` is the aiohttp shell the
  routes call once the signature was checked (only signed callbacks are remembered: unsigned junk cannot
  evict Twilio's).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import structlog
from aiohttp import web

from bot.server.twilio.webhook import SIGNATURE_HEADER
from bot.telemetry.metrics import CallMetrics

DEFAULT_TTL_S = 600.0  # Twilio's retries come within its 15 s total timeout; a replay any time
DEFAULT_MAX_KEYS = 20_000  # ~3 MB; a few callbacks per call, hundreds of calls per 10 min per replica
log = structlog.get_logger("bot.callback_dedupe")


def callback_key(path: str, signature: str, body: bytes) -> bytes:
    """The digest naming one signed request (module rules)."""
    digest = hashlib.sha256()
    for part in (path.encode(), signature.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no two splits hash alike
        digest.update(part)
    return digest.digest()


@dataclass
class RecentCallbacks:
    """Keys seen within ``ttl_s``, at most ``max_keys`` (module rules)."""

    ttl_s: float = DEFAULT_TTL_S
    max_keys: int = DEFAULT_MAX_KEYS
    _seen: OrderedDict[bytes, float] = field(default_factory=OrderedDict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.ttl_s <= 0 or self.max_keys < 1:
            raise ValueError("ttl_s must be > 0 and max_keys >= 1")

    def __len__(self) -> int:
        return len(self._seen)

    def seen_before(self, key: bytes, now: float) -> bool:
        """True if ``key`` was seen within ``ttl_s`` of ``now``; either way it is remembered as seen now."""
        self._expire(now)
        repeat = key in self._seen
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return repeat

    def _expire(self, now: float) -> None:
        # Ordered by last seen: the stale ones are at the front.
        while self._seen:
            key, last = next(iter(self._seen.items()))
            if now - last < self.ttl_s:
                return
            del self._seen[key]


@dataclass
class Callbacks:
    """The routes' shell (module rules): one per server, with its metrics."""

    metrics: CallMetrics | None
    recent: RecentCallbacks = field(default_factory=RecentCallbacks)

    async def repeated(self, request: web.Request, route: str) -> bool:
        """Whether this signed request was seen within the TTL; a repeat is logged (``callback_repeated``, a
        rate-limited line) and counted by ``route`` instead of by what it reports. Call it after the
        signature check: aiohttp has the body cached, ``request.read()`` reads nothing more."""
        body = await request.read()
        key = callback_key(request.path, request.headers.get(SIGNATURE_HEADER, ""), body)
        if not self.recent.seen_before(key, time.monotonic()):
            return False
        log.info("callback_repeated", route=route)
        if self.metrics is not None:
            self.metrics.observe("callback_repeated", {"route": route})
        return True
