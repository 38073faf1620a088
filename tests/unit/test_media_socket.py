"""MediaSocket: sends, receives and closes that cannot hang, on a real aiohttp socket over 127.0.0.1.

Rules checked here: a send to a peer that stopped reading gives up after ``send_timeout_s`` (the
connection is aborted, the failure reported once as ``send_timeout``); cancelling a sender blocked on
such a peer leaves ``close()`` working (no stray CancelledError, aiohttp issue #2934) and bounded; a
silent peer ends ``frames()`` after ``receive_timeout_s`` as ``receive_timeout``.

The peer is a bare TCP socket with a small receive buffer that upgrades and then never reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from bot.server import media_socket
from bot.server.media_socket import MediaSocket

TIMEOUT_S = 20.0  # generous: these tests wait on TCP buffers filling on a loaded machine
FRAME = "x" * 65536


@dataclass
class Side:
    """What the server side of one socket saw."""

    failures: list[tuple[str, int | None]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    sends: int = 0
    outcome: str = ""


Scenario = Callable[[MediaSocket, Side], Awaitable[None]]


@contextlib.asynccontextmanager
async def server(scenario: Scenario, **options: float) -> AsyncIterator[tuple[int, Side]]:
    side = Side()

    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sock = MediaSocket(ws, request.transport, **{"receive_timeout_s": 30.0, **options})
        sock.on_failure = lambda reason, code: side.failures.append((reason, code))
        try:
            await scenario(sock, side)
        finally:
            side.done.set()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1], side
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def peer_that_never_reads(port: int) -> AsyncIterator[None]:
    """Upgrades, then reads nothing: the server's frames pile up in the TCP buffers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)
    assert head.startswith(b"HTTP/1.1 101"), head
    transport = writer.transport
    assert isinstance(transport, asyncio.ReadTransport)
    transport.pause_reading()
    try:
        yield
    finally:
        writer.transport.abort()


async def test_a_send_to_a_peer_that_stopped_reading_gives_up_and_aborts_the_connection() -> None:
    async def send_until_refused(sock: MediaSocket, side: Side) -> None:
        with pytest.raises(ConnectionResetError):
            while True:
                await sock.send(FRAME)
                side.sends += 1
        await sock.close()  # at once: the connection is already gone
        side.outcome = "closed"

    async with server(send_until_refused, send_timeout_s=0.5) as (port, side), peer_that_never_reads(port):
        await asyncio.wait_for(side.done.wait(), TIMEOUT_S)
    assert side.outcome == "closed" and side.sends > 0
    assert side.failures == [("send_timeout", None)]


async def test_cancelling_a_blocked_sender_leaves_close_working_and_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(media_socket, "CLOSE_TIMEOUT_S", 0.5)

    async def cancel_blocked_sender_then_close(sock: MediaSocket, side: Side) -> None:
        async def sender() -> None:
            while True:
                await sock.send(FRAME)
                side.sends += 1

        task = asyncio.create_task(sender())
        while True:  # until one send has waited a whole second: blocked on the peer
            before = side.sends
            await asyncio.sleep(1.0)
            if side.sends == before and side.sends > 0:
                break
        task.cancel()  # as the call's teardown cancels the Speaker
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sock.close()  # must neither raise CancelledError nor wait on the peer for ever
        side.outcome = "closed"

    async with (
        server(cancel_blocked_sender_then_close, send_timeout_s=60.0) as (port, side),
        peer_that_never_reads(port),
    ):
        await asyncio.wait_for(side.done.wait(), TIMEOUT_S)
    assert side.outcome == "closed"
    assert side.failures == []  # a bounded close is no failure of the call


async def test_a_silent_peer_ends_frames_after_the_receive_timeout() -> None:
    async def read_all(sock: MediaSocket, side: Side) -> None:
        async for _frame in sock.frames():
            pass
        side.outcome = "ended"

    async with server(read_all, receive_timeout_s=0.3) as (port, side), peer_that_never_reads(port):
        await asyncio.wait_for(side.done.wait(), TIMEOUT_S)
    assert side.outcome == "ended"
    assert side.failures == [("receive_timeout", None)]
