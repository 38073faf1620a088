"""Call recording format v1: names, layout and the pure encoding rules shared by writer and reader.

Rules:
- One folder per call: ``<root>/<YYYY-MM-DD>/<call_sid>/`` (UTC date the call started; the call sid with
  every character outside ``[A-Za-z0-9_-]`` replaced by ``_``). The recording id is the relative POSIX path
  ``<YYYY-MM-DD>/<folder>``.
- ``meta.json``: one JSON object, ``"format": 1``, replaced atomically at open and at finalize; only a
  finalized recording has ``"complete": true``.
- ``events.jsonl``: one compact JSON object per line, ``{"t": <s since the recording opened>, "type": ...}``
  plus fields. ASCII only, so a torn line never splits a character. Append-only.
- ``caller.ulaw``: inbound μ-law on Twilio's timeline, byte offset = media timestamp_ms * 8, gaps filled
  with 0xFF, never placed further ahead than the call's clock allows (``bot.recording.writer``).
  Twilio's timestamps start at ~0 when the stream starts and the recording is opened at stream start,
  so offset 0 of every audio timeline is the recording's t = 0.
- ``bot.ulaw``: outbound μ-law as sent, appended; each append is described by one ``bot_audio`` event.
- Pure: no I/O, no clocks.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Final

FORMAT_VERSION: Final = 1

META_FILE: Final = "meta.json"
EVENTS_FILE: Final = "events.jsonl"
CALLER_AUDIO_FILE: Final = "caller.ulaw"
BOT_AUDIO_FILE: Final = "bot.ulaw"
FILE_NAMES: Final = frozenset({META_FILE, EVENTS_FILE, CALLER_AUDIO_FILE, BOT_AUDIO_FILE})

BYTES_PER_SECOND: Final = 8000  # 8 kHz μ-law: one byte per sample
BYTES_PER_MS: Final = BYTES_PER_SECOND // 1000
ULAW_SILENCE_BYTE: Final = b"\xff"

# Event types the recorder itself writes.
BOT_AUDIO_EVENT: Final = "bot_audio"
CLEAR_EVENT: Final = "clear"
CALLER_OVERLAP_EVENT: Final = "caller_audio_overlap"
CALLER_JUMP_EVENT: Final = "caller_audio_jump"
CALLER_AHEAD_EVENT: Final = "caller_audio_ahead"
CALLER_FULL_EVENT: Final = "caller_audio_full"
RESUMED_EVENT: Final = "recording_resumed"  # after a pause under the free-space floor (bot.recording.space)

_UNSAFE_SID_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_MAX_SID_LENGTH = 64  # Twilio sids are 34 characters; anything longer is not a sid
_DAY_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
_FOLDER_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,80}")  # sanitized sid plus a "-<n>" collision suffix


def sanitize_call_sid(call_sid: str) -> str:
    """A folder name made of ``[A-Za-z0-9_-]`` only; never empty, never ``.`` or ``..``."""
    cleaned = _UNSAFE_SID_CHARS.sub("_", call_sid[:_MAX_SID_LENGTH])
    return cleaned or "unknown"


def day_folder(started: datetime) -> str:
    """``YYYY-MM-DD`` of ``started`` in UTC (a naive datetime is taken as UTC)."""
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return started.astimezone(UTC).strftime("%Y-%m-%d")


def is_recording_id(recording_id: str) -> bool:
    """True for ``<YYYY-MM-DD>/<folder>`` as made by ``sanitize_call_sid``: no traversal possible."""
    day, sep, folder = recording_id.partition("/")
    return bool(sep) and bool(_DAY_PATTERN.fullmatch(day)) and bool(_FOLDER_PATTERN.fullmatch(folder))


def utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def encode_event(event: dict[str, Any]) -> bytes:
    """One events.jsonl line, newline included. Values must already be JSON-safe (see the writer)."""
    return (json.dumps(event, ensure_ascii=True, separators=(",", ":"), allow_nan=False) + "\n").encode()


def encode_meta(meta: dict[str, Any]) -> bytes:
    return (json.dumps(meta, ensure_ascii=True, indent=1, allow_nan=False) + "\n").encode()


def seconds_to_offset(t: float) -> int:
    """Byte offset on an 8 kHz μ-law timeline of a moment ``t`` seconds after the recording opened."""
    return max(0, round(t * BYTES_PER_SECOND))
