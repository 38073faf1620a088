"""Records one call into a ``RecordingSink``: meta, events, caller audio on Twilio's timeline, bot audio sent.

Rules:
- Never raises into the call. The first failure (I/O or anything else) is logged once as a structlog
  warning ``recording_failed``; from then on every method is a no-op. Calls before ``start`` or after
  ``finalize`` are ignored.
- ``t`` of an event is ``clock() - clock_at_start`` in seconds (monotonic); ``start`` is meant to be called
  when the media stream starts, so t = 0 is also offset 0 of the caller's audio timeline.
- Writes are synchronous and unbuffered: each event or audio frame is one ``append`` (one ``write``
  syscall into the page cache, microseconds; about 50 caller frames and a few events per second), so
  the event loop is not held up, and a killed process loses at most the write in progress. Nothing is
  fsynced before ``finalize``; ``finalize`` fsyncs, which may take milliseconds on a slow disk: call it
  off the loop (``asyncio.to_thread``) once nothing else records into this call, if that matters.
- Caller audio: frame at ``timestamp_ms`` goes at byte ``timestamp_ms * 8``; a gap is filled with μ-law
  silence in the same write; a frame behind the end is appended at the end (first occurrence recorded
  as a ``caller_audio_overlap`` event, the count in the final meta). A gap over ``MAX_CALLER_GAP_S`` is
  not filled (it would be a bogus timestamp, not a silence): the frame is appended and a
  ``caller_audio_jump`` event recorded.
- Caller audio is bounded by the call's clock, whatever the timestamps say: a frame is placed no later
  than the time elapsed since ``start`` plus ``CALLER_LEAD_S`` (Twilio's timestamps follow real time;
  the lead absorbs our own lag at ``start``). A frame stamped later is placed at that bound (first
  occurrence recorded as a ``caller_audio_ahead`` event, the count in the final meta), so hostile
  timestamps cannot make the file grow faster than the call lasts. ``limit_caller_audio(seconds)``
  caps caller.ulaw at that length: bytes past it are dropped (first occurrence recorded as a
  ``caller_audio_full`` event, the caller bytes dropped in the final meta).
- Bot audio: appended to bot.ulaw first, then described by a ``bot_audio`` event (offset, bytes,
  response_id, mark); one call per phrase or chunk, never per 20 ms frame.
- Redaction, on every meta and event key and value at any depth, by the one rule of ``bot.core.redact`` (as
  logs and tool results): a configured secret (4+ characters) becomes ``[redacted]``; a field whose key
  is in ``sensitive_fields`` (case-insensitive) becomes ``[redacted]`` whatever its value. Values are
  made JSON-safe: datetimes as UTC ISO text, bytes as ``<n bytes>``, other objects by ``repr``.
- ``finalize`` is idempotent: it makes the appended data durable, then replaces meta.json with the final
  meta (``complete: true``), so a complete recording never misses data.
- Free-space floor (``bot.recording.space``): while ``space.writable()`` says no, nothing is appended
  (events and audio dropped, counted; the audio bytes reported to ``space.dropped``) and the call goes on.
  The first write after a pause is a ``recording_resumed`` event with what the pause dropped; the caller's
  audio then continues at the end of caller.ulaw: the paused stretch is not filled with silence (that
  would write what the pause saved), later frames keep their places relative to the first one after it.
  The final meta is written anyway (it replaces the first one, about the same size) with the totals.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import structlog

from bot.core.redact import Redactor
from bot.recording.format import (
    BOT_AUDIO_EVENT,
    BOT_AUDIO_FILE,
    BYTES_PER_MS,
    BYTES_PER_SECOND,
    CALLER_AHEAD_EVENT,
    CALLER_AUDIO_FILE,
    CALLER_FULL_EVENT,
    CALLER_JUMP_EVENT,
    CALLER_OVERLAP_EVENT,
    CLEAR_EVENT,
    EVENTS_FILE,
    FORMAT_VERSION,
    META_FILE,
    RESUMED_EVENT,
    ULAW_SILENCE_BYTE,
    encode_event,
    encode_meta,
    utc_iso,
)
from bot.recording.space import SpaceFloor
from bot.recording.store import RecordingSink

log = structlog.get_logger("bot.recording")

MAX_CALLER_GAP_S: Final = 600
# How far ahead of the call's clock a caller frame may be placed: Twilio stamps frames in real time,
# and our own ``start`` may be handled late by a busy loop; more than this is not a real timestamp.
CALLER_LEAD_S: Final = 2.0
_RESERVED_META: Final = ("format", "complete")


class CallRecorder:
    """Writes one call's recording; see the module rules."""

    def __init__(
        self,
        sink: RecordingSink,
        *,
        clock: Callable[[], float] = time.monotonic,
        secrets: Iterable[str] = (),
        sensitive_fields: Iterable[str] = (),
        space: SpaceFloor | None = None,
    ) -> None:
        self._sink = sink
        self._space = space
        self._clock = clock
        self._redactor = Redactor.of(secrets, sensitive_fields)
        self._t0: float | None = None
        self._meta: dict[str, Any] = {}
        self._caller_bytes = 0
        self._bot_bytes = 0
        self._overlaps = 0
        self._ahead = 0
        self._caller_limit: int | None = None
        self._caller_dropped = 0
        self._event_count = 0
        self._failed = False
        self._finalized = False
        self._paused = False  # a write was refused by the floor and none has been made since
        self._caller_skip = 0  # caller bytes of paused stretches, not in caller.ulaw
        self._resume_caller = False
        self._pause_drops = [0, 0]  # audio bytes, events: of the pause in progress
        self._dropped = [0, 0]  # of the whole call

    @property
    def recording_id(self) -> str:
        return self._sink.id

    @property
    def failed(self) -> bool:
        """True once recording stopped because of an error."""
        return self._failed

    @property
    def recording(self) -> bool:
        """Started, not finalized, not failed: calls are being recorded."""
        return self._t0 is not None and not self._failed and not self._finalized

    def start(self, /, **meta: Any) -> None:
        """Open the recording: t = 0 now, meta.json written. ``started_at`` defaults to now (UTC)."""
        if self._t0 is not None or self._failed or self._finalized:
            return
        self._t0 = self._clock()
        try:
            meta.setdefault("started_at", datetime.now(UTC))
            self._meta = {"format": FORMAT_VERSION, **self._clean_meta(meta), "complete": False}
            self._sink.replace(META_FILE, encode_meta(self._meta))
        except Exception as exc:
            self._fail("start", exc)

    def limit_caller_audio(self, seconds: float) -> None:
        """Cap caller.ulaw at ``seconds`` of audio (the call's longest duration): the rest is dropped."""
        self._caller_limit = max(0, int(seconds * BYTES_PER_SECOND))

    def event(self, type: str, /, **fields: Any) -> None:
        """Record an event; ``t`` and ``type`` are set here and win over fields of the same name."""
        if not self.recording:
            return
        try:
            if self._may_write(events=1):
                self._write_event(type, fields)
        except Exception as exc:
            self._fail("event", exc)

    def caller_audio(self, timestamp_ms: int, ulaw: bytes) -> None:
        """Record one inbound media frame as received, at its Twilio timestamp."""
        if not self.recording or not ulaw:
            return
        try:
            if not self._may_write(audio=len(ulaw)):
                return
            offset = max(0, int(timestamp_ms)) * BYTES_PER_MS - self._caller_skip
            assert self._t0 is not None
            bound = int((self._clock() - self._t0 + CALLER_LEAD_S) * BYTES_PER_SECOND) - self._caller_skip
            if self._resume_caller:  # the first frame after a pause goes at the end, the rest relative to it
                self._resume_caller = False
                skip = max(0, min(offset, bound) - self._caller_bytes)
                self._caller_skip += skip
                offset, bound = offset - skip, bound - skip
            gap = offset - self._caller_bytes
            if offset > bound:  # ahead of the call's clock: not a real timestamp, placed at the bound
                self._ahead += 1
                if self._ahead == 1:
                    self._write_event(CALLER_AHEAD_EVENT, self._caller_position(timestamp_ms))
                gap = bound - self._caller_bytes
            elif gap > MAX_CALLER_GAP_S * BYTES_PER_SECOND:
                self._write_event(CALLER_JUMP_EVENT, self._caller_position(timestamp_ms))
                gap = 0
            elif gap < 0:
                self._overlaps += 1
                if self._overlaps == 1:
                    self._write_event(CALLER_OVERLAP_EVENT, self._caller_position(timestamp_ms))
            data = ULAW_SILENCE_BYTE * gap + ulaw if gap > 0 else bytes(ulaw)
            if self._caller_limit is not None and self._caller_bytes + len(data) > self._caller_limit:
                room = max(0, self._caller_limit - self._caller_bytes)
                if self._caller_dropped == 0:
                    self._write_event(CALLER_FULL_EVENT, self._caller_position(timestamp_ms))
                self._caller_dropped += min(len(ulaw), len(data) - room)  # the caller's bytes, not fill
                data = data[:room]
            if data:
                self._sink.append(CALLER_AUDIO_FILE, data)
                self._caller_bytes += len(data)
        except Exception as exc:
            self._fail("caller_audio", exc)

    def bot_audio(self, ulaw: bytes, *, response_id: int, mark: str) -> None:
        """Record outbound audio as sent (one phrase or chunk) and the mark that follows it."""
        if not self.recording or not ulaw:
            return
        try:
            if not self._may_write(audio=len(ulaw)):
                return
            fields = {"offset": self._bot_bytes, "bytes": len(ulaw), "response_id": response_id, "mark": mark}
            self._sink.append(BOT_AUDIO_FILE, bytes(ulaw))
            self._bot_bytes += len(ulaw)
            self._write_event(BOT_AUDIO_EVENT, fields)
        except Exception as exc:
            self._fail("bot_audio", exc)

    def clear(self) -> None:
        """Record that a ``clear`` was sent: the phone drops all audio not yet played."""
        self.event(CLEAR_EVENT)

    def finalize(self, /, **meta: Any) -> None:
        """Close the recording: data fsynced, then meta.json replaced with the final meta. Idempotent."""
        if self._finalized:
            return
        self._finalized = True
        if self._failed:
            return
        try:
            if self._t0 is None:  # never started: nothing to describe
                self._sink.close()
                return
            duration = self._clock() - self._t0
            meta.setdefault("ended_by", None)
            meta.setdefault("finished_at", datetime.now(UTC))
            final = {
                **self._meta,
                **self._clean_meta(meta),
                "duration_s": round(duration, 3),
                "event_count": self._event_count,
                "caller_audio_bytes": self._caller_bytes,
                "bot_audio_bytes": self._bot_bytes,
                "caller_audio_overlaps": self._overlaps,
                "caller_audio_ahead": self._ahead,
                "caller_audio_dropped_bytes": self._caller_dropped,
                "paused_dropped_audio_bytes": self._dropped[0],
                "paused_dropped_events": self._dropped[1],
                "complete": True,
            }
            self._sink.close()
            self._sink.replace(META_FILE, encode_meta(final))
        except Exception as exc:
            self._fail("finalize", exc)

    def _may_write(self, *, audio: int = 0, events: int = 0) -> bool:
        """False while the free-space floor pauses recordings: what would be written is counted as dropped.
        The first write after a pause records ``recording_resumed`` (see the module rules)."""
        if self._space is None or self._space.writable():
            if self._paused:
                self._paused = False
                self._resume_caller = True
                audio_dropped, events_dropped = self._pause_drops
                self._pause_drops = [0, 0]
                self._write_event(
                    RESUMED_EVENT, {"dropped_audio_bytes": audio_dropped, "dropped_events": events_dropped}
                )
            return True
        self._paused = True
        for totals in (self._pause_drops, self._dropped):
            totals[0] += audio
            totals[1] += events
        if audio:
            self._space.dropped(audio)
        return False

    def _caller_position(self, timestamp_ms: int) -> dict[str, Any]:
        return {"timestamp_ms": timestamp_ms, "end_ms": self._caller_bytes / BYTES_PER_MS}

    def _write_event(self, type: str, fields: Mapping[str, Any]) -> None:
        assert self._t0 is not None
        t = round(self._clock() - self._t0, 6)
        record = {"t": t, "type": str(type), **self._clean_mapping(fields, 0)}
        record["t"], record["type"] = t, str(type)  # the recorder's own keys win
        self._sink.append(EVENTS_FILE, encode_event(record))
        self._event_count += 1

    def _fail(self, during: str, exc: Exception) -> None:
        self._failed = True
        log.warning("recording_failed", recording_id=self._sink.id, during=during, error=repr(exc))
        with contextlib.suppress(Exception):  # already failing; the first error is the one worth logging
            self._sink.close()

    def _clean_meta(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        clean = self._clean_mapping(meta, 0)
        for key in _RESERVED_META:
            clean.pop(key, None)
        return clean

    def _clean_mapping(self, mapping: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        return self._redactor.mapping(mapping, _json_safe, depth)


def _json_safe(value: Any) -> Any:
    """A value ``bot.core.redact`` does not walk, as JSON can hold it (the module rules)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    return repr(value)
