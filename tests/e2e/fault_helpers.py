"""Helpers shared by the end-to-end fault tests (``test_faults*.py``).

Rules:
- What the caller heard comes from the phone: a mark the phone echoed means its phrase played (these
  tests send no ``clear``), and the bot's ``MarkTracker`` names the phrase behind each mark.
- What was kept comes from the call's recording, read back with ``Recording.load`` as an operator would.
- Nothing here patches the bot: the helpers only read what the bench and the phone expose.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
from twilio.request_validator import RequestValidator

from bot.call.call import Call
from bot.core.binding import PARAMETER, mint_binding
from bot.recording import Recording
from bot.server.app import DEPS
from bot.sim.rig import AUTH_TOKEN, PUBLIC_BASE_URL, Bench
from bot.sim.store_line import store_line
from emulators import twilio_wire as wire
from emulators.phone import PhoneCall
from emulators.voice import ToneCodebook
from media.codec import pcm16_to_ulaw

GREETING = "Hi, how can I help?"
APOLOGY = store_line().apology_text
NO_SILENCE_FILLER = 30.0  # seconds: keeps the silence filler out of tests about something else


def said(question: str) -> list[str]:
    """The phrases ``echo_responder`` answers ``question`` with."""
    return ["You said:", f"{question}."]


def heard(phone: PhoneCall, bot_call: Call) -> list[str]:
    """The phrases the caller heard, in order: one per mark the phone echoed."""
    texts: list[str] = []
    for mark in phone.marks_echoed:
        response_id = int(mark[1 : mark.index("-")])  # marks are named r<response>-p<n>
        phrase = next(p for p in bot_call.tracker.phrases(response_id) if p.mark == mark)
        assert phrase.state == "played", phrase
        texts.append(phrase.text)
    return texts


def caller_speech_ends(phone: PhoneCall) -> list[float]:
    return [e.t for e in phone.events if e.kind == "caller_speech_end"]


async def clips_cached(b: Bench, timeout_s: float = 10.0) -> None:
    """Until the line's pre-synthesized clips (apology, fillers) are in the bot's cache."""
    deps = b.server.app[DEPS]
    line = deps.lines.route(None)
    clips = deps.voices.for_line(line).clips
    texts = [line.apology_text, line.silence_filler_text, line.filler_text]
    texts += [tool.filler for tool in line.tools if tool.filler]
    async with asyncio.timeout(timeout_s):
        while any(clips.get(t) is None for t in texts):  # noqa: ASYNC110 (no event)
            await asyncio.sleep(0.02)


def recording_of(b: Bench, call_sid: str) -> Recording:
    """The recording of ``call_sid`` in the bench's recordings folder (exactly one)."""
    found = []
    for meta in Path(b.settings.recordings_dir).glob("*/*/meta.json"):
        if json.loads(meta.read_bytes()).get("call_sid") == call_sid:
            found.append(meta.parent)
    assert len(found) == 1, found
    return Recording.load(found[0])


def assert_finalized(recording: Recording, *, turns: int | None = None) -> None:
    """The recording is complete and readable end to end: meta, events, both audio tracks."""
    assert recording.complete and not recording.torn_tail, recording.meta
    assert recording.skipped == (), recording.skipped  # every line the bot writes passes the reader
    assert recording.events_of("call_ended"), "no call_ended event"
    recording.stereo_wav()  # every track and event places without error
    if turns is not None:
        assert recording.meta.get("turns") == turns, recording.meta


async def active_calls(b: Bench) -> int:
    """``active_calls`` as ``/healthz`` reports it."""
    async with aiohttp.ClientSession() as http, http.get(b.server.url + "/healthz") as response:
        count: Any = (await response.json())["active_calls"]
    assert isinstance(count, int)
    return count


_NOT_THE_BOTS = (
    "AioServer.",  # the TTS emulator: grpc.aio replaces its accept task per RPC
    "RequestHandler.start",  # an idle keep-alive HTTP connection (the bot's SDK clients to the emulators)
)


def bot_tasks(tasks: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """Tasks other than this test's, the emulators' and idle HTTP connections'. A request still being
    handled (a media socket) runs in its own ``RequestHandler._handle_request`` task, so it is kept."""
    return {
        t
        for t in tasks
        if t is not asyncio.current_task()
        and not getattr(t.get_coro(), "__qualname__", "").startswith(_NOT_THE_BOTS)
    }


async def no_leaked_tasks(before: set[asyncio.Task[Any]], timeout_s: float = 5.0) -> None:
    """Every task started since ``before`` (bar the emulators') has ended within ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (leaked := bot_tasks(asyncio.all_tasks() - before)) and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert not leaked, [(t.get_name(), t.get_coro()) for t in leaked]


# ---- a Media Streams socket driven by hand -------------------------------------------------------------


def bound_parameters(call_sid: str, account_sid: str) -> dict[str, str]:
    """``customParameters`` of a stream ``/voice`` answered for this call: its binding token included."""
    return {"line": "store", PARAMETER: mint_binding(AUTH_TOKEN, call_sid, account_sid, now=time.time())}


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (RFC 6455 §5.2), any size."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = bytes([0x80 | opcode, 0x80 | size])
    elif size < 1 << 16:
        header = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    masked = (int.from_bytes(payload, "little") ^ int.from_bytes(mask * (size // 4 + 1), "little")).to_bytes(
        size + 4, "little"
    )[:size]
    return header + mask + masked


class RawMediaSocket:
    """Twilio's side of one media stream on a bare TCP socket, so a test can misbehave in ways the simulated
    phone never would: stop reading, drop the connection. Signed like the phone signs (twilio's own
    ``RequestValidator`` over the ``wss://`` URL), its ``start`` bound as ``/voice`` would bind it;
    messages built by ``emulators.twilio_wire``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, call_sid: str) -> None:
        self.reader = reader
        self.writer = writer
        self.call_sid = call_sid
        self.stream_sid = "MZ" + call_sid[2:]
        self.account_sid = "AC" + "0" * 32
        self._seq = 0
        self._chunk = 0
        self._origin: float | None = None  # loop time of the stream's first frame (Twilio's timestamp 0)

    @classmethod
    async def connect(cls, b: Bench, call_sid: str, *, receive_buffer: int | None = None) -> RawMediaSocket:
        """Upgrade to a media stream; ``receive_buffer`` (SO_RCVBUF) keeps the TCP window small."""
        signature = RequestValidator(AUTH_TOKEN).compute_signature(
            PUBLIC_BASE_URL.replace("https", "wss") + "/media", {}
        )
        host, port = b.server.url.removeprefix("http://").split(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # before connecting: the window scale is agreed in the handshake
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(
            f"GET /media HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"X-Twilio-Signature: {signature}\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer, call_sid)

    async def send_text(self, text: str) -> None:
        self.writer.write(ws_frame(0x1, text.encode()))
        await self.writer.drain()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def start(self) -> None:
        await self.send_text(wire.connected_message())
        await self.send_text(
            wire.start_message(
                self._next_seq(),
                stream_sid=self.stream_sid,
                account_sid=self.account_sid,
                call_sid=self.call_sid,
                custom_parameters=bound_parameters(self.call_sid, self.account_sid),
            )
        )

    async def send_audio(self, ulaw: bytes, *, paced: bool = True) -> None:
        """``ulaw`` as 20 ms media frames. ``paced``: no frame before its timestamp, as Twilio sends (a frame
        every 20 ms of real time; a late sender catches up in a burst); else as fast as the socket takes
        them, which is not Twilio's pace (the bot drops audio more than 2 s ahead of its clock)."""
        loop = asyncio.get_running_loop()
        if self._origin is None:
            self._origin = loop.time()
        for offset in range(0, len(ulaw), 160):
            self._chunk += 1
            if paced and (wait := self._origin + (self._chunk - 1) * 0.02 - loop.time()) > 0:
                await asyncio.sleep(wait)
            await self.send_text(
                wire.media_message(
                    self._next_seq(),
                    stream_sid=self.stream_sid,
                    chunk=self._chunk,
                    timestamp_ms=(self._chunk - 1) * 20,
                    ulaw=ulaw[offset : offset + 160].ljust(160, b"\xff"),
                )
            )

    def resume_pace(self) -> None:
        """After a pause in sending: paced frames go on from now (their timestamps go on from the last)."""
        self._origin = asyncio.get_running_loop().time() - self._chunk * 0.02

    async def say(self, codebook: ToneCodebook, text: str, *, then_silence_s: float = 1.0) -> None:
        """Speak ``text`` in the tone voice, then silence long enough for the bot's endpointer."""
        await self.send_audio(pcm16_to_ulaw(codebook.speak(text)) + b"\xff" * int(8000 * then_silence_s))

    async def stop(self) -> None:
        """Twilio's ``stop`` (the caller hung up); the socket stays open."""
        await self.send_text(
            wire.stop_message(
                self._next_seq(),
                stream_sid=self.stream_sid,
                account_sid=self.account_sid,
                call_sid=self.call_sid,
            )
        )

    def stop_reading(self) -> None:
        """Never read the bot's frames again: its data piles up in our TCP receive window, then in its own."""
        transport = self.writer.transport
        assert isinstance(transport, asyncio.ReadTransport)
        transport.pause_reading()

    def abort(self) -> None:
        self.writer.transport.abort()
