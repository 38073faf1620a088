"""What a call does once its media stream ends: the ``<Connect action>`` request (``POST /action``).

Twilio's facts (https://www.twilio.com/docs/voice/twiml/connect, .../twiml/stream): while a
``<Connect><Stream>`` lives no later TwiML runs; when the stream ends Twilio requests the ``action`` URL
(POST by default, with its standard call parameters: ``CallSid``, ``AccountSid``, ``From``, ``To``,
``CallStatus``, ``Direction``...) and follows the TwiML it answers; without an action the call ends.

Rules:
- The route (``bot.server.app``) checks the signature like ``/voice`` and is served while draining: it
  continues a call that is already answered, it never starts one.
- The call ended on purpose: the answer is ``<Response/>`` and the call ends. "On purpose" is known
  without shared state in the usual cases: the goodbye hangs up through REST (``Status=completed``: the
  call is over, Twilio runs no more TwiML, and an action request, if one comes, says
  ``CallStatus=completed``); a transfer redirects the call through REST (the new TwiML replaces the
  ``<Connect>``). Only when that REST request failed does the bot end the call by closing the socket
  alone; then this replica remembers the call (``EndedCalls``, bounded, in memory). Another replica
  cannot know it: such a call would be resumed there (a known gap, see the README).
- Otherwise the stream was lost (socket dropped, pod draining or dying): the answer is a new
  ``<Connect><Stream>`` built by the same function as ``/voice``'s, plus the ``resumed`` parameter, so
  the call goes on on whichever replica takes the stream and the caller first hears the flow's
  ``resume`` line. The conversation itself is not carried over.
- Logged (``connect_action``, ``call_sid`` bound, the outcome and ``CallStatus``) and counted by
  outcome; never the form (it holds phone numbers).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from enum import Enum

import structlog

from bot.core.twilio_messages import RESUMED
from bot.telemetry.metrics import CallMetrics

__all__ = ["CALL_OVER", "RESUMED", "AfterStream", "EndedCalls", "after_stream", "note_connect_action"]
# Twilio's call statuses after which the call is over: nothing it answers would run.
CALL_OVER = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
_MAX_CHARS = 64
log = structlog.get_logger("bot.connect_action")


class AfterStream(Enum):
    RESUME = "resumed"  # a new <Connect><Stream>
    ENDED_ON_PURPOSE = "ended"  # <Response/>: this replica ended the call (goodbye, transfer)
    CALL_OVER = "call_over"  # <Response/>: Twilio says the call is already over


def after_stream(form: Mapping[str, str], *, ended_here: bool) -> AfterStream:
    """What to answer an action request (see the module rules)."""
    if form.get("CallStatus", "") in CALL_OVER:
        return AfterStream.CALL_OVER
    if ended_here:
        return AfterStream.ENDED_ON_PURPOSE
    return AfterStream.RESUME


def note_connect_action(form: Mapping[str, str], outcome: AfterStream, metrics: CallMetrics | None) -> None:
    with structlog.contextvars.bound_contextvars(call_sid=form.get("CallSid", "")[:_MAX_CHARS]):
        log.info("connect_action", outcome=outcome.value, call_status=form.get("CallStatus", "")[:_MAX_CHARS])
    if metrics is not None:
        metrics.observe("connect_action", {"outcome": outcome.value})


class EndedCalls:
    """Call sids this replica ended on purpose, for ``ttl_s`` (Twilio requests the action right after the
    stream ends); at most ``max_calls``, the oldest forgotten first."""

    def __init__(
        self, *, ttl_s: float = 300.0, max_calls: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._max = max_calls
        self._clock = clock
        self._ended: OrderedDict[str, float] = OrderedDict()

    def add(self, call_sid: str) -> None:
        if not call_sid:
            return
        self._forget_old()
        self._ended[call_sid] = self._clock()
        self._ended.move_to_end(call_sid)
        while len(self._ended) > self._max:
            self._ended.popitem(last=False)

    def __contains__(self, call_sid: object) -> bool:
        self._forget_old()
        return call_sid in self._ended

    def __len__(self) -> int:
        return len(self._ended)

    def _forget_old(self) -> None:
        horizon = self._clock() - self._ttl_s
        while self._ended:
            sid, at = next(iter(self._ended.items()))
            if at > horizon:
                return
            del self._ended[sid]
