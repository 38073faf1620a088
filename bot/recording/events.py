"""What the reader accepts from a recording's JSON: every events.jsonl line and meta.json, parsed and checked
field by field, so that whatever reads a ``Recording`` can trust the values it is handed.

Rules:
- JSON as RFC 8259 defines it, not as Python's ``json`` accepts it: ``NaN``/``Infinity`` are refused (RFC
  8259 section 6 has no such numbers), and so is a number outside what a double holds exactly (RFC 7493
  section 2.2: a float that overflows to infinity, an integer beyond 2**53). Nesting deeper than
  ``MAX_DEPTH`` is refused (the writer cuts its values at 32 levels). A lone surrogate in a string is
  replaced by U+FFFD, so the text can always be written out as UTF-8.
- Times: an event's ``t`` is within the call, ``0 <= t <= limit_s``: the finalized call's ``duration_s``
  plus ``TIME_MARGIN_S``, or, while the call has no duration (killed mid-call), the longest the call
  could last (``max_duration_s``, written at its start: the line's ``max_call_s`` and the goodbye's
  allowance), else (an older recording) ``MAX_CALL_S`` (Twilio's longest call), plus the margin. A
  duration in ms (a turn's figures, a tool's ``ms``) is within ``± limit_s``. So no value from the file
  can make a reader lay out more audio than the call could hold.
- Ids are printable ASCII without spaces, at most ``MAX_ID`` characters: a response id (or an integer
  >= 0), a tool call id, a call or stream sid; a mark is printable ASCII (it may be empty).
- The event types the bot writes are checked field by field, with the types the bot writes (strict: a
  bool is not a number, a number is not a string). A field may be missing; a field present has its
  type, null only where the bot writes null, or is ``[redacted]`` (the writer redacts the fields an
  operator names whatever their type; ``t`` and ``type`` are never redacted): readers of a field take
  ``[redacted]`` like a missing value. Other fields, and other event types, pass as they are (a newer
  bot may add some): only ``t`` and ``type`` are checked there.
- ``check_event`` and ``check_meta`` never raise on content: a problem is returned as one line naming the
  first bad field (``said.2: Input should be a valid string``). Pure.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Final, TypeGuard

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    StringConstraints,
    ValidationError,
    ValidationInfo,
)

from bot.core.redact import REDACTED
from bot.recording.format import BOT_AUDIO_EVENT, CLEAR_EVENT

# Twilio's longest call: 4 hours by default, 24 hours at most (the account's "24-Hour Maximum Call
# Duration" setting): https://www.twilio.com/docs/sip-trunking/extended-call-duration and
# https://www.twilio.com/en-us/blog/introducing-configurable-call-limits-for-programmable-voice
MAX_CALL_S: Final = 24 * 3600.0
# Past the recorded duration: an event written while the recording was being finalized on another
# thread, the duration rounded to ms; caller audio may run CALLER_LEAD_S (2 s) ahead of the clock.
TIME_MARGIN_S: Final = 10.0
MAX_DEPTH: Final = 40  # the writer's 32 levels of values, plus the event's own
MAX_ID: Final = 128
MAX_SAFE_INTEGER: Final = 2**53 - 1  # RFC 7493 section 2.2
_SURROGATE = re.compile("[\ud800-\udfff]")
_EVENT_TYPE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class BadJson(ValueError):
    """A line or file that is not JSON as the reader accepts it (see the rules)."""


def _refuse_constant(name: str) -> Any:
    raise BadJson(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJson(f"{text[:20]} does not fit a double")
    return value


def _safe_int(text: str) -> int:
    # Checked on the text first: converting a long digit string is itself slow.
    if len(text.lstrip("-")) > 16 or abs(value := int(text)) > MAX_SAFE_INTEGER:
        raise BadJson(f"{text[:20]} is beyond 2**53")
    return value


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (0 for a scalar); iterative, so never recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def _no_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if not value.isascii() else value
    if isinstance(value, list):
        return [_no_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_no_surrogates(key): _no_surrogates(item) for key, item in value.items()}
    return value


def loads(raw: bytes) -> Any:
    """One JSON document as the reader accepts it (see the rules); else ``BadJson``, a ``ValueError``."""
    try:
        value = json.loads(
            raw, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_safe_int
        )
    except BadJson:
        raise
    except RecursionError as exc:
        raise BadJson(f"nested deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadJson(str(exc)) from exc
    if _depth(value) > MAX_DEPTH:
        raise BadJson(f"nested deeper than {MAX_DEPTH} levels")
    return _no_surrogates(value)


# ---- field types ---------------------------------------------------------------------------------------


def _limit_s(info: ValidationInfo) -> float:
    context = info.context if isinstance(info.context, dict) else {}
    return float(context.get("limit_s", MAX_CALL_S + TIME_MARGIN_S))


def _within_call(value: float, info: ValidationInfo) -> float:
    limit = _limit_s(info)
    if not 0.0 <= value <= limit:
        raise ValueError(f"{value:g} s is outside the call (0 to {limit:g} s)")
    return value


def _ms_within_call(value: int, info: ValidationInfo) -> int:
    limit = _limit_s(info) * 1000
    if abs(value) > limit:
        raise ValueError(f"{value} ms is longer than the call ({limit:g} ms)")
    return value


Seconds = Annotated[float, AfterValidator(_within_call)]
Millis = Annotated[int, AfterValidator(_ms_within_call)]
Id = Annotated[str, StringConstraints(pattern=rf"^[\x21-\x7e]{{1,{MAX_ID}}}$")]
Sid = Annotated[str, StringConstraints(pattern=rf"^[\x21-\x7e]{{0,{MAX_ID}}}$")]
Mark = Annotated[str, StringConstraints(pattern=rf"^[\x20-\x7e]{{0,{MAX_ID}}}$")]
EventType = Annotated[str, StringConstraints(pattern=f"^{_EVENT_TYPE.pattern}$")]
ResponseId = Annotated[int, Field(ge=0)] | Id


class _Checked(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class Event(_Checked):
    t: Seconds
    type: EventType


class BotAudio(Event):
    offset: NonNegativeInt | None = None  # missing (or redacted): the chunk is not placed
    bytes: NonNegativeInt | None = None
    response_id: ResponseId | None = None
    mark: Mark | None = None


class MarkSent(Event):
    mark: Mark | None = None
    response_id: ResponseId | None = None
    text: str | None = None


class MarkEchoed(Event):
    mark: Mark | None = None
    result: str | None = None


class BargeIn(Event):
    clear_ms: Millis | None = None
    cut_responses: list[ResponseId] | None = None


class Dtmf(Event):
    digit: Annotated[str, StringConstraints(max_length=16)] | None = None  # as Twilio sent it, or [redacted]


class DtmfEntry(Event):
    digits: NonNegativeInt | None = None


class ToolFigures(_Checked):
    name: str | None = None
    ok: bool | None = None
    ms: Millis | None = None
    args: str | None = None


class ToolCallRecord(_Checked):
    id: Id
    name: str
    arguments: str


class ModelRound(_Checked):
    messages: NonNegativeInt | None = None
    tools_offered: list[str] | None = None
    first_chunk_ms: Millis | None = None
    stream_ms: Millis | None = None
    text: str | None = None
    tool_calls: list[ToolCallRecord] | None = None
    tool_results: list[str] | None = None


class TurnEvent(Event):
    turn: NonNegativeInt = 0  # missing: the inspector and replay number it by position
    utterance_ms: Millis | None = None
    typed: bool | None = None
    transcript_chars: NonNegativeInt | None = None
    stt_ms: Millis | None = None
    llm_first_token_ms: Millis | None = None
    llm_ttft_ms: Millis | None = None
    llm_requests: NonNegativeInt | None = None
    first_phrase_ms: Millis | None = None
    first_audio_sent_ms: Millis | None = None
    first_audio_heard_ms: Millis | None = None
    voice_to_voice_ms: Millis | None = None
    tools: list[ToolFigures] | None = None
    tool_filler: bool | None = None
    silence_filler: bool | None = None
    progress_lines: NonNegativeInt | None = None
    barge_in: bool | None = None
    error: str | None = None
    transcript: str | None = None
    typed_text: str | None = None
    said: dict[Id, str] | None = None
    llm: list[ModelRound] | None = None


_MODELS: Final[dict[str, type[Event]]] = {
    BOT_AUDIO_EVENT: BotAudio,
    CLEAR_EVENT: Event,
    "mark_sent": MarkSent,
    "mark_echoed": MarkEchoed,
    "barge_in": BargeIn,
    "dtmf": Dtmf,
    "dtmf_entry": DtmfEntry,
    "turn": TurnEvent,
}


class Meta(_Checked):
    format: int
    complete: bool | None = None
    duration_s: Annotated[float, Field(ge=0.0, le=MAX_CALL_S)] | None = None
    max_duration_s: Annotated[float, Field(gt=0.0, le=MAX_CALL_S)] | None = None
    call_sid: Sid | None = None
    stream_sid: Sid | None = None
    parameters: dict[str, str] | None = None  # the stream's custom parameters: Twilio sends strings


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "event"
    return f"{where}: {error['msg']}"


def time_limit_s(meta: dict[str, Any]) -> float:
    """The latest ``t`` an event of this recording may have (see the rules), from a checked meta."""
    duration, longest = meta.get("duration_s"), meta.get("max_duration_s")
    if meta.get("complete") is True and _is_number(duration):
        return float(duration) + TIME_MARGIN_S
    if _is_number(longest):
        return float(longest) + TIME_MARGIN_S
    return MAX_CALL_S + TIME_MARGIN_S


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_meta(meta: Any) -> str | None:
    """None when ``meta`` (parsed by ``loads``) is a meta.json the reader accepts, else what is wrong."""
    if not isinstance(meta, dict):
        return "not a JSON object"
    try:
        Meta.model_validate(meta)
    except ValidationError as exc:
        return _first_error(exc)
    return None


def _unredacted(value: Any) -> Any:
    """``value`` without the fields the writer redacted (a redacted field is as the writer meant it)."""
    if isinstance(value, dict):
        return {k: _unredacted(v) for k, v in value.items() if v != REDACTED or k in ("t", "type")}
    if isinstance(value, list):
        return [_unredacted(item) for item in value]
    return value


def check_event(event: Any, limit_s: float) -> str | None:
    """None when ``event`` (parsed by ``loads``) is an event the reader hands on, else what is wrong."""
    if not isinstance(event, dict):
        return "not a JSON object"
    kind = event.get("type")
    model = _MODELS.get(kind, Event) if isinstance(kind, str) else Event
    try:
        model.model_validate(_unredacted(event), context={"limit_s": limit_s})
    except ValidationError as exc:
        name = kind if isinstance(kind, str) and _EVENT_TYPE.fullmatch(kind) else "event"
        return f"{name} event: {_first_error(exc)}"
    return None
