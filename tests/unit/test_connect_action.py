"""After a stream ends: the ``<Connect action>`` decision, the memory of calls ended on purpose, the stream
status callback, and the simulated Twilio's pure pieces (TwiML it reads, URLs it maps, forms it sends)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.server.twilio.connect_action import (
    CALL_OVER,
    AfterStream,
    EndedCalls,
    after_stream,
    note_connect_action,
)
from bot.server.twilio.stream_status import StreamStatus, note_stream_status
from bot.server.twilio.webhook import stream_twiml
from bot.telemetry.metrics import CallMetrics
from emulators.phone_action import action_form, local_url, parse_connect_stream, stream_status_form

FORM = {"CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "0" * 32, "CallStatus": "in-progress"}


# ---- the decision ----------------------------------------------------------------------------------------


def test_a_lost_stream_resumes_and_one_ended_on_purpose_does_not() -> None:
    assert after_stream(FORM, ended_here=False) is AfterStream.RESUME
    assert after_stream(FORM, ended_here=True) is AfterStream.ENDED_ON_PURPOSE


@given(status=st.sampled_from(sorted(CALL_OVER)), ended_here=st.booleans())
def test_a_call_twilio_reports_over_is_never_resumed(status: str, ended_here: bool) -> None:
    assert after_stream({**FORM, "CallStatus": status}, ended_here=ended_here) is AfterStream.CALL_OVER


@given(status=st.text(max_size=20).filter(lambda s: s not in CALL_OVER))
def test_any_other_status_resumes_a_lost_stream(status: str) -> None:
    assert after_stream({**FORM, "CallStatus": status}, ended_here=False) is AfterStream.RESUME


def test_the_outcome_is_counted() -> None:
    metrics = CallMetrics()
    note_connect_action(FORM, AfterStream.RESUME, metrics)
    note_connect_action(FORM, AfterStream.RESUME, metrics)
    note_connect_action(FORM, AfterStream.CALL_OVER, metrics)
    text = metrics.exposition().decode()
    assert 'phonebot_connect_actions_total{outcome="resumed"} 2.0' in text
    assert 'phonebot_connect_actions_total{outcome="call_over"} 1.0' in text


# ---- calls ended on purpose --------------------------------------------------------------------------------


def test_ended_calls_are_remembered_for_their_ttl_only() -> None:
    now = [0.0]
    ended = EndedCalls(ttl_s=10.0, clock=lambda: now[0])
    ended.add("CA1")
    ended.add("")  # no sid: nothing to remember
    assert "CA1" in ended and "CA2" not in ended and len(ended) == 1
    now[0] = 9.9
    assert "CA1" in ended
    now[0] = 10.1
    assert "CA1" not in ended and len(ended) == 0


def test_ended_calls_are_bounded_oldest_first() -> None:
    ended = EndedCalls(max_calls=3)
    for n in range(5):
        ended.add(f"CA{n}")
    assert [f"CA{n}" in ended for n in range(5)] == [False, False, True, True, True]


# ---- stream status callbacks -------------------------------------------------------------------------------


def test_a_stream_status_is_read_bounded_and_counted() -> None:
    metrics = CallMetrics()
    form = {**FORM, "StreamSid": "MZ" + "2" * 32, "StreamEvent": "stream-error", "StreamError": "x" * 500}
    status = note_stream_status(form, metrics)
    assert status == StreamStatus(FORM["CallSid"], "MZ" + "2" * 32, "stream-error", "x" * 200)
    note_stream_status({**FORM, "StreamEvent": "stream-started"}, metrics)
    note_stream_status({**FORM, "StreamEvent": "stream-exploded"}, metrics)
    text = metrics.exposition().decode()
    for event in ("stream-error", "stream-started", "other"):
        assert f'phonebot_stream_status_total{{event="{event}"}} 1.0' in text


# ---- the simulated Twilio's pure pieces -----------------------------------------------------------------


def test_the_phone_reads_our_connect_twiml() -> None:
    twiml = stream_twiml(
        "wss://example.com/bot/media",
        {"to": "+15550100", "resumed": "1"},
        action_url="https://example.com/bot/action",
        status_callback_url="https://example.com/bot/stream-status",
    )
    connect = parse_connect_stream(twiml, "https://example.com/bot/voice")
    assert connect is not None
    assert connect.url == "wss://example.com/bot/media"
    assert connect.parameters == {"to": "+15550100", "resumed": "1"}
    assert (connect.action, connect.action_method) == ("https://example.com/bot/action", "POST")
    assert connect.status_callback == "https://example.com/bot/stream-status"


def test_relative_action_urls_resolve_against_the_document() -> None:
    # <Connect action> accepts "Relative or absolute URL" (twilio.com/docs/voice/twiml/connect).
    twiml = (
        '<Response><Connect action="after" method="get"><Stream url="wss://h/media"/></Connect></Response>'
    )
    connect = parse_connect_stream(twiml, "https://h/bot/voice")
    assert connect is not None and (connect.action, connect.action_method) == ("https://h/bot/after", "GET")


def test_an_empty_response_has_no_stream() -> None:
    assert parse_connect_stream("<Response/>", "https://h/voice") is None


def test_public_urls_map_onto_the_local_bot_with_the_prefix_stripped() -> None:
    base = "https://example.com/bot"
    assert (
        local_url("https://example.com/bot/action", base, "http://127.0.0.1:9") == "http://127.0.0.1:9/action"
    )
    assert local_url("wss://example.com/bot/media?x=1", base, "http://127.0.0.1:9", websocket=True) == (
        "ws://127.0.0.1:9/media"
    )
    assert local_url(
        "https://bot.example.com/status?a=1", "https://bot.example.com", "http://127.0.0.1:9"
    ) == ("http://127.0.0.1:9/status?a=1")


def test_the_action_request_carries_the_standard_parameters_of_a_call_in_progress() -> None:
    webhook = {
        **FORM,
        "CallStatus": "ringing",
        "From": "+1555",
        "To": "+1666",
        "Direction": "inbound",
        "X": "y",
    }
    form = action_form(webhook)
    assert form["CallStatus"] == "in-progress" and "X" not in form
    assert {k: form[k] for k in ("CallSid", "AccountSid", "From", "To", "Direction")} == {
        k: webhook[k] for k in ("CallSid", "AccountSid", "From", "To", "Direction")
    }
    status = stream_status_form(account_sid="AC1", call_sid="CA1", stream_sid="MZ1", event="stream-stopped")
    assert status["StreamEvent"] == "stream-stopped" and "StreamError" not in status
    assert status["Timestamp"].endswith("Z")
