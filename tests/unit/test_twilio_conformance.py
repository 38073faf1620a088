"""Conformance: the product's Twilio Media Streams codec (``bot.core.twilio_messages``) against the emulator's
independent implementation of Twilio's side (``emulators.twilio_wire``), as h11 tests its HTTP against the
standard library's.

Rules:
- Inbound: every frame the emulator builds as Twilio would parses in the product to the same fields.
- Outbound: every frame the product builds passes the emulator's check of what Twilio accepts from a bot
  (``check_bot_frame``: errors 31924 and 31951), with the same fields; a mark comes back named as it went.
- Inputs are drawn by hypothesis over the range Twilio can send and the bot can build: any payload bytes,
  any text for SIDs, mark names, digits and ``<Parameter>`` names and values, counters up to 2**63 - 1.
- Where the two disagree, Twilio's docs decide
  (https://www.twilio.com/docs/voice/media-streams/websocket-messages, and the error pages cited below); the
  two inputs left out here are left out for a reason written beside them.
"""

from __future__ import annotations

import json

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.core import twilio_messages as codec
from emulators import twilio_wire as wire

# Twilio numbers its messages and chunks from 1 and stamps media in ms since the stream began, one frame
# every 20 ms: 2**63 - 1 is far past any call. A longer counter (20 digits) the product refuses on purpose
# (``_MAX_DIGITS``: no plausible counter, and int()'s digit limit), so the range stops there.
counters = st.integers(min_value=1, max_value=2**63 - 1)
timestamps = st.integers(min_value=0, max_value=2**63 - 1)
sids = st.text(max_size=40)  # real SIDs are 34 ASCII characters; any text must still pass through
texts = st.text(max_size=60)
parameters = st.dictionaries(texts, texts, max_size=8)
# The keypad's keys as Twilio reports them, and any other text: the codec passes a digit through unjudged.
digits = st.sampled_from([*"0123456789*#ABCD"]) | st.text(min_size=1, max_size=3)
payloads = st.binary(max_size=4000)  # 20 ms is 160 bytes; the bot sends up to a phrase's worth at once

EXAMPLES = settings(max_examples=200, deadline=None)


# ---- inbound: what Twilio sends, built by the emulator, parsed by the product ----------------------------


def inbound_start(stream_sid: str, account_sid: str, call_sid: str, custom: dict[str, str]) -> codec.Start:
    """The ``start`` of an inbound-only stream in Twilio's one media format (always μ-law, 8000 Hz, mono)."""
    return codec.Start(stream_sid, call_sid, account_sid, ("inbound",), "audio/x-mulaw", 8000, 1, custom)


def test_connected_parses_to_the_protocol_and_version_twilio_sends() -> None:
    assert codec.parse_message(wire.connected_message()) == codec.Connected(protocol="Call", version="1.0.0")


@EXAMPLES
@given(seq=counters, stream_sid=sids, account_sid=sids, call_sid=sids, custom=parameters)
def test_start_parses_to_the_same_fields(
    seq: int, stream_sid: str, account_sid: str, call_sid: str, custom: dict[str, str]
) -> None:
    frame = wire.start_message(
        seq, stream_sid=stream_sid, account_sid=account_sid, call_sid=call_sid, custom_parameters=custom
    )
    parsed = codec.parse_message(frame)
    assert parsed == inbound_start(stream_sid, account_sid, call_sid, custom)
    assert isinstance(parsed, codec.Start) and dict(parsed.custom_parameters) == custom


@EXAMPLES
@given(seq=counters, stream_sid=sids, chunk=timestamps, timestamp_ms=timestamps, ulaw=payloads)
def test_media_parses_to_the_same_fields(
    seq: int, stream_sid: str, chunk: int, timestamp_ms: int, ulaw: bytes
) -> None:
    frame = wire.media_message(seq, stream_sid=stream_sid, chunk=chunk, timestamp_ms=timestamp_ms, ulaw=ulaw)
    assert codec.parse_message(frame) == codec.Media(
        stream_sid=stream_sid, track="inbound", chunk=chunk, timestamp_ms=timestamp_ms, payload=ulaw
    )


@EXAMPLES
@given(seq=counters, stream_sid=sids, digit=digits)
def test_dtmf_parses_to_the_same_digit(seq: int, stream_sid: str, digit: str) -> None:
    frame = wire.dtmf_message(seq, stream_sid=stream_sid, digit=digit)
    assert codec.parse_message(frame) == codec.Dtmf(stream_sid=stream_sid, digit=digit)


@EXAMPLES
@given(seq=counters, stream_sid=sids, name=st.text())
def test_mark_parses_to_the_same_name(seq: int, stream_sid: str, name: str) -> None:
    frame = wire.mark_message(seq, stream_sid=stream_sid, name=name)
    assert codec.parse_message(frame) == codec.Mark(stream_sid=stream_sid, name=name)


@EXAMPLES
@given(seq=counters, stream_sid=sids, account_sid=sids, call_sid=sids)
def test_stop_parses_to_the_same_call(seq: int, stream_sid: str, account_sid: str, call_sid: str) -> None:
    frame = wire.stop_message(seq, stream_sid=stream_sid, account_sid=account_sid, call_sid=call_sid)
    assert codec.parse_message(frame) == codec.Stop(stream_sid=stream_sid, call_sid=call_sid)


@EXAMPLES
@given(
    stream_sid=sids,
    custom=parameters,
    middle=st.lists(
        st.one_of(
            st.tuples(st.just("media"), payloads),
            st.tuples(st.just("dtmf"), digits),
            st.tuples(st.just("mark"), st.text()),
        ),
        max_size=12,
    ),
)
def test_a_whole_stream_parses_message_by_message_in_order(
    stream_sid: str, custom: dict[str, str], middle: list[tuple[str, bytes | str]]
) -> None:
    """One stream as Twilio numbers it: connected (no sequenceNumber), start as 1, then media, dtmf and
    mark (media counted by chunk and 20 ms timestamps), then stop."""
    account_sid, call_sid = "AC" + "0" * 32, "CA" + "1" * 32
    frames = [wire.connected_message()]
    expected: list[object] = [codec.Connected("Call", "1.0.0")]
    frames.append(
        wire.start_message(1, stream_sid=stream_sid, account_sid=account_sid, call_sid=call_sid,
                           custom_parameters=custom)
    )  # fmt: skip
    expected.append(inbound_start(stream_sid, account_sid, call_sid, custom))
    chunk = 0
    for seq, (kind, value) in enumerate(middle, start=2):
        if kind == "media":
            assert isinstance(value, bytes)
            chunk += 1
            frames.append(
                wire.media_message(seq, stream_sid=stream_sid, chunk=chunk, timestamp_ms=(chunk - 1) * 20,
                                   ulaw=value)
            )  # fmt: skip
            expected.append(codec.Media(stream_sid, "inbound", chunk, (chunk - 1) * 20, value))
        elif kind == "dtmf":
            assert isinstance(value, str)
            frames.append(wire.dtmf_message(seq, stream_sid=stream_sid, digit=value))
            expected.append(codec.Dtmf(stream_sid, value))
        else:
            assert isinstance(value, str)
            frames.append(wire.mark_message(seq, stream_sid=stream_sid, name=value))
            expected.append(codec.Mark(stream_sid, value))
    frames.append(
        wire.stop_message(len(middle) + 2, stream_sid=stream_sid, account_sid=account_sid, call_sid=call_sid)
    )
    expected.append(codec.Stop(stream_sid, call_sid))
    assert [codec.parse_message(frame) for frame in frames] == expected


# ---- outbound: what the bot sends, built by the product, checked by the emulator ------------------------


@EXAMPLES
@given(stream_sid=sids, ulaw=payloads)
def test_media_the_product_builds_is_accepted_with_the_same_audio(stream_sid: str, ulaw: bytes) -> None:
    # The emulator refuses a payload that starts with a RIFF (WAV) header: error 31924's solution is "do not
    # include audio file header bytes" (https://www.twilio.com/docs/api/errors/31924). The codec's input is
    # raw μ-law by contract (``media/wav.py`` strips a TTS reply's header), so such a start is not drawn here.
    assume(not ulaw.startswith(b"RIFF"))
    assert wire.check_bot_frame(codec.media_message(stream_sid, ulaw), stream_sid) == wire.BotMedia(ulaw)


@EXAMPLES
@given(stream_sid=sids, name=st.text(min_size=1))
def test_a_mark_the_product_builds_is_accepted_and_comes_back_with_the_same_name(
    stream_sid: str, name: str
) -> None:
    # Twilio's docs call mark.name "a custom value" and say nothing of an empty one; the emulator refuses it
    # (the strict reading), and the bot never sends one (its marks are r<response>-p<phrase>), so the
    # empty name is not drawn here.
    assert wire.check_bot_frame(codec.mark_message(stream_sid, name), stream_sid) == wire.BotMark(name)
    # Twilio echoes the mark with the name it was sent (the page's "Mark Message"): the round trip.
    echo = wire.mark_message(7, stream_sid=stream_sid, name=name)
    assert codec.parse_message(echo) == codec.Mark(stream_sid=stream_sid, name=name)


@EXAMPLES
@given(stream_sid=sids)
def test_clear_the_product_builds_is_accepted(stream_sid: str) -> None:
    assert wire.check_bot_frame(codec.clear_message(stream_sid), stream_sid) == wire.BotClear()


@EXAMPLES
@given(stream_sid=sids, other=sids, ulaw=payloads, name=st.text(min_size=1))
def test_every_frame_the_product_builds_carries_the_stream_it_was_given(
    stream_sid: str, other: str, ulaw: bytes, name: str
) -> None:
    """The streamSid the emulator checks (31951: "Wrong Stream SID used in message") is the one the product
    was given: a frame built for one stream is refused on another."""
    assume(other != stream_sid and not ulaw.startswith(b"RIFF"))
    for frame in (
        codec.media_message(stream_sid, ulaw),
        codec.mark_message(stream_sid, name),
        codec.clear_message(stream_sid),
    ):
        assert json.loads(frame)["streamSid"] == stream_sid
        assert isinstance(wire.check_bot_frame(frame, other), wire.BotFrameError), frame
