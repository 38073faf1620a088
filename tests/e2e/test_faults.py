"""End to end: the bot keeps the call going through junk frames and provider faults.

Rules:
- Each test is one whole call on the bench (real SDKs over 127.0.0.1) with a fault injected through the
  emulators' queues or a raw frame from the phone; nothing of the bot is patched.
- What the caller heard is read from the phone: a mark the phone echoed means its phrase played (no test
  here sends ``clear``), and the bot's ``MarkTracker`` names the phrase behind each mark.
- The greeting is short and the silence filler is pushed out of the way (``silence_filler_s``) wherever
  it is not the subject, so the heard phrases are exact and every test stays short (< ~12 s).
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections import Counter

import aiohttp
import grpc
import pytest

from bot.sim.rig import Bench, bench
from bot.sim.store_line import store_line
from bot.telemetry.logs import configure_logging
from emulators import twilio_wire as wire
from emulators.openai_script import Reply, ScriptedToolCall, TranscriptionReply, echo_responder
from emulators.tts_server import TtsFault
from tests.support.heard import (
    APOLOGY,
    GREETING,
    SALE,
    SALE_BREAKS_AFTER,
    SALE_HEARD,
    SALE_KEPT,
    caller_speech_ends,
    echo_bench,
    greeted_call,
    heard,
    said,
)
from tests.support.phone import QUIET_S, ask, finished_call, greeted
from tests.support.raw_media import RawMediaSocket, bound_parameters, ws_frame
from tests.support.tasks import bot_tasks

# ---- malformed frames ------------------------------------------------------------------------------


@pytest.fixture
def bot_log(restore_logging: None) -> io.StringIO:
    """The bot's JSON log lines, captured for one test; logging configuration restored afterwards."""
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    return stream


def junk_frames(stream_sid: str) -> list[tuple[str, str | bytes]]:
    """(expected invalid kind, frame) for every kind of malformed frame Twilio could never send."""
    media = {"track": "inbound", "chunk": "1", "timestamp": "0"}
    return [
        ("invalid_json", '{"event": "media", '),
        ("not_object", '["event", "media"]'),
        ("missing_field", json.dumps({"streamSid": stream_sid, "sequenceNumber": "5"})),
        ("unknown_event", json.dumps({"event": "dance", "streamSid": stream_sid})),
        (
            "bad_base64",
            json.dumps(
                {"event": "media", "streamSid": stream_sid, "media": {**media, "payload": "not*base64!"}}
            ),
        ),
        (
            "missing_field",
            json.dumps({"event": "media", "streamSid": stream_sid, "media": {"track": "inbound"}}),
        ),
        (
            "bad_field",
            json.dumps(
                {
                    "event": "media",
                    "streamSid": stream_sid,
                    "sequenceNumber": "seven",
                    "media": {**media, "payload": "/w=="},
                }
            ),
        ),
        ("binary", b"\x00\x01\x02 binary frame"),
        (
            "unknown_mark",
            json.dumps(
                {"event": "mark", "streamSid": stream_sid, "sequenceNumber": "9", "mark": {"name": "r99-p99"}}
            ),
        ),
        (
            "duplicate_start",
            wire.start_message(
                10,
                stream_sid=stream_sid,
                account_sid="AC" + "9" * 32,
                call_sid="CA" + "9" * 32,
                custom_parameters={},
            ),
        ),
    ]


async def test_malformed_frames_are_ignored_counted_and_logged_once_per_kind(bot_log: io.StringIO) -> None:
    async with echo_bench() as b:
        async with await b.phone.dial() as call:
            await greeted(call)
            frames = junk_frames(call.stream_sid)
            for _kind, frame in frames * 2:  # every kind twice: still one warning per kind
                await call.send_raw(frame)
            await call.say("Are you still there?")
            await call.wait_for_bot_audio(timeout=10)
            await call.wait_for_bot_silence(quiet=QUIET_S, timeout=15)
            assert not call.closed_by_bot
            await call.hang_up()
        bot_call = await finished_call(b)
    assert heard(call, bot_call) == [GREETING, *said("Are you still there?")]
    assert [e.kind for e in call.events if e.kind == "ws_closed"] == ["ws_closed"]  # only our hang-up
    assert call.protocol_errors == []
    expected = Counter(kind for kind, _frame in frames * 2)
    assert bot_call.invalid == expected
    logged = [json.loads(line) for line in bot_log.getvalue().splitlines()]
    warnings = Counter(entry["kind"] for entry in logged if entry.get("event") == "invalid_frame")
    assert warnings == Counter(set(expected)), warnings
    ended = next(entry for entry in logged if entry.get("event") == "call_ended")
    assert ended["invalid"] == dict(expected)
    assert "not*base64!" not in bot_log.getvalue()  # details are safe to log: never the frame itself


async def test_oversized_frame_is_ignored_and_counted_like_other_junk() -> None:
    async with echo_bench() as b:
        async with await b.phone.dial() as call:
            await greeted(call)
            await call.send_raw(
                json.dumps({"event": "media", "streamSid": call.stream_sid, "pad": "x" * 300_000})
            )
            await call.say("Still with me?")
            await call.wait_for_bot_audio(timeout=10)
            await call.wait_for_bot_silence(quiet=QUIET_S, timeout=15)
            await call.hang_up()
        bot_call = await finished_call(b)
    assert not call.closed_by_bot
    assert bot_call.invalid == Counter({"too_large": 1})
    assert heard(call, bot_call) == [GREETING, *said("Still with me?")]


# ---- language model faults ---------------------------------------------------------------------------


async def test_llm_server_error_gets_the_apology_then_the_next_turn_is_answered() -> None:
    async with echo_bench() as b:
        async with greeted_call(b) as call:
            # The bot's client retries once (llm_max_retries=1): two 500s exhaust it.
            b.openai.replies.extend([Reply(status=500), Reply(status=500)])
            asked_at = time.monotonic()
            apology_at = await ask(call, "Is anyone there?")
            failed_requests = len(b.openai.chat_requests)
            await ask(call, "Can you hear me now?")
            await call.hang_up()
        bot_call = await finished_call(b)
    assert heard(call, bot_call) == [GREETING, APOLOGY, *said("Can you hear me now?")]
    assert apology_at > caller_speech_ends(call)[0]
    assert failed_requests == 2
    assert [t.error for t in bot_call.turns] == ["openai-chat:http_500", None]
    # The apology was synthesized ahead (start-up or call start) and played from the cache: no request
    # for it once the caller had asked.
    apology_synths = [r["received_at"] for r in b.tts.synth_requests if r["text"] == APOLOGY]
    assert apology_synths and max(apology_synths) < asked_at


async def test_rate_limit_with_retry_after_is_retried_by_the_sdk_without_apology() -> None:
    async with echo_bench() as b:
        async with await b.phone.dial() as call:
            await greeted(call)
            b.openai.replies.append(Reply(status=429, retry_after_ms=200))
            await ask(call, "What time is it?")
            await call.hang_up()
        bot_call = await finished_call(b)
    assert heard(call, bot_call) == [GREETING, *said("What time is it?")]
    first, second = b.openai.chat_requests
    assert second.received_at - first.received_at >= 0.15  # the SDK honoured retry-after-ms
    assert second.messages == first.messages
    assert bot_call.turns[0].error is None


async def test_stream_cut_mid_answer_keeps_what_was_said_apologises_and_history_stays_valid() -> None:
    async with echo_bench() as b:
        async with greeted_call(b) as call:
            b.openai.replies.extend(
                [
                    Reply(tool_calls=[ScriptedToolCall("check_hours", {"day": "monday"})]),
                    Reply(text=SALE, cut_after_chunks=SALE_BREAKS_AFTER),
                ]
            )
            await ask(call, "Any deals today?")
            await ask(call, "Say that again?")
            await call.hang_up()
        bot_call = await finished_call(b)
    assert heard(call, bot_call) == [
        GREETING,
        *SALE_HEARD,
        APOLOGY,
        *said("Say that again?"),
    ]
    assert [t.error for t in bot_call.turns] == ["openai-chat:stream_cut", None]
    # The request after the cut carries the whole tool round plus what was said, and was accepted.
    after_cut = b.openai.chat_requests[-1].messages
    roles = [m["role"] for m in after_cut]
    assert roles[-5:] == ["user", "assistant", "tool", "assistant", "user"], roles
    assert after_cut[-2]["content"] == SALE_KEPT
    assert after_cut[-4]["tool_calls"][0]["id"] == after_cut[-3]["tool_call_id"]


async def test_a_stall_before_the_first_token_is_waited_out_with_the_filler_then_apologised_for() -> None:
    """A stall before the first token is no longer given up at once: the bot waits for the first token up
    to its deadline (``LLM_FIRST_TOKEN_TIMEOUT_S``, 2.5 s here), the caller hears the filler within 2 s
    meanwhile, and the apology comes at the deadline."""
    first_token_s = 2.5
    async with bench(
        responder=echo_responder, greeting=GREETING, settings={"llm_first_token_timeout_s": first_token_s}
    ) as b:
        async with greeted_call(b) as call:
            # The role chunk, then nothing: no first token ever comes.
            b.openai.replies.append(Reply(text="This answer never comes.", stall_after_chunks=1))
            await call.say("Hello, are you open?")
            first_audio = await call.wait_for_bot_audio(timeout=10)
            await call.wait_for_bot_silence(
                quiet=3.2, timeout=20
            )  # past the filler's quiet (see test_waiting)
            await call.hang_up()
        bot_call = await finished_call(b)
    endpointer_fired = caller_speech_ends(call)[0] + bot_call.line.endpointing.end_silence_ms / 1000
    assert first_audio - endpointer_fired <= 2.0
    turn = bot_call.turns[0]
    assert turn.error == "openai-chat:first_token_timeout"
    answer = heard(call, bot_call)[1:]
    assert answer[0] == bot_call.line.silence_filler_text and answer[-1] == APOLOGY, answer
    assert all(line in bot_call.line.progress.texts for line in answer[1:-1]), answer  # company meanwhile
    # Given up at the deadline, not before it: the apology finished playing (phone clock) at least the
    # deadline after the caller stopped talking, and not long after it.
    echoes = [e.t for e in call.events if e.kind == "mark_echoed"]
    apology_heard = echoes[len(answer)] - caller_speech_ends(call)[0]
    assert first_token_s <= apology_heard <= first_token_s + 6.0
    assert len(b.openai.chat_requests) == 1


# ---- speech faults -------------------------------------------------------------------------------------


async def test_tts_unavailable_plays_the_cached_apology_then_the_next_turn_works() -> None:
    async with echo_bench() as b:
        async with greeted_call(b) as call:
            # More than the TTS client's retries can use up; the rest is cleared before the next turn.
            before, rpcs_before = len(b.tts.synth_requests), b.tts.rpcs.total()
            b.tts.faults.extend(TtsFault(grpc.StatusCode.UNAVAILABLE) for _ in range(50))
            await ask(call, "Do you deliver?")
            failed = [r["text"] for r in b.tts.synth_requests[before:]]
            rpcs = b.tts.rpcs.total() - rpcs_before
            unused_faults = len(b.tts.faults)
            b.tts.faults.clear()
            await ask(call, "How much is delivery?")
            await call.hang_up()
        bot_call = await finished_call(b)
    assert heard(call, bot_call) == [GREETING, APOLOGY, *said("How much is delivery?")]
    # Every request of the failed turn got a fault; none was for the apology (it came from the cache).
    # (A stream, the default for the Chirp 3 HD voice, fails before its texts are recorded: count calls.)
    assert rpcs == 50 - unused_faults
    assert set(failed) <= set(said("Do you deliver?")), failed
    assert rpcs >= 2  # the client retried UNAVAILABLE first
    assert bot_call.turns[0].error is not None and bot_call.turns[0].error.startswith("google-tts:")
    assert bot_call.turns[1].error is None


async def test_stt_error_gets_the_apology_then_the_next_turn_works() -> None:
    async with echo_bench() as b:
        async with greeted_call(b) as call:
            b.openai.transcription_replies.extend(
                [TranscriptionReply(status=500), TranscriptionReply(status=500)]
            )
            await ask(call, "Where is the shop?")
            await ask(call, "Where are you located?")
            await call.hang_up()
        bot_call = await finished_call(b)
    assert heard(call, bot_call) == [GREETING, APOLOGY, *said("Where are you located?")]
    assert [r["text"] for r in b.openai.transcription_requests] == [None, None, "Where are you located?"]
    assert [t.error for t in bot_call.turns] == ["openai-stt:http_500", None]
    # Nothing was heard in the failed turn, so the model only ever saw the second question.
    assert [m["content"] for m in bot_call.conversation.messages if m["role"] == "user"] == [
        "Where are you located?"
    ]


# ---- the call ending -------------------------------------------------------------------------------


def request_counts(b: Bench) -> tuple[int, int, int]:
    return len(b.openai.chat_requests), len(b.openai.transcription_requests), len(b.tts.synth_requests)


@pytest.mark.parametrize("moment", ["llm_streaming", "tools_running"])
async def test_stop_mid_answer_cancels_every_provider_request(moment: str) -> None:
    slow_answer = (
        "Let me tell you all about it, we have hammers, nails, screws, saws, drills, paint, "
        "brushes, ladders, hoses, rakes and much more in the store this week."
    )
    line = store_line(order_delay_s=1.0)  # the follow-up request would come 1 s after the tool starts
    async with echo_bench(line=line) as b:
        async with greeted_call(b) as call:
            if moment == "llm_streaming":
                b.openai.replies.append(Reply(text=slow_answer, chunk_delay_s=0.15))
            else:
                order = ScriptedToolCall("lookup_order", {"order_id": "1001"})
                b.openai.replies.extend([Reply(tool_calls=[order]), Reply(text=slow_answer)])
            await call.say("Tell me about your store.")
            await call.wait_for_bot_audio(timeout=10)  # the first phrase, or the tool filler
            await call.hang_up()
        bot_call = await finished_call(b)
        at_stop = request_counts(b)
        await asyncio.sleep(1.5)
        assert request_counts(b) == at_stop
        if moment == "llm_streaming":
            assert len(bot_call.turns[0].said[max(bot_call.turns[0].said)]) < 5  # cut early, not streamed out
        else:
            assert len(b.openai.chat_requests) == 1  # the follow-up never went out
            assert bot_call.turns[0].timings.filler
            b.openai.replies.clear()  # the follow-up's scripted reply was never asked for
        async with aiohttp.ClientSession() as http, http.get(b.server.url + "/healthz") as response:
            assert (await response.json())["active_calls"] == 0
        assert not b.active_calls
        async with await b.phone.dial() as second:
            await greeted(second)
            await ask(second, "Are you open late?")
            await second.hang_up()
        second_call = await finished_call(b, 1)
    assert heard(second, second_call) == [GREETING, *said("Are you open late?")]


# ---- the socket dropping without stop ---------------------------------------------------------------


async def _raw_media_socket(b: Bench) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A correctly signed Media Streams upgrade on a bare TCP socket, so the test can drop it any way."""
    raw = await RawMediaSocket.connect(b, "CA" + "1" * 32)
    return raw.reader, raw.writer


@pytest.mark.parametrize("drop", ["close_frame", "tcp_abort"])
async def test_socket_dropped_without_stop_ends_the_call_and_leaks_no_tasks(drop: str) -> None:
    async with bench(responder=echo_responder) as b:
        await asyncio.wait_for(b.server.warming, 10)  # its keep-alive connection is not the call's
        before = asyncio.all_tasks()
        reader, writer = await _raw_media_socket(b)
        writer.write(ws_frame(0x1, wire.connected_message().encode()))
        writer.write(
            ws_frame(
                0x1,
                wire.start_message(
                    1,
                    stream_sid="MZ" + "1" * 32,
                    account_sid="AC" + "1" * 32,
                    call_sid="CA" + "1" * 32,
                    custom_parameters=bound_parameters("CA" + "1" * 32, "AC" + "1" * 32),
                ).encode(),
            )
        )
        await writer.drain()
        assert await asyncio.wait_for(reader.read(1), 10)  # the bot has started speaking the greeting
        assert len(b.active_calls) == 1
        assert "speaker-sender" in {t.get_name() for t in bot_tasks(asyncio.all_tasks() - before)}
        if drop == "close_frame":
            writer.write(ws_frame(0x8, (1000).to_bytes(2, "big")))
            await writer.drain()
            writer.close()
        else:
            writer.transport.abort()
        bot_call = await finished_call(b)
        assert bot_call.closed and bot_call.speaker.closed
        assert not b.active_calls
        deadline = time.monotonic() + 5.0
        while (leaked := bot_tasks(asyncio.all_tasks() - before)) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert not leaked, [(t.get_name(), t.get_coro()) for t in leaked]
