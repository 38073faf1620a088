"""Twilio's call status callback (``POST /status``): one log line and one count per callback.

Rules:
- The route (``bot.server.app``) checks the signature exactly as ``/voice`` does (``signed_form`` over
  ``PUBLIC_BASE_URL + "/status"``) and is still served while draining: a callback reports on a call
  that exists, it never starts one.
- Logged: ``call_status`` with ``call_sid`` bound, ``status`` and ``duration_s`` (Twilio's ``CallDuration``,
  sent once the call is over; None before). Never the form itself: it holds the caller's number, and
  the bot's logs carry no phone numbers.
- Values are bounded: strings are cut short in the log, and a status Twilio does not document counts
  as ``other`` in the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from bot.telemetry.metrics import CallMetrics

# Twilio's call statuses (its Call resource's ``status``).
CALL_STATUSES = frozenset(
    {"queued", "initiated", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"}
)
_MAX_CHARS = 64
log = structlog.get_logger("bot.status")


@dataclass(frozen=True)
class CallStatus:
    call_sid: str
    status: str
    duration_s: int | None

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> CallStatus:
        duration = form.get("CallDuration", "").strip()
        seconds = duration.isascii() and duration.isdigit() and len(duration) < 10  # not "²" nor absurd
        return cls(
            call_sid=form.get("CallSid", "")[:_MAX_CHARS],
            status=form.get("CallStatus", "")[:_MAX_CHARS],
            duration_s=int(duration) if seconds else None,
        )

    @property
    def metric_label(self) -> str:
        return self.status if self.status in CALL_STATUSES else "other"


def note_call_status(form: Mapping[str, str], metrics: CallMetrics | None) -> CallStatus:
    """Log and count one signed status callback (see the module rules)."""
    status = CallStatus.from_form(form)
    with structlog.contextvars.bound_contextvars(call_sid=status.call_sid):
        log.info("call_status", status=status.status, duration_s=status.duration_s)
    if metrics is not None:
        metrics.observe("call_status", {"status": status.metric_label})
    return status
