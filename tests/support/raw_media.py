"""Twilio's side of a Media Streams socket driven by hand, over bare TCP: for tests in which "Twilio"
misbehaves in ways the simulated phone never would (stops reading, drops the connection, floods).

Rules:
- The upgrade is signed as Twilio signs it (twilio's own ``RequestValidator`` over the ``wss://`` URL),
  and ``start`` is bound to its call as ``/voice`` would bind it; every message is built by the emulator's
  Twilio implementation (``emulators.twilio_wire``), so only the misbehaviour is the test's own.
- WebSocket frames are masked client frames (RFC 6455 §5.2) of any size.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

from twilio.request_validator import RequestValidator

from bot.core.binding import PARAMETER, mint_binding
from bot.sim.rig import AUTH_TOKEN, PUBLIC_BASE_URL, Bench
from emulators import twilio_wire as wire
from emulators.voice import ToneCodebook
from media.codec import pcm16_to_ulaw


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
