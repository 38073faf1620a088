"""The simulated Twilio phone against a tiny fake bot (aiohttp on 127.0.0.1): webhook, signatures, wire
format, real-time playback with marks and clear, validation of what the bot sends, recorded timelines."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

from emulators.caller_audio import CallerAudio
from emulators.phone import PhoneCall, PhoneRejected, SimulatedPhone
from emulators.playback import FRAME_BYTES, PlaybackBuffer
from emulators.twilio_wire import BotFrameError, check_bot_frame
from emulators.voice import ToneCodebook
from media.codec import rms, ulaw_to_pcm16

AUTH_TOKEN = "fake-auth-token"
PUBLIC = "https://bot.example.com"
STREAM_URL = "wss://bot.example.com/media"
PARAMETERS = {"tenant": "acme", "lang": "en-US"}
BOT_TONE = b"\x55"  # a loud, constant μ-law byte: easy to count in the played timeline

Script = Callable[["FakeBot", web.WebSocketResponse], Awaitable[None]]


@dataclass
class Received:
    at: float  # loop time on receipt
    message: dict[str, Any]


@dataclass
class FakeBot:
    """Answers /voice with TwiML and runs ``script`` on /media once ``start`` has arrived."""

    script: Script
    stream_url: str = STREAM_URL
    webhooks: list[tuple[dict[str, str], bool]] = field(default_factory=list)
    ws_signatures_ok: list[bool] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    stream_sid: str = ""
    started: asyncio.Event = field(default_factory=asyncio.Event)
    phone_closed: asyncio.Event = field(default_factory=asyncio.Event)
    mark_echo_seen: asyncio.Event = field(default_factory=asyncio.Event)
    on_message: Callable[[FakeBot, web.WebSocketResponse, dict[str, Any]], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        self.validator = RequestValidator(AUTH_TOKEN)

    async def voice(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        ok = self.validator.validate(PUBLIC + "/voice", form, request.headers.get("X-Twilio-Signature", ""))
        self.webhooks.append((form, ok))
        if not ok:
            return web.Response(status=403, text="bad signature")
        response = VoiceResponse()
        connect = Connect()
        stream = connect.stream(url=self.stream_url)
        for name, value in PARAMETERS.items():
            stream.parameter(name=name, value=value)
        response.append(connect)
        return web.Response(text=str(response), content_type="text/xml")

    async def media(self, request: web.Request) -> web.StreamResponse:
        assert request.path == "/media"
        # Twilio signs the Stream URL exactly as this bot's TwiML gave it, with no params.
        ok = self.validator.validate(self.stream_url, {}, request.headers.get("X-Twilio-Signature", ""))
        self.ws_signatures_ok.append(ok)
        if not ok:
            return web.Response(status=403, text="bad signature")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        reader = asyncio.create_task(self._read(ws))
        try:
            async with asyncio.timeout(10):
                await self.started.wait()
                await self.script(self, ws)
                await reader
        finally:
            reader.cancel()
        return ws

    async def _read(self, ws: web.WebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            message = json.loads(msg.data)
            self.received.append(Received(loop.time(), message))
            if message["event"] == "start":
                self.stream_sid = message["streamSid"]
                self.started.set()
            if message["event"] == "mark":
                self.mark_echo_seen.set()
            if self.on_message is not None:
                await self.on_message(self, ws, message)
        self.phone_closed.set()

    def messages(self, event: str) -> list[dict[str, Any]]:
        return [r.message for r in self.received if r.message["event"] == event]

    async def send(self, ws: web.WebSocketResponse, event: str, **fields: Any) -> None:
        await ws.send_str(json.dumps({"event": event, "streamSid": self.stream_sid, **fields}))

    async def send_audio(self, ws: web.WebSocketResponse, seconds: float, chunk_s: float = 0.1) -> None:
        chunk = base64.b64encode(BOT_TONE * int(8000 * chunk_s)).decode()
        for _ in range(round(seconds / chunk_s)):
            await self.send(ws, "media", media={"payload": chunk})


async def idle(bot: FakeBot, ws: web.WebSocketResponse) -> None:
    """A bot that only listens."""


@asynccontextmanager
async def serving(bot: FakeBot) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/voice", bot.voice)
    app.router.add_get("/media", bot.media)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def call_with(bot: FakeBot, **dial: Any) -> AsyncIterator[PhoneCall]:
    async with serving(bot) as url:
        phone = SimulatedPhone(bot_url=url, auth_token=AUTH_TOKEN, public_base_url=PUBLIC, codebook=CODEBOOK)
        async with await phone.dial(**dial) as call:
            yield call


CODEBOOK = ToneCodebook()


def first(call: PhoneCall, kind: str, detail: str | None = None) -> float:
    return next(e.t for e in call.events if e.kind == kind and (detail is None or e.detail == detail))


# ---- dialling and signatures -------------------------------------------------------------------------------


async def test_webhook_is_signed_and_start_carries_the_twiml_parameters() -> None:
    bot = FakeBot(idle)
    async with call_with(bot, to="+15551234", from_="+15559876", call_sid="CA" + "1" * 32) as call:
        async with asyncio.timeout(5):
            await bot.started.wait()
        assert call.parameters == PARAMETERS
        assert call.stream_url == STREAM_URL
        assert "<Stream" in call.twiml
    ((form, signed_ok),) = bot.webhooks
    assert signed_ok
    assert form["CallSid"] == "CA" + "1" * 32
    assert (form["From"], form["To"], form["Direction"], form["CallStatus"]) == (
        "+15559876", "+15551234", "inbound", "ringing")  # fmt: skip
    assert bot.ws_signatures_ok == [True]
    connected, start = bot.received[0].message, bot.received[1].message
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start["sequenceNumber"] == "1"
    assert re.fullmatch(r"MZ[0-9a-f]{32}", start["streamSid"])
    assert start["start"] == {
        "streamSid": start["streamSid"],
        "accountSid": "AC" + "0" * 32,
        "callSid": "CA" + "1" * 32,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": PARAMETERS,
    }


@pytest.mark.parametrize("where", ["webhook", "websocket", "public_url"])
async def test_a_wrong_signature_is_rejected_with_403(where: str) -> None:
    bot = FakeBot(idle)
    async with serving(bot) as url:
        public = url if where == "public_url" else PUBLIC  # signing over the local URL: proxy pitfall
        phone = SimulatedPhone(bot_url=url, auth_token=AUTH_TOKEN, public_base_url=public)
        dial: dict[str, Any] = {"webhook": {"signature": "bogus"}, "websocket": {"ws_signature": ""}}.get(
            where, {}
        )
        with pytest.raises(PhoneRejected) as rejected:
            await phone.dial(**dial)
    assert rejected.value.status == 403
    assert bot.ws_signatures_ok == ([False] if where == "websocket" else [])


async def test_a_stream_url_twilio_would_refuse_is_a_protocol_error() -> None:
    bot = FakeBot(idle, stream_url="ws://bot.example.com/media?tenant=acme")
    async with call_with(bot) as call:
        assert len(call.protocol_errors) == 2
        assert any("wss://" in e for e in call.protocol_errors)
        assert any("query string" in e for e in call.protocol_errors)


# ---- what the phone sends ----------------------------------------------------------------------------------


async def test_caller_media_is_continuous_20ms_frames_with_string_counters_then_stop() -> None:
    bot = FakeBot(idle)
    async with call_with(bot) as call:
        await call.say("hello there")
        await call.silence(0.3)
        await call.send_dtmf("5")
    async with asyncio.timeout(5):
        await bot.phone_closed.wait()
    media = bot.messages("media")
    assert len(media) >= 40
    for n, message in enumerate(media):
        assert message["streamSid"] == call.stream_sid
        assert message["media"]["track"] == "inbound"
        assert message["media"]["chunk"] == str(n + 1)
        assert message["media"]["timestamp"] == str(n * 20)
        assert len(base64.b64decode(message["media"]["payload"], validate=True)) == FRAME_BYTES
    numbered = [r.message for r in bot.received[1:]]
    assert [m["sequenceNumber"] for m in numbered] == [str(i) for i in range(1, len(numbered) + 1)]
    assert numbered[-1] == {
        "event": "stop",
        "sequenceNumber": str(len(numbered)),
        "streamSid": call.stream_sid,
        "stop": {"accountSid": "AC" + "0" * 32, "callSid": call.call_sid},
    }
    (dtmf,) = bot.messages("dtmf")
    assert dtmf["dtmf"] == {"track": "inbound_track", "digit": "5"}
    # Real time: ~50 frames per second of wall time between start and stop (catch-up keeps the count).
    times = [r.at for r in bot.received if r.message["event"] in ("start", "stop")]
    expected = (times[1] - times[0]) / 0.02
    assert abs(len(media) - expected) <= max(5, 0.2 * expected)
    # The caller's words arrive intact: the codebook decodes the loud part of the inbound audio.
    pcm = b"".join(ulaw_to_pcm16(base64.b64decode(m["media"]["payload"])) for m in media)
    assert CODEBOOK.transcribe(pcm) == "hello there"
    kinds = [e.kind for e in call.events]
    assert kinds.count("caller_speech_start") == kinds.count("caller_speech_end") == 1


async def test_a_stalled_loop_is_caught_up_not_dropped() -> None:
    bot = FakeBot(idle)
    async with call_with(bot) as call:
        async with asyncio.timeout(5):
            await bot.started.wait()
        began = asyncio.get_running_loop().time()
        time.sleep(0.3)  # noqa: ASYNC251 -- deliberately block the event loop, as a busy machine would
        await call.silence(0.2)
        elapsed = asyncio.get_running_loop().time() - began
    media = bot.messages("media")
    assert [m["media"]["chunk"] for m in media] == [str(n + 1) for n in range(len(media))]
    assert len(media) >= elapsed / 0.02 - 2  # the 300 ms stall was sent late, not skipped


# ---- playback, marks and clear -----------------------------------------------------------------------------


async def test_a_mark_is_echoed_only_after_the_audio_before_it_has_played() -> None:
    mark_sent: list[float] = []

    async def one_second_then_mark(bot: FakeBot, ws: web.WebSocketResponse) -> None:
        await bot.send_audio(ws, 1.0)
        await bot.send(ws, "mark", mark={"name": "m1"})
        mark_sent.append(asyncio.get_running_loop().time())

    bot = FakeBot(one_second_then_mark)
    async with call_with(bot) as call:
        await call.wait_for_mark("m1", timeout=5)
        end = await call.wait_for_bot_silence(quiet=0.1, timeout=5)
    started, echoed = first(call, "bot_audio_start"), first(call, "mark_echoed", "m1")
    assert 0.9 <= echoed - started < 3.0
    assert end - started == pytest.approx(1.0, abs=0.001)  # 8000 bytes at 8000 bytes/s, on the frame schedule
    assert first(call, "mark_received", "m1") < echoed
    assert call.marks_echoed == ["m1"]
    (echo,) = bot.messages("mark")
    assert echo == {"event": "mark", "sequenceNumber": echo["sequenceNumber"], "streamSid": call.stream_sid,
                    "mark": {"name": "m1"}}  # fmt: skip
    assert isinstance(echo["sequenceNumber"], str)
    echo_at = next(r.at for r in bot.received if r.message["event"] == "mark")
    assert echo_at - mark_sent[0] >= 0.9
    assert call.bot_played_ulaw().count(BOT_TONE) == 8000
    assert call.protocol_errors == []


async def test_clear_drops_queued_audio_and_echoes_pending_marks_at_once() -> None:
    async def talk_then_clear(bot: FakeBot, ws: web.WebSocketResponse) -> None:
        await bot.send_audio(ws, 3.0)
        await bot.send(ws, "mark", mark={"name": "a"})
        await bot.send_audio(ws, 1.0)
        await bot.send(ws, "mark", mark={"name": "b"})
        await asyncio.sleep(0.3)
        await bot.send(ws, "clear")

    bot = FakeBot(talk_then_clear)
    async with call_with(bot) as call:
        await call.wait_for_mark("b", timeout=5)
        await call.wait_for_bot_silence(quiet=0.1, timeout=5)
    cleared = first(call, "clear_received")
    assert call.marks_echoed == ["a", "b"]
    assert first(call, "mark_echoed", "a") - cleared < 0.5  # not after the 3 s of audio before it
    assert first(call, "bot_audio_end") <= cleared + 0.001
    played = call.bot_played_ulaw().count(BOT_TONE)
    assert 0 < played < 8000 * 2  # far less than the 4 s queued
    assert [m["mark"]["name"] for m in bot.messages("mark")] == ["a", "b"]


async def test_turn_latency_and_wait_for_bot_audio() -> None:
    state = {"loud": 0, "quiet": 0, "answered": False}
    heard = bytearray()

    async def answer_after_speech(bot: FakeBot, ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
        if message["event"] != "media" or state["answered"]:
            return
        pcm = ulaw_to_pcm16(base64.b64decode(message["media"]["payload"]))
        loud = rms(pcm) > 1000
        if loud:
            heard.extend(pcm)
        state["loud"] += loud
        state["quiet"] = 0 if loud else state["quiet"] + 1
        if state["loud"] and state["quiet"] == 10:  # 200 ms of quiet after speech: end of turn
            state["answered"] = True
            await bot.send_audio(ws, 0.4)
            await bot.send(ws, "mark", mark={"name": "reply"})

    bot = FakeBot(idle, on_message=answer_after_speech)
    async with call_with(bot) as call:
        await call.say("what time is it")
        started = await call.wait_for_bot_audio(timeout=5)
        await call.wait_for_mark("reply", timeout=5)
    assert CODEBOOK.transcribe(bytes(heard)) == "what time is it"
    (latency,) = call.turn_latencies()
    speech_end = first(call, "caller_speech_end")
    assert latency == pytest.approx(started - speech_end)
    assert 0.2 <= latency < 3.0
    with pytest.raises(TimeoutError):
        await call.wait_for_bot_audio(after=started + 0.01, timeout=0.1)  # the call is over


# ---- validation of what the bot sends ----------------------------------------------------------------------


async def test_protocol_errors_are_recorded_and_the_call_goes_on() -> None:
    async def misbehave(bot: FakeBot, ws: web.WebSocketResponse) -> None:
        good = base64.b64encode(BOT_TONE * 160).decode()
        await ws.send_bytes(BOT_TONE * 160)
        await ws.send_str(json.dumps({"event": "media", "streamSid": "MZwrong", "media": {"payload": good}}))
        await bot.send(ws, "media", media={"payload": "not base64!"})
        await bot.send(ws, "media", media={"payload": base64.b64encode(b"RIFF....WAVEfmt ").decode()})
        await bot.send(ws, "speak", text="hi")
        await ws.send_str("{not json")
        await bot.send(ws, "mark", mark={"name": "ok"})

    bot = FakeBot(misbehave)
    async with call_with(bot) as call:
        await call.wait_for_mark("ok", timeout=5)
    assert len(call.protocol_errors) == 6
    for fragment in ("binary", "streamSid", "base64", "RIFF", "'speak'", "JSON"):
        assert any(fragment in e for e in call.protocol_errors), fragment
    assert [e.kind for e in call.events].count("protocol_error") == 6
    assert call.bot_played_ulaw().count(BOT_TONE) == 0  # nothing invalid was played


async def test_the_bot_closing_the_socket_ends_the_call() -> None:
    async def greet_and_hang_up(bot: FakeBot, ws: web.WebSocketResponse) -> None:
        await bot.send_audio(ws, 0.2)
        await bot.send(ws, "mark", mark={"name": "bye"})
        await bot.mark_echo_seen.wait()
        await ws.close()

    bot = FakeBot(greet_and_hang_up)
    async with call_with(bot) as call:
        await call.wait_closed(timeout=5)
        assert call.closed_by_bot
        await call.say("are you there")  # returns at once: nobody is listening
        with pytest.raises(TimeoutError):
            await call.wait_for_mark("never", timeout=5)
    assert call.events[-1].kind == "ws_closed"
    assert call.marks_echoed == ["bye"]
    assert bot.messages("stop") == []  # the phone did not hang up; the bot did


# ---- recordings --------------------------------------------------------------------------------------------


async def test_stereo_wav_has_caller_left_and_bot_right_aligned() -> None:
    async def half_second(bot: FakeBot, ws: web.WebSocketResponse) -> None:
        await bot.send_audio(ws, 0.5)

    bot = FakeBot(half_second)
    async with call_with(bot) as call:
        await call.say("good morning")
        await call.wait_for_bot_silence(quiet=0.1, timeout=5)
    left, right = call.caller_sent_ulaw(), call.bot_played_ulaw()
    assert len(left) == len(right) and len(left) % FRAME_BYTES == 0
    with wave.open(io.BytesIO(call.stereo_wav())) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        assert wav.getnframes() == len(left)
        frames = wav.readframes(wav.getnframes())
    samples = memoryview(frames).cast("h")
    assert bytes(samples[0::2]) == ulaw_to_pcm16(left)
    assert bytes(samples[1::2]) == ulaw_to_pcm16(right)
    assert CODEBOOK.transcribe(ulaw_to_pcm16(left)) == "good morning"
    assert right.count(BOT_TONE) == 4000


# ---- the buffers, as properties ----------------------------------------------------------------------------

chunks_and_marks = st.lists(
    st.one_of(st.integers(0, 700), st.text("abc", min_size=1, max_size=3)), max_size=30
)


@settings(max_examples=200, deadline=None)
@given(chunks_and_marks)
def test_playback_echoes_each_mark_once_all_audio_before_it_has_played(items: list[int | str]) -> None:
    buffer = PlaybackBuffer()
    expected: list[tuple[int, str]] = []  # (tick, mark)
    audio = bytearray()
    for item in items:
        if isinstance(item, int):
            chunk = bytes((len(audio) + i) % 255 for i in range(item))
            audio += chunk
            buffer.push_audio(chunk)
        else:
            expected.append((-(-len(audio) // FRAME_BYTES), item))  # the tick after its last byte's frame
            buffer.push_mark(item)
    echoed: list[tuple[int, str]] = []
    played = bytearray()
    for tick in range(len(audio) // FRAME_BYTES + 3):
        frame = buffer.tick()
        assert len(frame.audio) == FRAME_BYTES
        echoed += [(tick, name) for name in frame.echoed_marks]
        played += frame.audio[: frame.played]
    assert echoed == expected
    assert played == audio
    assert buffer.is_empty and buffer.queued_bytes == 0


def test_playback_never_plays_audio_before_it_arrived() -> None:
    buffer = PlaybackBuffer()
    buffer.push_audio(b"\x00" * 200, at=1.0)
    buffer.push_mark("m", at=1.0)
    assert buffer.tick(now=0.98).played == 0  # a late tick for 0.98 s must not take it
    assert buffer.tick(now=1.0).played == FRAME_BYTES
    frame = buffer.tick(now=1.02)
    assert (frame.played, frame.echoed_marks) == (40, ())
    assert buffer.tick(now=1.04).echoed_marks == ("m",)


@given(chunks_and_marks, st.integers(0, 5))
def test_clear_returns_every_pending_mark_in_order(items: list[int | str], ticks: int) -> None:
    buffer = PlaybackBuffer()
    for item in items:
        buffer.push_audio(b"\x00" * item) if isinstance(item, int) else buffer.push_mark(item)
    echoed = [name for _ in range(ticks) for name in buffer.tick().echoed_marks]
    assert echoed + buffer.clear() == [item for item in items if isinstance(item, str)]
    assert buffer.tick().played == 0 and buffer.is_empty


@given(st.lists(st.integers(1, 500), max_size=10))
def test_caller_audio_sends_every_utterance_in_order_over_noise(lengths: list[int]) -> None:
    caller: CallerAudio[int] = CallerAudio(noise_rms=40)
    speech = b"".join(bytes([i % 100]) * n for i, n in enumerate(lengths))
    for i, n in enumerate(lengths):
        caller.enqueue(bytes([i % 100]) * n, i)
    sent, drained = bytearray(), 0
    finished: list[int] = []
    for _ in range(len(speech) // FRAME_BYTES + 2):
        frame = caller.next_frame()
        assert len(frame.audio) == FRAME_BYTES
        sent += frame.audio[: frame.speech]
        finished += frame.finished
        drained += frame.drained
    assert sent == speech
    assert finished == list(range(len(lengths)))
    assert drained == (1 if lengths else 0)


@given(st.one_of(st.text(max_size=200), st.binary(max_size=50), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["event", "streamSid", "media", "mark", "payload", "name"]), inner, max_size=4),
    max_leaves=10).map(json.dumps)))  # fmt: skip
def test_check_bot_frame_never_raises(frame: str | bytes) -> None:
    result = check_bot_frame(frame, "MZ1")
    if isinstance(result, BotFrameError):
        assert len(result.reason) <= 120


def test_the_phone_refuses_sids_twilio_never_makes() -> None:
    with pytest.raises(ValueError, match="account sid"):
        SimulatedPhone(bot_url="http://127.0.0.1:9", auth_token=AUTH_TOKEN, account_sid="AC1")


async def test_the_phone_refuses_to_dial_a_call_sid_twilio_never_makes() -> None:
    phone = SimulatedPhone(bot_url="http://127.0.0.1:9", auth_token=AUTH_TOKEN)
    for call_sid in ("CA123", "CA" + "0" * 30 + "/.."):
        with pytest.raises(ValueError, match="call sid"):
            await phone.dial(call_sid=call_sid)
