"""Twilio Media Streams parser and builders (https://www.twilio.com/docs/voice/media-streams/websocket-messages);
held to the emulator's independent implementation of Twilio in ``test_twilio_conformance.py``."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.twilio_messages import (
    DETAIL_MAX_CHARS,
    Connected,
    Dtmf,
    Invalid,
    InvalidKind,
    Mark,
    Media,
    Start,
    Stop,
    clear_message,
    mark_message,
    media_message,
    parse_message,
)

SID = "MZ00000000000000000000000000000001"
CALL = "CA00000000000000000000000000000001"
ACCOUNT = "AC00000000000000000000000000000001"

# ---- Twilio's messages, as its Media Streams page documents them --------------------------------

CONNECTED = '{"event": "connected", "protocol": "Call", "version": "1.0.0"}'

START = """{
  "event": "start",
  "sequenceNumber": "1",
  "streamSid": "MZ00000000000000000000000000000001",
  "start": {
    "streamSid": "MZ00000000000000000000000000000001",
    "accountSid": "AC00000000000000000000000000000001",
    "callSid": "CA00000000000000000000000000000001",
    "tracks": ["inbound"],
    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    "customParameters": {"tenant": "acme", "lang": "en-US"}
  }
}"""

# The doc's payload is elided ("/////38A..."); this is the same prefix, completed to valid base64.
MEDIA = """{"event": "media", "sequenceNumber": "42", "streamSid": "MZ00000000000000000000000000000001",
 "media": {"track": "inbound", "chunk": "41", "timestamp": "820", "payload": "/////38A"}}"""

DTMF = (
    '{"event": "dtmf", "sequenceNumber": "57", "streamSid": "MZ...", '
    '"dtmf": {"track": "inbound_track", "digit": "5"}}'
)

MARK = '{"event": "mark", "sequenceNumber": "63", "streamSid": "MZ...", "mark": {"name": "turn-7"}}'

STOP = """{"event": "stop", "sequenceNumber": "90", "streamSid": "MZ...",
 "stop": {"accountSid": "AC...", "callSid": "CA..."}}"""


def test_connected_verbatim() -> None:
    assert parse_message(CONNECTED) == Connected(protocol="Call", version="1.0.0")


def test_start_verbatim() -> None:
    message = parse_message(START)
    assert message == Start(
        stream_sid=SID,
        call_sid=CALL,
        account_sid=ACCOUNT,
        tracks=("inbound",),
        encoding="audio/x-mulaw",
        sample_rate=8000,
        channels=1,
        custom_parameters={"tenant": "acme", "lang": "en-US"},
    )


def test_start_custom_parameters_are_read_only() -> None:
    message = parse_message(START)
    assert isinstance(message, Start)
    with pytest.raises(TypeError):
        message.custom_parameters["tenant"] = "evil"  # type: ignore[index]


def test_media_verbatim() -> None:
    message = parse_message(MEDIA)
    assert message == Media(
        stream_sid=SID, track="inbound", chunk=41, timestamp_ms=820, payload=b"\xff\xff\xff\xff\x7f\x00"
    )


def test_dtmf_verbatim() -> None:
    assert parse_message(DTMF) == Dtmf(stream_sid="MZ...", digit="5")


def test_mark_verbatim() -> None:
    assert parse_message(MARK) == Mark(stream_sid="MZ...", name="turn-7")


def test_stop_verbatim() -> None:
    assert parse_message(STOP) == Stop(stream_sid="MZ...", call_sid="CA...")


# ---- tolerance ----------------------------------------------------------------------------------


def test_counters_may_be_ints() -> None:
    raw = {
        "event": "media",
        "sequenceNumber": 42,
        "streamSid": SID,
        "media": {"track": "inbound", "chunk": 41, "timestamp": 820, "payload": ""},
    }
    assert parse_message(json.dumps(raw)) == Media(SID, "inbound", 41, 820, b"")


def test_extra_fields_are_ignored() -> None:
    raw = json.loads(MARK)
    raw["unexpected"] = {"nested": [1, 2]}
    raw["mark"]["also"] = None
    assert parse_message(json.dumps(raw)) == Mark(stream_sid="MZ...", name="turn-7")


def test_sequence_number_is_optional() -> None:
    raw = json.loads(MARK)
    del raw["sequenceNumber"]
    assert parse_message(json.dumps(raw)) == Mark(stream_sid="MZ...", name="turn-7")


def test_start_without_custom_parameters() -> None:
    raw = json.loads(START)
    del raw["start"]["customParameters"]
    message = parse_message(json.dumps(raw))
    assert isinstance(message, Start)
    assert dict(message.custom_parameters) == {}


def test_start_custom_parameter_values_become_strings() -> None:
    raw = json.loads(START)
    raw["start"]["customParameters"] = {"n": 5, "flag": True, "none": None, "s": "x"}
    message = parse_message(json.dumps(raw))
    assert isinstance(message, Start)
    assert dict(message.custom_parameters) == {"n": "5", "flag": "true", "none": "null", "s": "x"}


def test_start_stream_sid_falls_back_to_start_object() -> None:
    raw = json.loads(START)
    del raw["streamSid"]
    message = parse_message(json.dumps(raw))
    assert isinstance(message, Start)
    assert message.stream_sid == SID


# ---- each invalid kind --------------------------------------------------------------------------


def kind_of(raw: str | bytes, **kwargs: Any) -> InvalidKind:
    message = parse_message(raw, **kwargs)
    assert isinstance(message, Invalid), message
    assert len(message.detail) <= DETAIL_MAX_CHARS
    return message.kind


def test_binary_frame() -> None:
    assert kind_of(CONNECTED.encode()) is InvalidKind.BINARY


def test_invalid_json() -> None:
    assert kind_of('{"event": "media",') is InvalidKind.INVALID_JSON
    assert kind_of("") is InvalidKind.INVALID_JSON
    assert kind_of("[" * 100_000) is InvalidKind.INVALID_JSON  # recursion, not a crash
    assert kind_of("1" * 10_000) is InvalidKind.INVALID_JSON  # beyond int()'s digit limit


@pytest.mark.parametrize("raw", ["[]", "null", "42", '"media"', "true"])
def test_not_object(raw: str) -> None:
    assert kind_of(raw) is InvalidKind.NOT_OBJECT


def test_unknown_event() -> None:
    assert kind_of('{"event": "clear", "streamSid": "MZ"}') is InvalidKind.UNKNOWN_EVENT
    message = parse_message(json.dumps({"event": "x" * 5000}))
    assert isinstance(message, Invalid)
    assert message.kind is InvalidKind.UNKNOWN_EVENT
    assert len(message.detail) <= DETAIL_MAX_CHARS


def test_event_missing_or_not_a_string() -> None:
    assert kind_of('{"streamSid": "MZ"}') is InvalidKind.MISSING_FIELD
    assert kind_of('{"event": null}') is InvalidKind.MISSING_FIELD
    assert kind_of('{"event": 3}') is InvalidKind.BAD_FIELD
    assert kind_of('{"event": ["media"]}') is InvalidKind.BAD_FIELD


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (MEDIA, ["media", "payload"]),
        (MEDIA, ["media", "chunk"]),
        (MEDIA, ["media"]),
        (MEDIA, ["streamSid"]),
        (START, ["start", "callSid"]),
        (START, ["start", "mediaFormat"]),
        (START, ["start", "mediaFormat", "sampleRate"]),
        (DTMF, ["dtmf", "digit"]),
        (MARK, ["mark", "name"]),
        (STOP, ["stop", "callSid"]),
        (CONNECTED, ["version"]),
    ],
)
def test_missing_field(raw: str, path: list[str]) -> None:
    message = json.loads(raw)
    target = message
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    assert kind_of(json.dumps(message)) is InvalidKind.MISSING_FIELD


@pytest.mark.parametrize(
    ("raw", "path", "value"),
    [
        (MEDIA, ["sequenceNumber"], "forty-two"),
        (MEDIA, ["media", "chunk"], "4x"),
        (MEDIA, ["media", "chunk"], "-1"),
        (MEDIA, ["media", "chunk"], -1),
        (MEDIA, ["media", "chunk"], 1.5),
        (MEDIA, ["media", "chunk"], True),
        (MEDIA, ["media", "chunk"], " 41"),
        (MEDIA, ["media", "chunk"], "٤١"),  # non-ASCII digits
        (MEDIA, ["media", "chunk"], "9" * 40),
        (MEDIA, ["media", "timestamp"], None),
        (MEDIA, ["media", "payload"], 123),
        (MEDIA, ["media"], "not an object"),
        (MEDIA, ["streamSid"], 1),
        (START, ["start", "tracks"], "inbound"),
        (START, ["start", "tracks"], ["inbound", 2]),
        (START, ["start", "mediaFormat", "sampleRate"], "fast"),
        (START, ["start", "mediaFormat", "channels"], 0),
        (START, ["start", "customParameters"], ["tenant"]),
        (DTMF, ["dtmf", "digit"], 5),
        (MARK, ["mark"], None),
        (STOP, ["stop", "callSid"], {}),
    ],
)
def test_bad_field(raw: str, path: list[str], value: Any) -> None:
    message = json.loads(raw)
    target = message
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert kind_of(json.dumps(message)) is InvalidKind.BAD_FIELD


@pytest.mark.parametrize("payload", ["/////38", "////\n/38A", "é", "=/////38A", "ab!d"])
def test_bad_base64(payload: str) -> None:
    message = json.loads(MEDIA)
    message["media"]["payload"] = payload
    assert kind_of(json.dumps(message)) is InvalidKind.BAD_BASE64


def test_too_large_is_not_parsed() -> None:
    assert kind_of("x" * 101, max_chars=100) is InvalidKind.TOO_LARGE
    assert kind_of(CONNECTED, max_chars=len(CONNECTED) - 1) is InvalidKind.TOO_LARGE
    assert parse_message(CONNECTED, max_chars=len(CONNECTED)) == Connected("Call", "1.0.0")


def test_detail_does_not_echo_the_frame() -> None:
    secret = "SECRET-" + "z" * 200
    message = parse_message('{"event": "media", "streamSid": "' + secret + '", "media": 5}')
    assert isinstance(message, Invalid)
    assert secret not in message.detail


# ---- builders -----------------------------------------------------------------------------------


def test_outbound_builders_match_protocol() -> None:
    assert json.loads(media_message(SID, b"\xff\x7f")) == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": base64.b64encode(b"\xff\x7f").decode()},
    }
    assert json.loads(mark_message(SID, "turn-7")) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": "turn-7"},
    }
    assert json.loads(clear_message(SID)) == {"event": "clear", "streamSid": SID}


def test_builders_are_compact() -> None:
    for text in (
        media_message(SID, b"\x00" * 160),
        mark_message(SID, "m"),
        clear_message(SID),
    ):
        assert ", " not in text
        assert '": ' not in text


# ---- never raises -------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
KNOWN_EVENTS = ["connected", "start", "media", "dtmf", "mark", "stop"]
FIELD_NAMES = [
    "streamSid",
    "sequenceNumber",
    "protocol",
    "version",
    "start",
    "media",
    "dtmf",
    "mark",
    "stop",
    "track",
    "chunk",
    "timestamp",
    "payload",
    "digit",
    "name",
    "callSid",
    "accountSid",
    "tracks",
    "mediaFormat",
    "customParameters",
    "encoding",
    "sampleRate",
    "channels",
]
# Values that look like the real thing so that random objects get deep into each event parser.
plausible = st.sampled_from(["1", "42", "-1", "x", "", "/////38A", "AQ==", "MZ1", "inbound"]) | json_values
field_objects = st.recursive(
    plausible,
    lambda children: (
        st.dictionaries(st.sampled_from(FIELD_NAMES), children, max_size=6) | st.lists(children, max_size=3)
    ),
    max_leaves=12,
)
event_objects = st.builds(
    lambda event, fields: {**fields, "event": event},
    st.sampled_from(KNOWN_EVENTS),
    st.dictionaries(st.sampled_from(FIELD_NAMES), field_objects, max_size=5),
)


def assert_parses_to_a_message(raw: str | bytes) -> None:
    message = parse_message(raw)
    assert isinstance(message, Connected | Start | Media | Dtmf | Mark | Stop | Invalid)
    if isinstance(message, Invalid):
        assert len(message.detail) <= DETAIL_MAX_CHARS


@settings(deadline=None)
@given(st.text())
def test_never_raises_on_text(raw: str) -> None:
    assert_parses_to_a_message(raw)


@settings(deadline=None)
@given(st.binary())
def test_never_raises_on_bytes(raw: bytes) -> None:
    assert parse_message(raw) == Invalid(InvalidKind.BINARY, f"binary frame of {len(raw)} bytes")


@settings(deadline=None)
@given(json_values)
def test_never_raises_on_json_values(value: Any) -> None:
    assert_parses_to_a_message(json.dumps(value))


@settings(max_examples=200, deadline=None)
@given(event_objects)
def test_never_raises_on_known_events_with_random_fields(value: dict[str, Any]) -> None:
    assert_parses_to_a_message(json.dumps(value))


def paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(paths(child, (*prefix, key)))
    return found


@st.composite
def mutated_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A valid §1.2 message with one field replaced by a random JSON value or removed."""
    message: dict[str, Any] = json.loads(draw(st.sampled_from([CONNECTED, START, MEDIA, DTMF, MARK, STOP])))
    path = draw(st.sampled_from(paths(message)))
    target = message
    for key in path[:-1]:
        target = target[key]
    if draw(st.booleans()):
        del target[path[-1]]
    else:
        target[path[-1]] = draw(plausible)
    return message


@settings(deadline=None)
@given(mutated_messages())
def test_never_raises_on_mutated_valid_messages(value: dict[str, Any]) -> None:
    assert_parses_to_a_message(json.dumps(value))
