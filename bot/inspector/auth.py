"""Who may see ``/calls``: the token, the session cookie it is exchanged for, and a bound on wrong guesses.

Rules:
- A credential is the token as ``Authorization: Bearer <token>`` (tools) or the session cookie
  (browsers); a header, when present, is what counts. The cookie holds ``session_value(token)``, an
  HMAC of a fixed label keyed by the token: it opens ``/calls`` as the token does, but the token itself
  never sits in the browser, and every replica configured with the same token accepts it. Compared
  with ``hmac.compare_digest`` (constant time).
- A token in the URL (``?token=``) is only ever exchanged: checked (a wrong one is a failure like any
  other), then answered with a redirect to the same path without it and the cookie set
  ``HttpOnly; Secure; SameSite=Strict; Path=/calls``. Pages never put the token in a link again.
- Failures are counted per client address in a token bucket (``FAILURE_BURST`` at once, then one per
  ``FAILURE_REFILL_S``): an address whose bucket is empty gets 429 with ``Retry-After`` before any
  credential is compared, so it cannot test guesses faster than the refill. At most
  ``MAX_TRACKED_ADDRESSES`` buckets are kept (least recently failed dropped first), so a flood of
  addresses costs bounded memory. The address is the socket's peer (``X-Forwarded-For`` is not
  trusted: behind a proxy, every client shares the proxy's bucket, which errs on the safe side).
- Each failure is logged (``calls_auth_failed``: address and why, never the value tried); an address
  running out of attempts is logged once per lockout (``calls_auth_throttled``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

COOKIE = "calls_session"
COOKIE_PATH = "/calls"
FAILURE_BURST = 10
FAILURE_REFILL_S = 6.0
MAX_TRACKED_ADDRESSES = 4096
_LABEL = b"phonebot /calls session v1"


def session_value(token: str) -> str:
    """The cookie's value for ``token`` (hex HMAC-SHA256): a browser never holds the token itself."""
    return hmac.new(token.encode(), _LABEL, hashlib.sha256).hexdigest()


def same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def cookie_header(token: str) -> str:
    """The ``Set-Cookie`` value of a session (a browser session: no Max-Age, gone when it closes)."""
    return f"{COOKIE}={session_value(token)}; HttpOnly; Secure; SameSite=Strict; Path={COOKIE_PATH}"


@dataclass
class _Bucket:
    tokens: float
    at: float
    warned: bool = False


class FailureLimiter:
    """Wrong guesses per client address: a token bucket each, at most ``max_addresses`` of them."""

    def __init__(
        self,
        *,
        burst: int = FAILURE_BURST,
        refill_s: float = FAILURE_REFILL_S,
        max_addresses: int = MAX_TRACKED_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst, self._refill_s, self._max = burst, refill_s, max_addresses
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, address: str) -> _Bucket | None:
        bucket = self._buckets.get(address)
        if bucket is None:
            return None
        now = self._clock()
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) / self._refill_s)
        bucket.at = now
        if bucket.tokens >= self._burst:  # full again: nothing worth remembering
            del self._buckets[address]
            return None
        return bucket

    def retry_after(self, address: str) -> int:
        """0 when ``address`` may try a credential; else the seconds until it may (at least 1)."""
        bucket = self._level(address)
        if bucket is None or bucket.tokens >= 1:
            return 0
        if not bucket.warned:
            bucket.warned = True
            log.warning("calls_auth_throttled", address=address)
        return max(1, math.ceil((1 - bucket.tokens) * self._refill_s))

    def failed(self, address: str, reason: str) -> None:
        log.warning("calls_auth_failed", address=address, reason=reason)
        bucket = self._level(address)
        if bucket is None:
            bucket = self._buckets[address] = _Bucket(float(self._burst), self._clock())
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        bucket.tokens = max(0.0, bucket.tokens - 1)
        bucket.warned = bucket.warned and bucket.tokens < 1
        self._buckets.move_to_end(address)
