"""End to end: Twilio's side of the socket misbehaving: a frame past the socket's limit, a peer that
stops reading, one that drops the connection mid-answer, and one that goes quiet without closing.

Rules:
- Each test is one or two whole calls on the bench; the misbehaving side is the simulated phone's raw
  ``send_raw`` or a hand-driven socket (``RawMediaSocket``). Nothing of the bot is patched; the receive
  deadline is shortened through its setting (``MEDIA_RECEIVE_TIMEOUT_S``), as a deployment would.
- Every test checks that nothing is lost (the recording is finalized and reads back) and that the other
  calls go on.
- A socket that failed (not a hang-up) is recorded as the reason the call ended: ``ended_by`` is
  ``socket_error`` and a ``socket_error`` event says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from bot.call.call import Call
from bot.server.media_route import MAX_SOCKET_MESSAGE
from bot.sim.rig import Bench
from emulators.openai_script import ChatRequest, Reply, echo_responder
from tests.support.heard import GREETING, echo_bench, heard, said
from tests.support.phone import ask, finished_call, greeted
from tests.support.raw_media import RawMediaSocket
from tests.support.recordings import assert_finalized, recording_of
from tests.support.served import active_calls
from tests.support.tasks import no_leaked_tasks

# ---- a frame past the socket's limit ------------------------------------------------------------------


async def send_oversized_frame(call_stream_sid: str, send: Callable[[str], Any]) -> None:
    """10 MB in one text frame: aiohttp refuses it (its limit is MAX_SOCKET_MESSAGE) and closes with 1009."""
    frame = json.dumps({"event": "media", "streamSid": call_stream_sid, "pad": "x" * 10_000_000})
    assert len(frame) > 9 * MAX_SOCKET_MESSAGE  # ~10 MB, far past the socket limit (1 MiB)
    with contextlib.suppress(ConnectionError):  # the bot may close the socket while the frame goes out
        await send(frame)


async def test_a_10_mb_frame_ends_that_call_cleanly_and_the_other_call_goes_on() -> None:
    async with echo_bench() as b:
        await asyncio.wait_for(b.server.warming, 10)
        async with await b.phone.dial() as other:
            await greeted(other)
            before = asyncio.all_tasks()
            async with await b.phone.dial() as call:
                await greeted(call)
                await send_oversized_frame(call.stream_sid, call.send_raw)
                await call.wait_closed(timeout=10)
            bot_call = await finished_call(b)
            assert bot_call.call_sid == call.call_sid and bot_call.closed and bot_call.speaker.closed
            await no_leaked_tasks(before)
            assert await active_calls(b) == 1
            await ask(other, "Still there?")  # the other call did not notice
            await other.hang_up()
        other_call = await finished_call(b, 1)
        recording = recording_of(b, call.call_sid)
        assert await active_calls(b) == 0
    assert call.closed_by_bot
    assert [e.detail for e in call.events if e.kind == "ws_closed"] == ["closed by the bot, code 1009"]
    assert heard(call, bot_call) == [GREETING]
    assert heard(other, other_call) == [GREETING, *said("Still there?")]
    assert_finalized(recording, turns=0)


async def test_a_10_mb_frame_is_recorded_as_the_reason_the_call_ended() -> None:
    async with echo_bench() as b:
        async with await b.phone.dial() as call:
            await greeted(call)
            await send_oversized_frame(call.stream_sid, call.send_raw)
            await call.wait_closed(timeout=10)
        await finished_call(b)
        recording = recording_of(b, call.call_sid)
    assert_finalized(recording)
    assert recording.meta["ended_by"] == "socket_error"  # the caller did not hang up
    told = [e for e in recording.events if re.search(r"1009|too.?big", json.dumps(e), re.IGNORECASE)]
    assert told, recording.events
    [failure] = recording.events_of("socket_error")
    assert (failure["reason"], failure["close_code"]) == ("message_too_big", 1009)


# ---- a peer that stops reading -------------------------------------------------------------------------

SLOW_SID = "CA" + "5" * 32
EVERYTHING = "Tell me everything."
PHRASE = "We have hammers, nails, screws, saws, drills and paint in the store this week."
# 150 phrases at 100 ms of audio per character: ~20 min, ~9.5 MB of μ-law, far more than the TCP buffers
# between the bot and a peer that stopped reading can hold (Linux autotunes a send buffer to 4 MB at most).
LONG_ANSWER = " ".join([PHRASE] * 150)
MS_PER_CHAR = 100.0


def long_answer_to_everything(request: ChatRequest) -> Reply:
    return Reply(text=LONG_ANSWER) if request.last_user_text == EVERYTHING else echo_responder(request)


async def live_call(b: Bench, call_sid: str, timeout_s: float = 10.0) -> Call:
    """The bot's live call ``call_sid`` (waits for its ``start`` to be handled)."""
    async with asyncio.timeout(timeout_s):
        while True:
            found = [c for c in b.active_calls if c.call_sid == call_sid]
            if found:
                return found[0]
            await asyncio.sleep(0.02)


def bot_audio_sent(b: Bench, call_sid: str) -> int:
    """Bytes of μ-law the bot has sent on the call so far: its recording's bot.ulaw grows as it sends."""
    folder = recording_of(b, call_sid).path
    return (Path(folder) / "bot.ulaw").stat().st_size if (Path(folder) / "bot.ulaw").exists() else 0


async def stalled(b: Bench, call_sid: str, timeout_s: float = 20.0) -> int:
    """Until the bot answers on ``call_sid``, holds phrases of the answer and sends nothing more for a whole
    second; the bytes sent. Phrases held: on a busy machine a second without a byte may also be a slow
    synthesis, with nothing held yet (the suite under load once took that for the socket's back-pressure)."""
    async with asyncio.timeout(timeout_s):
        while True:
            call = await live_call(b, call_sid)
            sent = bot_audio_sent(b, call_sid)
            await asyncio.sleep(1.0)
            answering = bool(call.turns) and bool(call.turns[0].said)
            held = answering and call.speaker is not None and call.speaker.queued(max(call.turns[0].said))
            if held and sent and bot_audio_sent(b, call_sid) == sent:
                return sent


@contextlib.asynccontextmanager
async def long_answer_bench() -> AsyncIterator[Bench]:
    """The bench of the slow-reader tests (``LONG_ANSWER`` to ``EVERYTHING``), once its clips are made."""
    async with echo_bench(responder=long_answer_to_everything, tts_ms_per_char=MS_PER_CHAR) as b:
        await asyncio.wait_for(b.server.warming, 10)
        yield b


async def slow_reader_asks_for_everything(b: Bench) -> tuple[RawMediaSocket, int]:
    slow = await RawMediaSocket.connect(b, SLOW_SID, receive_buffer=4096)
    await slow.start()
    slow.stop_reading()
    await slow.say(b.codebook, EVERYTHING)
    return slow, await stalled(b, SLOW_SID)


async def test_a_peer_that_stops_reading_holds_back_only_its_own_call_and_its_hang_up_ends_it() -> None:
    async with long_answer_bench() as b:
        before = asyncio.all_tasks()
        slow, sent = await slow_reader_asks_for_everything(b)
        slow_call = await live_call(b, SLOW_SID)
        answer_id = max(slow_call.turns[0].said)
        # Back-pressure, not buffering: the bot waits on the socket with most of the answer unsent; what it
        # keeps meanwhile is the answer's text and the next phrases' audio (the Speaker's lookahead).
        assert sent < len(LONG_ANSWER) * MS_PER_CHAR * 8 / 2, sent
        assert slow_call.speaker is not None and slow_call.speaker.queued(answer_id)
        # Meanwhile another caller is greeted and answered as usual.
        async with await b.phone.dial() as other:
            await greeted(other)
            await ask(other, "Are you open?")
            await other.hang_up()
        other_call = next(c for c in b.finished_calls if c.call_sid == other.call_sid)
        assert heard(other, other_call) == [GREETING, *said("Are you open?")]
        # Still held back, unless the bot gave up on a peer that takes nothing (a send timeout would do
        # that; then nothing more went out either, but the recording may not say so exactly).
        still_live = any(c.call_sid == SLOW_SID for c in b.active_calls)
        if still_live:
            assert bot_audio_sent(b, SLOW_SID) == sent
        # The slow caller hangs up as Twilio does: stop, then the connection goes.
        with contextlib.suppress(ConnectionError):
            await slow.stop()
        async with asyncio.timeout(10):
            while not recording_of(b, SLOW_SID).complete:  # noqa: ASYNC110 (the file is the signal)
                await asyncio.sleep(0.05)
        slow.abort()
        assert await active_calls(b) == 0
        await no_leaked_tasks(before)
        recording = recording_of(b, SLOW_SID)
    assert_finalized(recording, turns=1)
    if still_live:  # what went out: up to where the socket stopped (the phrase then being sent counts too)
        assert sent <= recording.meta["bot_audio_bytes"] < sent + len(PHRASE) * MS_PER_CHAR * 8
    turn = recording.events_of("turn")[0]
    assert turn["transcript"] == EVERYTHING


async def test_a_peer_that_stops_reading_and_hangs_up_is_reported_to_the_call_observers() -> None:
    async with long_answer_bench() as b:
        slow, _sent = await slow_reader_asks_for_everything(b)
        with contextlib.suppress(ConnectionError):
            await slow.stop()
        try:
            bot_call = await finished_call(b, timeout_s=5.0)
        finally:
            slow.abort()
    assert bot_call.call_sid == SLOW_SID


async def test_a_connection_dropped_mid_answer_has_nothing_more_recorded_as_sent() -> None:
    """The answer is ~9.5 MB; when the connection drops, what went out is what the TCP buffers took. The
    rest was never sent, so the recording must not claim it (it once did: Call._send swallowed the error
    and the Speaker went on "sending" the whole answer)."""
    async with long_answer_bench() as b:
        slow, sent = await slow_reader_asks_for_everything(b)
        slow.abort()  # no stop: the connection just goes
        bot_call = await finished_call(b, timeout_s=20.0)
        recording = recording_of(b, SLOW_SID)
    assert bot_call.call_sid == SLOW_SID and bot_call.speaker.closed
    assert_finalized(recording, turns=1)
    # Up to where the socket stopped taking frames (the phrase then being sent counts too), not the answer.
    recorded = recording.meta["bot_audio_bytes"]
    assert sent <= recorded < sent + len(PHRASE) * MS_PER_CHAR * 8, (sent, recorded)
    assert recorded < len(LONG_ANSWER) * MS_PER_CHAR * 8 / 2
    # A connection that ends without a close frame (Twilio always sends one) is not a hang-up.
    assert recording.meta["ended_by"] == "socket_error"
    [failure] = recording.events_of("socket_error")
    assert (failure["reason"], failure["close_code"]) == ("connection_lost", 1006)


# ---- a peer that goes quiet without closing --------------------------------------------------------------

QUIET_SID = "CA" + "7" * 32
RECEIVE_TIMEOUT_S = 1.0


async def test_a_peer_that_goes_quiet_without_closing_ends_the_call_as_a_socket_error() -> None:
    """Twilio sends a media frame every 20 ms for the whole call: a socket silent past the receive deadline
    has lost its peer even though TCP never said so. The call ends, is recorded, and the socket is closed."""
    async with echo_bench(settings={"media_receive_timeout_s": RECEIVE_TIMEOUT_S}) as b:
        await asyncio.wait_for(b.server.warming, 10)
        before = asyncio.all_tasks()
        quiet = await RawMediaSocket.connect(b, QUIET_SID)
        try:
            await quiet.start()  # then nothing: no media, no stop, no close
            bot_call = await finished_call(b, timeout_s=20.0)
            async with asyncio.timeout(20):  # the bot closes (or, unanswered, drops) the connection
                with contextlib.suppress(ConnectionError):
                    while await quiet.reader.read(65536):
                        pass
        finally:
            quiet.abort()
        assert await active_calls(b) == 0
        await no_leaked_tasks(before)
        recording = recording_of(b, QUIET_SID)
    assert bot_call.call_sid == QUIET_SID and bot_call.closed and bot_call.speaker.closed
    assert bot_call.ending == "socket_error"
    assert_finalized(recording, turns=0)
    assert recording.meta["ended_by"] == "socket_error"
    [failure] = recording.events_of("socket_error")
    assert failure["reason"] == "receive_timeout"
    assert recording.events_of("call_ended")[0]["ended_by"] == "socket_error"
