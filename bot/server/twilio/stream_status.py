"""Twilio's stream status callback (``POST /stream-status``, the ``<Stream statusCallback>``): one log line
and one count per callback.

Twilio's facts: ``<Stream statusCallback>`` is posted (``statusCallbackMethod`` POST by default) on
``stream-started``, ``stream-stopped`` and ``stream-error``, the last with a ``StreamError`` that says why
(https://www.twilio.com/docs/voice/twiml/stream, https://www.twilio.com/docs/api/errors/31921). The other
field names (``AccountSid``, ``CallSid``, ``StreamSid``, ``StreamName``, ``Timestamp``) are not on a
twilio.com page we could read: they are those of Telnyx's Twilio-compatible schema
(https://developers.telnyx.com/api-reference/callbacks/texml-stream) and of open-source handlers.

Rules:
- The route (``bot.server.app``) checks the signature exactly as ``/status`` does and is served while
  draining.
- Logged: ``stream_status`` with ``call_sid`` bound, ``stream_sid``, ``stream_event`` and, for an error,
  ``stream_error`` (cut short); a ``stream-error`` logs as a warning. Never the form itself.
- Counted by stream event; an event Twilio does not document counts as ``other``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from bot.telemetry.metrics import CallMetrics

STREAM_EVENTS = frozenset({"stream-started", "stream-stopped", "stream-error"})
_MAX_CHARS = 64
_MAX_ERROR_CHARS = 200
log = structlog.get_logger("bot.stream_status")


@dataclass(frozen=True)
class StreamStatus:
    call_sid: str
    stream_sid: str
    event: str
    error: str

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> StreamStatus:
        return cls(
            call_sid=form.get("CallSid", "")[:_MAX_CHARS],
            stream_sid=form.get("StreamSid", "")[:_MAX_CHARS],
            event=form.get("StreamEvent", "")[:_MAX_CHARS],
            error=form.get("StreamError", "")[:_MAX_ERROR_CHARS],
        )

    @property
    def metric_label(self) -> str:
        return self.event if self.event in STREAM_EVENTS else "other"


def note_stream_status(form: Mapping[str, str], metrics: CallMetrics | None) -> StreamStatus:
    """Log and count one signed stream status callback (see the module rules)."""
    status = StreamStatus.from_form(form)
    with structlog.contextvars.bound_contextvars(call_sid=status.call_sid):
        if status.event == "stream-error":
            log.warning(
                "stream_status",
                stream_sid=status.stream_sid,
                stream_event=status.event,
                stream_error=status.error,
            )
        else:
            log.info("stream_status", stream_sid=status.stream_sid, stream_event=status.event)
    if metrics is not None:
        metrics.observe("stream_status", {"event": status.metric_label})
    return status
