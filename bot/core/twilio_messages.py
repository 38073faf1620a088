"""Twilio Media Streams messages: parse what Twilio sends, build what the bot sends.

Rules:
- ``parse_message`` never raises. Anything it cannot turn into a message becomes ``Invalid`` with a
  kind and a short detail that is safe to log (never the frame itself, at most ~120 characters).
- Twilio only sends text frames, so a ``bytes`` frame is ``Invalid(BINARY)``. A text frame longer
  than ``max_chars`` is ``Invalid(TOO_LARGE)`` and is not parsed at all.
- ``sequenceNumber``, ``media.chunk`` and ``media.timestamp`` arrive as strings; plain decimal
  strings and ints are both accepted, anything else is ``BAD_FIELD``.
- Fields a message dataclass carries are required (``MISSING_FIELD`` if absent, ``BAD_FIELD`` if
  the wrong type), except ``customParameters`` which defaults to ``{}``. Other fields are ignored,
  except ``sequenceNumber`` which is validated when present. Extra fields are always tolerated.
- ``media.payload`` is decoded with strict base64; anything else is ``BAD_BASE64``.
- Builders emit compact JSON, for the three messages the bot sends (``media``, ``mark``, ``clear``). Twilio's
  own messages are built by the emulator's independent implementation (``emulators/twilio_wire.py``);
  ``tests/unit/test_twilio_conformance.py`` holds the two to each other.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

DETAIL_MAX_CHARS = 120
# Longer digit strings than this are not a plausible counter and would hit int()'s digit limit.
_MAX_DIGITS = 19


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


RESUMED = "resumed"  # the <Parameter> of a stream that came back after the line dropped


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    encoding: str
    sample_rate: int
    channels: int
    custom_parameters: Mapping[str, str]

    @property
    def resumed(self) -> bool:
        """The stream came back after the line dropped (``bot.server.twilio.connect_action`` adds the
        parameter)."""
        return bool(self.custom_parameters.get(RESUMED))


@dataclass(frozen=True, slots=True)
class Media:
    stream_sid: str
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes  # decoded mu-law bytes


@dataclass(frozen=True, slots=True)
class Dtmf:
    stream_sid: str
    digit: str


@dataclass(frozen=True, slots=True)
class Mark:
    stream_sid: str
    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    stream_sid: str
    call_sid: str


class InvalidKind(StrEnum):
    BINARY = "binary"
    INVALID_JSON = "invalid_json"
    NOT_OBJECT = "not_object"
    UNKNOWN_EVENT = "unknown_event"
    MISSING_FIELD = "missing_field"
    BAD_FIELD = "bad_field"
    BAD_BASE64 = "bad_base64"
    TOO_LARGE = "too_large"


@dataclass(frozen=True, slots=True)
class Invalid:
    kind: InvalidKind
    detail: str  # short, safe to log


InboundMessage = Connected | Start | Media | Dtmf | Mark | Stop | Invalid


class _Reject(Exception):
    """Internal: carries an Invalid out of nested field readers."""

    def __init__(self, kind: InvalidKind, detail: str) -> None:
        super().__init__(detail)
        self.invalid = Invalid(kind, _short(detail))


def _short(text: str) -> str:
    if len(text) <= DETAIL_MAX_CHARS:
        return text
    return text[: DETAIL_MAX_CHARS - 3] + "..."


_JSON_TYPE_NAMES: dict[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def _type_name(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


# ---- field readers: each returns the value or raises _Reject ------------------------------------


def _get(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise _Reject(InvalidKind.MISSING_FIELD, f"{where}{key} is missing")
    return obj[key]


def _str(obj: Mapping[str, Any], key: str, where: str = "") -> str:
    value = _get(obj, key, where)
    if not isinstance(value, str):
        raise _Reject(InvalidKind.BAD_FIELD, f"{where}{key} must be a string, got {_type_name(value)}")
    return value


def _obj(obj: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    value = _get(obj, key, where)
    if not isinstance(value, dict):
        raise _Reject(InvalidKind.BAD_FIELD, f"{where}{key} must be an object, got {_type_name(value)}")
    return value


def _to_count(value: Any, name: str) -> int:
    """A non-negative integer given as an int or a decimal string (how Twilio sends counters)."""
    # bool is an int subclass; True is not a chunk number.
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 0:
            return value
    elif isinstance(value, str) and 0 < len(value) <= _MAX_DIGITS and value.isascii() and value.isdigit():
        return int(value)
    raise _Reject(InvalidKind.BAD_FIELD, f"{name} must be a non-negative integer, got {_type_name(value)}")


def _count(obj: Mapping[str, Any], key: str, where: str = "") -> int:
    return _to_count(_get(obj, key, where), f"{where}{key}")


def _positive(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = _count(obj, key, where)
    if value == 0:
        raise _Reject(InvalidKind.BAD_FIELD, f"{where}{key} must be positive")
    return value


def _check_sequence(message: Mapping[str, Any]) -> None:
    if "sequenceNumber" in message:
        _to_count(message["sequenceNumber"], "sequenceNumber")


def _param_text(value: Any) -> str:
    """<Parameter> values are strings on the wire; coerce anything else rather than reject the call."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)  # JSON spelling: true, null, 1.5, [..]
    except (ValueError, RecursionError):
        return ""


def _b64(text: str, name: str) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except ValueError:  # binascii.Error, and non-ASCII text
        raise _Reject(InvalidKind.BAD_BASE64, f"{name} is not valid base64") from None


# ---- per-event parsers ---------------------------------------------------------------------------


def _connected(message: Mapping[str, Any]) -> Connected:
    return Connected(protocol=_str(message, "protocol"), version=_str(message, "version"))


def _start(message: Mapping[str, Any]) -> Start:
    _check_sequence(message)
    start = _obj(message, "start")
    # The top-level streamSid is what every other event carries; start.streamSid is a fallback.
    stream_sid = _str(message, "streamSid") if "streamSid" in message else _str(start, "streamSid", "start.")
    tracks_value = _get(start, "tracks", "start.")
    if not isinstance(tracks_value, list) or not all(isinstance(t, str) for t in tracks_value):
        raise _Reject(InvalidKind.BAD_FIELD, "start.tracks must be an array of strings")
    media_format = _obj(start, "mediaFormat", "start.")
    params_value = start.get("customParameters")
    if params_value is None:
        params: dict[str, str] = {}
    elif isinstance(params_value, dict):
        params = {str(k): _param_text(v) for k, v in params_value.items()}
    else:
        raise _Reject(
            InvalidKind.BAD_FIELD, f"start.customParameters must be an object, got {_type_name(params_value)}"
        )
    return Start(
        stream_sid=stream_sid,
        call_sid=_str(start, "callSid", "start."),
        account_sid=_str(start, "accountSid", "start."),
        tracks=tuple(tracks_value),
        encoding=_str(media_format, "encoding", "start.mediaFormat."),
        sample_rate=_positive(media_format, "sampleRate", "start.mediaFormat."),
        channels=_positive(media_format, "channels", "start.mediaFormat."),
        custom_parameters=MappingProxyType(params),
    )


def _media(message: Mapping[str, Any]) -> Media:
    _check_sequence(message)
    stream_sid = _str(message, "streamSid")
    media = _obj(message, "media")
    return Media(
        stream_sid=stream_sid,
        track=_str(media, "track", "media."),
        chunk=_count(media, "chunk", "media."),
        timestamp_ms=_count(media, "timestamp", "media."),
        payload=_b64(_str(media, "payload", "media."), "media.payload"),
    )


def _dtmf(message: Mapping[str, Any]) -> Dtmf:
    _check_sequence(message)
    stream_sid = _str(message, "streamSid")
    return Dtmf(stream_sid=stream_sid, digit=_str(_obj(message, "dtmf"), "digit", "dtmf."))


def _mark(message: Mapping[str, Any]) -> Mark:
    _check_sequence(message)
    stream_sid = _str(message, "streamSid")
    return Mark(stream_sid=stream_sid, name=_str(_obj(message, "mark"), "name", "mark."))


def _stop(message: Mapping[str, Any]) -> Stop:
    _check_sequence(message)
    stream_sid = _str(message, "streamSid")
    return Stop(stream_sid=stream_sid, call_sid=_str(_obj(message, "stop"), "callSid", "stop."))


_PARSERS: dict[str, Callable[[Mapping[str, Any]], InboundMessage]] = {
    "connected": _connected,
    "start": _start,
    "media": _media,
    "dtmf": _dtmf,
    "mark": _mark,
    "stop": _stop,
}


def parse_message(raw: str | bytes, *, max_chars: int = 1_000_000) -> InboundMessage:
    """Parse one WebSocket frame from Twilio. Never raises; junk becomes ``Invalid``."""
    if not isinstance(raw, str):
        return Invalid(InvalidKind.BINARY, f"binary frame of {len(raw)} bytes")
    if len(raw) > max_chars:
        return Invalid(InvalidKind.TOO_LARGE, f"text frame of {len(raw)} chars exceeds {max_chars}")
    try:
        message = json.loads(raw)
    except json.JSONDecodeError as exc:
        return Invalid(InvalidKind.INVALID_JSON, _short(f"{exc.msg} at char {exc.pos}"))
    except ValueError:  # e.g. an integer literal beyond int()'s digit limit
        return Invalid(InvalidKind.INVALID_JSON, "unparseable number")
    except RecursionError:
        return Invalid(InvalidKind.INVALID_JSON, "nested too deeply")
    if not isinstance(message, dict):
        return Invalid(InvalidKind.NOT_OBJECT, f"top-level JSON is {_type_name(message)}, not an object")
    event = message.get("event")
    if event is None:
        return Invalid(InvalidKind.MISSING_FIELD, "event is missing")
    if not isinstance(event, str):
        return Invalid(InvalidKind.BAD_FIELD, f"event must be a string, got {_type_name(event)}")
    parser = _PARSERS.get(event)
    if parser is None:
        # repr() keeps control characters and quotes out of log lines.
        return Invalid(InvalidKind.UNKNOWN_EVENT, _short(f"unknown event {event[:60]!r}"))
    try:
        return parser(message)
    except _Reject as reject:
        return reject.invalid


# ---- builders: what the bot sends ---------------------------------------------------------------


def _dump(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def _b64_text(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def media_message(stream_sid: str, ulaw: bytes) -> str:
    """Outbound audio: headerless mu-law 8 kHz mono, queued by Twilio and played in order."""
    return _dump({"event": "media", "streamSid": stream_sid, "media": {"payload": _b64_text(ulaw)}})


def mark_message(stream_sid: str, name: str) -> str:
    """Twilio echoes this mark once the audio sent before it has played (or was cleared)."""
    return _dump({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    """Drops all audio still buffered at Twilio; Twilio then echoes every pending mark."""
    return _dump({"event": "clear", "streamSid": stream_sid})
