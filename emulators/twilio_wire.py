"""Twilio's side of the Media Streams wire: the JSON the simulated phone sends; checks on what the bot sends.

Rules:
- Independent of ``bot/`` on purpose: this is a second implementation of Twilio, so a bug in the bot's
  message code cannot hide behind the same bug here.
- Twilio's messages follow https://www.twilio.com/docs/voice/media-streams/websocket-messages verbatim:
  ``sequenceNumber``, ``media.chunk`` and ``media.timestamp`` are strings; ``mediaFormat.sampleRate``/
  ``channels`` are numbers; ``connected`` carries neither ``streamSid`` nor ``sequenceNumber``. JSON is
  compact, like Twilio's.
- ``check_bot_frame`` never raises. It is as strict as Twilio (errors 31924 and 31951): text frames only, a
  JSON object whose ``event`` is media/mark/clear, our ``streamSid``, no missing or extra fields, and a media
  payload that is strict base64 of headerless μ-law. Any violation is a ``BotFrameError`` with a short reason
  (never the whole frame).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_REASON_MAX_CHARS = 120

# Exactly the keys Twilio accepts from the bot, per event (the same page, the messages sent to Twilio).
_BOT_KEYS: dict[str, frozenset[str]] = {
    "media": frozenset({"event", "streamSid", "media"}),
    "mark": frozenset({"event", "streamSid", "mark"}),
    "clear": frozenset({"event", "streamSid"}),
}


@dataclass(frozen=True)
class BotMedia:
    ulaw: bytes


@dataclass(frozen=True)
class BotMark:
    name: str


@dataclass(frozen=True)
class BotClear:
    pass


@dataclass(frozen=True)
class BotFrameError:
    reason: str


BotFrame = BotMedia | BotMark | BotClear | BotFrameError


def _dump(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def connected_message() -> str:
    return _dump({"event": "connected", "protocol": "Call", "version": "1.0.0"})


def start_message(
    seq: int, *, stream_sid: str, account_sid: str, call_sid: str, custom_parameters: Mapping[str, str]
) -> str:
    return _dump(
        {
            "event": "start",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "start": {
                "streamSid": stream_sid,
                "accountSid": account_sid,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": dict(custom_parameters),
            },
        }
    )


def media_message(seq: int, *, stream_sid: str, chunk: int, timestamp_ms: int, ulaw: bytes) -> str:
    return _dump(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(timestamp_ms),
                "payload": base64.b64encode(ulaw).decode("ascii"),
            },
        }
    )


def mark_message(seq: int, *, stream_sid: str, name: str) -> str:
    return _dump(
        {"event": "mark", "sequenceNumber": str(seq), "streamSid": stream_sid, "mark": {"name": name}}
    )


def dtmf_message(seq: int, *, stream_sid: str, digit: str) -> str:
    return _dump(
        {
            "event": "dtmf",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "dtmf": {"track": "inbound_track", "digit": digit},
        }
    )


def stop_message(seq: int, *, stream_sid: str, account_sid: str, call_sid: str) -> str:
    return _dump(
        {
            "event": "stop",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "stop": {"accountSid": account_sid, "callSid": call_sid},
        }
    )


def _error(reason: str) -> BotFrameError:
    return BotFrameError(reason[:_REASON_MAX_CHARS])


def check_bot_frame(frame: str | bytes, stream_sid: str) -> BotFrame:
    """Classify one WebSocket frame from the bot; anything Twilio would reject is a ``BotFrameError``."""
    if not isinstance(frame, str):
        return _error(f"binary frame ({len(frame)} bytes): Twilio accepts only text frames")
    try:
        message = json.loads(frame)
    except ValueError:
        return _error(f"not JSON: {frame[:40]!r}")
    if not isinstance(message, dict):
        return _error(f"not a JSON object: {type(message).__name__}")
    event = message.get("event")
    if not isinstance(event, str) or event not in _BOT_KEYS:
        return _error(f"event {event!r} is not media, mark or clear")
    expected = _BOT_KEYS[event]
    missing = expected - message.keys()
    extra = message.keys() - expected
    if missing or extra:
        return _error(f"{event}: missing fields {sorted(missing)}, extra fields {sorted(extra)}")
    if message["streamSid"] != stream_sid:
        return _error(f"{event}: streamSid {str(message['streamSid'])[:40]!r} is not this stream's")
    if event == "clear":
        return BotClear()
    if event == "mark":
        return _check_mark(message["mark"])
    return _check_media(message["media"])


def _check_mark(mark: object) -> BotFrame:
    if not isinstance(mark, dict) or mark.keys() != {"name"}:
        return _error("mark: 'mark' must be an object with exactly one field, 'name'")
    name = mark["name"]
    if not isinstance(name, str) or not name:
        return _error("mark: mark.name must be a non-empty string")
    return BotMark(name)


def _check_media(media: object) -> BotFrame:
    if not isinstance(media, dict) or media.keys() != {"payload"}:
        return _error("media: 'media' must be an object with exactly one field, 'payload'")
    payload = media["payload"]
    if not isinstance(payload, str):
        return _error("media: media.payload must be a base64 string")
    try:
        ulaw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return _error("media: media.payload is not strict base64")
    if ulaw.startswith(b"RIFF"):
        return _error("media: payload carries a RIFF/WAV header; Twilio needs raw mu-law")
    return BotMedia(ulaw)
