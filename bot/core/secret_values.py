"""The process's list of secret values learned at run time (HTTP tools' header values), for masking.

Rules:
- Settings' own secrets are passed where logging and recordings are set up; this list adds what is
  only known once the flows are built: every resolved ``env:`` header value of an HTTP tool joins it
  when its book is built, at start-up and at every reload (``bot.flows.build``).
- The list only grows: a value a reload dropped may still be in the logs of calls that used it.
- A value shorter than ``MIN_SECRET_LENGTH`` characters is not kept: masking ``42`` or ``store1``
  would blank ordinary words and numbers everywhere (such a header is not a secret anyway). For a
  value with an auth scheme (``Bearer abc...``) its last word joins too, as a service may echo only
  the token.
- Readers (``bot.telemetry.logs``, ``bot.server.wiring``' recorder factory) call ``known()`` each time they
  need the list, so values added by a reload are masked from then on (masking itself: ``bot.core.redact``).
- ``remember`` may run in any thread (flows are built in a worker thread): writers take a lock, and
  readers get an immutable snapshot replaced in one assignment.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Final

MIN_SECRET_LENGTH: Final = 8

_known: set[str] = set()
_snapshot: tuple[str, ...] = ()
_lock = threading.Lock()


def worth_masking(values: Iterable[str]) -> tuple[str, ...]:
    """Each value (and the token of an ``Scheme token`` value) long enough to mask, longest first."""
    found: set[str] = set()
    for value in values:
        for candidate in (value.strip(), value.split()[-1] if value.split() else ""):
            if len(candidate) >= MIN_SECRET_LENGTH:
                found.add(candidate)
    return tuple(sorted(found, key=len, reverse=True))


def remember(values: Iterable[str]) -> None:
    global _snapshot
    candidates = set(worth_masking(values))
    with _lock:
        if new := candidates - _known:
            _known.update(new)
            _snapshot = tuple(sorted(_known, key=len, reverse=True))


def known() -> tuple[str, ...]:
    """Every value remembered so far, longest first."""
    return _snapshot
